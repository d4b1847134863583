"""Checks of one output file's bytes and header: original values anywhere, and the structure of the file.

Values are searched three ways, so neither a decoder's view nor a byte view alone decides: in every decoded
value at any depth (private and binary elements decoded as latin-1), in the raw bytes outside the pixel data
(the preamble, trailing bytes, anything a parser skips), and in the pixel data bytes for values of 8 or more
characters (shorter ones would match by chance in millions of pixel bytes; visible text there is the OCR
check's job). A value found in an attribute the recipe keeps is not a finding when the original file had it
in that same attribute: that is the recipe's decision (TOSHIBA as Manufacturer), not a leak of the writer.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pydicom
from pydicom.tag import Tag

from deidcli.verify.findings import Finding
from deidcli.verify.needles import PIXEL_TAGS, NeedleSet, element_text, is_registered_uid, tokens, walk
from deidcli.verify.recipe_view import RecipeView

ALLOWED_META = {0x00020000, 0x00020001, 0x00020002, 0x00020003, 0x00020010, 0x00020012, 0x00020013}
ITEM, ITEM_END = b"\xfe\xff\x00\xe0", b"\xfe\xff\xdd\xe0"
#: Pixel data bytes are searched only for values at least this long (see the module docstring).
PIXEL_SEARCH_MIN = 8


@dataclass
class Context:
    """What every file's check needs, built once per worker."""

    needles: NeedleSet
    recipe: RecipeView
    org_root: str
    pixel_pattern: re.Pattern | None = None

    def __post_init__(self) -> None:
        forms = set()
        for needle in self.needles.needles:
            for encoded in (needle.value.encode("utf-8", "replace"), needle.value.upper().encode("utf-8", "replace")):
                if len(encoded) >= PIXEL_SEARCH_MIN and len(set(encoded)) >= 4:
                    forms.add(encoded)
        forms.update(uid.encode() for uid in self.needles.uids)
        self.pixel_pattern = re.compile(trie_pattern(forms)) if forms else None

    def uid_allowed(self, uid: str) -> bool:
        root = self.org_root or "2.25"
        return is_registered_uid(uid) or uid.startswith(root + ".")


def trie_pattern(words: set[bytes]) -> bytes:
    """One regex for many literals, as a trie (shared prefixes merged): the engine follows one branch per
    byte instead of trying every literal at every position (1000 needles over 17 MB: seconds -> fractions)."""
    trie: dict = {}
    for word in words:
        node = trie
        for byte in word:
            node = node.setdefault(byte, {})
        node[None] = True

    def emit(node: dict) -> bytes:
        ends = None in node
        branches = [re.escape(bytes([byte])) + emit(child) for byte, child in sorted(
            (k, v) for k, v in node.items() if k is not None)]
        if not branches:
            return b""
        body = branches[0] if len(branches) == 1 and not ends else b"(?:" + b"|".join(branches) + b")"
        return body + b"?" if ends and body else body

    return emit(trie)


def pixel_span(dataset: pydicom.Dataset) -> tuple[int, int, bool] | None:
    """(start, end, encapsulated) of the pixel data value in the file, read before any conversion."""
    for tag in PIXEL_TAGS:
        if tag in dataset._dict:
            raw = dataset.get_item(tag)
            value_tell = getattr(raw, "value_tell", None)
            if value_tell is None or raw.value is None:
                return None
            undefined = raw.length == 0xFFFFFFFF
            return value_tell, value_tell + len(raw.value), undefined
    return None


@dataclass
class OriginalIndex:
    """Per tag of the original file: the needles its value holds and its UIDs ('kept by the recipe')."""

    needles: dict[int, set[int]]
    uids: dict[int, set[str]]


