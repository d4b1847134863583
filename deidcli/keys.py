"""The secret key behind every pseudonym: generating, loading and fingerprinting it.

Pseudonyms are HMAC-SHA256 of the original value under this key, so the same key gives the same
pseudonyms on any machine and in any worker, and without the key nobody can rebuild or dictionary-attack
them. The key file holds 64 hex characters (32 random bytes).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from deidcli.errors import KeyFileError

KEY_BYTES = 32
MIN_KEY_BYTES = 16
KEY_ENV = "DEID_KEY_FILE"
#: The key a run creates when none is given, in the private folder (beside the mapping it unlocks).
PRIVATE_KEY_NAME = "deid.key"
#: In the private folder: which key (fingerprint, file) the mapping was made with, so a later run that
#: brings another key can be told which one is expected and where it was.
KEY_RECORD_NAME = "key.json"


def new_key() -> bytes:
    """A new random key (not yet written anywhere: a run writes it only once every check has passed)."""
    return secrets.token_bytes(KEY_BYTES)


def generate_key_file(path: str | Path) -> Path:
    """Write a new random key with mode 0600; refuse to overwrite an existing key (it would orphan pseudonyms)."""
    return write_key_file(path, new_key())


def write_key_file(path: str | Path, key: bytes) -> Path:
    """Write `key` as hex with mode 0600; refuse to overwrite an existing key (it would orphan pseudonyms)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as error:
        raise KeyFileError(f"{target} already exists; refusing to overwrite a key") from error
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key.hex() + "\n")
    return target


def load_key(path: str | Path) -> bytes:
    """Read a key file (hex text, or raw bytes of at least 16 bytes)."""
    target = Path(path)
    try:
        raw = target.read_bytes()
    except OSError as error:
        raise KeyFileError(f"cannot read key file {target}: {error.strerror}") from error
    text = raw.strip()
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        key = raw
    if len(key) < MIN_KEY_BYTES:
        raise KeyFileError(f"key file {target} holds {len(key)} bytes; at least {MIN_KEY_BYTES} are needed")
    return key


def key_fingerprint(key: bytes) -> str:
    """A public, non-reversible name for a key: recorded in the audit so resume can refuse a different key."""
    return hmac.new(key, b"deidcli key fingerprint", hashlib.sha256).hexdigest()[:16]


@dataclass(frozen=True)
class KeyChoice:
    """The key a run will use and where it comes from.

    `is_new`: no key was given or found, so `key` is freshly random and will be written to `path` (in the
    private folder) once every other check has passed. `path` is None for a key given as bytes.
    """

    key: bytes
    path: Path | None
    origin: str  # in words, for messages: "the key file given", "DEID_KEY_FILE", "the private folder", ...
    is_new: bool = False

    @property
    def fingerprint(self) -> str:
        return key_fingerprint(self.key)

    def describe(self) -> str:
        """'the key file /x/site.key (fingerprint 0a1b...)' for messages."""
        where = f" {self.path}" if self.path is not None else ""
        return f"{self.origin}{where} (fingerprint {self.fingerprint})"


def choose_key(given: bytes | str | Path | None, private_dir: Path) -> KeyChoice:
    """The key of a run, written nowhere: given > $DEID_KEY_FILE > the private folder's key > a new one.

    Looking in the private folder before making a new key is what keeps a second run into the same
    OUT_DIR on the first run's key.
    """
    if isinstance(given, bytes | bytearray):
        key = bytes(given)
        if len(key) < MIN_KEY_BYTES:
            raise KeyFileError(f"the key holds {len(key)} bytes; at least {MIN_KEY_BYTES} are needed")
        return KeyChoice(key, None, "the key given as bytes")
    if given is not None:
        return KeyChoice(load_key(given), Path(given), "the key file")
    environment = os.environ.get(KEY_ENV)
    if environment:
        return KeyChoice(load_key(environment), Path(environment), f"the key file named by {KEY_ENV}")
    private_key = private_dir / PRIVATE_KEY_NAME
    if private_key.exists():
        return KeyChoice(load_key(private_key), private_key, "the key of the private folder")
    return KeyChoice(new_key(), private_key, "a new key", is_new=True)


@dataclass(frozen=True)
class KeyRecord:
    """What the private folder says about the key its mapping was made with."""

    fingerprint: str
    key_file: str  # absolute path, "" when the key was given as bytes

    def describe(self) -> str:
        """Where the key was: 'the key file /x/site.key' (the fingerprint is said by the caller)."""
        return f"the key file {self.key_file}" if self.key_file else "a key given as bytes, not a file"


def read_key_record(private_dir: Path) -> KeyRecord | None:
    """The private folder's record of its key, or None (no record, or one we cannot read: it says nothing)."""
    try:
        document = json.loads((private_dir / KEY_RECORD_NAME).read_text(encoding="utf-8"))
        return KeyRecord(str(document["fingerprint"]), str(document.get("key_file") or ""))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_key_record(private_dir: Path, choice: KeyChoice) -> None:
    """Remember which key (fingerprint, absolute file path) the private folder's mapping is made with."""
    record = {"fingerprint": choice.fingerprint,
              "key_file": str(choice.path.resolve()) if choice.path is not None else ""}
    target = private_dir / KEY_RECORD_NAME
    temporary = target.with_suffix(".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(record, indent=2) + "\n")
    os.replace(temporary, target)
