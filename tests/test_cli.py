"""The `deid` command as a user types it (click's CliRunner), exit codes included."""

from __future__ import annotations

import json
import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from deidcli.cli import main
from deidcli.keys import key_fingerprint, load_key
from tests.conftest import KEY, ORG_ROOT, PLANTED, pydicom_file, write_planted


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    write_planted(folder / "a.dcm")
    shutil.copy(pydicom_file("CT_small.dcm"), folder / "ct.dcm")
    return folder


def invoke(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)


def test_keygen_writes_a_0600_key_and_refuses_to_overwrite(tmp_path):
    path = tmp_path / "site.key"
    result = invoke("keygen", path)
    assert result.exit_code == 0 and "fingerprint" in result.output
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(bytes.fromhex(path.read_text().strip())) == 32
    again = invoke("keygen", path)
    assert again.exit_code == 2 and "refusing to overwrite" in again.output


def test_run_without_a_key_creates_one_in_the_private_folder_and_says_so(folder, tmp_path):
    result = invoke("run", folder, tmp_path / "out", "--org-root", ORG_ROOT, "--ocr", "never",
                    "--accept-burned-in-risk", "--workers", "1")
    assert result.exit_code == 0, result.output
    key_path = tmp_path / "out.private" / "deid.key"
    assert "NEW KEY" in result.output and str(key_path) in result.output
    assert key_fingerprint(load_key(key_path)) in result.output
    assert "2 written, 0 quarantined, 0 skipped of 2 files" in result.output


def test_run_exit_code_3_when_files_are_quarantined(folder, tmp_path, key_file):
    (folder / "broken.dcm").write_bytes(pydicom_file("CT_small.dcm").read_bytes()[:2000])
    result = invoke("run", folder, tmp_path / "out", "--key-file", key_file, "--ocr", "never",
                    "--accept-burned-in-risk", "--workers", "1")
    assert result.exit_code == 3
    assert "1 quarantined" in result.output and "parse_failed 1" in result.output


def test_ocr_never_without_region_rules_or_risk_acceptance_is_a_usage_error(folder, tmp_path, key_file):
    result = invoke("run", folder, tmp_path / "out", "--key-file", key_file, "--ocr", "never")
    assert result.exit_code == 2
    assert "--ocr never needs --region-rules FILE or an explicit --accept-burned-in-risk" in result.output


def test_bad_org_root_is_a_usage_error(folder, tmp_path, key_file):
    result = invoke("run", folder, tmp_path / "out", "--key-file", key_file, "--org-root", "1.02.3",
                    "--ocr", "never", "--accept-burned-in-risk")
    assert result.exit_code == 2 and "is not a UID root" in result.output


def test_mapping_lookup_and_reverse_answer_which_study_is_this(folder, tmp_path, key_file):
    out = tmp_path / "out"
    invoke("run", folder, out, "--key-file", key_file, "--recipe", "mammography", "--ocr", "never",
           "--accept-burned-in-risk", "--workers", "1")
    private = tmp_path / "out.private"
    found = invoke("mapping", "lookup", private, PLANTED["PatientID"])
    assert found.exit_code == 0
    pseudonym = next(line.split()[-1] for line in found.output.splitlines() if PLANTED["PatientID"] in line)
    back = invoke("mapping", "reverse", private, pseudonym)
    assert back.exit_code == 0 and PLANTED["PatientID"] in back.output
    by_file = invoke("mapping", "lookup", private, "a.dcm")
    assert by_file.exit_code == 0 and ".dcm" in by_file.output
    missing = invoke("mapping", "lookup", private, "NOBODY")
    assert missing.exit_code == 1 and "not found" in missing.output


def test_reasons_lists_every_code():
    result = invoke("reasons")
    assert "gzip_wrapped" in result.output and "burned_in_unchecked" in result.output


# -- nothing is created before every check passed ----------------------------------------------------------
HEADER_ONLY = ("--ocr", "never", "--accept-burned-in-risk", "--workers", "1")


def files_under(folder: Path) -> set[Path]:
    return {path for path in folder.rglob("*")}


def test_out_dir_inside_in_dir_creates_no_key_inside_in_dir(folder):
    before = files_under(folder)
    result = invoke("run", folder, folder / "out", *HEADER_ONLY)
    assert result.exit_code == 2 and "inside IN_DIR" in result.output
    assert files_under(folder) == before


@pytest.mark.parametrize("bad", [("--org-root", "1.02.3"), ("--recipe", "no-such-recipe"),
                                 ("--option", "retain-everything"), ("--file-timeout", "-1")])
def test_a_usage_error_leaves_no_key_and_no_folder_behind(folder, tmp_path, bad):
    result = invoke("run", folder, tmp_path / "out", *bad, *HEADER_ONLY)
    assert result.exit_code == 2, result.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.private").exists()


