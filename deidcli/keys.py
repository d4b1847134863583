"""The secret key behind every pseudonym: generating, loading and fingerprinting it.

Pseudonyms are HMAC-SHA256 of the original value under this key, so the same key gives the same
pseudonyms on any machine and in any worker, and without the key nobody can rebuild or dictionary-attack
them. The key file holds 64 hex characters (32 random bytes).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from deidcli.errors import KeyFileError

KEY_BYTES = 32
MIN_KEY_BYTES = 16
KEY_ENV = "DEID_KEY_FILE"


def generate_key_file(path: str | Path) -> Path:
    """Write a new random key with mode 0600; refuse to overwrite an existing key (it would orphan pseudonyms)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as error:
        raise KeyFileError(f"{target} already exists; refusing to overwrite a key") from error
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_hex(KEY_BYTES) + "\n")
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
