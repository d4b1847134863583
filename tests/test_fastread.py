"""The fast reader builds exactly the dataset `pydicom.dcmread` builds, or declines (returns None).

`deidcli.fastread` replaced dcmread on the header pass for speed (issue 15). Everything downstream (the
recipe, the encoder that copies raw bytes, the truncation checks of read.py) sees its elements, so each real
file below is read both ways and compared element by element: type, tag, VR, length, value, value_tell,
encoding flags, the file meta, the dataset's encoding attributes. Hostile files (cut at every few bytes, a
length past the end, an unknown VR, a stray delimiter, a command set, sequences nested thousands deep) must
make the fast reader decline, and `read_dicom` must answer exactly what it answered with dcmread alone.
"""

from __future__ import annotations

import struct
import warnings
from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from pydicom.dataelem import RawDataElement

import deidcli.read as read_module
from deidcli.elements import decoded
from deidcli.errors import FileRejected
from deidcli.fastread import read_file, read_sequence_bytes
from deidcli.read import read_dicom
from tests.conftest import pydicom_file

#: Read fast: explicit and implicit VR little endian, nested and undefined-length sequences, private tags,
#: encapsulated pixel data, character sets.
FAST_FILES = ["CT_small.dcm", "MR_small.dcm", "MR_small_implicit.dcm", "rtplan.dcm", "rtdose.dcm", "JPEG2000.dcm",
              "emri_small_jpeg_2k_lossless.dcm", "SC_rgb_rle.dcm", "chrH31.dcm", "chrX1.dcm", "chrFren.dcm",
              "chrSQEncoding.dcm", "liver.dcm", "waveform_ecg.dcm", "MR_small_RLE.dcm", "OBXXXX1A.dcm",
              "JPEG-LL.dcm", "SC_rgb.dcm", "US1_J2KR.dcm", "MR-SIEMENS-DICOM-WithOverlays.dcm"]
#: Left to dcmread: big endian, deflated.
DECLINED_FILES = ["MR_small_bigendian.dcm", "image_dfl.dcm", "ExplVR_BigEnd.dcm"]


def _dcmread(data: bytes):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(BytesIO(data))


_DATASET_STATE = ("_read_implicit", "_read_little", "_read_charset", "_parent_encoding",
                  "is_undefined_length_sequence_item", "seq_item_tell", "file_tell")


def _assert_same_dataset(ours, theirs, where: str = "") -> None:
    """Element by element, at every depth: the same element types, raw tuples, decoded values, sequence
    flags, and the item state pydicom uses to decode (encodings) and to write (undefined lengths)."""
    assert type(ours) is type(theirs), where
    assert list(ours._dict) == list(theirs._dict), where
    for name in _DATASET_STATE:
        assert getattr(ours, name, None) == getattr(theirs, name, None), f"{where} {name}"
    for tag, element in ours._dict.items():
        other, here = theirs._dict[tag], f"{where}/{tag:08X}"
        assert type(element) is type(other), here
        if type(element) is RawDataElement:
            assert tuple(element) == tuple(other), here
            continue
        assert (element.VR, element.file_tell, element.is_undefined_length) == (
            other.VR, other.file_tell, other.is_undefined_length), here
        if element.VR != "SQ":
            assert element.value == other.value, here
            continue
        assert type(element.value) is type(other.value), here
        assert getattr(element.value, "is_undefined_length", None) == getattr(other.value, "is_undefined_length", None), here
        assert len(element.value) == len(other.value), here
        for index, (item, other_item) in enumerate(zip(element.value, other.value, strict=True)):
            _assert_same_dataset(item, other_item, f"{here}[{index}]")


def _assert_same(fast, slow) -> None:
    assert type(fast) is type(slow)
    assert fast.preamble == slow.preamble
    _assert_same_dataset(fast.file_meta, slow.file_meta, "meta")
    _assert_same_dataset(fast, slow)


