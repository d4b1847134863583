"""Parsing a little endian DICOM file into exactly the dataset pydicom's `dcmread` builds, faster.

Why: `dcmread` walks a file through a Python generator that reads 8 bytes, then the value, per element, and
reading was a fifth of the header pass (issue 15). This module reads the file into one buffer and walks it
with `struct.unpack_from`, building the same `RawDataElement`s (same tag, VR, length, value, value_tell and
encoding flags) in the same order, the same file meta, `Dataset` and `FileDataset`. Every element of
undefined length (sequences, encapsulated pixel data) is read by pydicom's own functions from the same file
position: those rules are pydicom's, not a copy of them.

The rule that keeps it safe: anything this walk does not fully understand returns None and the caller reads
the file again with `dcmread` (the oracle), which then decides (and raises, warns, or rejects) as before. That
covers big endian, deflated, private and missing transfer syntaxes, a file without a preamble, a command set,
a first element whose VR says the other VR encoding, an unknown VR, a length past the end of the file, a
partial element header at the end, a stray item or delimiter, an empty data set, and any warning or error
raised while pydicom reads an undefined-length value. Every length is checked against the buffer before a
slice; nesting only happens inside undefined-length values, which pydicom reads (and read.py bounds).
`tests/test_fastread.py` compares both readers on real files and on hostile ones.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from struct import Struct
from typing import TYPE_CHECKING, BinaryIO

from pydicom.charset import convert_encodings, default_encoding
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element, empty_value_for_VR
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.tag import BaseTag, SequenceDelimiterTag
from pydicom.uid import UID, ExplicitVRLittleEndian, ImplicitVRLittleEndian, PrivateTransferSyntaxes
from pydicom.valuerep import EXPLICIT_VR_LENGTH_32, VR

from deidcli.datasets import new_dataset

try:  # pydicom's own readers for what this module leaves to pydicom (private names: checked at import)
    from pydicom.filereader import _dictionary_vr_fast, read_sequence
    from pydicom.fileutil import read_undefined_length_value
    from pydicom.sequence import Sequence as _Sequence
except ImportError:  # another pydicom: every file goes through dcmread
    _dictionary_vr_fast = _Sequence = None

if TYPE_CHECKING:
    from pydicom.sequence import Sequence

#: Larger files are read by dcmread: this reader holds the whole file and the values sliced from it at once
#: (twice the file in memory for a moment), dcmread only the values.
FAST_READ_MAX_BYTES = 64 << 20
_EXPLICIT = Struct("<HH2sH")
_IMPLICIT = Struct("<HHL")
_UL = Struct("<L")
_US = Struct("<H")
_UNDEFINED = 0xFFFFFFFF
_ITEM_DELIMITER = 0xFFFEE00D
_ITEM = 0xFFFEE000
_CHARSET = 0x00080005
#: VR bytes -> VR, for every VR pydicom knows (its ENCODED_VR), and whether the length is 32-bit.
_VRS = {str(vr).encode(): (str(vr), vr in EXPLICIT_VR_LENGTH_32) for vr in VR}
#: The value pydicom stores for a zero length (`empty_value_for_VR(vr, raw=True)`), per VR (None: implicit).
_EMPTY: dict[str | None, bytes | None] = {}
#: Transfer syntaxes read by other rules (or not at all) here.
_NOT_HERE = frozenset({"1.2.840.10008.1.2.2", "1.2.840.10008.1.2.1.99", *map(str, PrivateTransferSyntaxes)})


def read_file(handle: BinaryIO) -> FileDataset | None:
    """What `pydicom.dcmread(handle)` returns for a file with a preamble, or None where this reader does not
    apply (the caller seeks back to 0 and uses dcmread). Reads from the current position, normally 0."""
    if _dictionary_vr_fast is None:
        return None
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            dataset = _read(handle)
        except Exception:  # noqa: BLE001 - whatever goes wrong here, dcmread reads the file and decides
            return None
    return None if caught else dataset


def _read(handle: BinaryIO) -> FileDataset | None:
    data = handle.read(FAST_READ_MAX_BYTES + 1)  # bounded even if the file grew since its size was taken
    if len(data) > FAST_READ_MAX_BYTES or len(data) < 144 or data[128:132] != b"DICM":
        return None
    preamble = data[:128]
    meta_elements, position = _walk(handle, data, 132, implicit=False, group=2)
    if meta_elements is None or position + 8 > len(data) or not meta_elements:
        return None
    file_meta = _file_meta(meta_elements)
    if file_meta is None or data[position:position + 2] == b"\x00\x00":
        return None  # a command set (group 0000) follows: dcmread merges it
    syntax = str(file_meta.get("TransferSyntaxUID") or "")
    implicit = syntax == ImplicitVRLittleEndian
    if not implicit and syntax != ExplicitVRLittleEndian and not _explicit_little(syntax):
        return None
    first_vr = data[position + 4:position + 6]
    if (not (0x40 < first_vr[0] < 0x5B and 0x40 < first_vr[1] < 0x5B)) != implicit:
        return None  # pydicom would switch VR encoding (with a warning)
    elements, end = _walk(handle, data, position, implicit)
    if elements is None or end != len(data):
        return None
    dataset = Dataset(elements, parent_encoding=default_encoding)
    encoding = _dataset_charset(elements[BaseTag(_CHARSET)]) if _CHARSET in elements else default_encoding
    dataset.set_original_encoding(implicit, True, encoding)
    handle.seek(len(data))  # where dcmread leaves it
    result = FileDataset(handle, dataset, preamble, file_meta, implicit, True)
    result.set_original_encoding(implicit, True, dataset._character_set)
    return result


def _file_meta(elements: dict) -> FileMetaDataset | None:
    """`_read_file_meta_info`'s result from the group 0002 elements: the first one (the group length)
    decoded, as pydicom does to probe the encoding."""
    file_meta = FileMetaDataset(elements)
    file_meta.set_original_encoding(is_implicit_vr=False, is_little_endian=True, character_encoding=default_encoding)
    try:
        file_meta[next(iter(elements))]
        if "FileMetaInformationGroupLength" in file_meta:
            file_meta.FileMetaInformationGroupLength  # noqa: B018 - decoded and stored, as pydicom does
    except NotImplementedError:
        return None  # pydicom re-reads the meta as implicit VR: dcmread decides
    return file_meta


@lru_cache(maxsize=64)
def _explicit_little(syntax: str) -> bool:
    """pydicom reads any other syntax (JPEG, RLE, ...) as explicit VR little endian; here only registered ones."""
    uid = UID(syntax)
    return (syntax not in _NOT_HERE and uid.is_transfer_syntax and not uid.is_private and uid.is_little_endian
            and not uid.is_deflated)


def _empty(vr: str | None) -> bytes | None:
    try:
        return _EMPTY[vr]
    except KeyError:
        value = _EMPTY[vr] = empty_value_for_VR(vr, raw=True)
        return value


def _header(data: bytes, position: int, limit: int, implicit: bool) -> tuple[int, int, str | None, int, int] | None:
    """(group, element, VR, value length, where the value starts) of the element header at `position`, or
    None where this reader leaves the file to dcmread: an unknown VR (or implicit encoding inside an explicit
    file) or a 32-bit length past `limit`. The caller has checked that 8 bytes are there."""
    if implicit:
        tag_group, number, length = _IMPLICIT.unpack_from(data, position)
        return tag_group, number, None, length, position + 8
    tag_group, number, vr_bytes, length = _EXPLICIT.unpack_from(data, position)
    known = _VRS.get(vr_bytes)
    if known is None:
        return None
    vr, long_length = known
    start = position + 8
    if long_length:
        if start + 4 > limit:
            return None
        length = _UL.unpack_from(data, start)[0]
        start += 4
    return tag_group, number, vr, length, start


def _walk(handle: BinaryIO, data: bytes, position: int, implicit: bool,
          group: int | None = None) -> tuple[dict | None, int]:
    """The elements from `position` on, as `read_dataset`'s generator yields them, and where they end; None
    for a case left to dcmread (see the module docstring). `group`: read only that group's elements (the
    file meta), stopping before the first of another group."""
    elements: dict = {}
    size = len(data)
    encoding: str | list[str] = default_encoding
    while position < size:
        if position + 8 > size:
            return None, 0  # a partial element header: dcmread stops silently, read.py calls it truncated
        if group is not None and not implicit and _US.unpack_from(data, position)[0] != group:
            break  # the file meta ends here (before its VR is judged: the data set may be implicit)
        header = _header(data, position, size, implicit)
        if header is None:
            return None, 0
        tag_group, number, vr, length, start = header
        if group is None and tag_group in (0x0000, 0x0002, 0xFFFE):
            return None, 0  # command or meta elements in the data set, items, delimiters: dcmread's business
        tag = tag_group << 16 | number
        if length == _UNDEFINED:
            if group is not None:
                return None, 0
            element, end = _undefined_length(handle, data, start, tag, vr, implicit, encoding)
            if element is None:
                return None, 0
            elements[element.tag] = element
            position = end
            continue
        end = start + length
        if end > size:
            return None, 0  # past the end of the file
        key = BaseTag(tag)
        value = data[start:end] if length else _empty(vr)
        if tag == _CHARSET:
            encoding = _charset(value)
        elements[key] = RawDataElement(key, vr, length, value, start, implicit, True)
        position = end
    return elements, position


def _dataset_charset(element: RawDataElement) -> str | list[str]:
    """`read_dataset`'s encoding for a data set with this (0008,0005): `convert_encodings` of the decoded
    value. Declared CS (or implicit: CS by the dictionary), the decoded value is `convert_string`'s."""
    if element.VR in ("CS", None) and type(element.value) is bytes:
        return _charset(element.value)
    return convert_encodings(convert_raw_data_element(element).value)


