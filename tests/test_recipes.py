"""The built-in recipes: PS3.15 basic profile and options from Table E.1-1, the keep-list, mammography,
kskit's recipe as shipped, and images that come out of `basic` valid with pixels and geometry intact."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from pydicom import dcmread
from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

import deidcli
from deidcli.errors import UsageError
from deidcli.recipe import Action, Recipe, builtin_names, load_recipe
from deidcli.recipe.profiles import (
    BASIC_CODE,
    FORBIDDEN_KEEP_VRS,
    KEEP_TEXT_ALLOWED,
    OPTIONS,
    basic_action,
    build_profile,
    format_recipe,
    keep_list,
    option_action,
    table_by_tag,
    table_rows,
)

REPO = Path(__file__).resolve().parents[1]

KSKIT_SHA256 = "74f5cc6f2cf37b4d182628eb472df414ca8300e8e566e9cfa5883cf6aaacb537"
KEY = b"k" * 32


def tag(keyword: str) -> int:
    value = tag_for_keyword(keyword)
    assert value is not None, keyword
    return value


def action_of(recipe: Recipe, keyword: str) -> Action | None:
    rule = recipe.general_rule(tag(keyword))
    return rule.action if rule is not None else None


@pytest.fixture(scope="module")
def basic() -> Recipe:
    return build_profile()


def _load_build_module():
    spec = importlib.util.spec_from_file_location("recipes_build", REPO / "recipes" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# -- the table and the code mapping ------------------------------------------------------------------
def test_table_e1_1_is_bundled_and_parsed():
    rows = table_rows()
    assert len(rows) == 647
    tags = {row.tag for row in rows}
    assert {"private", "60xx3000", "60xx4000", "50xxxxxx", "00100010"} <= tags
    assert table_by_tag()[tag("PatientName")].basic == "Z"


@pytest.mark.parametrize(
    ("code", "vr", "keyword", "expected"),
    [
        ("X", "LO", "", Action.RETIRER),
        ("Z", "PN", "", Action.EFFACER),
        ("D", "PN", "", Action.PSEUDONYMISER),
        ("U", "UI", "", Action.PSEUDONYMISER),
        ("K", "CS", "", Action.CONSERVER),
        ("X/Z", "LO", "", Action.EFFACER),
        ("X/D", "DA", "", Action.PSEUDONYMISER),
        ("Z/D", "TM", "", Action.PSEUDONYMISER),
        ("X/Z/D", "SH", "", Action.PSEUDONYMISER),
        ("X/Z/U*", "UI", "", Action.PSEUDONYMISER),
        ("X", "SQ", "OtherPatientIDsSequence", Action.RETIRER),
        ("Z", "SQ", "IssuerOfTheContainerIdentifierSequence", Action.EFFACER),
        ("X/Z", "SQ", "AcquisitionContextSequence", Action.EFFACER),
        ("X/Z", "SQ", "ReferencedStudySequence", Action.RETIRER),
        ("D", "SQ", "ContentSequence", Action.CONSERVER),
        ("X/Z/U*", "SQ", "ReferencedImageSequence", Action.CONSERVER),
        ("X/Z/D", "SQ", "InstitutionCodeSequence", Action.EFFACER),
        ("D", "SQ", "PersonIdentificationCodeSequence", Action.EFFACER),
    ],
)
def test_basic_codes_map_to_the_strictest_valid_action(code, vr, keyword, expected):
    assert basic_action(code, vr, keyword) is expected


@pytest.mark.parametrize(
    ("code", "vr", "basic_code_action", "expected"),
    [
        ("K", "UI", Action.PSEUDONYMISER, Action.CONSERVER),
        ("C", "DA", Action.EFFACER, Action.PSEUDONYMISER),
        ("C", "TM", Action.RETIRER, Action.PSEUDONYMISER),
        ("C", "LO", Action.RETIRER, Action.RETIRER),
        ("C", "ST", Action.EFFACER, Action.EFFACER),
        ("C", "SQ", Action.RETIRER, Action.CONSERVER),
    ],
)

def test_option_codes_keep_shift_or_leave_the_basic_action(code, vr, basic_code_action, expected):
    assert option_action(code, vr, basic_code_action) is expected


def test_basic_profile_acts_on_identifiers(basic):
    assert action_of(basic, "PatientName") is Action.EFFACER
    assert action_of(basic, "PatientID") is Action.PSEUDONYMISER  # Z/D: type 1 in some IODs
    assert action_of(basic, "AccessionNumber") is Action.EFFACER
    assert action_of(basic, "StudyDate") is Action.EFFACER
    assert action_of(basic, "StudyInstanceUID") is Action.PSEUDONYMISER
    assert action_of(basic, "SOPInstanceUID") is Action.PSEUDONYMISER
    assert action_of(basic, "InstitutionName") is Action.PSEUDONYMISER  # X/Z/D
    assert action_of(basic, "StudyDescription") is Action.RETIRER
    assert action_of(basic, "PatientAge") is Action.RETIRER
    assert basic.general_rule(0x60023000).action is Action.RETIRER  # OverlayData, repeating group
    assert basic.general_rule(0x50001000).action is Action.RETIRER  # curves
    assert basic.method_codes == [BASIC_CODE]


def test_file_meta_is_left_to_the_writer(basic):
    assert not [rule for rule in basic.rules if rule.pattern.group == 0x0002]


# -- the keep-list -----------------------------------------------------------------------------------
IMAGE_PIXEL_AND_GEOMETRY = [
    "SOPClassUID", "Modality", "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit",
    "PixelRepresentation", "SamplesPerPixel", "PhotometricInterpretation", "PlanarConfiguration",
    "NumberOfFrames", "FrameIncrementPointer", "PixelData", "PixelSpacing", "ImagerPixelSpacing",
    "SliceThickness", "ImagePositionPatient", "ImageOrientationPatient", "RescaleIntercept", "RescaleSlope",
    "RescaleType", "WindowCenter", "WindowWidth", "KVP", "ExposureTime", "XRayTubeCurrent", "Exposure",
    "BodyPartExamined", "ViewPosition", "ImageLaterality", "Laterality", "PatientOrientation",
    "SequenceOfUltrasoundRegions", "RegionLocationMinX0", "PhysicalDeltaX", "SpecificCharacterSet",
    "ImageType", "BurnedInAnnotation", "LossyImageCompression", "LossyImageCompressionRatio",
    "RedPaletteColorLookupTableData", "VOILUTSequence", "LUTData",
]


@pytest.mark.parametrize("keyword", IMAGE_PIXEL_AND_GEOMETRY)
def test_image_pixel_and_geometry_attributes_are_kept(basic, keyword):
    assert action_of(basic, keyword) is Action.CONSERVER


def test_keep_list_never_keeps_names_dates_free_text_or_table_attributes():
    listed = set(table_by_tag())
    rules = keep_list()
    assert len(rules) >= 290
    for rule in rules:
        if rule.action in (Action.EFFACER, Action.PSEUDONYMISER):  # type 2 free text emptied, type 1 a dummy
            continue
        assert rule.action is Action.CONSERVER
        assert rule.vr not in FORBIDDEN_KEEP_VRS, rule.keyword
        assert rule.vr not in ("LO", "SH") or rule.keyword in KEEP_TEXT_ALLOWED, rule.keyword
        assert rule.pattern.value not in listed, rule.keyword


def test_basic_keeps_only_sequences_from_the_table(basic):
    """The table's own CONSERVER are D-like sequences, recursed into with zero trust inside."""
    listed = set(table_by_tag())
    kept_from_table = [r for r in basic.rules if r.action is Action.CONSERVER and r.pattern.value in listed]
    assert kept_from_table
    assert {rule.vr for rule in kept_from_table} == {"SQ"}
    assert not [r for r in basic.rules if r.action is Action.CONSERVER and r.vr == "PN"]