def index_original(original: Path | None, needles: NeedleSet) -> OriginalIndex | None:
    if original is None or not original.is_file():
        return None
    try:
        dataset = pydicom.dcmread(original, stop_before_pixels=True, force=True)
        index = OriginalIndex({}, {})
        for element, _, _ in walk(dataset):
            if element.VR == "SQ":
                continue
            text = element_text(element)
            found = needles.find_text(text)
            if found:
                index.needles.setdefault(int(element.tag), set()).update(found)
            if element.VR == "UI":
                index.uids.setdefault(int(element.tag), set()).update(u.strip() for u in text.split("\\"))
        return index
    except Exception:  # noqa: BLE001 - an original that no longer parses: no exemption, fail closed
        return None


def drop_undecodable(dataset: pydicom.Dataset, trail: str = "") -> list[tuple[str, str]]:
    """Remove (from this in-memory copy) elements pydicom cannot decode, at any depth, and say where they were.
    Their bytes stay in the raw search, which then finds any value they hide."""
    dropped = []
    for tag in list(dataset.keys()):  # noqa: SIM118 - keys() does not decode
        place = f"{trail}({tag.group:04X},{tag.element:04X})"
        try:
            element = dataset[tag]
            if element.VR == "SQ":
                for number, item in enumerate(element.value or []):
                    dropped += drop_undecodable(item, f"{place}[{number}] > ")
        except Exception as error:  # noqa: BLE001 - hostile bytes: whatever the decoder raises
            del dataset._dict[tag]
            dropped.append((place, type(error).__name__))
    return dropped


def check_file(context: Context, path: Path, relative: str, original: Path | None) -> list[Finding]:
    """Every header finding of one output file."""
    findings: list[Finding] = []
    raw = path.read_bytes()
    try:
        dataset = pydicom.dcmread(path, force=True)
    except Exception as error:  # noqa: BLE001 - an output that does not parse is itself a finding
        findings.append(Finding(relative, "structure", "file", f"not readable as DICOM ({type(error).__name__})"))
        findings += _raw_values(context, raw, relative, Counter(), set(), None)
        return findings
    span = pixel_span(dataset)
    for place, error in drop_undecodable(dataset):
        findings.append(Finding(relative, "structure", place, f"element that does not decode ({error}): hidden bytes?"))
    originals = index_original(original, context.needles)
    decoded_needles: Counter[int] = Counter()
    decoded_uids: set[str] = set()
    elements = list(walk(dataset.file_meta, ("file meta",))) + list(walk(dataset))
    for element, place, parent in elements:
        if int(element.tag) in PIXEL_TAGS or element.VR == "SQ":
            continue
        trail = " > ".join(place)
        text = element_text(element)
        kept_here = context.recipe.keeps(int(element.tag), parent) and originals is not None
        counted = context.needles.count_text(text)
        decoded_needles.update(counted)
        for number in counted:
            if kept_here and number in originals.needles.get(int(element.tag), set()):
                continue
            needle = context.needles.needles[number]
            findings.append(Finding(relative, "values", trail, f"original value of {needle.source} found",
                                    needle.value))
        if element.VR == "UI":
            for uid in (u.strip().rstrip("\x00") for u in text.split("\\")):
                if not uid:
                    continue
                kept = kept_here and uid in originals.uids.get(int(element.tag), set())
                if uid in context.needles.uids:
                    decoded_uids.add(uid)
                    if not kept:
                        findings.append(Finding(relative, "values", trail,
                                                f"original UID of {context.needles.uids[uid]} found", uid))
                elif not kept and not context.uid_allowed(uid) and element.tag != 0x00020012:
                    findings.append(Finding(relative, "structure", trail,
                                            f"UID outside the org root {context.org_root or '2.25'} and not a "
                                            "registered DICOM UID", uid))
    findings += _raw_values(context, raw, relative, decoded_needles, decoded_uids, span)
    findings += _structure(context, dataset, raw, relative, span)
    return findings