def _charset(value: bytes | None) -> str | list[str]:
    """The encoding the generator carries on after (0008,0005), as pydicom derives it."""
    from pydicom.values import convert_string

    return convert_encodings(convert_string(value or b"", True))


def _undefined_length(handle: BinaryIO, data: bytes, start: int, tag: int, vr: str | None,
                      implicit: bool, encoding) -> tuple[DataElement | RawDataElement | None, int]:
    """An undefined-length element as pydicom's generator reads it: a sequence by `read_sequence_bytes` (or,
    where that declines, pydicom's `read_sequence`), encapsulated pixel data by pydicom's own function, from
    the same file position: (element, offset after it), or (None, 0) for a case left to dcmread."""
    if vr == "UN" or vr is None:
        if vr == "UN":
            return None, 0  # UN with an undefined length: config-dependent inference, dcmread decides
        try:
            vr = _dictionary_vr_fast(tag)
        except KeyError:
            return None, 0  # pydicom peeks at the next tag here: left to it
    size = len(data)
    if vr == "SQ":
        sequence, end = read_sequence_bytes(data, start, size, _UNDEFINED, implicit, encoding)
        if sequence is None:  # pydicom's reader, from the file
            handle.seek(start)
            sequence = read_sequence(handle, implicit, True, _UNDEFINED, encoding)
            end = handle.tell()
        element = DataElement(BaseTag(tag), vr, sequence, start, is_undefined_length=True)
        return (element, end) if end <= size else (None, 0)
    if vr not in ("OB", "OW", "OB or OW"):
        return None, 0
    handle.seek(start)
    value = read_undefined_length_value(handle, True, SequenceDelimiterTag, None)
    element = RawDataElement(BaseTag(tag), vr, _UNDEFINED, value, start, implicit, True)
    end = handle.tell()
    if end > size:
        return None, 0
    return element, end


