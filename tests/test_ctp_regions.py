"""Built-in device regions (CTP's library, recipes/regions/ctp-devices.json): loading, matching, masking by
default on real files, the switch that turns them off, the audit, hostile header values, and the converter."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

import deidcli
from deidcli.errors import FileRejected, OptionError, UsageError
from deidcli.geometry import Rect
from deidcli.pixels.regions import (
    BUILTIN_RULES,
    MATCHABLE,
    TextTest,
    builtin_region_rules,
    load_region_rules,
    match_regions,
    matching_rules,
)
from tests.conftest import KEY, ORG_ROOT
from tests.pixel_helpers import decoded_frames, is_constant, read, sample_file, ultrasound

REPO = Path(__file__).resolve().parents[1]
DATA_FILE = REPO / "recipes" / "regions" / BUILTIN_RULES.removeprefix("regions/")
NO_OCR = {"key": KEY, "org_root": ORG_ROOT, "ocr": "never", "accept_burned_in_risk": True}


# ------------------------------------------------------------------------------------------ the data file
def test_builtin_data_file_validates_every_rule_and_names_its_source() -> None:
    document = json.loads(DATA_FILE.read_text())
    rules = builtin_region_rules()
    assert len(rules) == len(document["rules"]) >= 50
    assert [rule.name for rule in rules] == [raw["name"] for raw in document["rules"]]
    assert len({rule.name for rule in rules}) == len(rules)
    for rule in rules:
        assert rule.name.startswith("ctp-") and rule.criteria and rule.rects, rule.name
        assert set(rule.criteria) <= set(MATCHABLE)
        assert all(rect.x1 <= 65536 and rect.y1 <= 65536 for rect in rule.rects)
    assert "johnperry/CTP" in document["source"] and re.search(r"commit [0-9a-f]{40}", document["source"])
    loaded = load_region_rules(DATA_FILE)  # the same file through the --region-rules loader
    assert [(r.name, r.criteria, r.rects) for r in loaded] == [(r.name, r.criteria, r.rects) for r in rules]
    assert all(rule.builtin for rule in rules) and not any(rule.builtin for rule in loaded)


def test_ctp_rectangles_cover_both_edges_like_ctp() -> None:
    """CTP's (0, 0, 800, 59) blanks columns 0..800 and rows 0..59 inclusive: half-open [0, 0, 801, 60]."""
    cx50 = next(rule for rule in builtin_region_rules() if rule.name == "ctp-us-cx50-rows600")
    assert cx50.rects == [Rect(0, 0, 801, 60)]
    assert cx50.criteria == {"ManufacturerModelName": TextTest("contains", "CX50", True), "Rows": 600}


# ------------------------------------------------------------------------------------------ real files
REAL_MATCHES = [
    ("pydicom", "OBXXXX1A.dcm", "ctp-us-cx50-rows600"),
    ("pydicom", "OBXXXX1A_rle_2frame.dcm", "ctp-us-cx50-rows600"),
    ("pydicom", "JPGLosslessP14SV1_1s_1f_8b.dcm", "ctp-us-epiq-rows768"),
    ("deid-data", "GREYSCALE_IMAGE.dcm", "ctp-us-epiq-rows768"),
    ("deid-data", "RGB_IMAGE.dcm", "ctp-us-siemens-s2000-1024x768"),
]


@pytest.mark.parametrize(("origin", "name", "rule_name"), REAL_MATCHES)
def test_real_device_files_match_their_ctp_rule_only(origin: str, name: str, rule_name: str) -> None:
    source = read(ultrasound(name) if origin == "deid-data" else sample_file(name))
    assert [rule.name for rule in matching_rules(source, builtin_region_rules())] == [rule_name]


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "US1_J2KR.dcm", "gdcm-US-ALOKA-16.dcm",
                                  "ExplVR_BigEnd.dcm", "SC_rgb.dcm"])
def test_other_real_files_match_no_builtin_rule(name: str) -> None:
    assert matching_rules(read(sample_file(name)), builtin_region_rules()) == []


def test_cx50_header_band_is_masked_by_default_even_without_ocr_and_kept_with_the_switch_off() -> None:
    """OBXXXX1A (Philips CX50, 800x600): rows 0-59 hold name, ID, date; OCR off, the built-in rule masks them."""
    source = read(sample_file("OBXXXX1A.dcm"))
    before = decoded_frames(source)[0]
    assert len(np.unique(before[:60].reshape(-1, before.shape[-1]), axis=0)) > 10  # the band holds text

    masked = decoded_frames(deidcli.deidentify(source, **NO_OCR))[0]
    assert is_constant(masked[:60])
    assert np.array_equal(masked[60:], before[60:])  # the sector and everything below are untouched

    kept = decoded_frames(deidcli.deidentify(source, builtin_regions=False, **NO_OCR))[0]
    assert np.array_equal(kept, before)


