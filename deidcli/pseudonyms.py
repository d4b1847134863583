"""Keyed pseudonyms: one small function per kind of value, all driven by one HMAC key.

Why HMAC and not a hash: a plain hash of a PatientID can be reversed by hashing every plausible ID;
an HMAC cannot without the key. Why deterministic: the same key and value give the same pseudonym in
every run, worker and machine, so longitudinal studies stay linked and workers share no state.
Every output is valid for its VR (length, character set), so the output stays valid DICOM.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass

from deidcli.errors import UsageError

#: Standard root for UUID-derived UIDs (PS3.5 B.2): needs no registered organisation root.
UUID_ROOT = "2.25"
#: UIDs defined by the standard itself (PS3.6 Annex A). A prefix proves nothing: only UIDs that are
#: *registered* there (pydicom's UID dictionary) are kept, see `is_registered_uid`.
DICOM_STANDARD_ROOT = "1.2.840.10008."
MAX_UID_LENGTH = 64
_UID_ROOT = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
#: Leave at least this many digits for the keyed part so collisions stay negligible (>= 80 bits).
MIN_UID_DIGITS = 24


def validate_org_root(root: str | None) -> str:
    """Check an organisation UID root; `None` selects the 2.25 UUID form."""
    if root is None or root == "":
        return UUID_ROOT
    root = root.strip().rstrip(".")
    if not _UID_ROOT.match(root):
        raise UsageError(f"{root!r} is not a UID root (digits and dots, no leading zeros)")
    if len(root) + 1 + MIN_UID_DIGITS > MAX_UID_LENGTH:
        raise UsageError(
            f"{root!r} is {len(root)} characters; at most {MAX_UID_LENGTH - 1 - MIN_UID_DIGITS} "
            "leave room for unique UIDs"
        )
    return root


def is_registered_uid(value: str) -> bool:
    """True only for a UID the DICOM standard registers (SOP classes, transfer syntaxes, coding schemes,
    well-known frames of reference). A stranger's UID under 1.2.840.10008 (an MRN appended, a path
    hidden after it) is not registered, so it is pseudonymised like any other."""
    from pydicom._uid_dict import UID_dictionary

    return value in UID_dictionary


def registered_uid_type(value: str) -> str:
    """The kind of a registered UID ("SOP Class", "Transfer Syntax", "Coding Scheme"...), "" if unregistered."""
    from pydicom._uid_dict import UID_dictionary

    entry = UID_dictionary.get(value)
    return entry[1] if entry else ""


_TOKEN_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no I, O, 0, 1: readable over the phone
assert len(_TOKEN_ALPHABET) == 32  # `_token` reads 5 bits per letter


def _token(digest: bytes, length: int) -> str:
    """`length` base-32 digits of the digest, least significant first: the alphabet has 32 letters, so
    digit i is bits 5i..5i+4 (the same digits as repeated divmod by 32, without a Python loop body)."""
    number = int.from_bytes(digest, "big")
    return "".join([_TOKEN_ALPHABET[number >> shift & 31] for shift in range(0, 5 * length, 5)])


#: Maximum characters per value for the string VRs we fill with tokens.
_VR_MAX_LENGTH = {"AE": 16, "CS": 16, "SH": 16, "LO": 64, "ST": 1024, "LT": 10240, "UT": 10240, "UC": 64}


@dataclass
class Replacement:
    """One original -> pseudonym pair. It holds PHI: it goes to the private mapping only."""

    tag: int
    vr: str
    original: str
    pseudonym: str


@dataclass
class Pseudonymizer:
    """Turns original values into keyed pseudonyms, valid for their VR.

    `patient` is the original patient identity of the file being processed: it keys the date shift,
    so all studies of one patient move by the same number of days and intervals are preserved.
    """

    key: bytes
    org_root: str = UUID_ROOT
    date_shift_days: tuple[int, int] = (-3650, -365)
    patient: str = ""

    def digest(self, kind: str, value: str) -> bytes:
        mac = self._keyed.copy()  # the key's inner and outer pads are computed once per pseudonymizer
        mac.update(f"{kind}\x1f{value}".encode("utf-8", "surrogateescape"))
        return mac.digest()

    # -- one function per kind of value -------------------------------------------------------
    def uid(self, value: str) -> str:
        value = value.strip("\0 ")
        if not value:
            return ""
        if is_registered_uid(value):
            return value  # SOP classes, transfer syntaxes, coding schemes: they name no one, and must stay
        number = int.from_bytes(self.digest("uid", value)[:16], "big")
        if self.org_root == UUID_ROOT:
            return f"{UUID_ROOT}.{number}"
        room = MAX_UID_LENGTH - len(self.org_root) - 1
        suffix = str(number)[:room].lstrip("0") or "1"
        return f"{self.org_root}.{suffix}"

    def person_name(self, value: str) -> str:
        if not value.strip():
            return ""
        return "PAT^" + _token(self.digest("person", value.strip()), 10)

    def identifier(self, value: str, vr: str) -> str:
        if not value.strip():
            return ""
        length = min(12, _VR_MAX_LENGTH.get(vr, 16))
        return _token(self.digest("id", value.strip()), length)

    def day_offset(self) -> int:
        cached = self._day_offset
        if cached is not None and cached[0] == (self.patient, self.date_shift_days):
            return cached[1]
        low, high = self.date_shift_days
        span = high - low + 1
        offset = low + int.from_bytes(self.digest("date-shift", self.patient)[:8], "big") % span
        self._day_offset = ((self.patient, self.date_shift_days), offset)
        return offset

    def date(self, value: str) -> str:
        value = value.strip()
        if not value:
            return ""
        try:
            original = dt.date(int(value[0:4]), int(value[4:6]), int(value[6:8]))
        except ValueError:
            return ""  # an unparseable date carries unknown content: empty, never kept
        shifted = original + dt.timedelta(days=self.day_offset())
        return shifted.strftime("%Y%m%d")

    def datetime(self, value: str) -> str:
        value = value.strip()
        if len(value) < 8:
            return ""
        date = self.date(value[:8])
        return date + value[8:] if date else ""

    def age(self, value: str) -> str:
        """Ages over 89 years identify (HIPAA); they are capped at 090Y, others kept."""
        value = value.strip()
        if len(value) == 4 and value[:3].isdigit() and value[3] == "Y" and int(value[:3]) > 89:
            return "090Y"
        return value if re.fullmatch(r"\d{3}[DWMY]", value) else ""

    # -- dispatch by VR -------------------------------------------------------------------------
    def text_value(self, value: str, vr: str) -> str:
        handler = self._handlers.get(vr)
        if handler is None:
            return self.identifier(value, vr)
        return handler(value)

    def __post_init__(self) -> None:
        self._keyed = hmac.new(self.key, digestmod=hashlib.sha256)
        self._day_offset: tuple[tuple[str, tuple[int, int]], int] | None = None
        self._handlers: dict[str, Callable[[str], str]] = {
            "UI": self.uid,
            "PN": self.person_name,
            "DA": self.date,
            "DT": self.datetime,
            "AS": self.age,
            "TM": lambda value: value.strip(),  # shifted by whole days: the time of day stays
            "DS": lambda value: "0" if value.strip() else "",
            "IS": lambda value: "0" if value.strip() else "",
            "UR": lambda value: "",
        }


#: VRs where a pseudonym means nothing: the value becomes a neutral dummy (zero / empty).
NUMERIC_VRS = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "UV", "SV", "AT"})
BINARY_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN"})