#: Undefined-length sequences nested deeper than this are left to pydicom (and read.py's depth checks).
MAX_SEQUENCE_DEPTH = 40
_SEQUENCE_DELIMITER = 0xFFFEE0DD


def read_sequence_bytes(data: bytes, start: int, limit: int, length: int, implicit: bool, encoding,
                        offset: int = 0, depth: int = 0) -> tuple[Sequence | None, int]:
    """pydicom's `read_sequence(fp, implicit, True, length, encoding, offset)` for a sequence value that starts
    at `data[start]` (the file or a sequence's own bytes, read no further than `limit`): the same Sequence of
    the same item Datasets (elements, encodings, `seq_item_tell`, `file_tell`, undefined-length flags), and
    where it ends; (None, 0) for anything it does not fully understand (a non-item tag, an item or element
    running past its end or the buffer, a delimiter inside a defined-length item, an item whose first element
    says the other VR encoding, an odd undefined-length element, nesting past MAX_SEQUENCE_DEPTH)."""
    if depth > MAX_SEQUENCE_DEPTH or _Sequence is None:
        return None, 0
    undefined = length == _UNDEFINED
    end = limit if undefined else start + length
    if end > limit:
        return None, 0
    items = []
    position = start
    while position < end if not undefined else True:
        if position + 8 > limit:
            return None, 0
        tag_group, number, item_length = _IMPLICIT.unpack_from(data, position)
        tag = tag_group << 16 | number
        if tag == _SEQUENCE_DELIMITER:
            position += 8
            break
        if tag != _ITEM:
            return None, 0
        item_start = position + 8
        item, position = _item(data, item_start, limit, item_length, implicit, encoding, depth)
        if item is None:
            return None, 0
        # Plain attributes (`Dataset.__setattr__` would only test their names first)
        state = item.__dict__
        state["is_undefined_length_sequence_item"] = item_length == _UNDEFINED
        state["seq_item_tell"] = state["file_tell"] = item_start - 8 + offset
        items.append(item)
    if not undefined and position != end:
        return None, 0
    sequence = _Sequence(items)
    sequence.is_undefined_length = undefined
    return sequence, position


