"""The data manager's side: the private mapping (lookup), the hospital's own ID map, pseudo-patients for
files without PatientID, ages, and what a re-run says. Real `deid run` / `deid mapping` commands."""

from __future__ import annotations

import csv
import io
import json
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


# -- mapping lookup -------------------------------------------------------------------------------------
@pytest.fixture
def delivered(tmp_path, key_file):
    """A delivery with DOE^JANE, DOE^JANET and a file in a sub-folder; returns (in, out, private)."""
    folder = tmp_path / "in"
    write_planted(folder / "jane" / "a.dcm", patient_id="PID-JANE")
    for path, name, patient_id in ((folder / "jane" / "a.dcm", "DOE^JANE", "PID-JANE"),
                                   (folder / "janet.dcm", "DOE^JANET", "PID-JANET")):
        dataset = planted_dataset(patient_id=patient_id)
        dataset.PatientName = name
        path.parent.mkdir(parents=True, exist_ok=True)
        dataset.save_as(path, enforce_file_format=True)
    result = header_run(folder, tmp_path / "out", key_file, "--recipe", "mammography")
    assert result.exit_code == 0, result.output
    return folder, tmp_path / "out", tmp_path / "out.private"


def _json(result) -> list[dict]:
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


@pytest.mark.parametrize("typed", ["DOE^JANE", "doe^jane", "DOE, JANE", "Jane Doe", "  jane   DOE "])
def test_lookup_finds_a_person_name_typed_any_way(delivered, typed):
    _, _, private = delivered
    found = _json(invoke("mapping", "lookup", private, typed, "--format", "json"))
    names = [match for match in found if match["keyword"] == "PatientName"]
    assert [match["original"] for match in names] == ["DOE^JANE"]
    assert names[0]["pseudonym"].startswith("PAT^")


def test_lookup_lists_exact_matches_first_and_substrings_only_on_request(delivered):
    _, _, private = delivered
    plain = _json(invoke("mapping", "lookup", private, "DOE^JANE", "--format", "json"))
    assert {match["original"] for match in plain} == {"DOE^JANE"}
    wide = _json(invoke("mapping", "lookup", private, "DOE^JANE", "--substring", "--format", "json"))
    assert [match["original"] for match in wide] == ["DOE^JANE", "DOE^JANET"]
    assert [match["match"] for match in wide] == ["exact", "substring"]
    missing = invoke("mapping", "lookup", private, "JAN")
    assert missing.exit_code == 1 and "--substring" in missing.output


def test_lookup_accepts_paths_absolute_or_relative_to_in_dir_or_the_current_folder(delivered, monkeypatch):
    folder, out, private = delivered
    monkeypatch.chdir(folder.parent)
    answers = [_json(invoke("mapping", "lookup", private, typed, "--format", "json"))
               for typed in (folder / "jane" / "a.dcm", "jane/a.dcm", "in/jane/a.dcm", "./in/jane/a.dcm")]
    for found in answers:
        files = [match for match in found if match["table"] == "files"]
        assert [match["original"] for match in files] == ["jane/a.dcm"], found
        assert files[0]["match"] == "exact"
    output = out / files[0]["pseudonym"]
    assert output.is_file()
    back = _json(invoke("mapping", "reverse", private, output, "--format", "json"))
    assert [match["original"] for match in back if match["table"] == "files"] == ["jane/a.dcm"]


def test_lookup_csv_is_machine_readable_and_tables_fit_the_terminal(delivered):
    _, _, private = delivered
    as_csv = invoke("mapping", "lookup", private, "Jane Doe", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(as_csv.output)))
    assert rows and rows[0]["original"] == "DOE^JANE" and rows[0]["match"] == "normalised"
    for width in (60, 100):
        table = invoke("mapping", "show", private, "--files", env={"COLUMNS": str(width)})
        assert table.exit_code == 0
        assert max(len(line) for line in table.output.splitlines()) <= width, table.output
    narrow = invoke("mapping", "lookup", private, "jane/a.dcm", env={"COLUMNS": "60"})
    assert all(len(line) <= 60 for line in narrow.output.splitlines()), narrow.output
