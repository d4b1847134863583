"""The `deid` command as a user types it (click's CliRunner), exit codes included."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from deidcli.cli import main
from tests.conftest import ORG_ROOT, PLANTED, pydicom_file, write_planted


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
    assert "NEW KEY" in result.output
    assert (tmp_path / "out.private" / "deid.key").exists()
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