def test_builtin_regions_add_masks_without_ocr_but_never_count_as_checking_a_burned_in_file(tmp_path) -> None:
    """GREYSCALE_IMAGE says BurnedInAnnotation YES: with OCR off, only the user's own rules (or accepting the
    risk) let it through; a built-in layout from a community library does not stand in for a check."""
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"rules": [{"name": "xa", "match": {"Modality": "XA"}, "rectangles": [[0, 0, 9, 9]]}]}))
    ocr_off = {"key": KEY, "org_root": ORG_ROOT, "ocr": "never", "region_rules": rules}
    with pytest.raises(FileRejected) as caught:
        deidcli.deidentify(read(ultrasound("GREYSCALE_IMAGE.dcm")), **ocr_off)
    assert caught.value.reason == "burned_in_unchecked"
    rgb = read(ultrasound("RGB_IMAGE.dcm"))  # no BurnedInAnnotation: OCR off, the S2000 band is still masked
    out = decoded_frames(deidcli.deidentify(rgb, **ocr_off))[0]
    assert is_constant(out[:61]) and np.array_equal(out[61:], decoded_frames(rgb)[0][61:])


def test_audit_names_builtin_and_user_rules_that_matched(tmp_path) -> None:
    in_dir = tmp_path / "in"
    in_dir.mkdir()
    shutil.copyfile(sample_file("OBXXXX1A.dcm"), in_dir / "cx50.dcm")
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"rules": [
        {"name": "site-cx50-footer", "match": {"ManufacturerModelName": "CX50"}, "rectangles": [[0, 580, 800, 600]]},
    ]}))
    result = deidcli.run(in_dir, tmp_path / "out", region_rules=rules, **NO_OCR)
    row = result.audit.iloc[0]
    assert row["status"] == "written"
    assert row["region_rules_matched"] == "ctp-us-cx50-rows600|site-cx50-footer"
    result = deidcli.run(in_dir, tmp_path / "out-off", region_rules=rules, builtin_regions=False, **NO_OCR)
    assert result.audit.iloc[0]["region_rules_matched"] == "site-cx50-footer"


def test_user_rule_may_not_reuse_a_builtin_name(tmp_path) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"rules": [
        {"name": "ctp-us-cx50-rows600", "match": {"Modality": "US"}, "rectangles": [[0, 0, 10, 10]]},
    ]}))
    with pytest.raises(OptionError, match="region_rules.*duplicate rule names.*built-in"):
        deidcli.deidentify(read(sample_file("OBXXXX1A.dcm")), region_rules=rules, **NO_OCR)


