"""The fast encoder writes exactly the bytes `pydicom.dcmwrite(..., enforce_file_format=True)` writes.

`deidcli.encode` replaced dcmwrite on the header pass for speed (issue 15); an output that differs by one
byte from what pydicom would write could be an invalid file, so every de-identified dataset below is
encoded both ways and compared, for real files of every encoding pydicom's test data has (implicit and
explicit VR, big endian, character sets with escape sequences, nested and undefined-length sequences,
encapsulated pixel data) and for built datasets that exercise each fallback.
"""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import pydicom
import pytest
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.filewriter import dcmwrite
from pydicom.sequence import Sequence
from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, ImplicitVRLittleEndian

from deidcli.audit import FileResult, PrivateRecord
from deidcli.encode import encode_file
from deidcli.errors import FileRejected
from deidcli.pipeline import Pipeline, Settings
from deidcli.read import read_dicom
from deidcli.recipe.load import load_recipe
from deidcli.write import build_file_meta
from tests.conftest import KEY, ORG_ROOT, deid_data_file, planted_dataset, pydicom_file

#: Files chosen for what their encoding exercises (names from pydicom's test data and deid-data).
REAL_FILES = [
    "CT_small.dcm",  # explicit VR LE, the common case
    "MR_small.dcm",
    "MR_small_implicit.dcm",  # implicit VR: pydicom re-encodes every element (fallback inside the encoder)
    "MR_small_bigendian.dcm",  # big endian: values swapped, then written as explicit LE
    "rtplan.dcm",  # deep sequences
    "JPEG2000.dcm",  # encapsulated pixel data
    "emri_small_jpeg_2k_lossless.dcm",
    "SC_rgb_rle.dcm",
    "chrH31.dcm",  # ISO 2022 IR 87 (Japanese): escape sequences, never the ASCII shortcut
    "chrX1.dcm",  # UTF-8 (ISO_IR 192)
    "chrFren.dcm",  # ISO_IR 100
    "chrRuss.dcm",
    "chrGreek.dcm",
    "image_dfl.dcm",  # deflated source
    "liver.dcm",  # segmentation
    "waveform_ecg.dcm",
]


def _pipeline(tmp_path: Path) -> Pipeline:
    settings = Settings(recipe=load_recipe("default"), key=KEY, org_root=ORG_ROOT, ocr="never",
                        accept_burned_in_risk=True)
    return Pipeline(settings, tmp_path)


def _both_ways(target: Dataset, syntax: str) -> tuple[bytes | None, bytes]:
    target.file_meta = build_file_meta(target, syntax)
    fast = encode_file(target)
    reference = BytesIO()
    dcmwrite(reference, target, enforce_file_format=True)
    return fast, reference.getvalue()


def _cleaned(pipeline: Pipeline, path: Path) -> tuple[Dataset, str]:
    source = read_dicom(path)
    return pipeline.clean(source, FileResult(input_id="x"), PrivateRecord(str(path), "x", "", "", ""))


@pytest.mark.parametrize("name", REAL_FILES)
def test_de_identified_real_file_encodes_to_the_bytes_dcmwrite_writes(tmp_path, name):
    try:
        target, syntax = _cleaned(_pipeline(tmp_path), pydicom_file(name))
    except FileRejected as rejection:
        pytest.skip(f"{name} is not written by the header pass ({rejection.reason})")
    fast, reference = _both_ways(target, syntax)
    assert fast is not None, "every syntax the header pass writes is encoded here"
    assert fast == reference


def test_deid_data_files_encode_to_the_bytes_dcmwrite_writes(tmp_path):
    pipeline = _pipeline(tmp_path)
    folder = deid_data_file("dicom-cookies")
    compared = 0
    for path in sorted(folder.glob("*.dcm")):
        target, syntax = _cleaned(pipeline, path)
        fast, reference = _both_ways(target, syntax)
        assert fast == reference, path.name
        compared += 1
    assert compared >= 5


def test_every_pydicom_test_file_the_pipeline_writes_encodes_identically(tmp_path):
    """All of pydicom's test files at once (those the header pass refuses are skipped)."""
    pipeline = _pipeline(tmp_path)
    folder = Path(pydicom.data.__file__).parent / "test_files"
    fast_count = 0
    for path in sorted(folder.glob("*.dcm")):
        if path.stat().st_size > 3_000_000:
            continue
        try:
            target, syntax = _cleaned(pipeline, path)
        except FileRejected:
            continue
        fast, reference = _both_ways(target, syntax)
        if fast is not None:
            assert fast == reference, path.name
            fast_count += 1
    assert fast_count >= 30


def _raw(tag: int, vr: str, value: bytes, length: int | None = None) -> RawDataElement:
    return RawDataElement(tag, vr, len(value) if length is None else length, value, 0, False, True)