def test_code_items_are_kept_only_inside_kept_code_sequences(basic):
    assert basic.general_rule(tag("CodeValue")) is None
    assert basic.specific_rule(tag("CodeValue"), tag("ViewCodeSequence")).action is Action.CONSERVER
    assert basic.specific_rule(tag("CodeMeaning"), tag("ViewModifierCodeSequence")).action is Action.CONSERVER
    assert basic.specific_rule(tag("CodeValue"), tag("AnatomicRegionSequence")) is not None
    assert basic.specific_rule(tag("CodeValue"), tag("InstitutionCodeSequence")) is None
    assert basic.specific_rule(tag("CodeValue"), tag("PersonIdentificationCodeSequence")) is None


# -- options -----------------------------------------------------------------------------------------
def test_there_are_ten_options_with_their_cid_7050_codes():
    assert len(OPTIONS) == 10
    assert OPTIONS["retain-modified-dates"].code == "113107"
    assert OPTIONS["clean-graphics"].code == "113103"
    assert {option.code for option in OPTIONS.values()} == {str(code) for code in range(113103, 113113)}


@pytest.mark.parametrize("name", list(OPTIONS))
def test_each_option_adds_exactly_its_code(name):
    recipe = build_profile("basic", [name])
    assert recipe.method_codes == [BASIC_CODE, OPTIONS[name].code]
    assert recipe.name == f"basic+{name}"


