"""The original values verify searches for ("needles"), their variants, and a token matcher.

Values come from two places: the private mapping (`values.csv`: every value the writer replaced) and, when
IN_DIR is still there, the original files themselves (every person name and identifier, whatever the recipe
did with them: a value the writer emptied or removed is not in the mapping, but must not be in the release).

Matching is on tokens (runs of letters and digits, upper-cased), so `DOE^JANE`, `Doe, Jane` and `DOE JANE`
are one needle (DOE, JANE), and `JANE DOE` another; a short needle never matches inside a longer word (`DOE`
is not found in `ADOE7`). UIDs are matched whole, by set lookup. Needles too short or too common to search
without drowning in false hits are not searched and are listed as not checked.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.datadict import tag_for_keyword
from pydicom.uid import UID_dictionary

TOKEN = re.compile(rb"[A-Za-z0-9\x80-\xff]+")
#: A UID-shaped run of digits and dots; it may be followed by a dot that starts something else ("UID.dcm").
UID_TOKEN = re.compile(rb"(?<![0-9.])[0-9]+(?:\.[0-9]+){2,}(?![0-9]|\.[0-9])")
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
MONTH_NAMES = ["JANUARY", "FEBRUARY", "MARCH", "APRIL", "MAY", "JUNE", "JULY", "AUGUST", "SEPTEMBER", "OCTOBER",
               "NOVEMBER", "DECEMBER"]
#: Words that are in many headers for reasons other than a patient (so not evidence of a leak).
COMMON_WORDS = {
    b"YES", b"NO", b"NONE", b"NULL", b"UNKNOWN", b"ANONYMOUS", b"ANON", b"ANONYMIZED", b"TEST", b"PATIENT",
    b"MR", b"MRS", b"MS", b"MISS", b"DR", b"JR", b"SR", b"II", b"III", b"PHD", b"MD", b"THE", b"AND", b"OF",
}
#: Identifiers and other values read from the originals beside every person name (PN), at any depth.
IDENTIFYING_KEYWORDS = (
    "PatientID", "OtherPatientIDs", "IssuerOfPatientID", "AccessionNumber", "PatientBirthDate",
    "PatientAddress", "PatientTelephoneNumbers", "MedicalRecordLocator", "AdmissionID", "InstitutionName",
    "InstitutionAddress", "StationName", "DeviceSerialNumber", "RequestedProcedureID", "PerformedProcedureStepID",
    "ScheduledProcedureStepID", "PatientInsurancePlanCodeSequence", "MilitaryRank", "BranchOfService",
    "CountryOfResidence", "RegionOfResidence", "EthnicGroup", "Occupation", "PatientReligiousPreference",
)
_IDENTIFYING = {tag_for_keyword(k) for k in IDENTIFYING_KEYWORDS}
BIRTH_DATE = tag_for_keyword("PatientBirthDate")
PIXEL_TAGS = {0x7FE00010, 0x7FE00008, 0x7FE00009}


@dataclass(frozen=True)
class Needle:
    """One searched form of an original value. `value` is PHI (private JSON only); `source` is not."""

    tokens: tuple[bytes, ...]
    value: str
    source: str  # e.g. "PatientName (values.csv)" or "PatientName (original)"
    tag: int | None = None  # the attribute the value came from, for "kept by the recipe" decisions


def tokens(data: bytes) -> list[bytes]:
    return [token.upper() for token in TOKEN.findall(data)]


def text_tokens(text: str) -> tuple[bytes, ...]:
    return tuple(tokens(text.encode("utf-8", "surrogateescape")))


def too_weak(needle_tokens: tuple[bytes, ...]) -> bool:
    """Too short or too common to search: a 1-2 letter word, a small number, a common word, a run of one
    or two characters (000000000), or nothing at all."""
    joined = b"".join(needle_tokens)
    distinct = len(set(joined))
    if distinct < 2 or (distinct == 2 and len(joined) < 8) or all(t in COMMON_WORDS for t in needle_tokens):
        return True
    if len(needle_tokens) == 1:
        token = needle_tokens[0]
        return len(token) < 3 or (token.isdigit() and len(token) < 5)
    return len(joined) < 5


def person_name_forms(value: str) -> list[str]:
    """DOE^JANE^M^DR -> DOE^JANE, JANE DOE, DOE, JANE, ... (each component group of a PN, each part)."""
    forms: list[str] = []
    for group in value.split("="):
        parts = [p.strip() for p in group.split("^")]
        family, given = (parts + ["", ""])[:2]
        named = [p for p in parts if p]
        if not named:
            continue
        forms.append(group)
        if family and given:
            forms += [f"{given} {family}", f"{family} {given}"]
        forms += named
        for part in named:  # a compound part (VAN DER BERG) is also searched word by word
            words = part.replace(",", " ").replace("-", " ").split()
            if len(words) > 1:
                forms += words
    return forms


def date_forms(value: str, human: bool) -> list[str]:
    """A DA value; with `human`, also 1970-03-12, 12/03/1970, 03/12/1970, 12.03.1970, 12 Mar 1970, March 12, 1970."""
    digits = value.strip()[:8]
    if len(digits) != 8 or not digits.isdigit():
        return [value]
    forms = [digits]
    if human:
        year, month, day = digits[:4], digits[4:6], digits[6:]
        m = int(month)
        forms += [f"{year}-{month}-{day}", f"{day}/{month}/{year}", f"{month}/{day}/{year}", f"{year}/{month}/{day}"]
        forms += [f"{int(day)}/{m}/{year}", f"{m}/{int(day)}/{year}"]
        if 1 <= m <= 12:
            for name in (MONTHS[m - 1], MONTH_NAMES[m - 1]):
                forms += [f"{day} {name} {year}", f"{int(day)} {name} {year}", f"{name} {int(day)} {year}"]
    return forms


def value_forms(value: str, vr: str, tag: int | None) -> list[str]:
    if vr == "PN":
        return person_name_forms(value)
    if vr in ("DA", "DT"):
        return date_forms(value, human=tag == BIRTH_DATE)
    return [part for part in value.split("\\") if part.strip()]


def is_registered_uid(uid: str) -> bool:
    return uid in UID_dictionary


@dataclass
class NeedleSet:
    """Everything to search: token needles (indexed by first token) and original UIDs (a set)."""

    needles: list[Needle]
    uids: dict[str, str]  # original UID -> source
    not_checked: list[dict]

    def __post_init__(self) -> None:
        self.index: dict[bytes, list[int]] = {}
        for number, needle in enumerate(self.needles):
            self.index.setdefault(needle.tokens[0], []).append(number)

    def count_tokens(self, haystack: list[bytes]) -> Counter[int]:
        """How often each needle's token sequence occurs in `haystack` (needle number -> count)."""
        found: Counter[int] = Counter()
        index = self.index
        for position, token in enumerate(haystack):
            candidates = index.get(token)
            if not candidates:
                continue
            for number in candidates:
                wanted = self.needles[number].tokens
                if tuple(haystack[position:position + len(wanted)]) == wanted:
                    found[number] += 1
        return found

    def find_tokens(self, haystack: list[bytes]) -> set[int]:
        """Numbers of the needles whose token sequence occurs in `haystack`."""
        return set(self.count_tokens(haystack))

    def find_text(self, text: str) -> set[int]:
        return self.find_tokens(tokens(text.encode("utf-8", "surrogateescape")))

    def find_bytes(self, data: bytes) -> set[int]:
        return self.find_tokens(tokens(data))

    def count_text(self, text: str) -> Counter[int]:
        return self.count_tokens(tokens(text.encode("utf-8", "surrogateescape")))

    def find_uids(self, data: bytes) -> set[str]:
        return {uid for uid in (m.decode() for m in UID_TOKEN.findall(data)) if uid in self.uids}