def _explicit_dataset() -> Dataset:
    ds = planted_dataset()
    ds.set_original_encoding(False, True, None)
    return ds


def test_raw_elements_of_every_length_form_encode_identically():
    """Raw values as read: 16- and 32-bit lengths, an undefined-length raw sequence, a value too long for a
    16-bit length (pydicom turns it into UN), an undefined length under a 16-bit VR."""
    ds = _explicit_dataset()
    item = b"\xfe\xff\x00\xe0\xff\xff\xff\xff" + b"\x08\x00\x00\x01SH\x04\x00ABCD" + b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
    ds._dict[pydicom.tag.Tag(0x00081110)] = _raw(0x00081110, "SQ", item, 0xFFFFFFFF)
    ds._dict[pydicom.tag.Tag(0x00204000)] = _raw(0x00204000, "LT", b"A" * 70_000)
    ds._dict[pydicom.tag.Tag(0x00181000)] = _raw(0x00181000, "LO", b"SER1")
    ds._dict[pydicom.tag.Tag(0x00660023)] = _raw(0x00660023, "OW", b"\x01\x02" * 10)
    fast, reference = _both_ways(ds, ExplicitVRLittleEndian)
    assert fast is not None and fast == reference


def test_new_elements_of_each_simple_kind_encode_identically():
    """Empty values of many VRs, one int per integer VR, ASCII strings, and what goes to pydicom: multiple
    values, a non-ASCII name, floats, DS/IS numbers, a PersonName."""
    ds = _explicit_dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    empty = {"AccessionNumber": "SH", "StudyDate": "DA", "StudyTime": "TM", "ReferringPhysicianName": "PN",
             "PatientWeight": "DS", "InstanceNumber": "IS", "PatientSize": "DS", "RetrieveAETitle": "AE"}
    for keyword, vr in empty.items():
        ds.add_new(pydicom.datadict.tag_for_keyword(keyword), vr, None)
    ds.add_new(0x00280010, "US", 512)
    ds.add_new(0x00280106, "SS", -5)
    ds.add_new(0x00189219, "SL", -70000)
    ds.add_new(0x00280008, "IS", "3")
    ds.add_new(0x00280030, "DS", [0.5, 0.25])
    ds.add_new(0x00181050, "DS", "0.75")
    ds.add_new(0x00080060, "CS", "CT")
    ds.add_new(0x00080008, "CS", ["ORIGINAL", "PRIMARY"])
    ds.add_new(0x00081030, "LO", "ODD")
    ds.add_new(0x0008103E, "LO", "Séries éèà")
    ds.add_new(0x00180015, "CS", "HEAD")
    ds.add_new(0x00181030, "LO", "PROTOCOL")
    ds.add_new(0x00189087, "FD", 1000.5)
    ds.add_new(0x00200032, "DS", ["1", "2", "3"])
    ds.add_new(0x00080018, "UI", "1.2.3.4.5")  # odd length: NUL padded
    fast, reference = _both_ways(ds, ExplicitVRLittleEndian)
    assert fast is not None and fast == reference


@pytest.mark.parametrize("charset", [None, "ISO_IR 100", "ISO_IR 192", ["", "ISO 2022 IR 87"]])
def test_names_numbers_and_native_pixels_encode_identically(charset):
    """The kinds the encoder packs itself since issue 15's third pass: one ASCII PersonName (odd and even,
    with and without component groups, non-ASCII left to pydicom), IS/DS numbers (one or several, with the
    original string read from a file or formatted), OB/OW bytes (an odd length left to pydicom) and native
    PixelData, under plain and ISO 2022 character sets."""
    ds = _explicit_dataset()
    if charset is not None:
        ds.SpecificCharacterSet = charset
    ds.set_original_encoding(False, True, ds._character_set)  # as read: the encoder's own path, not pydicom's
    ds.add_new(0x00100010, "PN", "DOE^JOHN^^^")  # odd length
    ds.add_new(0x00080090, "PN", "SMITH^J")
    ds.add_new(0x00081050, "PN", "Yamada^Tarou=山田^太郎")  # component groups: pydicom
    ds.add_new(0x00081070, "PN", "Müller^Jörg")  # not ASCII: pydicom
    ds.add_new(0x00200013, "IS", pydicom.valuerep.IS("0012"))  # original string kept
    ds.add_new(0x00280008, "IS", 7)
    ds.add_new(0x00281050, "DS", pydicom.valuerep.DSfloat("40.50"))
    ds.add_new(0x00281051, "DS", [pydicom.valuerep.DSfloat("400"), 2.5, "3"])
    ds.add_new(0x00181050, "DS", 0.1 + 0.2)  # formatted by pydicom's str
    ds.add_new(0x00660023, "OW", b"\x01\x02" * 5)
    ds.add_new(0x00420011, "OB", b"\x01\x02\x03")  # odd: padded by pydicom
    ds.add_new(0x7FE00010, "OW", bytes(range(256)) * 4)
    fast, reference = _both_ways(ds, ExplicitVRLittleEndian)
    assert fast is not None and fast == reference