@pytest.mark.parametrize("name", FAST_FILES)
def test_fast_reader_builds_what_dcmread_builds_on_real_files(name):
    data = pydicom_file(name).read_bytes()
    fast = read_file(BytesIO(data))
    assert fast is not None, "this file is one the fast reader is for"
    _assert_same(fast, _dcmread(data))


def test_the_fast_files_cover_private_tags_sequences_undefined_lengths_and_implicit_vr():
    seen = set()
    for name in FAST_FILES:
        dataset = read_file(BytesIO(pydicom_file(name).read_bytes()))
        for tag, element in dataset._dict.items():
            seen.add("private" if tag >> 16 & 1 else "public")
            seen.add("implicit" if element.VR is None else element.VR)
            if type(element) is not RawDataElement or element.length == 0xFFFFFFFF:
                seen.add(f"undefined {element.VR}")
    assert {"private", "implicit", "SQ", "undefined SQ", "undefined OB", "PN"} <= seen


@pytest.mark.parametrize("name", DECLINED_FILES)
def test_fast_reader_leaves_big_endian_and_deflated_files_to_dcmread(name):
    assert read_file(BytesIO(pydicom_file(name).read_bytes())) is None


def _outcome(path: Path):
    """What read_dicom answers: the reason code, or the element tuples of the dataset it read."""
    try:
        dataset = read_dicom(path)
    except FileRejected as rejection:
        return rejection.reason
    return [tuple(e) if type(e) is RawDataElement else (e.tag, e.VR, e.value) for e in dataset._dict.values()]


def _same_as_dcmread_alone(path: Path, monkeypatch) -> object:
    fast = _outcome(path)
    with monkeypatch.context() as patch:
        patch.setattr(read_module, "read_file", lambda handle: None)
        slow = _outcome(path)
    assert fast == slow
    return fast