# ------------------------------------------------------------------------------------------ built headers
def _ultrasound(rows: int, columns: int = 800, model: str = "CX50") -> Dataset:
    """An 8-bit ultrasound with noise everywhere (so any masking shows) and a CX50-like header."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.6.1", generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality, ds.PatientName, ds.PatientID = "US", "DOE^J", "998877"
    ds.Manufacturer, ds.ManufacturerModelName = "Philips Medical Systems", model
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = rows, columns, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = np.random.default_rng(7).integers(1, 255, (rows, columns), dtype=np.uint8).tobytes()
    return ds


def test_matching_header_is_masked_and_a_near_miss_is_not() -> None:
    exact = _ultrasound(600)
    out = deidcli.deidentify(exact, **NO_OCR).pixel_array
    assert is_constant(out[:60]) and np.array_equal(out[60:], exact.pixel_array[60:])
    for near_miss in (_ultrasound(601), _ultrasound(600, model="CX5")):  # other Rows; model not containing CX50
        assert np.array_equal(deidcli.deidentify(near_miss, **NO_OCR).pixel_array, near_miss.pixel_array)


def test_ctp_operators_case_multivalue_and_file_meta() -> None:
    rules = builtin_region_rules()
    names = lambda ds: [rule.name for rule in matching_rules(ds, rules)]  # noqa: E731
    ds = _ultrasound(600, model="cx50 (v3)")  # containsIgnoreCase
    assert names(ds) == ["ctp-us-cx50-rows600"]
    volume = Dataset()
    volume.ImageType, volume.Rows, volume.Columns = ["DERIVED", "SECONDARY", "VOLREN"], 512, 512
    assert names(volume) == ["ctp-ct-volren-512x512"]  # one value of a multi-valued attribute
    volume.Columns = 511
    assert names(volume) == []
    mindray = Dataset()
    mindray.Modality = "US"
    mindray.file_meta = FileMetaDataset()
    mindray.file_meta.ImplementationVersionName = "MINDRAY_1"
    assert names(mindray) == ["ctp-us-mindray"]
    mindray.file_meta.ImplementationVersionName = "mindray_1"  # CTP's plain contains is case-sensitive
    assert names(mindray) == []


# ------------------------------------------------------------------------------------------ hostile values
def test_header_values_are_compared_as_text_never_as_patterns() -> None:
    rules = builtin_region_rules()
    hostile = _ultrasound(600, model="CX50[(*+?" + "(a+)+" * 200_000)  # 1 MB of regex syntax
    assert [rule.name for rule in matching_rules(hostile, rules)] == ["ctp-us-cx50-rows600"]
    dotted = _ultrasound(600, model="C.50")  # "." is a character, not "any character"
    assert matching_rules(dotted, rules) == []


def test_rectangles_are_clipped_to_the_frame_and_absurd_ones_refused(tmp_path) -> None:
    huge = tmp_path / "huge.json"
    huge.write_text(json.dumps({"rules": [
        {"name": "everything", "match": {"ManufacturerModelName": "CX50"}, "rectangles": [[0, 0, 65536, 65536]]},
    ]}))
    out = deidcli.deidentify(_ultrasound(600), region_rules=huge, builtin_regions=False, **NO_OCR).pixel_array
    assert out.shape == (600, 800) and is_constant(out)
    huge.write_text(json.dumps({"rules": [
        {"name": "typo", "match": {"Modality": "US"}, "rectangles": [[0, 0, 800, 600000]]},
    ]}))
    with pytest.raises(UsageError, match="beyond 65536"):
        load_region_rules(huge)


@pytest.mark.parametrize(("criterion", "message"), [
    ({"contains": ""}, "non-empty string"),
    ({"contains": "a", "startswith": "b"}, "must be a string"),
    ({"contains": "a", "ignore_case": "yes"}, "must be a string"),
    ({"like": "a"}, "must be a string"),
    ("  ", "must not be empty"),
])
def test_bad_text_criteria_are_refused(tmp_path, criterion: object, message: str) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps({"rules": [{"name": "r", "match": {"Manufacturer": criterion},
                                           "rectangles": [[0, 0, 1, 1]]}]}))
    with pytest.raises(UsageError, match=message):
        load_region_rules(path)


# ------------------------------------------------------------------------------------------ the converter
def _converter():
    spec = importlib.util.spec_from_file_location("ctp_convert", REPO / "recipes" / "regions" / "ctp_convert.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("ctp_convert", module)  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


# Written for this test in CTP's condition syntax (not CTP's library).
LIBRARY = """
*******
  US
*******
 Acme
  { Modality.equals("US") * Manufacturer.containsIgnoreCase("acme") * [0028,0010].equals("480") }
  (0,0,640,40) (10,50,20,5)
  { ManufacturerModelName.startsWith("Z1") * ( SeriesDescription.contains("A") + SeriesDescription.contains("B") ) }
  (0,0,100,10)
*******
  OTHER
*******
  { !Manufacturer.contains("X") }
  (0,0,1,1)
  { Rows.isGreaterThan("50") }
  (0,0,1,1)
  { [6000,0022].contains("graphics") }
  (0,0,1,1)
  { Manufacturer.contains("X") * Manufacturer.contains("Y") }
  (0,0,1,1)
  { Manufacturer.contains("Q") }
"""


def test_converter_maps_and_or_and_rectangles_and_skips_what_it_cannot_express(tmp_path) -> None:
    convert = _converter()
    document, skipped = convert.convert(LIBRARY, "test library")
    rules = document["rules"]
    assert [rule["match"] for rule in rules] == [
        {"Modality": "US", "Manufacturer": {"contains": "acme", "ignore_case": True}, "Rows": 480},
        {"ManufacturerModelName": {"startswith": "Z1"}, "SeriesDescription": {"contains": "A"}},
        {"ManufacturerModelName": {"startswith": "Z1"}, "SeriesDescription": {"contains": "B"}},
    ]
    assert rules[0]["rectangles"] == [[0, 0, 641, 41], [10, 50, 31, 56]]
    assert rules[0]["name"] == "ctp-us-acme-rows480" and len({rule["name"] for rule in rules}) == 3
    assert len(skipped) == 5 and all(line.startswith("signature #") for line in skipped)
    assert [re.search(r"#(\d+)", line).group(1) for line in skipped] == ["3", "4", "5", "6", "7"]

    path = tmp_path / "converted.json"
    path.write_text(convert.render(document))
    loaded = load_region_rules(path)
    acme = Dataset()
    acme.Modality, acme.Manufacturer, acme.Rows = "US", "ACME Imaging", 480
    assert match_regions(acme, loaded) == [Rect(0, 0, 641, 41), Rect(10, 50, 31, 56)]
    acme.Rows = 481
    assert match_regions(acme, loaded) == []
    either = Dataset()
    either.ManufacturerModelName, either.SeriesDescription = "Z100", "B mode"
    assert [rule.name for rule in matching_rules(either, loaded)] == [rules[2]["name"]]