def test_japanese_character_set_goes_through_pydicom_escape_sequences():
    ds = _explicit_dataset()
    ds.SpecificCharacterSet = ["", "ISO 2022 IR 87"]
    ds.add_new(0x00081030, "LO", "ABC")
    ds.add_new(0x0008103E, "LO", "やまだ")
    fast, reference = _both_ways(ds, ExplicitVRLittleEndian)
    assert fast is not None and fast == reference


def test_new_sequences_defined_and_undefined_length_items_encode_identically():
    ds = _explicit_dataset()
    inner = Dataset()
    inner.CodeValue = "113100"
    inner.CodingSchemeDesignator = "DCM"
    inner.is_undefined_length_sequence_item = True
    outer = Dataset()
    outer.set_original_encoding(False, True, None)
    outer.add_new(0x00081150, "UI", "1.2.840.10008.5.1.4.1.1.2")
    outer.PurposeOfReferenceCodeSequence = Sequence([inner])
    ds.ReferencedImageSequence = Sequence([outer, Dataset()])
    element = DataElement(0x00081140, "SQ", Sequence([outer]))
    element.is_undefined_length = True
    ds[0x00081140] = element
    ds.add_new(0x00081120, "SQ", Sequence())
    fast, reference = _both_ways(ds, ExplicitVRLittleEndian)
    assert fast is not None and fast == reference


def test_implicit_vr_output_encodes_identically():
    ds = _explicit_dataset()
    ds.set_original_encoding(True, True, None)
    ds.add_new(0x00280010, "US", 512)
    ds.add_new(0x00081030, "LO", "ODD")
    fast, reference = _both_ways(ds, ImplicitVRLittleEndian)
    assert fast is not None and fast == reference


def test_deflated_output_and_foreign_file_meta_fall_back_to_dcmwrite():
    ds = _explicit_dataset()
    assert encode_file(ds) is None  # planted_dataset's meta has a SourceApplicationEntityTitle
    ds.file_meta = build_file_meta(ds, DeflatedExplicitVRLittleEndian)
    assert encode_file(ds) is None
    ds.file_meta = build_file_meta(ds, ExplicitVRLittleEndian)
    assert encode_file(ds) is not None


@pytest.mark.parametrize("syntax", [ExplicitVRLittleEndian, ImplicitVRLittleEndian])
@pytest.mark.parametrize("odd", [False, True])
def test_spooled_pixels_and_long_values_are_written_as_pieces_with_dcmwrite_bytes(tmp_path, syntax, odd):
    """`encode_parts` leaves a buffered PixelData (the pixel stage's spool, read from its position on) and long
    OB/OW values (raw as read, or new bytes) out of the encoded header; joined, and written and hashed by
    `write_temporary`, the pieces are dcmwrite's bytes, and the spool is left where it was."""
    import hashlib
    import tempfile

    from deidcli.encode import Streamed, encode_parts
    from deidcli.write import write_temporary

    ds = _explicit_dataset()
    ds.set_original_encoding(syntax.is_implicit_VR, True, ds._character_set)  # the encoder's own path
    ds._dict[pydicom.tag.Tag(0x00660023)] = _raw(0x00660023, "OW", bytes(range(256)) * 600)  # long, as read
    ds.add_new(0x00420011, "OB", b"\x07\x08" * 40_000)  # long, new bytes
    spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    pixels = bytes(range(251)) * 3000 + (b"\x05" if odd else b"")
    spool.write(b"skipped" + pixels)
    spool.seek(len(b"skipped"))
    ds.add_new(0x7FE00010, "OW", spool)
    fast, reference = _both_ways(ds, syntax)
    assert fast is not None and fast == reference
    assert spool.tell() == len(b"skipped")
    parts = encode_parts(ds)
    assert parts is not None and sum(isinstance(part, Streamed) for part in parts) == 1
    assert sum(isinstance(part, bytes) for part in parts) == 2  # the long values, as they are
    assert b"".join(bytes(c) for part in parts for c in (part.chunks(size=4096) if isinstance(part, Streamed)
                                                          else (part,))) == reference
    path, digest = write_temporary(ds, syntax, tmp_path, fsync=False)
    written = path.read_bytes()
    spool.close()
    assert written == reference
    assert digest == hashlib.sha256(written).hexdigest()