def test_unknown_option_is_a_usage_error_listing_valid_names():
    with pytest.raises(UsageError) as caught:
        build_profile("basic", ["retain-everything"])
    assert str(caught.value) == (
        "unknown profile option(s) 'retain-everything'; valid options: " + ", ".join(OPTIONS)
    )


def test_unknown_profile_is_a_usage_error():
    with pytest.raises(UsageError, match="unknown profile 'extended'; valid profiles: basic"):
        build_profile("extended")


def test_date_options_keep_or_shift_dates():
    assert action_of(build_profile("basic", ["retain-full-dates"]), "StudyDate") is Action.CONSERVER
    assert action_of(build_profile("basic", ["retain-modified-dates"]), "StudyDate") is Action.PSEUDONYMISER
    assert action_of(build_profile("basic", ["retain-modified-dates"]), "StudyTime") is Action.PSEUDONYMISER


def test_a_later_option_overrides_an_earlier_one():
    full_then_modified = build_profile("basic", ["retain-full-dates", "retain-modified-dates"])
    modified_then_full = build_profile("basic", ["retain-modified-dates", "retain-full-dates"])
    assert action_of(full_then_modified, "StudyDate") is Action.PSEUDONYMISER
    assert action_of(modified_then_full, "StudyDate") is Action.CONSERVER
    assert full_then_modified.method_codes == ["113100", "113106", "113107"]


def test_retain_options_keep_what_they_name():
    assert action_of(build_profile("basic", ["retain-uid"]), "StudyInstanceUID") is Action.CONSERVER
    assert action_of(build_profile("basic", ["retain-device-id"]), "DeviceSerialNumber") is Action.CONSERVER
    characteristics = build_profile("basic", ["retain-patient-characteristics"])
    assert action_of(characteristics, "PatientSex") is Action.CONSERVER
    assert action_of(characteristics, "PatientAge") is Action.CONSERVER
    institution = build_profile("basic", ["retain-institution-id"])
    assert action_of(institution, "InstitutionName") is Action.CONSERVER
    assert institution.specific_rule(tag("CodeValue"), tag("InstitutionCodeSequence")) is not None


def test_clean_options_cannot_clean_text_so_they_keep_it_removed():
    descriptors = build_profile("basic", ["clean-descriptors"])
    assert action_of(descriptors, "SeriesDescription") is Action.RETIRER
    structured = build_profile("basic", ["clean-structured-content"])
    assert action_of(structured, "AcquisitionContextSequence") is Action.CONSERVER
    graphics = build_profile("basic", ["clean-graphics"])
    assert graphics.general_rule(0x60003000).action is Action.RETIRER


def test_retain_safe_private_changes_no_rule(basic):
    recipe = build_profile("basic", ["retain-safe-private"])
    assert recipe.rules == basic.rules
    assert recipe.method_codes == ["113100", "113111"]


# -- generated files ---------------------------------------------------------------------------------
def test_builtin_recipes_are_listed():
    assert {"basic", "default", "mammography", "kskit-mammography"} <= set(builtin_names())


def test_generated_recipe_files_are_up_to_date():
    build = _load_build_module()
    for file_name, recipe in build.generated().items():
        assert (REPO / "recipes" / file_name).read_text(encoding="utf-8") == format_recipe(recipe), file_name