def build_needles(mapping_rows: Iterable[dict[str, str]], originals: Iterable[tuple[str, str, int | None, str]]
                  ) -> NeedleSet:
    """From values.csv rows and (value, VR, tag, keyword) read from the originals."""
    by_tokens: dict[tuple[bytes, ...], Needle] = {}
    uids: dict[str, str] = {}
    not_checked: dict[str, dict] = {}

    def add(value: str, vr: str, tag: int | None, source: str) -> None:
        value = value.strip().strip("\x00").strip()
        if not value:
            return
        if vr == "UI":
            for uid in value.split("\\"):
                uid = uid.strip()
                if uid and not is_registered_uid(uid):
                    uids.setdefault(uid, source)
            return
        for form in value_forms(value, vr, tag):
            form_tokens = text_tokens(form)
            latin = tuple(tokens(form.encode("latin-1", "replace")))
            for candidate in {form_tokens, latin}:
                if not candidate:
                    continue
                if too_weak(candidate):
                    not_checked.setdefault(form, {"value": form, "source": source, "why": "too short or too common"})
                elif candidate not in by_tokens:
                    by_tokens[candidate] = Needle(candidate, form, source, tag)

    for row in mapping_rows:
        tag_text = row.get("tag", "")
        tag = int(tag_text, 16) if tag_text and all(c in "0123456789abcdefABCDEF" for c in tag_text) else None
        add(row.get("original", ""), row.get("vr", ""), tag, f"{row.get('keyword') or tag_text} (values.csv)")
    for value, vr, tag, keyword in originals:
        add(value, vr, tag, f"{keyword} (original)")
    return NeedleSet(list(by_tokens.values()), uids, sorted(not_checked.values(), key=lambda n: n["value"]))


