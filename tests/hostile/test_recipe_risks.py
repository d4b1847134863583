"""Recipes that leak without a word: check-recipe flags them, `deid run` prints every warning once before the
first file and refuses a recipe keeping patient identifiers unless --accept-recipe-risk is given."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

import deidcli
from deidcli.errors import RecipeError, UsageError
from deidcli.recipe.check import check_recipe_text
from deidcli.recipe.load import load_recipe
from tests.conftest import KEY, ORG_ROOT, PLANTED, raw_leaks, write_planted
from tests.test_batch import DEID, cli_command

#: What a minimal recipe keeps so its outputs are valid instances.
BASE = {
    "0x00080016": ["SOPClassUID", "UI", "CONSERVER"],
    "0x00080018": ["SOPInstanceUID", "UI", "PSEUDONYMISER"],
    "0x0020000d": ["StudyInstanceUID", "UI", "PSEUDONYMISER"],
    "0x0020000e": ["SeriesInstanceUID", "UI", "PSEUDONYMISER"],
    "0x00080060": ["Modality", "CS", "CONSERVER"],
    "0x00280010": ["Rows", "US", "CONSERVER"],
    "0x00280011": ["Columns", "US", "CONSERVER"],
    "0x00280002": ["SamplesPerPixel", "US", "CONSERVER"],
    "0x00280004": ["PhotometricInterpretation", "CS", "CONSERVER"],
    "0x00280100": ["BitsAllocated", "US", "CONSERVER"],
    "0x00280101": ["BitsStored", "US", "CONSERVER"],
    "0x00280102": ["HighBit", "US", "CONSERVER"],
    "0x00280103": ["PixelRepresentation", "US", "CONSERVER"],
    "0x7fe00010": ["PixelData", "OB", "CONSERVER"],
}


def _recipe(tmp_path: Path, extra: dict, specific: dict | None = None, name: str = "risky") -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(json.dumps({"name": name, "general_rules": {**BASE, **extra}, "specific_rules": specific or {}}))
    return path


def _check(path: Path):
    return check_recipe_text(path.read_text(), path.stem)


def _warnings(report, where: str) -> list:
    return [p for p in report.warnings if p.where == where]


# -- check-recipe ---------------------------------------------------------------------------------------
def test_wildcard_keeping_the_patient_module_is_flagged_and_refused_by_run(tmp_path):
    report = _check(_recipe(tmp_path, {"0x0010xxxx": ["Patient module", "-", "CONSERVER"]}))
    [problem] = _warnings(report, "general_rules['0x0010xxxx']")
    for keyword in ("PatientName (0x00100010)", "PatientID (0x00100020)", "PatientBirthDate (0x00100030)"):
        assert keyword in problem.message
    assert problem.refused_by_run


def test_wildcard_whose_identifiers_exact_rules_all_override_is_not_refused(tmp_path):
    """A wildcard only keeps what no exact rule names: `0x0028xxxx` keeps no patient identifier."""
    report = _check(_recipe(tmp_path, {"0x0028xxxx": ["Image pixel", "-", "CONSERVER"]}))
    assert not any(p.refused_by_run for p in report.warnings)


def test_specific_rule_naming_a_private_tag_is_flagged(tmp_path):
    extra = {"0x00081115": ["ReferencedSeriesSequence", "SQ", "CONSERVER"]}
    report = _check(_recipe(tmp_path, extra, {"0x00291010": {"sequence": "0x00081115", "rule": "CONSERVER"}}))
    [problem] = _warnings(report, "specific_rules['0x00291010']")
    assert "without a private creator" in problem.message and "any vendor" in problem.message


@pytest.mark.parametrize("element", ["10", "20"])
def test_keeping_the_siemens_csa_header_is_flagged(tmp_path, element):
    rule = {f"0x0029xx{element}": ["CSA", "OB", "CONSERVER", {"creator": "SIEMENS CSA HEADER"}]}
    [problem] = _warnings(_check(_recipe(tmp_path, rule)), f"general_rules['0x0029xx{element}']")
    assert "SIEMENS CSA header" in problem.message


def test_removing_the_csa_header_or_keeping_another_private_block_is_not_flagged(tmp_path):
    rules = {"0x0029xx10": ["CSA", "OB", "RETIRER", {"creator": "SIEMENS CSA HEADER"}],
             "0x0019xx10": ["Other", "OB", "CONSERVER", {"creator": "SIEMENS MR HEADER"}]}
    assert not [p for p in _check(_recipe(tmp_path, rules)).warnings if "CSA" in p.message]


def test_duplicate_json_keys_are_an_error_not_a_silent_last_wins(tmp_path):
    path = tmp_path / "dup.json"
    path.write_text('{"general_rules": {\n'
                    '  "0x00100010": ["PatientName", "PN", "RETIRER"],\n'
                    '  "0x00080060": ["Modality", "CS", "CONSERVER"],\n'
                    '  "0x00100010": ["PatientName", "PN", "CONSERVER"]\n}}\n')
    report = _check(path)
    [problem] = [p for p in report.errors if "duplicate key" in p.message]
    assert problem.where == "line 4" and "first at line 2" in problem.message
    assert report.exit_code() == 2
    with pytest.raises(RecipeError):
        load_recipe(path)
    checked = subprocess.run([*DEID, "check-recipe", str(path)], capture_output=True, text=True)
    assert checked.returncode == 2 and "duplicate key '0x00100010'" in checked.stdout


def test_builtin_recipes_are_not_refused():
    for name in ("default", "basic", "mammography", "kskit-mammography"):
        report = check_recipe_text(load_recipe(name).source_text, name)
        assert not [p for p in report.warnings if p.refused_by_run], name


# -- deid run ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("extra", [
    {"0x00100010": ["PatientName", "PN", "CONSERVER"]},
    {"0x00100020": ["PatientID", "LO", "CONSERVER"]},
    {"0x00100030": ["PatientBirthDate", "DA", "CONSERVER"]},
    {"0x00104000": ["PatientComments", "LT", "CONSERVER"]},
    {"0x0010xxxx": ["Patient module", "-", "CONSERVER"]},
], ids=["name", "id", "birth-date", "free-text", "wildcard"])
def test_run_refuses_a_recipe_keeping_patient_identifiers_and_creates_nothing(tmp_path, key_file, extra):
    folder = tmp_path / "in"
    write_planted(folder / "a.dcm")
    recipe = _recipe(tmp_path, extra)
    out = tmp_path / "out"
    result = subprocess.run(cli_command(folder, out, key_file) + ["--recipe", str(recipe)], capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "--accept-recipe-risk" in result.stderr and "Traceback" not in result.stderr
    assert f"recipe risky: warning: general_rules['{next(iter(extra))}']" in result.stderr
    assert not out.exists() and not (tmp_path / "out.private").exists()


def test_run_with_accepted_risk_prints_each_warning_once_before_the_first_file(tmp_path, key_file):
    folder = tmp_path / "in"
    for index in range(6):
        write_planted(folder / f"f{index}.dcm")
    recipe = _recipe(tmp_path, {"0x00100010": ["PatientName", "PN", "CONSERVER"],
                                "0x00100040": ["PatientSex", "CS", "CONSERVER"]})
    out = tmp_path / "out"
    result = subprocess.run(cli_command(folder, out, key_file, workers=2)
                            + ["--recipe", str(recipe), "--accept-recipe-risk"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("general_rules['0x00100010']: keeps PatientName") == 1
    assert result.stderr.count("general_rules['0x00100040']: keeps PatientSex") == 1
    assert raw_leaks(out, [PLANTED["PatientName"]]) != []  # what the user accepted, and only then


def test_a_warning_that_is_not_a_patient_identifier_is_printed_but_not_refused(tmp_path, key_file):
    folder = tmp_path / "in"
    write_planted(folder / "a.dcm")
    recipe = _recipe(tmp_path, {"0x00100040": ["PatientSex", "CS", "CONSERVER"]})
    result = subprocess.run(cli_command(folder, tmp_path / "out", key_file) + ["--recipe", str(recipe)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "keeps PatientSex" in result.stderr


def test_the_default_recipe_runs_without_a_recipe_warning(tmp_path, key_file):
    folder = tmp_path / "in"
    write_planted(folder / "a.dcm")
    result = subprocess.run(cli_command(folder, tmp_path / "out", key_file), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0 and "warning" not in result.stderr


def test_the_api_refuses_too_and_names_its_keyword_argument(tmp_path):
    folder = tmp_path / "in"
    write_planted(folder / "a.dcm")
    recipe = _recipe(tmp_path, {"0x00100010": ["PatientName", "PN", "CONSERVER"]})
    options = {"key": KEY, "org_root": ORG_ROOT, "ocr": "never", "accept_burned_in_risk": True, "recipe": recipe}
    with pytest.raises(UsageError, match="accept_recipe_risk"):
        deidcli.run(folder, tmp_path / "out", **options)
    audit = deidcli.run(folder, tmp_path / "out", accept_recipe_risk=True, **options)
    assert list(audit["status"]) == ["written"]
