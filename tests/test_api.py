"""The Python API: what `import deidcli` offers, with the same behaviour as the `deid` command."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from pydicom import dcmread

import deidcli
from deidcli.errors import FileRejected, KeyMismatch, OptionError
from tests.conftest import KEY, ORG_ROOT, deid_data_file, pydicom_file, write_planted

HEADER_ONLY = {"key": KEY, "org_root": ORG_ROOT, "ocr": "never", "accept_burned_in_risk": True}


def burned_in_ultrasound():
    """deid-data's greyscale ultrasound: BurnedInAnnotation YES, patient text burned into the image."""
    pytest.importorskip("deid_data")
    return deid_data_file("ultrasounds", "GREYSCALE_IMAGE.dcm")


def test_public_api_offers_what_the_cli_does():
    for name in ("run", "deidentify", "check_recipe", "RunResult", "DeidError", "UsageError", "OptionError",
                 "RecipeError", "KeyFileError", "KeyMismatch", "OutputConflict", "FileRejected", "build_profile",
                 "load_recipe", "RUN_OPTIONS"):
        assert name in deidcli.__all__ and hasattr(deidcli, name), name


# -- deidentify ---------------------------------------------------------------------------------------------
def test_deidentify_cleans_burned_in_text_like_run_does(tmp_path):
    path = burned_in_ultrasound()
    source = dcmread(path)
    original_pixels = source.PixelData
    clean = deidcli.deidentify(source, recipe="default", key=KEY, org_root=ORG_ROOT)
    assert source.PixelData == original_pixels  # the caller's dataset is not modified
    assert clean.PatientIdentityRemoved == "YES" and clean.BurnedInAnnotation == "NO"
    assert clean.PixelData != original_pixels
    codes = {item.CodeValue for item in clean.DeidentificationMethodCodeSequence}
    assert "113101" in codes  # Clean Pixel Data Option

    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(path, folder / "us.dcm")
    deidcli.run(folder, tmp_path / "out", key=KEY, org_root=ORG_ROOT)
    written = dcmread(next((tmp_path / "out").rglob("*.dcm")))
    assert written.pixel_array.tobytes() == clean.pixel_array.tobytes()


def test_deidentify_refuses_burned_in_pixels_it_was_told_not_to_look_at():
    source = dcmread(burned_in_ultrasound())
    with pytest.raises(OptionError, match="ocr never needs region_rules"):
        deidcli.deidentify(source, key=KEY, ocr="never")


def test_deidentify_with_region_rules_that_do_not_match_refuses_instead_of_marking_it_clean(tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text('{"rules": [{"name": "other", "match": {"Modality": "XA"}, "rectangles": [[0, 0, 9, 9]]}]}')
    with pytest.raises(FileRejected) as caught:
        deidcli.deidentify(dcmread(burned_in_ultrasound()), key=KEY, ocr="never", region_rules=rules)
    assert caught.value.reason == "burned_in_unchecked"


def test_deidentify_takes_only_options_about_one_dataset():
    with pytest.raises(OptionError, match="deidentify\\(\\) does not take workers"):
        deidcli.deidentify(dcmread(pydicom_file("CT_small.dcm")), key=KEY, workers=4)


def test_deidentify_without_a_key_names_the_parameter(monkeypatch):
    monkeypatch.delenv("DEID_KEY_FILE", raising=False)
    with pytest.raises(OptionError, match="needs key") as caught:
        deidcli.deidentify(dcmread(pydicom_file("CT_small.dcm")))
    assert "--" not in str(caught.value)


# -- run -------------------------------------------------------------------------------------------------
@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    write_planted(folder / "a.dcm")
    shutil.copy(pydicom_file("CT_small.dcm"), folder / "ct.dcm")
    (folder / "broken.dcm").write_bytes(pydicom_file("CT_small.dcm").read_bytes()[:2000])
    return folder


def test_run_returns_a_result_with_counts_exit_status_and_the_audit(folder, tmp_path):
    result = deidcli.run(folder, tmp_path / "out", **HEADER_ONLY)
    assert isinstance(result, deidcli.RunResult)
    assert result.exit_code == 3 and not result.interrupted
    assert result.counts == {"written": 2, "quarantined": 1, "skipped": 0}
    assert result.reasons == {"parse_failed": 1}
    assert isinstance(result.audit, pd.DataFrame) and len(result.audit) == 3
    assert result.key_fingerprint == deidcli.key_fingerprint(KEY) and result.new_key is None
    # callers of the DataFrame-returning run keep working
    assert (result["status"] == "written").sum() == 2 and len(result) == 3
    assert list(result.columns) == list(result.audit.columns)


def test_run_reports_a_new_key_with_a_warning_naming_path_and_fingerprint(tmp_path):
    folder = tmp_path / "in"
    write_planted(folder / "a.dcm")
    options = {k: v for k, v in HEADER_ONLY.items() if k != "key"}
    with pytest.warns(deidcli.NewKeyWarning) as warned:
        result = deidcli.run(folder, tmp_path / "out", **options)
    key_path = tmp_path / "out.private" / "deid.key"
    assert result.new_key == key_path
    message = str(warned[0].message)
    assert str(key_path) in message and deidcli.key_fingerprint(deidcli.load_key(key_path)) in message


def test_api_key_mismatch_names_the_parameter_not_the_flag(folder, tmp_path):
    deidcli.run(folder, tmp_path / "out", **HEADER_ONLY)
    with pytest.raises(KeyMismatch) as caught:
        deidcli.run(folder, tmp_path / "out", **{**HEADER_ONLY, "key": bytes(range(2, 34))})
    assert "Give that key with key" in str(caught.value)
    assert "--" not in str(caught.value) and "force" not in str(caught.value)


# -- check_recipe ---------------------------------------------------------------------------------------------
def test_check_recipe_reports_problems_and_skips_the_comparison_when_there_are_errors(tmp_path):
    recipe = tmp_path / "r.json"
    recipe.write_text('{"authorised_words": ["mamography"], "general_rules": '
                      '{"0x00100010": ["PatientName", "PN", "CONSERVER"]}}')
    report = deidcli.check_recipe(recipe)
    assert [problem.message for problem in report.errors] == ["unknown word list 'mamography'; did you mean "
                                                              "'mammography'?"]
    assert "not compared with the basic profile" in report.render()
    assert "attributes treated differently" not in report.render()
