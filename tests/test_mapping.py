"""The data manager's side: the private mapping (lookup), the hospital's own ID map, pseudo-patients for
files without PatientID, ages, and what a re-run says. Real `deid run` / `deid mapping` commands."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydicom import dcmread
from pydicom.dataelem import DataElement

from deidcli.api import deidentify
from deidcli.cli import main
from tests.conftest import KEY, planted_dataset, write_planted


def invoke(*args: object, env: dict | None = None):
    return CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False, env=env)


def header_run(in_dir: Path, out_dir: Path, key_file: Path, *extra: object):
    return invoke("run", in_dir, out_dir, "--key-file", key_file, "--ocr", "never", "--accept-burned-in-risk",
                  "--workers", "1", "--no-progress", *extra)


# -- ages -----------------------------------------------------------------------------------------------
def _with_age(vr: str, value: str | bytes):
    """A dataset whose PatientAge was sent with `vr`, written and read back as a receiver would see it."""
    dataset = planted_dataset()
    dataset.add(DataElement(0x00101010, vr, value))
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    return dcmread(buffer)


@pytest.mark.parametrize(("vr", "value", "expected"), [
    ("AS", "075Y", "075Y"), ("AS", "095Y", "090Y"),
    ("LO", "075Y", "075Y"), ("LO", "095Y", "090Y"), ("SH", "102Y", "090Y"), ("UN", b"097Y", "090Y"),
    ("LO", "75 years", ""),
])
def test_patient_age_is_kept_and_capped_whatever_vr_it_was_sent_with(vr, value, expected):
    clean = deidentify(_with_age(vr, value), "mammography", key=KEY)
    assert clean[0x00101010].VR == "AS"
    assert (clean[0x00101010].value or "") == expected


# -- the re-run summary -----------------------------------------------------------------------------------
def test_a_rerun_says_skipped_already_done_not_written(tmp_path, key_file):
    folder = tmp_path / "in"
    write_planted(folder / "a.dcm")
    write_planted(folder / "b.dcm", patient_id="OTHER")
    first = header_run(folder, tmp_path / "out", key_file)
    assert "2 written, 0 quarantined, 0 skipped of 2 files" in first.output
    again = header_run(folder, tmp_path / "out", key_file)
    assert again.exit_code == 0
    assert "2 skipped (already done) of 2 files" in again.output
    assert "written" not in again.output.splitlines()[0]
    write_planted(folder / "c.dcm", patient_id="THIRD")
    third = header_run(folder, tmp_path / "out", key_file)
    assert "1 written, 0 quarantined, 0 skipped, 2 skipped (already done) of 3 files" in third.output