def _raw_values(context: Context, raw: bytes, relative: str, decoded_needles: Counter[int], decoded_uids: set[str],
                span: tuple[int, int, bool] | None) -> list[Finding]:
    """Values in the bytes that no decoded value explains (more copies in the bytes than in the decoded
    values): hidden places such as the preamble or bytes after the dataset."""
    findings = []
    header = raw if span is None else raw[: span[0]] + b"\x00" + raw[span[1]:]
    in_bytes = context.needles.count_tokens(tokens(header))
    for number in [n for n, count in in_bytes.items() if count > decoded_needles.get(n, 0)]:
        needle = context.needles.needles[number]
        offsets = _offsets(raw, needle.tokens[0], span)
        findings.append(Finding(relative, "values", f"raw bytes at offset {offsets}",
                                f"original value of {needle.source} in bytes outside any decoded value", needle.value))
    for uid in context.needles.find_uids(header) - decoded_uids:
        findings.append(Finding(relative, "values", f"raw bytes at offset {raw.find(uid.encode())}",
                                f"original UID of {context.needles.uids[uid]} in bytes outside any decoded value", uid))
    if span is not None and context.pixel_pattern is not None:
        match = context.pixel_pattern.search(raw, span[0], span[1])
        if match:
            findings.append(Finding(relative, "values", f"pixel data bytes at offset {match.start()}",
                                    "an original value is written in the pixel data bytes",
                                    match.group().decode("utf-8", "replace")))
    return findings


def _offsets(raw: bytes, token: bytes, span: tuple[int, int, bool] | None, most: int = 5) -> str:
    """Where a needle's first token sits in the bytes outside the pixel data (up to `most` offsets)."""
    pattern = re.compile(rb"(?<![A-Za-z0-9\x80-\xff])" + re.escape(token) + rb"(?![A-Za-z0-9\x80-\xff])", re.I)
    found = [m.start() for m in pattern.finditer(raw) if span is None or not span[0] <= m.start() < span[1]]
    return ", ".join(str(offset) for offset in found[:most]) + (" ..." if len(found) > most else "")


def _structure(context: Context, dataset: pydicom.Dataset, raw: bytes, relative: str,
               span: tuple[int, int, bool] | None) -> list[Finding]:
    findings: list[Finding] = []

    def add(place: str, message: str, value: str = "") -> None:
        findings.append(Finding(relative, "structure", place, message, value))

    if raw[128:132] != b"DICM":
        add("preamble", "no DICM prefix after the 128-byte preamble")
    elif raw[:128].strip(b"\x00"):
        add("preamble", "the 128-byte preamble is not zero (it can hide data)", tokens(raw[:128])[0].decode("latin-1")
            if tokens(raw[:128]) else "")
    meta = dataset.file_meta
    for tag in meta.keys():  # noqa: SIM118 - Dataset iteration decodes values
        if int(tag) not in ALLOWED_META:
            add(f"file meta > {Tag(tag)}", "file meta attribute not written by deid (e.g. a source AE title)")
    if str(meta.get("MediaStorageSOPClassUID", "")) != str(dataset.get("SOPClassUID", "")):
        add("file meta > MediaStorageSOPClassUID", "differs from SOPClassUID")
    sop_instance = str(dataset.get("SOPInstanceUID", ""))
    if str(meta.get("MediaStorageSOPInstanceUID", "")) != sop_instance:
        add("file meta > MediaStorageSOPInstanceUID", "differs from SOPInstanceUID")
    if not meta.get("TransferSyntaxUID"):
        add("file meta > TransferSyntaxUID", "missing")
    if Path(relative).name != f"{sop_instance}.dcm":
        add("path", "file name is not the SOPInstanceUID")
    if str(dataset.get("PatientIdentityRemoved", "")).strip().upper() != "YES":
        add("(0012,0062) PatientIdentityRemoved", "is not YES")
    for element, place, parent, item in _walk_with_items(dataset):
        tag = element.tag
        trail = " > ".join(place)
        if tag.is_private:
            if tag.element == 0:
                continue
            if 0x0010 <= tag.element <= 0x00FF:
                creator = str(element.value or "")
                if not context.recipe.allows_creator(tag.group, creator):
                    add(trail, "private creator the recipe does not allow", creator)
                continue
            creator_tag = (tag.group << 16) | (tag.element >> 8)
            creator = str(item[creator_tag].value) if creator_tag in item else ""
            if not creator or not context.recipe.allows_private(tag.group, creator, tag.element & 0xFF):
                add(trail, "private attribute without an allowed private creator", creator)
        elif tag.element != 0 and not context.recipe.allows(int(tag), parent) and int(tag) not in PIXEL_TAGS:
            add(trail, "attribute the recipe does not keep")
        elif int(tag) in PIXEL_TAGS and parent is not None:
            add(trail, "pixel data inside a sequence")
    findings += _pixel_length(dataset, raw, relative, span)
    return findings


