"""Region rules: loading, matching, bad files, and the bundled ultrasound rules on the devices they were made for."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset

from deidcli.errors import UsageError
from deidcli.geometry import Rect
from deidcli.pixels import RegionRule, load_region_rules, match_regions, rewrite_pixels
from tests.pixel_helpers import decoded_frames, is_banded, make_target, read, sample_file, ultrasound

BUNDLED = Path(__file__).resolve().parents[1] / "recipes" / "regions" / "ultrasound.json"


def _rules_file(tmp_path: Path, document: object) -> Path:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps(document) if not isinstance(document, str) else document)
    return path


def _dataset(**values: object) -> Dataset:
    ds = Dataset()
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def test_load_parses_criteria_rectangles_and_frames(tmp_path) -> None:
    path = _rules_file(tmp_path, {"rules": [{
        "name": "acme", "match": {"Manufacturer": "ACME", "ManufacturerModelName": {"regex": "^X[0-9]+$"},
                                  "Rows": 600, "Columns": 800},
        "rectangles": [[0, 0, 800, 40], [700, 560, 800, 600]], "frames": [0],
    }]})
    (rule,) = load_region_rules(path)
    assert isinstance(rule, RegionRule) and rule.name == "acme"
    assert rule.rects == [Rect(0, 0, 800, 40), Rect(700, 560, 800, 600)]
    assert rule.frames == [0]
    assert rule.criteria["Manufacturer"] == "ACME" and rule.criteria["Rows"] == 600


def test_match_exact_regex_and_integers(tmp_path) -> None:
    rules = load_region_rules(_rules_file(tmp_path, {"rules": [
        {"name": "exact", "match": {"Manufacturer": "ACME", "Rows": 600}, "rectangles": [[0, 0, 10, 10]]},
        {"name": "regex", "match": {"ManufacturerModelName": {"regex": "^X[0-9]+"}}, "rectangles": [[1, 1, 2, 2]]},
        {"name": "first-frame", "match": {"Modality": "US"}, "rectangles": [[5, 5, 6, 6]], "frames": [0]},
    ]}))
    ds = _dataset(Manufacturer="ACME ", ManufacturerModelName="X200 Pro", Rows=600, Modality="US")
    assert match_regions(ds, rules) == [Rect(0, 0, 10, 10), Rect(1, 1, 2, 2), Rect(5, 5, 6, 6)]
    assert match_regions(ds, rules, frame=3) == [Rect(0, 0, 10, 10), Rect(1, 1, 2, 2)]
    assert match_regions(_dataset(Manufacturer="ACME", Rows=601), rules) == []
    assert match_regions(_dataset(Manufacturer="acme", Rows=600), rules) == []  # exact is case-sensitive
    assert match_regions(_dataset(ManufacturerModelName="Y200"), rules) == []
    assert match_regions(_dataset(Rows=600), rules) == []  # a missing attribute never matches


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ("{not json", "not valid JSON"),
        ({"rule": []}, '"rules" list'),
        ({"rules": [{"match": {"Modality": "US"}, "rectangles": [[0, 0, 1, 1]]}]}, '"name"'),
        ({"rules": [{"name": "a", "match": {}, "rectangles": [[0, 0, 1, 1]]}]}, '"match"'),
        ({"rules": [{"name": "a", "match": {"PatientName": "X"}, "rectangles": [[0, 0, 1, 1]]}]}, "cannot match"),
        ({"rules": [{"name": "a", "match": {"Modality": {"regex": "("}}, "rectangles": [[0, 0, 1, 1]]}]}, "regex"),
        ({"rules": [{"name": "a", "match": {"Modality": ["US"]}, "rectangles": [[0, 0, 1, 1]]}]}, "must be a string"),
        ({"rules": [{"name": "a", "match": {"Modality": "US"}, "rectangles": [[5, 0, 1, 1]]}]}, "bad rectangle"),
        ({"rules": [{"name": "a", "match": {"Modality": "US"}, "rectangles": [[0, 0, 1]]}]}, "bad rectangle"),
        ({"rules": [{"name": "a", "match": {"Modality": "US"}, "rectangles": []}]}, '"rectangles"'),
        ({"rules": [{"name": "a", "match": {"Modality": "US"}, "rectangles": [[0, 0, 1, 1]], "frames": [-1]}]},
         '"frames"'),
        ({"rules": [{"name": "a", "match": {"Modality": "US"}, "rectangles": [[0, 0, 1, 1]], "colour": 1}]},
         "unknown keys"),
        ({"rules": [{"name": "a", "match": {"Modality": "US"}, "rectangles": [[0, 0, 1, 1]]}] * 2}, "duplicate"),
    ],
)
def test_bad_rules_file_is_a_usage_error(tmp_path, document: object, message: str) -> None:
    with pytest.raises(UsageError, match=message) as caught:
        load_region_rules(_rules_file(tmp_path, document))
    assert "rules.json" in str(caught.value)


def test_missing_rules_file_is_a_usage_error(tmp_path) -> None:
    with pytest.raises(UsageError, match="cannot read"):
        load_region_rules(tmp_path / "absent.json")


# ------------------------------------------------------------------------------------------ bundled rules
def test_bundled_rules_load() -> None:
    rules = load_region_rules(BUNDLED)
    assert len(rules) >= 5 and all(rule.rects for rule in rules)


BUNDLED_CASES = [
    ("deid-data", "GREYSCALE_IMAGE.dcm", "philips-epiq-1024x768"),
    ("deid-data", "RGB_IMAGE.dcm", "siemens-s2000-1024x768"),
    ("pydicom", "OBXXXX1A.dcm", "philips-cx50-800x600"),
    ("pydicom", "OBXXXX1A_rle_2frame.dcm", "philips-cx50-800x600"),
    ("pydicom", "US1_J2KR.dcm", "ge-logiq700-640x480"),
    ("pydicom", "gdcm-US-ALOKA-16.dcm", "aloka-ssd4000-640x480"),
]


def _load(origin: str, name: str) -> tuple[Path, Dataset]:
    path = ultrasound(name) if origin == "deid-data" else sample_file(name)
    return path, read(path)


@pytest.mark.parametrize("rules", ["bundled", "builtin"])
def test_header_band_blanked_whole_keeps_its_field_value(rules: str) -> None:
    """deid-data GREYSCALE_IMAGE: the EPIQ rules take rows 0-23 (bundled) or 0-49 (CTP's, built in) of a grey band
    drawn on rows 0-22, black below. The band's print goes, its grey field stays grey and the black stays black
    (the whole rectangle was filled black: 0.7 % of the file's text-free pixels, the band between the words)."""
    from deidcli.pixels.regions import builtin_region_rules

    _, source = _load("deid-data", "GREYSCALE_IMAGE.dcm")
    rects = match_regions(source, load_region_rules(BUNDLED) if rules == "bundled" else builtin_region_rules())
    assert len(rects) == 1
    before = decoded_frames(source)[0]
    band = rects[0].clip(before.shape[1], before.shape[0])
    field = before[band.y0 : band.y1, band.x0 : band.x1]
    assert np.count_nonzero(field[:23] > 100) > 500  # print on the band
    target = make_target(source)
    rewrite_pixels(source, target, lambda index, frame: rects)
    after = decoded_frames(target)[0]
    assert np.all(after[band.y0 : 23, band.x0 : band.x1] == 40)
    assert np.all(after[23 : band.y1, band.x0 : band.x1] == 0)
    assert np.array_equal(after[band.y1 :], before[band.y1 :])


@pytest.mark.parametrize(("origin", "name", "rule_name"), BUNDLED_CASES)
def test_bundled_rule_masks_the_header_text_of_its_device(origin: str, name: str, rule_name: str) -> None:
    """The matching rule's band held text (varied pixels) before and is one constant after; the rest is kept."""
    _, source = _load(origin, name)
    rules = load_region_rules(BUNDLED)
    assert [rule.name for rule in rules if rule.matches(source)] == [rule_name]
    rects = match_regions(source, rules)
    before = decoded_frames(source)[0]
    band = rects[0]
    assert len(np.unique(before[band.y0 : band.y1, band.x0 : band.x1])) > 2, "no text in the band?"
    target = make_target(source)
    report = rewrite_pixels(source, target, lambda index, frame: rects)
    assert report.pixels_changed
    after = decoded_frames(target)[0]
    masked = after[band.y0 : band.y1, band.x0 : band.x1]
    assert is_banded(masked)  # one constant, or the band's field and the black beside it (mask.band_field)
    assert np.array_equal(after[band.y1 :], before[band.y1 :])


def test_bundled_rules_ignore_other_devices_and_sizes() -> None:
    rules = load_region_rules(BUNDLED)
    assert match_regions(read(sample_file("CT_small.dcm")), rules) == []
    assert match_regions(read(sample_file("ExplVR_BigEnd.dcm")), rules) == []  # LOGIQ 700 but 80x60


def _index_rules(tmp_path: Path) -> list[RegionRule]:
    """The 52 built-in rules plus user rules filed under each kind of index key (and one under none)."""
    from deidcli.pixels.regions import builtin_region_rules

    user = load_region_rules(_rules_file(tmp_path, {"rules": [
        {"name": "cols-800", "match": {"Columns": 800}, "rectangles": [[0, 0, 8, 8]]},
        {"name": "modality-padded", "match": {"Modality": " MR ", "Rows": {"regex": "^2"}}, "rectangles": [[0, 0, 8, 8]]},
        {"name": "maker-exact", "match": {"Manufacturer": "ACME", "SeriesDescription": {"contains": "x"}},
         "rectangles": [[0, 0, 8, 8]]},
        {"name": "rows-as-text", "match": {"Rows": "0256"}, "rectangles": [[0, 0, 8, 8]]},
        {"name": "description-only", "match": {"SeriesDescription": {"regex": "DOSE"}}, "rectangles": [[0, 0, 8, 8]]},
    ]}))
    return builtin_region_rules() + user


@pytest.mark.parametrize("values", [
    {"Manufacturer": "Philips Medical Systems", "ManufacturerModelName": "EPIQ 7G", "Rows": 768, "Columns": 1024,
     "Modality": "US"},
    {"Manufacturer": "SIEMENS", "ManufacturerModelName": "ACUSON S2000", "Rows": 768, "Columns": 1024, "Modality": "US"},
    {"Manufacturer": "GE MEDICAL SYSTEMS", "BurnedInAnnotation": "YES", "Rows": 512, "Columns": 512, "Modality": "CT",
     "CommentsOnRadiationDose": "DLP 400", "ImageType": ["DERIVED", "SECONDARY", "VOLREN"]},
    {"Manufacturer": "ACME", "SeriesDescription": "x DOSE", "Rows": 256, "Columns": 800, "Modality": "MR"},
    {"Manufacturer": " ACME ", "Rows": 200, "Modality": "MR"},
    {"ManufacturerModelName": "LOGIQ9", "Rows": 600},
    {"Modality": "US", "Rows": 600, "Columns": 800, "ManufacturerModelName": "CX50"},
    {},
])
def test_rule_index_gives_what_every_rule_tested_gives(tmp_path, values: dict) -> None:
    """The index tests only the rules that can match; its answer, rule for rule and in order, is the scan's."""
    from deidcli.pixels.regions import RuleIndex, matching_rules

    rules = _index_rules(tmp_path)
    ds = _dataset(**values)
    expected = matching_rules(ds, rules)
    assert [rule.name for rule in RuleIndex(rules).matching(ds)] == [rule.name for rule in expected]


def test_rule_index_matches_the_scan_on_real_files(tmp_path) -> None:
    from deidcli.pixels.regions import RuleIndex, matching_rules

    rules = _index_rules(tmp_path) + load_region_rules(BUNDLED)
    index = RuleIndex(rules)
    matched = 0
    for origin, name in [(origin, name) for origin, name, _ in BUNDLED_CASES] + [("pydicom", "CT_small.dcm"),
                                                                              ("pydicom", "MR_small.dcm")]:
        expected = matching_rules(_load(origin, name)[1], rules)
        assert index.matching(_load(origin, name)[1]) == expected, name  # a fresh read: nothing converted yet
        matched += len(expected)
    assert matched >= len(BUNDLED_CASES)  # the device files do match (not a comparison of empty lists only)


def test_rule_index_files_rules_under_exact_criteria_only(tmp_path) -> None:
    """Rules without an exact Rows/Columns/Modality/maker criterion are tested on every file; none is lost."""
    from deidcli.pixels.regions import RuleIndex

    rules = _index_rules(tmp_path)
    index = RuleIndex(rules)
    filed = sorted(position for positions in index._filed.values() for position in positions)
    assert sorted(filed + index._always) == list(range(len(rules)))
    assert len(index._always) < len(rules) // 3