def test_generated_files_load_to_the_same_recipe(basic):
    loaded = load_recipe("basic")
    assert loaded.hash == basic.hash
    default = load_recipe("default")
    assert default.name == "default"
    assert [(r.pattern, r.action) for r in default.rules] == [(r.pattern, r.action) for r in basic.rules]


def test_mammography_recipe_keeps_what_screening_needs():
    recipe = load_recipe("mammography")
    for keyword in ("ImageLaterality", "ViewCodeSequence", "ViewModifierCodeSequence", "CompressionForce",
                    "BodyPartThickness", "OrganDose", "EntranceDoseInmGy", "PatientSex", "Laterality"):
        assert action_of(recipe, keyword) is Action.CONSERVER, keyword
    for keyword in ("PatientName", "PatientID", "AccessionNumber", "StudyID", "StudyInstanceUID",
                    "SOPInstanceUID", "StudyDate", "ContentDate", "PatientAge"):
        assert action_of(recipe, keyword) is Action.PSEUDONYMISER, keyword
    assert recipe.specific_rule(tag("CodeValue"), tag("ViewCodeSequence")).action is Action.CONSERVER
    assert recipe.authorised_words == ["mammography"]
    assert recipe.method_codes == ["113100", "113107", "113108"]


def test_kskit_recipe_is_the_verbatim_copy_and_loads():
    path = REPO / "recipes" / "kskit-mammography.json"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == KSKIT_SHA256
    recipe = load_recipe("kskit-mammography")
    assert len(recipe.rules) == 689  # 690 keys, less the 'all private attributes' line
    assert recipe.general_rule(0x0040A078) is not None  # written upper-case in kskit: matched anyway
    assert recipe.specific_rule(tag("CodeValue"), tag("ViewCodeSequence")).action is Action.CONSERVER


