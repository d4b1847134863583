"""`deidcli.elements.ascii_texts` gives exactly the text values pydicom's converters give.

The attribute pass pseudonymises values read by this shortcut instead of pydicom's conversion (issue 15);
a value split or stripped differently would change a pseudonym or, worse, leave part of an identifier in
the audit's replacement list unmatched. Every raw element of real files (and built edge cases: padding,
empty values, backslashes, character sets) is read both ways and compared; where the shortcut declines
(non-ASCII, escape sequences, PN component groups, date conversion on) it must return None.
"""

from __future__ import annotations

import pydicom
import pytest
from pydicom import config
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import BaseTag

from deidcli.elements import ascii_texts, decoded, text_of
from tests.conftest import deid_data_file, pydicom_file

FILES = ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "JPEG2000.dcm", "chrH31.dcm", "chrX1.dcm", "chrFren.dcm",
         "chrRuss.dcm", "chrGreek.dcm", "chrSQEncoding.dcm", "liver.dcm", "waveform_ecg.dcm", "nested_priv_SQ.dcm",
         "rtdose.dcm", "SC_rgb_rle.dcm"]


def _pydicom_texts(dataset: Dataset, tag: int) -> list[str]:
    value = dataset[tag].value
    return [str(v) for v in value] if isinstance(value, MultiValue | list) else [str(value)]


def _datasets(dataset: Dataset):
    yield dataset
    for tag in list(dataset._dict):
        raw = dataset._dict[tag]
        if raw.VR == "SQ":
            for item in dataset[tag].value:
                yield from _datasets(item)


def _compare(dataset: Dataset) -> set[str]:
    """Compare every raw element of every level both ways; the VRs the shortcut took."""
    taken = set()
    for level in list(_datasets(dataset)):
        for tag, raw in list(level._dict.items()):
            if type(raw) is not RawDataElement:
                continue
            texts = ascii_texts(level, raw)
            if texts is None:
                continue
            taken.add(raw.VR)
            assert texts == _pydicom_texts(level, tag), (f"{tag:08X}", raw.VR, raw.value)
    return taken


@pytest.mark.parametrize("name", FILES)
def test_ascii_texts_equal_pydicom_values_on_real_files(name):
    _compare(pydicom.dcmread(pydicom_file(name), force=True))


def test_ascii_texts_take_the_values_the_header_pass_pseudonymises():
    taken = set()
    for name in FILES:
        taken |= _compare(pydicom.dcmread(pydicom_file(name), force=True))
    taken |= _compare(pydicom.dcmread(deid_data_file("dicom-cookies", "image1.dcm")))
    assert {"UI", "PN", "DA", "TM", "LO", "SH", "CS", "DS"} - {"DS"} <= taken


def _raw(tag: int, vr: str, value: bytes) -> RawDataElement:
    return RawDataElement(BaseTag(tag), vr, len(value), value, 0, False, True)


EDGE_VALUES = [b"", b" ", b"\x00", b"1.2.3\x00", b"1.2.3 \x00", b"1.2\\3.4 ", b"A\\B ", b" A \\ B\x00", b"\\",
               b"A\\\\B", b"AB\x00 \x00", b" lead", b"TAB\tEND ", b"x\\y\\"]
EDGE_VRS = {"UI": 0x00080018, "CS": 0x00080060, "DA": 0x00080020, "DT": 0x0008002A, "TM": 0x00080030,
            "AS": 0x00101010, "AE": 0x00020016, "LO": 0x00100020, "SH": 0x00080050, "LT": 0x00204000,
            "ST": 0x00080081, "UT": 0x00400280, "UC": 0x00189334, "PN": 0x00100010}


@pytest.mark.parametrize("charset", [None, "ISO_IR 100", "ISO_IR 192", "ISO 2022 IR 100"])
@pytest.mark.parametrize("vr", sorted(EDGE_VRS))
def test_ascii_texts_equal_pydicom_values_on_padding_and_separators(vr, charset):
    for value in EDGE_VALUES:
        dataset = Dataset()
        if charset:
            dataset[0x00080005] = _raw(0x00080005, "CS", charset.encode() + b" " * (len(charset) % 2))
        dataset._dict[BaseTag(EDGE_VRS[vr])] = raw = _raw(EDGE_VRS[vr], vr, value)
        dataset.set_original_encoding(False, True, dataset._character_set)
        texts = ascii_texts(dataset, raw)
        assert texts is not None, (vr, value)
        assert texts == _pydicom_texts(dataset, EDGE_VRS[vr]), (vr, value, charset)


@pytest.mark.parametrize(("vr", "value"), [
    ("PN", "Doe^John=山田^太郎".encode("iso2022_jp")),  # escape sequences: ISO 2022 decoding
    ("LO", b"caf\xe9"),  # not ASCII: the character set decides
    ("PN", b"Doe^John==Ideo"),  # component groups: PersonName joins them its own way
    ("SQ", b""),
    ("OB", b"AB"),
    ("US", b"\x01\x00"),
])
def test_ascii_texts_decline_what_needs_pydicom(vr, value):
    dataset = Dataset()
    assert ascii_texts(dataset, _raw(0x00100010, vr, value)) is None