@pytest.mark.parametrize("name", ["CT_small.dcm", "rtplan.dcm", "JPEG2000.dcm"])
def test_a_file_cut_anywhere_reads_as_it_did_with_dcmread_alone(tmp_path, monkeypatch, name):
    data = pydicom_file(name).read_bytes()
    path = tmp_path / "cut.dcm"
    outcomes = set()
    step = max(1, len(data) // 150)
    for end in [*range(120, len(data), step), len(data) - 1, len(data) - 3]:
        path.write_bytes(data[:end])
        outcome = _same_as_dcmread_alone(path, monkeypatch)
        outcomes.add(outcome if isinstance(outcome, str) else "read")
    assert "parse_failed" in outcomes  # cuts inside an element are caught


def _explicit(group: int, element: int, vr: bytes, value: bytes) -> bytes:
    if vr in (b"OB", b"OW", b"SQ", b"UN", b"UT", b"UC", b"UR"):
        return struct.pack("<HH2sHL", group, element, vr, 0, len(value)) + value
    return struct.pack("<HH2sH", group, element, vr, len(value)) + value


def _with_body(body: bytes) -> bytes:
    """CT_small's preamble and file meta, followed by `body` as its data set."""
    data = pydicom_file("CT_small.dcm").read_bytes()
    meta_length = struct.unpack_from("<L", data, 140)[0]
    return data[:144 + meta_length] + body


SOP = (_explicit(0x0008, 0x0016, b"UI", b"1.2.840.10008.5.1.4.1.1.2\x00")
       + _explicit(0x0008, 0x0018, b"UI", b"1.2.3.4\x00"))


@pytest.mark.parametrize("body", [
    SOP + struct.pack("<HH2sH", 0x0010, 0x0010, b"PN", 0xFFF0) + b"DOE^JOHN",  # length past the end
    SOP + struct.pack("<HH2sHL", 0x0010, 0x1002, b"SQ", 0, 0x7FFFFFF0) + b"\xfe\xff\x00\xe0",  # SQ past the end
    SOP + _explicit(0x0010, 0x0010, b"Q!", b"DOE^JOHN"),  # an unknown VR
    SOP + b"\xfe\xff\x0d\xe0\x00\x00\x00\x00" + _explicit(0x0010, 0x0010, b"PN", b"DOE^JOHN"),  # stray delimiter
    SOP + b"\x10\x00\x10",  # a partial element header
    SOP + struct.pack("<HH2sHL", 0x0010, 0x0010, b"PN", 0, 0xFFFFFFFF) + b"DOE^JOHN",  # undefined-length PN
    _explicit(0x0000, 0x0100, b"US", b"\x01\x00") + SOP,  # a command set element
])
def test_hostile_lengths_and_codes_are_left_to_dcmread(tmp_path, monkeypatch, body):
    data = _with_body(body)
    assert read_file(BytesIO(data)) is None
    path = tmp_path / "hostile.dcm"
    path.write_bytes(data)
    _same_as_dcmread_alone(path, monkeypatch)


def test_sequences_nested_thousands_deep_are_refused_not_crashed(tmp_path, monkeypatch):
    item_start, item_end = b"\xfe\xff\x00\xe0\xff\xff\xff\xff", b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
    sq_start = struct.pack("<HH2sHL", 0x0040, 0xA730, b"SQ", 0, 0xFFFFFFFF)
    sq_end = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    depth = 3000
    body = SOP + (sq_start + item_start) * depth + (item_end + sq_end) * depth
    path = tmp_path / "deep.dcm"
    path.write_bytes(_with_body(body))
    assert _same_as_dcmread_alone(path, monkeypatch) in {"too_deep", "parse_failed"}


def _decode_sequences(dataset, decode) -> None:
    for tag in list(dataset._dict):
        if dataset._dict[tag].VR == "SQ":
            for item in decode(dataset, tag).value:
                _decode_sequences(item, decode)


@pytest.mark.parametrize("name", [*FAST_FILES, "nested_priv_SQ.dcm", "UN_sequence.dcm", "MR_small_bigendian.dcm"])
def test_sequences_decoded_by_the_attribute_pass_equal_pydicoms_at_every_depth(name):
    """`elements.decoded` parses a raw sequence's items with `read_sequence_bytes`; pydicom's
    `Dataset.__getitem__` is the reference (big endian sequences stay with pydicom)."""
    data = pydicom_file(name).read_bytes()
    ours, theirs = _dcmread(data), _dcmread(data)
    _decode_sequences(ours, lambda dataset, tag: decoded(dataset, dataset._dict[tag]))
    _decode_sequences(theirs, lambda dataset, tag: dataset[tag])
    _assert_same_dataset(ours, theirs)


def test_a_sequence_value_with_a_damaged_item_is_left_to_pydicom():
    item = _explicit(0x0008, 0x0100, b"SH", b"T-1234") + _explicit(0x0008, 0x0102, b"SH", b"SRT ")
    good = b"\xfe\xff\x00\xe0" + struct.pack("<L", len(item)) + item
    assert read_sequence_bytes(good, 0, len(good), len(good), False, ["iso8859"])[0] is not None
    for damaged in (good[:-3],  # the item runs past the value
                    b"\xfe\xff\x00\xe1" + good[4:],  # not an item tag
                    good[:4] + struct.pack("<L", len(item) + 40) + item,  # item length past the end
                    good[:4] + struct.pack("<L", 0xFFFFFFFF) + item):  # undefined item without a delimiter
        assert read_sequence_bytes(damaged, 0, len(damaged), len(damaged), False, ["iso8859"])[0] is None


def test_a_file_larger_than_the_fast_reader_takes_is_read_by_dcmread(tmp_path, monkeypatch):
    path = tmp_path / "large.dcm"
    path.write_bytes(pydicom_file("CT_small.dcm").read_bytes())
    called = []
    monkeypatch.setattr(read_module, "FAST_READ_MAX_BYTES", 1000)
    monkeypatch.setattr(read_module, "read_file", lambda handle: called.append(1))
    assert read_dicom(path).SOPClassUID
    assert not called