# -- end to end through the engine -------------------------------------------------------------------
def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def make_mammogram() -> Dataset:
    """A 16-bit Digital Mammography X-Ray Image (For Presentation) that dciodvfy accepts without errors."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", ""]
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1.2"
    ds.SOPInstanceUID = generate_uid()
    ds.StudyDate = ds.SeriesDate = ds.ContentDate = "20240105"
    ds.StudyTime, ds.ContentTime = "101500", "101600"
    ds.AccessionNumber, ds.Modality, ds.Manufacturer = "ACC123", "MG", "ACME"
    ds.InstitutionName, ds.ReferringPhysicianName = "Hopital Saint-Exemple", "Doe^John"
    ds.StationName, ds.StudyDescription = "MAMMO1", "Mammographie de depistage"
    ds.PatientName, ds.PatientID, ds.PatientBirthDate = "Martin^Jeanne", "FR123456", "19600214"
    ds.PatientSex, ds.PatientAge = "F", "063Y"
    ds.BodyPartExamined, ds.KVP, ds.DistanceSourceToDetector, ds.DistanceSourceToPatient = "BREAST", "28", "650", "630"
    ds.ExposureTime, ds.XRayTubeCurrent, ds.Exposure, ds.Grid, ds.FocalSpots = "1200", "100", "120", "IN", "0.3"
    ds.AnodeTargetMaterial, ds.BodyPartThickness, ds.CompressionForce = "TUNGSTEN", "52", "98"
    ds.PositionerType, ds.PositionerPrimaryAngle, ds.DetectorType = "MAMMOGRAPHIC", "0", "DIRECT"
    ds.ImagerPixelSpacing, ds.ViewPosition = ["0.1", "0.1"], "CC"
    ds.OrganDose, ds.EntranceDoseInmGy, ds.OrganExposed, ds.FilterMaterial = "1.2", "5.1", "BREAST", "RHODIUM"
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "S1", "1", "1"
    ds.PatientOrientation, ds.ImageLaterality = ["P", "L"], "R"
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.Rows, ds.Columns, ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 64, 48, 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth, ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "2048", "4096", "0", "1", "US"
    ds.LossyImageCompression, ds.BurnedInAnnotation = "00", "NO"
    ds.PixelIntensityRelationship, ds.PixelIntensityRelationshipSign = "LIN", 1
    ds.PresentationLUTShape, ds.PresentationIntentType = "IDENTITY", "FOR PRESENTATION"
    ds.BreastImplantPresent, ds.PartialView, ds.AcquisitionContextSequence = "NO", "NO", Sequence([])
    ds.AnatomicRegionSequence = Sequence([_code("T-04000", "SRT", "Breast")])
    view = _code("R-10242", "SRT", "cranio-caudal")
    view.ViewModifierCodeSequence = Sequence([])
    ds.ViewCodeSequence = Sequence([view])
    ds.PixelData = (np.arange(64 * 48, dtype=np.uint16) % 4096).tobytes()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return ds


def _testdata(name: str) -> Dataset:
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name)
    if path is None:
        pytest.skip(f"pydicom test file {name} not available")
    return dcmread(path)


def _deid_data_ultrasound() -> Dataset:
    deid_data = pytest.importorskip("deid_data")
    return dcmread(Path(deid_data.__file__).parent / "data" / "ultrasounds" / "GREYSCALE_IMAGE.dcm")


IMAGES = {
    "CT": lambda: _testdata("CT_small.dcm"),
    "MR": lambda: _testdata("MR_small.dcm"),
    "US": lambda: _testdata("US1_UNCR.dcm"),
    "US-deid-data": _deid_data_ultrasound,
    "MG": make_mammogram,
}
KEPT = ["Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "PixelRepresentation", "SamplesPerPixel",
        "PhotometricInterpretation", "PixelSpacing", "ImagerPixelSpacing", "ImagePositionPatient",
        "ImageOrientationPatient", "SliceThickness", "SequenceOfUltrasoundRegions", "ImageLaterality", "Modality",
        "SOPClassUID", "NumberOfFrames", "PlanarConfiguration"]


def _dciodvfy() -> str | None:
    found = shutil.which("dciodvfy")
    local = Path(sys.executable).parent / "dciodvfy"
    return found or (str(local) if local.exists() else None)


def _dciodvfy_errors(dataset: Dataset, folder: Path, name: str) -> set[str]:
    path = folder / name
    dataset.save_as(path, enforce_file_format=True)
    result = subprocess.run([_dciodvfy(), str(path)], capture_output=True, text=True, timeout=60)
    return {line for line in (result.stdout + result.stderr).splitlines() if line.startswith("Error")}


@pytest.mark.parametrize("modality", list(IMAGES))
def test_basic_keeps_images_valid_with_pixels_and_geometry(modality, tmp_path):
    source = IMAGES[modality]()
    # OCR and built-in device regions off: this pins what the recipe keeps; burned-in text cleaning is tested
    # in test_api.py, the device regions (which mask the EPIQ header band here) in test_ctp_regions.py
    result = deidcli.deidentify(source, recipe="basic", key=KEY, ocr="never", accept_burned_in_risk=True,
                                builtin_regions=False)
    for keyword in KEPT:
        if keyword in source:
            assert keyword in result and result[keyword].value == source[keyword].value, keyword
    assert result.PixelData == source.PixelData
    assert not result.get("PatientName")
    assert result.StudyInstanceUID != source.StudyInstanceUID
    if _dciodvfy() is not None:
        before = _dciodvfy_errors(source, tmp_path, "before.dcm")
        after = _dciodvfy_errors(result, tmp_path, "after.dcm")
        assert after - before == set()


def test_mammography_recipe_on_a_mammogram():
    source = make_mammogram()
    result = deidcli.deidentify(source, recipe="mammography", key=KEY)
    assert result.ViewCodeSequence[0].CodeValue == "R-10242"
    assert "ViewModifierCodeSequence" in result.ViewCodeSequence[0]
    assert result.AnatomicRegionSequence[0].CodeMeaning == "Breast"
    assert (result.ImageLaterality, result.PatientSex, result.PatientAge) == ("R", "F", "063Y")
    assert (result.CompressionForce, result.OrganDose, result.EntranceDoseInmGy) == (98, 1.2, 5.1)
    assert result.PatientID not in ("", "FR123456")
    assert result.StudyDate not in ("", "20240105")
    assert result.InstitutionName != source.InstitutionName
    assert "StudyDescription" not in result and "ReferringPhysicianName" not in result or not result.ReferringPhysicianName


def test_kskit_recipe_runs_as_is():
    result = deidcli.deidentify(make_mammogram(), recipe="kskit-mammography", key=KEY)
    assert result.ViewCodeSequence[0].CodeValue == "R-10242"
    assert result.PatientName != "Martin^Jeanne"


def test_unknown_table_code_fails_the_build():
    with pytest.raises(ValueError, match="unknown Table E.1-1 code 'Q'"):
        basic_action("Q", "LO")


# -- enhanced multi-frame (CT, MR) and NM images -----------------------------------------------------
#: Keep-list modules added for enhanced multi-frame CT/MR and NM (see recipes/README.md, the keep-list).
MULTI_FRAME_MODULES = (
    "Multi-frame dimensions and frame content",
    "Enhanced CT/MR image description and equipment",
    "Enhanced CT functional groups",
    "Enhanced MR image, pulse sequence and functional groups",
    "Cardiac and respiratory synchronization",
    "NM image, multi-frame, isotope, detector and tomo",
    "Segmentation (SEG) and references to source images",
    "Structured report (SR) document structure",
)


def _dciodvfy_error_lines(path: Path) -> set[str]:
    """dciodvfy 'Error' lines, values stripped; its output may hold non-UTF-8 bytes (decoded as latin-1)."""
    result = subprocess.run([_dciodvfy(), str(path)], capture_output=True, timeout=120, check=False)
    lines = (result.stdout + result.stderr).decode("latin-1").splitlines()
    return {line.split(" - value")[0].split("Value = ")[0].strip() for line in lines if line.startswith("Error")}


def test_multi_frame_keep_modules_keep_no_name_date_or_free_text():
    listed = set(table_by_tag())
    added = [rule for rule in keep_list() if rule.where.removeprefix("keep-list ") in MULTI_FRAME_MODULES]
    assert len(added) >= 280
    keywords = {rule.keyword for rule in added}
    assert {"EnergyWindowVector", "DetectorVector", "PulseSequenceName", "CTImageFrameTypeSequence",
            "DimensionOrganizationSequence", "MRImageFrameTypeSequence", "SegmentSequence", "CompletionFlag",
            "ConceptNameCodeSequence"} <= keywords
    assert not keywords & {"TextValue", "PersonName", "DateTime", "Date", "Time", "SegmentLabel", "SegmentDescription"}
    for rule in added:
        assert rule.action is Action.CONSERVER, rule.keyword
        assert rule.vr not in {"PN", "DA", "DT", "TM", "LT", "ST", "UT", "UC", "UR"}, rule.keyword
        assert rule.vr not in ("LO", "SH") or rule.keyword in KEEP_TEXT_ALLOWED, rule.keyword
        assert rule.pattern.value not in listed, rule.keyword


def test_multi_frame_datetimes_and_uids_follow_the_table(basic):
    for keyword in ("FrameReferenceDateTime", "FrameAcquisitionDateTime", "DimensionOrganizationUID",
                    "IrradiationEventUID", "ConcatenationUID"):
        assert action_of(basic, keyword) is Action.PSEUDONYMISER, keyword
    assert action_of(basic, "ContentDescription") is Action.EFFACER
    assert action_of(basic, "ContentLabel") is Action.CONSERVER
    assert action_of(basic, "SegmentLabel") is Action.PSEUDONYMISER  # type 1 free text: a keyed dummy
    assert action_of(basic, "PerformedProcedureCodeSequence") is Action.EFFACER  # type 2 in SR
    assert action_of(basic, "TextValue") is Action.PSEUDONYMISER  # SR free text, type 1C: a keyed dummy
    assert basic.specific_rule(tag("CodeValue"), tag("ConceptNameCodeSequence")).action is Action.CONSERVER


MULTI_FRAME_FILES = ["emri_small.dcm", "eCT_Supplemental.dcm", "JPEG2000.dcm", "liver.dcm"]


@pytest.mark.parametrize("name", MULTI_FRAME_FILES)
def test_default_keeps_enhanced_and_nm_images_valid(name, tmp_path):
    """Enhanced MR, enhanced CT, NM (JPEG2000.dcm) and SEG come out of `default` with no new dciodvfy error."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name)
    if path is None:
        pytest.skip(f"pydicom test file {name} not available")
    source = dcmread(path)
    result = deidcli.deidentify(dcmread(path), recipe="default", key=KEY, org_root="1.2.826.0.1.3680043.10.999")
    output = tmp_path / "out.dcm"
    result.save_as(output, enforce_file_format=True)
    assert not result.get("PatientName")
    if source.get("NumberOfFrames"):
        assert result.NumberOfFrames == source.NumberOfFrames
    if "FrameIncrementPointer" in source:
        for pointer in source.FrameIncrementPointer:
            assert pointer in result and result[pointer].value == source[pointer].value
    if "PerFrameFunctionalGroupsSequence" in source:
        before = source.PerFrameFunctionalGroupsSequence[0].FrameContentSequence[0]
        after = result.PerFrameFunctionalGroupsSequence[0].FrameContentSequence[0]
        assert after.DimensionIndexValues == before.DimensionIndexValues
        for keyword in ("FrameReferenceDateTime", "FrameAcquisitionDateTime"):
            if before.get(keyword):
                assert after.get(keyword) != before.get(keyword), keyword
        assert result.DimensionOrganizationSequence[0].DimensionOrganizationUID != (
            source.DimensionOrganizationSequence[0].DimensionOrganizationUID
        )
    if _dciodvfy() is None:
        pytest.skip("dciodvfy not installed")
    assert _dciodvfy_error_lines(output) - _dciodvfy_error_lines(Path(path)) == set()
    if "SegmentSequence" in source:
        segment = result.SegmentSequence[0]
        assert segment.SegmentLabel not in ("", source.SegmentSequence[0].SegmentLabel)
        assert segment.SegmentedPropertyTypeCodeSequence[0].CodeMeaning == "Liver"