def test_ascii_texts_decline_while_pydicom_converts_dates(monkeypatch):
    monkeypatch.setattr(config, "datetime_conversion", True)
    assert ascii_texts(Dataset(), _raw(0x00080020, "DA", b"20200101")) is None


def test_ascii_texts_decline_a_character_set_that_maps_ascii_elsewhere():
    dataset = Dataset()
    dataset.set_original_encoding(False, True, ["utf_16"])
    assert ascii_texts(dataset, _raw(0x00100020, "LO", b"ID12")) is None
    assert ascii_texts(dataset, _raw(0x00080018, "UI", b"1.2")) == ["1.2"]  # UI: default encoding always


def test_ascii_texts_decline_while_pydicom_raises_on_invalid_values(monkeypatch):
    monkeypatch.setattr(config.settings, "reading_validation_mode", config.RAISE)
    assert ascii_texts(Dataset(), _raw(0x00080018, "UI", b"1.2")) is None


KEYWORDS = ["StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "PatientID", "PatientName", "Modality",
            "ImageType", "AccessionNumber"]


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "chrH31.dcm", "chrX1.dcm"])
def test_text_of_equals_str_of_the_decoded_value(name):
    for keyword in KEYWORDS:  # fresh file each time: text_of must not depend on what was decoded before
        dataset = pydicom.dcmread(pydicom_file(name), force=True)
        assert text_of(dataset, keyword) == str(dataset.get(keyword, "") or ""), keyword


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "chrH31.dcm"])
def test_text_of_decoded_absent_and_unknown_keywords_equals_pydicoms(name):
    """Elements decoded before (`Dataset.get` then gives their value), absent ones and non-keywords."""
    for keyword in [*KEYWORDS, "SOPClassUID", "SpecificCharacterSet", "NumberOfFrames", "NotAKeyword"]:
        dataset = pydicom.dcmread(pydicom_file(name), force=True)
        dataset.get(keyword)  # decodes it, if present
        assert text_of(dataset, keyword) == str(dataset.get(keyword, "") or ""), keyword


@pytest.mark.parametrize("value", [b"1.2.3 \x00", b" 1.2.3", b"1.2\\3.4", b"", b"\x00"])
def test_text_of_a_uid_with_padding_or_two_values_equals_pydicoms(value):
    dataset = Dataset()
    dataset._dict[BaseTag(0x0020000D)] = _raw(0x0020000D, "UI", value)
    expected = str(Dataset(dict(dataset._dict)).get("StudyInstanceUID", "") or "")
    assert text_of(dataset, "StudyInstanceUID") == expected


@pytest.mark.parametrize("name", ["MR_small_implicit.dcm", "rtplan.dcm", "rtstruct.dcm", "nested_priv_SQ.dcm"])
def test_decoded_implicit_vr_elements_equal_pydicoms_getitem(name):
    """`decoded` converts a public implicit-VR element itself (VR from the dictionary); pydicom's
    `Dataset.__getitem__` is the reference, element by element (VR, value, where it was read)."""
    ours = pydicom.dcmread(pydicom_file(name), force=True)
    theirs = pydicom.dcmread(pydicom_file(name), force=True)
    assert any(raw.VR is None for raw in ours._dict.values())
    for tag in list(ours._dict):
        mine, reference = decoded(ours, ours._dict[tag]), theirs[tag]
        assert (mine.VR, mine.file_tell, mine.is_undefined_length) == (
            reference.VR, reference.file_tell, reference.is_undefined_length), f"{tag:08X}"
        if mine.VR != "SQ":
            assert mine.value == reference.value, f"{tag:08X}"
        assert ours._dict[tag] is mine


def test_value_of_gives_what_dataset_get_gives_by_keyword():
    """`value_of` reads by tag what `Dataset.get(keyword)` reads, absent keywords and non-keywords included."""
    from deidcli.elements import value_of

    keywords = ("Rows", "Columns", "NumberOfFrames", "SamplesPerPixel", "BitsAllocated", "PixelRepresentation",
                "PhotometricInterpretation", "PatientName", "SpecificCharacterSet", "NotAKeyword")
    for name in ("CT_small.dcm", "MR_small.dcm", "ExplVR_BigEnd.dcm", "JPEG2000.dcm", "emri_small.dcm",
                 "SC_rgb_rle.dcm", "rtplan.dcm"):
        for keyword in keywords:
            fast, slow = pydicom.dcmread(pydicom_file(name)), pydicom.dcmread(pydicom_file(name))
            value, expected = value_of(fast, keyword), slow.get(keyword)
            assert value == expected and type(value) is type(expected), (name, keyword)