def _item(data: bytes, start: int, limit: int, length: int, implicit: bool, encoding,
          depth: int) -> tuple[Dataset | None, int]:
    """One item's Dataset as `read_sequence_item` builds it (flags set by the caller), and where it ends."""
    undefined = length == _UNDEFINED
    end = limit if undefined else start + length
    if end > limit:
        return None, 0
    item_implicit = implicit
    if not implicit:  # `_is_implicit_vr(..., is_sequence=True)`: peeks at the first element's VR bytes
        vr_bytes = data[start + 4:min(start + 6, limit)]
        if len(vr_bytes) == 2 and not (0x40 < vr_bytes[0] < 0x5B and 0x40 < vr_bytes[1] < 0x5B):
            item_implicit = True
            empty = length == 0 or (undefined and data[start:start + 4] == b"\xfe\xff\x0d\xe0")
            if not empty:
                return None, 0  # an implicit item in an explicit file: pydicom switches silently, so do not guess
    if undefined:
        elements, position = _walk_item(data, start, limit, item_implicit, encoding, depth)
    elif length == 0:
        elements, position = {}, start
    else:
        elements, position = _walk_item(data, start, end, item_implicit, encoding, depth, defined=True)
        if position != end:
            return None, 0
    if elements is None:
        return None, 0
    item_encoding = _dataset_charset(elements[BaseTag(_CHARSET)]) if _CHARSET in elements else encoding
    return new_dataset(elements, encoding, item_implicit, True, item_encoding), position


def _walk_item(data: bytes, position: int, limit: int, implicit: bool, encoding, depth: int,
               defined: bool = False) -> tuple[dict | None, int]:
    """The elements of one item, up to its delimiter (undefined length) or `limit` (its defined end)."""
    elements: dict = {}
    while True:
        if defined and position >= limit:
            return elements, position
        if position + 8 > limit:
            return None, 0
        if data[position:position + 4] == b"\xfe\xff\x0d\xe0":  # item delimiter
            return (None, 0) if defined else (elements, position + 8)
        header = _header(data, position, limit, implicit)
        if header is None:
            return None, 0
        tag_group, number, vr, length, start = header
        if tag_group == 0xFFFE:
            return None, 0
        tag = tag_group << 16 | number
        key = BaseTag(tag)
        if length == _UNDEFINED:
            if vr is None:
                try:
                    vr = _dictionary_vr_fast(tag)
                except KeyError:
                    return None, 0
            if vr != "SQ":
                return None, 0
            sequence, position = read_sequence_bytes(data, start, limit, _UNDEFINED, implicit, encoding, 0,
                                                     depth + 1)
            if sequence is None:
                return None, 0
            elements[key] = DataElement(key, vr, sequence, start, is_undefined_length=True)
            continue
        end = start + length
        if end > limit:
            return None, 0
        value = data[start:end] if length else _empty(vr)
        if tag == _CHARSET:
            encoding = _charset(value)
        elements[key] = RawDataElement(key, vr, length, value, start, implicit, True)
        position = end