def _without_uids(errors: set[str]) -> set[str]:
    return {re.sub(r"(ReferencedSOPInstanceUID )\S+|\d+(\.\d+){3,}", r"\1<uid>", line) for line in errors}


@pytest.mark.parametrize("name", ["reportsi.dcm", "test-SR.dcm"])
def test_default_keeps_sr_structure_but_no_text(name, tmp_path):
    """SR keeps its tree (flags, value and relationship types, concept codes, measurements); TEXT values
    become keyed dummies (TextValue is type 1C in TEXT items): no text survives, no new dciodvfy error."""
    from pydicom.data import get_testdata_file

    path = get_testdata_file(name)
    if path is None:
        pytest.skip(f"pydicom test file {name} not available")
    source = dcmread(path)
    result = deidcli.deidentify(dcmread(path), recipe="default", key=KEY, org_root="1.2.826.0.1.3680043.10.999")
    assert (result.CompletionFlag, result.VerificationFlag) == (source.CompletionFlag, source.VerificationFlag)
    assert result.ValueType == "CONTAINER"
    assert result.ConceptNameCodeSequence[0].CodeValue == source.ConceptNameCodeSequence[0].CodeValue
    assert result.PerformedProcedureCodeSequence == []

    def walk(dataset):
        for element in dataset:
            if element.VR == "SQ":
                for item in element.value:
                    yield from walk(item)
            yield element

    before = {element.keyword: element.value for element in walk(source) if element.VR in ("PN", "DT", "DA")}
    kept = list(walk(result))
    assert {"RelationshipType", "ContentSequence", "ValueType"} <= {element.keyword for element in kept}
    texts = {str(element.value) for element in walk(source) if element.keyword == "TextValue"}
    assert texts and not texts & {str(element.value) for element in kept if element.keyword == "TextValue"}
    for element in kept:  # names and dates (Table E.1-1: D) are replaced, never kept
        if element.VR in ("PN", "DT", "DA") and element.value:
            assert element.value != before.get(element.keyword), element.keyword
    if _dciodvfy() is None:
        pytest.skip("dciodvfy not installed")
    output = tmp_path / "out.dcm"
    if "TransferSyntaxUID" not in getattr(result, "file_meta", {}):
        result.file_meta = FileMetaDataset()
        result.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    result.save_as(output, enforce_file_format=True)
    new = _without_uids(_dciodvfy_error_lines(output)) - _without_uids(_dciodvfy_error_lines(Path(path)))
    assert new == set()