def test_a_typo_in_the_recipe_word_list_is_a_usage_error_before_the_first_file(folder, tmp_path):
    recipe = tmp_path / "typo.json"
    recipe.write_text(json.dumps({"authorised_words": ["mamography"], "general_rules": {
        "0x00080016": ["SOPClassUID", "UI", "CONSERVER"]}}))
    result = invoke("run", folder, tmp_path / "out", "--recipe", recipe, "--ocr", "always", "--workers", "1")
    assert result.exit_code == 2
    assert "unknown word list 'mamography'; did you mean 'mammography'?" in result.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.private").exists()


def test_bad_region_rules_and_unreadable_word_file_are_usage_errors_naming_the_option(folder, tmp_path):
    rules = tmp_path / "rules.json"
    rules.write_text('{"rules": [{"name": "x"}]}')
    result = invoke("run", folder, tmp_path / "out", "--region-rules", rules, "--ocr", "never", "--workers", "1")
    assert result.exit_code == 2 and result.output.startswith("Error: --region-rules:")
    words = tmp_path / "words.txt"
    words.write_bytes(b"\xff\xfe\x00 not text")
    result = invoke("run", folder, tmp_path / "out", "--authorised-words", words, *HEADER_ONLY)
    assert result.exit_code == 2 and "--authorised-words" in result.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.private").exists()


# -- keys -------------------------------------------------------------------------------------------------
def test_second_delivery_without_the_key_is_told_which_key_and_gets_no_new_one(folder, tmp_path, key_file):
    out = tmp_path / "out"
    first = invoke("run", folder, out, "--key-file", key_file, *HEADER_ONLY)
    assert first.exit_code == 0, first.output
    second = invoke("run", folder, out, *HEADER_ONLY)
    assert second.exit_code == 2
    message = " ".join(second.output.split())
    assert key_fingerprint(KEY) in message and str(key_file) in message and "--key-file" in message
    assert "--force" not in message and "NEW KEY" not in message
    assert not (tmp_path / "out.private" / "deid.key").exists()


def test_a_different_key_is_refused_naming_the_expected_key_and_never_suggesting_force(folder, tmp_path,
                                                                                       key_file):
    out = tmp_path / "out"
    assert invoke("run", folder, out, *HEADER_ONLY).exit_code == 0  # creates out.private/deid.key
    generated = tmp_path / "out.private" / "deid.key"
    expected = key_fingerprint(load_key(generated))
    for extra in ((), ("--force",)):
        result = invoke("run", folder, out, "--key-file", key_file, *extra, *HEADER_ONLY)
        message = " ".join(result.output.split())
        assert result.exit_code == 2
        assert expected in message and str(generated.resolve()) in message and key_fingerprint(KEY) in message
        assert "--force" not in message


def test_a_second_run_without_a_key_uses_the_key_of_the_private_folder(folder, tmp_path):
    out = tmp_path / "out"
    first = invoke("run", folder, out, *HEADER_ONLY)
    fingerprint = key_fingerprint(load_key(tmp_path / "out.private" / "deid.key"))
    assert "NEW KEY" in first.output and fingerprint in first.output
    (folder / "new.dcm").write_bytes(pydicom_file("MR_small.dcm").read_bytes())
    second = invoke("run", folder, out, *HEADER_ONLY)
    assert second.exit_code == 0 and "NEW KEY" not in second.output
    assert f"Key fingerprint: {fingerprint}" in second.output


# -- recipes --------------------------------------------------------------------------------------------------
def test_recipe_list_explains_default_and_describes_kskit_with_its_warning_count():
    from deidcli.api import check_recipe

    lines = {line.split()[0]: line for line in invoke("recipe", "list").output.splitlines() if line.startswith("  ")}
    assert "What deid run uses when no recipe is named: the same rules as basic." in lines["default"]
    warnings = len(check_recipe("kskit-mammography").warnings)
    assert warnings > 0
    assert f"kept as published: {warnings} warnings" in lines["kskit-mammography"]
    assert "(no description)" not in invoke("recipe", "list").output


def test_check_recipe_all_lists_every_difference_from_the_basic_profile():
    short = invoke("check-recipe", "kskit-mammography").output
    full = invoke("check-recipe", "kskit-mammography", "--all").output
    count = int(short.split("attributes treated differently")[0].split()[-1])
    listed = [line for line in full.splitlines() if line.startswith("  ") and ": basic " in line]
    assert count > 5 and len(listed) == count
    assert f"... and {count - 5} more (--all lists every one)" in short


def test_check_recipe_does_not_compare_a_recipe_with_errors(tmp_path):
    recipe = tmp_path / "r.json"
    recipe.write_text('{"general_rules": {"0x00100010": ["PatientName", "PN", "KEEP"]}}')
    result = invoke("check-recipe", recipe)
    assert result.exit_code == 2
    assert "not compared with the basic profile: fix the errors first" in result.output
    assert "attributes treated differently" not in result.output
