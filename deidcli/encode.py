"""Encoding a de-identified dataset to the bytes of a DICOM file, fast, byte for byte as pydicom would.

Why not `pydicom.dcmwrite`: it was a third of the header pass (issue 15). Per element it builds a
buffer, re-checks the encoding and wraps exceptions; per file it deep-copies and re-validates the file
meta. Most elements of a de-identified header are kept exactly as read (`RawDataElement`, see
`deidcli.attributes`), and for those the bytes to write are the tag, VR, length and the value as read.

Scope, and the rule that keeps it safe: little endian output, implicit or explicit VR, not deflated (every
syntax the header pass writes), and only for datasets pydicom would write as they are (original encoding
the output's, or built in memory); anything else (a dataset pydicom would re-encode, an element other than
a raw one or a simple new value, a raw element pydicom would have to read first) is handed to pydicom's own
`write_dataset` / `write_data_element`, so the output is always what `dcmwrite(..., enforce_file_format=True)`
writes.
`tests/test_encode.py` checks that on real files.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from io import BufferedIOBase
from struct import Struct

from pydicom.charset import convert_encodings
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.fileutil import buffer_remaining
from pydicom.filewriter import write_data_element, write_dataset
from pydicom.multival import MultiValue
from pydicom.uid import UID
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, IS, DSdecimal, DSfloat, PersonName

_PIXEL_DATA = 0x7FE00010
_SPECIFIC_CHARACTER_SET = 0x00080005
_UNDEFINED = 0xFFFFFFFF
_TAG = Struct("<HH")
_SHORT = Struct("<HH2sH")  # tag, VR, 16-bit length
_LONG = Struct("<HH2sHL")  # tag, VR, reserved, 32-bit length
_UL = Struct("<L")
_IMPLICIT = Struct("<HHL")  # tag, 32-bit length
_ITEM = b"\xfe\xff\x00\xe0"
_ITEM_DELIMITER = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
_SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
_LONG_VRS = frozenset(str(vr) for vr in EXPLICIT_VR_LENGTH_32)
_EXPLICIT_LITTLE = (False, True)
_PREAMBLE = b"\x00" * 128 + b"DICM"
#: VRs whose empty value pydicom writes as a zero length (all but SQ, handled apart).
_EMPTY_OK_VRS = frozenset({"AE", "AS", "AT", "CS", "DA", "DS", "DT", "FD", "FL", "IS", "LO", "LT", "OB", "OD", "OF",
                           "OL", "OV", "OW", "PN", "SH", "SL", "SS", "ST", "SV", "TM", "UC", "UI", "UL", "UN", "UR",
                           "US", "UT", "UV"})
#: One int value: pydicom's `write_numbers` packs it little endian with these formats.
_INT_FORMATS = {"US": Struct("<H"), "SS": Struct("<h"), "UL": Struct("<L"), "SL": Struct("<l"),
                "UV": Struct("<Q"), "SV": Struct("<q")}
#: Written with the default encoding whatever the character set (`write_string`, `write_UI`, a str DA/DT/TM).
_STRING_VRS = frozenset({"AE", "AS", "CS", "DA", "DT", "TM", "UI", "UR"})
#: Written through the character set (`write_text`): ASCII stays ASCII under these Python codecs.
_TEXT_VRS = frozenset({"LO", "LT", "SH", "ST", "UC", "UT"})
_ASCII_COMPATIBLE = frozenset({"iso8859", "latin_1", "UTF8", "iso8859_2", "iso8859_3", "iso8859_4", "iso_ir_126",
                               "iso_ir_127", "iso_ir_138", "iso_ir_144", "iso_ir_148", "iso_ir_166"})
#: The file meta elements `build_file_meta` sets (and the group length pydicom adds).
#: The classes pydicom decodes IS and DS values to (`write_number_string` writes these).
_NUMBER_TYPES = frozenset({IS, DSfloat, DSdecimal})
_META_TAGS = frozenset({0x00020000, 0x00020001, 0x00020002, 0x00020003, 0x00020010, 0x00020012, 0x00020013})


def fast_encoding_applies(transfer_syntax: str) -> bool:
    """Whether `encode_file` handles this output syntax (little endian, not deflated)."""
    syntax = UID(transfer_syntax)
    return (syntax.is_transfer_syntax and not syntax.is_private and syntax.is_little_endian
            and not syntax.is_deflated)


#: A top-level value at least this long is handed on as it is (a piece of `encode_parts`), not copied into the
#: encoded header: a mammogram's 17 MB of pixels were copied three times on their way to the file.
_SEPARATE_VALUE = 1 << 16
#: Bytes read at a time from a buffered value (spooled pixel data) while it is written and hashed.
STREAM_CHUNK = 1 << 20


@dataclass(frozen=True)
class Streamed:
    """A buffered element's value (pixel data spooled to a file by the pixel stage) as a piece of the output:
    `length` bytes of `buffer` from `start`, read when written, never all in memory at once."""

    buffer: BufferedIOBase
    start: int
    length: int

    def chunks(self, size: int = STREAM_CHUNK) -> Iterator[memoryview]:
        """The value in pieces of at most `size` bytes (each view is valid until the next is taken); the buffer's
        position is restored afterwards, as pydicom's writers leave it. A buffer shorter than `length` is an
        error (the header already says `length`)."""
        block = bytearray(min(size, max(self.length, 1)))
        view = memoryview(block)
        position = self.buffer.tell()
        try:
            self.buffer.seek(self.start)
            left = self.length
            while left:
                count = self.buffer.readinto(view[: min(left, len(block))])
                if not count:
                    raise OSError("a buffered value ended before its length")
                left -= count
                yield view[:count]
        finally:
            self.buffer.seek(position)


#: One piece of an encoded file: bytes (or a view of them) as they are, or a buffered value read when written.
Piece = bytes | memoryview | Streamed


def encode_file(dataset: Dataset) -> bytes | None:
    """The bytes `dcmwrite(fp, dataset, enforce_file_format=True)` writes, or None where this encoder does
    not apply (the caller then uses dcmwrite, which also raises what it raises).

    `dataset.file_meta` must be what `deidcli.write.build_file_meta` makes (other elements: None)."""
    parts = encode_parts(dataset)
    return None if parts is None else b"".join(bytes(chunk) for chunk in chunks_of(parts))


def chunks_of(parts: list[Piece]) -> Iterator[bytes | memoryview]:
    """`encode_parts`' pieces as the bytes to write, in order: a buffered value read a chunk at a time (each view
    valid until the next is taken), the others as they are."""
    for part in parts:
        yield from part.chunks() if isinstance(part, Streamed) else (part,)


def encode_parts(dataset: Dataset) -> list[Piece] | None:
    """`encode_file`'s bytes as pieces to write (and hash) one after another, or None where it does not apply.

    Why pieces: a top-level value of _SEPARATE_VALUE bytes or more (pixel data) is a piece of its own, the
    caller's bytes as they are, and a buffered value (the pixel stage spools native frames to a file) is read
    in STREAM_CHUNK pieces while it is written; joined into one `bytes`, a 3328x2560 mammogram's pixels were
    read from the spool in 8 KB chunks, copied into a growing buffer and copied out again (~30 ms a file)."""
    file_meta = getattr(dataset, "file_meta", None)
    if file_meta is None or set(file_meta._dict) - _META_TAGS:
        return None
    if any(type(element) is not DataElement for element in file_meta._dict.values()):
        return None  # raw meta elements: not what build_file_meta makes (read below straight from the dict)
    element = file_meta._dict.get(0x00020010)
    transfer_syntax = element.value if element is not None else None
    if (not transfer_syntax or not fast_encoding_applies(transfer_syntax)
            or any(tag >> 16 in (0, 2) for tag in dataset._dict)):
        return None
    meta = _file_meta(file_meta)
    if meta is None or getattr(dataset, "preamble", None):
        return None
    if _PIXEL_DATA in dataset._dict:  # as dcmwrite: encapsulated pixel data has an undefined length
        dataset[_PIXEL_DATA].is_undefined_length = UID(transfer_syntax).is_compressed
    out = DicomBytesIO()
    out.is_little_endian, out.is_implicit_VR = True, UID(transfer_syntax).is_implicit_VR
    out.write(_PREAMBLE)
    out.write(meta)
    inserted: list[tuple[int, Piece]] = []
    _write_dataset(out, dataset, "iso8859", UID(transfer_syntax).is_implicit_VR, inserted)
    encoded = memoryview(out.getvalue())
    parts: list[Piece] = []
    at = 0
    for offset, piece in inserted:
        if offset > at:
            parts.append(encoded[at:offset])
        parts.append(piece)
        at = offset
    if at < len(encoded):
        parts.append(encoded[at:])
    return parts


def _file_meta(file_meta: Dataset) -> bytes | None:
    """Group 0002 as `write_file_meta_info` writes it for the six elements `build_file_meta` sets."""
    elements = file_meta._dict  # decoded elements only (encode_file): `Dataset.get` would return them as they are
    version = elements.get(0x00020001)
    if version is None or version.value != b"\x00\x01":
        return None
    body = [_element(0x00020001, "OB", b"\x00\x01")]
    for tag in (0x00020002, 0x00020003, 0x00020010, 0x00020012):
        element = elements.get(tag)
        value = element.value if element is not None and element.VR == "UI" else None
        if not isinstance(value, str) or not value or not value.isascii():
            return None  # empty or odd: dcmwrite validates and raises
        raw = value.encode("ascii")
        body.append(_element(tag, "UI", raw + b"\x00" * (len(raw) % 2)))
    element = elements.get(0x00020013)
    name = element.value if element is not None else ""
    if name:
        if not isinstance(name, str) or not name.isascii() or element.VR != "SH":
            return None
        raw = name.encode("ascii")
        body.append(_element(0x00020013, "SH", raw + b" " * (len(raw) % 2)))
    joined = b"".join(body)
    return _element(0x00020000, "UL", _UL.pack(len(joined))) + joined


def _element(tag: int, vr: str, value: bytes) -> bytes:
    if vr in _LONG_VRS:
        return _LONG.pack(tag >> 16, tag & 0xFFFF, vr.encode(), 0, len(value)) + value
    return _SHORT.pack(tag >> 16, tag & 0xFFFF, vr.encode(), len(value)) + value


def _writes_as_is(dataset: Dataset, implicit: bool) -> bool:
    """Whether pydicom's `write_dataset` would write this dataset's elements as they are: its original encoding
    is the output's, or it was built in memory from decoded elements only (then pydicom's re-encoding, which
    resolves ambiguous VRs and decodes raw elements, has nothing to do; sequences are left to pydicom, whose
    ambiguous-VR pass looks at parent datasets)."""
    # `dataset._character_set`, read through `Dataset.get` only when the dataset has its own character set
    # (most sequence items have none: then it is the parent's)
    charset = (dataset._character_set if _SPECIFIC_CHARACTER_SET in dataset._dict else dataset._parent_encoding)
    if dataset.original_encoding == (implicit, True) and dataset.original_character_set == charset:
        return True
    return all(type(element) is not RawDataElement and element.VR != "SQ" and " or " not in element.VR
               for element in dataset._dict.values())


def _write_dataset(out: DicomBytesIO, dataset: Dataset, parent_encoding, implicit: bool,
                   inserted: list[tuple[int, Piece]] | None = None) -> None:
    """`pydicom.filewriter.write_dataset` for a little endian `out` (implicit or explicit VR).

    `inserted` (the top-level dataset only: a sequence's lengths are patched from `out`'s positions): where a
    large or buffered value is left out of `out`, as (position in `out` it belongs at, the value)."""
    if not _writes_as_is(dataset, implicit):
        write_dataset(out, dataset, parent_encoding)  # pydicom re-encodes such a dataset element by element
        return
    encoding = (dataset.get("SpecificCharacterSet", parent_encoding) if _SPECIFIC_CHARACTER_SET in dataset._dict
                else parent_encoding)
    elements = dataset._dict
    write = out.write
    for key in sorted(elements, key=int):
        tag = int(key)  # plain int comparisons: BaseTag's are Python-level
        if not tag & 0xFFFF and tag >> 16 > 6:
            continue  # no retired group lengths (PS3.5 7.2)
        element = elements[key]
        if type(element) is RawDataElement:
            value, vr = element.value, element.VR
            if isinstance(value, bytes) and tag != _PIXEL_DATA and (implicit or (vr is not None and len(vr) == 2)):
                undefined = element.length == _UNDEFINED
                length = len(value)
                if implicit:
                    write(_IMPLICIT.pack(tag >> 16, tag & 0xFFFF, _UNDEFINED if undefined else length))
                elif vr in _LONG_VRS:
                    write(_LONG.pack(tag >> 16, tag & 0xFFFF, vr.encode(), 0, _UNDEFINED if undefined else length))
                elif undefined:  # an undefined length under a 16-bit-length VR: as pydicom writes it
                    write_data_element(out, element, encoding)
                    continue
                elif length > 0xFFFF:
                    write_data_element(out, element, encoding)  # pydicom turns it into UN (PS3.5 6.2.2)
                    continue
                else:
                    write(_SHORT.pack(tag >> 16, tag & 0xFFFF, vr.encode(), length))
                if inserted is not None and length >= _SEPARATE_VALUE:
                    inserted.append((out.tell(), value))
                else:
                    write(value)
                if undefined:
                    write(_SEQUENCE_DELIMITER)
                continue
            write_data_element(out, dataset.get_item(key), encoding)
        elif element.VR == "SQ":
            _write_sequence(out, element, encoding, implicit)
        elif inserted is not None and tag == _PIXEL_DATA and _streams(element):
            buffer = element.value
            start, length = buffer.tell(), buffer_remaining(buffer)  # what pydicom writes: from the position on
            if implicit:
                write(_IMPLICIT.pack(tag >> 16, tag & 0xFFFF, length))
            else:
                write(_LONG.pack(tag >> 16, tag & 0xFFFF, element.VR.encode(), 0, length))
            inserted.append((out.tell(), Streamed(buffer, start, length)))
            if length % 2:
                write(b"\x00")  # pydicom pads an odd value (the length field keeps the odd length)
        else:
            value = None if element.is_undefined_length else _simple_value(element, encoding)
            if value is None:
                write_data_element(out, element, encoding)
            elif inserted is not None and len(value) >= _SEPARATE_VALUE and element.VR in ("OB", "OW"):
                if implicit:
                    write(_IMPLICIT.pack(tag >> 16, tag & 0xFFFF, len(value)))
                else:
                    write(_LONG.pack(tag >> 16, tag & 0xFFFF, element.VR.encode(), 0, len(value)))
                inserted.append((out.tell(), value))
            elif implicit:
                write(_IMPLICIT.pack(tag >> 16, tag & 0xFFFF, len(value)) + value)
            else:
                write(_element(tag, element.VR, value))


def _streams(element: DataElement) -> bool:
    """Whether a top-level PixelData element is a buffered OB/OW value of defined length, which `encode_parts`
    streams from its buffer (what pydicom's `write_data_element` and `write_OWvalue` write for it)."""
    return element.is_buffered and not element.is_undefined_length and element.VR in ("OB", "OW")


def _simple_value(element, encoding) -> bytes | None:
    """The encoded value of the commonest new elements (empty ones, one int, one ASCII string, ASCII person
    names and number strings, native pixel data), exactly as pydicom's writers encode them; None for anything
    else (pydicom writes it)."""
    vr, value = element.VR, element._value
    kind = type(value)
    if value is None or ((kind is str or kind is bytes) and not value):
        return b"" if vr in _EMPTY_OK_VRS else None
    if kind is bytes:  # `write_OBvalue` / `write_OWvalue`: the bytes as they are (odd lengths: pydicom pads)
        return value if (vr == "OB" or vr == "OW") and not len(value) % 2 else None
    if element.tag == _PIXEL_DATA:
        return None  # buffered or in-memory arrays: pydicom's business
    if vr == "PN":
        return _person_name(value, encoding) if kind is PersonName else None
    if vr == "DS" or vr == "IS":
        return _number_string(value)
    if kind is int:
        number_format = _INT_FORMATS.get(vr)
        if number_format is None:
            return None
        try:
            return number_format.pack(value)
        except Exception:  # noqa: BLE001 - out of range: pydicom raises its own error
            return None
    if not isinstance(value, str) or not value.isascii():
        return None
    if vr in _STRING_VRS:
        padding = b"\x00" if vr == "UI" else b" "
    elif vr in _TEXT_VRS and _plain_charset(encoding):
        padding = b" "
    else:
        return None
    return _even_ascii(value, padding)


def _even_ascii(text: str, padding: bytes = b" ") -> bytes:
    """ASCII text encoded and padded to an even length, as pydicom's writers pad strings (UI with NUL)."""
    encoded = text.encode("ascii")
    return encoded + padding if len(encoded) % 2 else encoded


def _person_name(value: PersonName, encoding) -> bytes | None:
    """`write_PN` of one name: `PersonName.encode` gives the name's ASCII text under a character set that
    keeps ASCII as it is, when it has one component group (no '='); anything else is left to pydicom."""
    text = str(value)
    if "=" in text or not text.isascii() or not _plain_charset(encoding):
        return None
    return _even_ascii(text)


def _number_string(value) -> bytes | None:
    """`write_number_string` for IS/DS values (one, or a list): each value's original string if it has one,
    else its str, joined by backslashes, padded with a space; ASCII only (pydicom encodes with latin-1)."""
    values = value if isinstance(value, MultiValue | list | tuple) else [value]
    if not values or not all(type(number) in _NUMBER_TYPES for number in values):
        return None
    text = "\\".join(number.original_string if hasattr(number, "original_string") else str(number)
                      for number in values)
    if not isinstance(text, str) or not text.isascii():
        return None
    return _even_ascii(text)


def _plain_charset(encoding) -> bool:
    """Whether an ASCII value encodes to its ASCII bytes under this SpecificCharacterSet, with nothing added
    (no ISO 2022 escape sequences): pydicom's `encode_string` then returns `value.encode(first encoding)`."""
    if encoding is None or isinstance(encoding, str):
        key = (encoding or "",)
    else:
        key = tuple(str(term) for term in encoding)
    return _plain_charset_of(key)


@lru_cache(maxsize=64)
def _plain_charset_of(key: tuple[str, ...]) -> bool:
    try:
        first = convert_encodings(list(key))[0]
    except Exception:  # noqa: BLE001 - an odd character set: pydicom decides
        return False
    return first in _ASCII_COMPATIBLE


def _write_sequence(out: DicomBytesIO, element, encoding, implicit: bool) -> None:
    """`write_data_element` + `write_sequence` + `write_sequence_item` for an SQ element."""
    tag = element.tag
    undefined = element.is_undefined_length
    if implicit:
        out.write(_IMPLICIT.pack(tag >> 16, tag & 0xFFFF, _UNDEFINED))
    else:
        out.write(_LONG.pack(tag >> 16, tag & 0xFFFF, b"SQ", 0, _UNDEFINED))
    length_at = out.tell() - 4
    start = out.tell()
    if element.value:
        encodings = convert_encodings(encoding or ["iso8859"])
        for item in element.value:
            out.write(_ITEM)
            item_length_at = out.tell()
            out.write(b"\xff\xff\xff\xff")
            _write_dataset(out, item, encodings, implicit)
            if getattr(item, "is_undefined_length_sequence_item", False):
                out.write(_ITEM_DELIMITER)
            else:
                end = out.tell()
                out.seek(item_length_at)
                out.write(_UL.pack(end - item_length_at - 4))
                out.seek(end)
    if undefined:
        out.write(_SEQUENCE_DELIMITER)
    else:
        end = out.tell()
        out.seek(length_at)
        out.write(_UL.pack(end - start))
        out.seek(end)