def walk(dataset: pydicom.Dataset, trail: tuple[str, ...] = (), parent: int | None = None
         ) -> Iterator[tuple[pydicom.DataElement, tuple[str, ...], int | None]]:
    """Every element at any depth with its place (a readable trail) and its parent sequence's tag."""
    for element in dataset:
        place = trail + (element_name(element),)
        yield element, place, parent
        if element.VR == "SQ" and element.value is not None:
            for number, item in enumerate(element.value):
                yield from walk(item, place[:-1] + (f"{place[-1]}[{number}]",), element.tag)


def element_name(element: pydicom.DataElement) -> str:
    tag = element.tag
    name = element.keyword or (element.name if tag.is_private else "")
    return f"({tag.group:04X},{tag.element:04X})" + (f" {name}" if name else "")


def element_text(element: pydicom.DataElement) -> str:
    """The element's value as text for searching (bytes decoded as latin-1: any byte is a character)."""
    value = element.value
    if value is None:
        return ""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("latin-1")
    if isinstance(value, list | tuple | pydicom.multival.MultiValue):
        return "\\".join(str(v) for v in value)
    return str(value)


def original_values(path: Path) -> list[tuple[str, str, int | None, str]]:
    """(value, VR, tag, keyword) of every person name, identifier and UID in an original file, any depth."""
    try:
        dataset = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    except Exception:  # noqa: BLE001 - a hostile original that does not parse has nothing to offer here
        return []
    found: list[tuple[str, str, int | None, str]] = []
    try:
        elements = list(walk(dataset))
        elements += list(walk(dataset.file_meta)) if getattr(dataset, "file_meta", None) else []
    except Exception:  # noqa: BLE001
        return found
    for element, _, _ in elements:
        if element.VR in ("PN", "UI") or element.tag in _IDENTIFYING:
            if element.VR == "SQ":
                continue
            text = element_text(element) if element.VR != "PN" else "\\".join(
                str(v) for v in (element.value if isinstance(element.value, list | tuple | pydicom.multival.MultiValue)
                                 else [element.value]) if v is not None)
            for part in text.split("\\"):
                found.append((part, element.VR, int(element.tag), element.keyword or f"{int(element.tag):08x}"))
    return found