def _walk_with_items(dataset: pydicom.Dataset, trail: tuple[str, ...] = (), parent: int | None = None):
    from deidcli.verify.needles import element_name

    for element in dataset:
        place = trail + (element_name(element),)
        yield element, place, parent, dataset
        if element.VR == "SQ" and element.value is not None:
            for number, item in enumerate(element.value):
                yield from _walk_with_items(item, place[:-1] + (f"{place[-1]}[{number}]",), int(element.tag))


def expected_pixel_bytes(dataset: pydicom.Dataset) -> int | None:
    """Bytes the native pixel data needs for its frames (None when the description is incomplete)."""
    try:
        rows, columns = int(dataset.Rows), int(dataset.Columns)
        samples, bits = int(dataset.get("SamplesPerPixel", 1)), int(dataset.BitsAllocated)
        frames = int(dataset.get("NumberOfFrames", 1) or 1)
    except (AttributeError, TypeError, ValueError):
        return None
    pixels = rows * columns * samples * frames
    return (pixels + 7) // 8 if bits == 1 else pixels * (bits // 8)


def _pixel_length(dataset: pydicom.Dataset, raw: bytes, relative: str, span: tuple[int, int, bool] | None
                  ) -> list[Finding]:
    findings: list[Finding] = []
    if span is None:
        return findings
    start, end, encapsulated = span
    place = "(7FE0,0010) PixelData"
    if encapsulated:
        position, fragments, frames = start, 0, int(dataset.get("NumberOfFrames", 1) or 1)
        while position + 8 <= end and raw[position:position + 4] == ITEM:
            length = int.from_bytes(raw[position + 4:position + 8], "little")
            position += 8 + length
            fragments += 1
        if position != end:
            findings.append(Finding(relative, "structure", place, "encapsulated pixel data has bytes that are not items"))
        elif fragments - 1 < frames:
            findings.append(Finding(relative, "structure", place, f"{fragments - 1} fragments for {frames} frames"))
        if raw[end:end + 4] != ITEM_END:
            findings.append(Finding(relative, "structure", place, "no sequence delimiter after the fragments"))
        end += 8
    else:
        expected = expected_pixel_bytes(dataset)
        length = end - start
        if expected is not None and length not in (expected, expected + (expected % 2)):
            findings.append(Finding(relative, "structure", place,
                                    f"{length} bytes where the frames need {expected} (bytes after the last frame)"
                                    if length > expected else f"{length} bytes where the frames need {expected}"))
    if end < len(raw) and end == _last_element_end(dataset, end):
        findings.append(Finding(relative, "structure", f"raw bytes at offset {end}",
                                f"{len(raw) - end} bytes after the pixel data"))
    return findings


def _last_element_end(dataset: pydicom.Dataset, pixel_end: int) -> int:
    """The pixel data's end if it is the last element of the file (then anything after it is hidden)."""
    last = max(dataset._dict)
    return pixel_end if int(last) in PIXEL_TAGS else -1
