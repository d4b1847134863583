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
from tests.conftest import KEY, PLANTED, planted_dataset, write_planted


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


# -- the hospital's own ID map ------------------------------------------------------------------------------
def _audit(out: Path) -> list[dict[str, str]]:
    with (out / "audit.csv").open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _files(private: Path) -> dict[str, dict[str, str]]:
    with (private / "files.csv").open(newline="", encoding="utf-8") as handle:
        return {row["input_path"]: row for row in csv.DictReader(handle)}


def test_patient_map_ids_name_the_patient_and_folder_and_an_unmapped_patient_is_quarantined(tmp_path, key_file):
    folder = tmp_path / "in"
    write_planted(folder / "mapped.dcm", patient_id="MRN-1")
    write_planted(folder / "unmapped.dcm", patient_id="MRN-2")
    ids = tmp_path / "ids.csv"
    ids.write_text("PatientID,ResearchID\nMRN-1,BREAST-0042\n")
    result = header_run(folder, tmp_path / "out", key_file, "--patient-map", ids)
    assert result.exit_code == 3, result.output
    files = _files(tmp_path / "out.private")
    assert files["unmapped.dcm"]["reason"] == "not_in_patient_map" and files["unmapped.dcm"]["output_path"] == ""
    assert files["mapped.dcm"]["output_path"].startswith("BREAST-0042/")
    written = dcmread(tmp_path / "out" / files["mapped.dcm"]["output_path"])
    assert (written.PatientID, str(written.PatientName)) == ("BREAST-0042", "BREAST-0042")
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_dir() and not p.name.startswith(".")) == [
        "BREAST-0042"]
    found = _json(invoke("mapping", "lookup", tmp_path / "out.private", "MRN-1", "--format", "json"))
    assert [(m["keyword"], m["pseudonym"]) for m in found if m["table"] == "values"] == [("PatientID", "BREAST-0042")]
    found = _json(invoke("mapping", "reverse", tmp_path / "out.private", "BREAST-0042", "--format", "json"))
    assert {m["original"] for m in found} == {"MRN-1", PLANTED["PatientName"]}


@pytest.mark.parametrize(("content", "message"), [
    ("PatientID,ResearchID\nMRN-1,R1\nMRN-1,R2\n", "listed twice"),
    ("PatientID,ResearchID\nMRN-1,R1\nMRN-2,R1\n", "given to two patients"),
    ("PatientID,ResearchID\nMRN-1,\n", "empty research ID"),
    ("PatientID,ResearchID\n,R1\n", "empty PatientID"),
    ("PatientID,ResearchID\nMRN-1,../escape\n", "safe folder name"),
    ("PatientID,ResearchID\nMRN-1,r1\n", "upper-case"),
    ("PatientID,ResearchID\nMRN-1,R\\1\n", "valid LO value"),
    ("PatientID,ResearchID\nMRN-1,CON\n", "safe folder name"),
    ("PatientID,ResearchID\nMRN-1,R1,extra\n", "expected 2 columns"),
    ("PatientID,ResearchID\n", "at least one"),
])
def test_a_bad_patient_map_is_a_usage_error_before_any_file(tmp_path, key_file, content, message):
    folder = tmp_path / "in"
    write_planted(folder / "a.dcm", patient_id="MRN-1")
    ids = tmp_path / "ids.csv"
    ids.write_text(content)
    result = header_run(folder, tmp_path / "out", key_file, "--patient-map", ids)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").rglob("*.dcm"))


# -- files without PatientID ----------------------------------------------------------------------------------
def test_files_without_patient_id_get_one_keyed_pseudo_patient_per_study(tmp_path, key_file):
    folder = tmp_path / "in"
    folder.mkdir()
    for name, study in (("s1a.dcm", "1.2.3.1"), ("s1b.dcm", "1.2.3.1"), ("s2.dcm", "1.2.3.2")):
        dataset = planted_dataset(study_uid=study)
        del dataset.PatientID
        dataset.save_as(folder / name, enforce_file_format=True)
    no_study = planted_dataset()
    del no_study.PatientID, no_study.StudyInstanceUID
    no_study.save_as(folder / "nostudy.dcm", enforce_file_format=True)
    result = header_run(folder, tmp_path / "out", key_file, "--recipe", "mammography")
    assert result.exit_code == 0, result.output
    files = _files(tmp_path / "out.private")
    patients = {name: row["output_path"].split("/")[0] for name, row in files.items()}
    assert patients["s1a.dcm"] == patients["s1b.dcm"]
    assert len({patients["s1a.dcm"], patients["s2.dcm"], patients["nostudy.dcm"]}) == 3
    assert all(patient.startswith("NOPID.") for patient in patients.values())
    written = dcmread(tmp_path / "out" / files["s2.dcm"]["output_path"])
    assert written.PatientID == patients["s2.dcm"]  # mammography pseudonymises PatientID: the split sees it
    details = {row["detail"] for row in _audit(tmp_path / "out")}
    assert details == {"no PatientID: pseudo-patient keyed on StudyInstanceUID",
                       "no PatientID: pseudo-patient keyed on the input path"}
    again = header_run(folder, tmp_path / "out2", key_file, "--recipe", "mammography")
    assert again.exit_code == 0
    assert {row["output_path"] for row in _files(tmp_path / "out2.private").values()} == {
        row["output_path"] for row in files.values()}


def test_anonymous_studies_get_their_own_date_shift():
    shifts = set()
    for study in ("1.2.3.1", "1.2.3.2", "1.2.3.3", "1.2.3.4"):
        dataset = planted_dataset(study_uid=study)
        del dataset.PatientID, dataset.PatientName
        shifts.add(deidentify(dataset, "mammography", key=KEY).StudyDate)
    assert len(shifts) > 1


def test_lookup_survives_a_damaged_mapping_line_and_names_it(delivered):
    _, _, private = delivered
    with (private / "values.csv").open("a", encoding="utf-8") as handle:
        handle.write('00100010,PatientName,PN,"UNBALANCED\n')
    found = invoke("mapping", "lookup", private, "Jane Doe")
    assert found.exit_code == 0
    assert "DOE^JANE" in found.stdout
    assert "values.csv:" in found.stderr and "skipped" in found.stderr


def test_a_bad_patient_map_through_the_api_names_the_parameter_not_the_flag(tmp_path):
    import deidcli
    from deidcli.errors import UsageError

    folder = tmp_path / "in"
    write_planted(folder / "a.dcm")
    ids = tmp_path / "ids.csv"
    ids.write_text("PatientID,ResearchID\nMRN-1,R1\nMRN-2,R1\n")
    with pytest.raises(UsageError) as caught:
        deidcli.run(folder, tmp_path / "out", key=KEY, patient_map=ids, ocr="never", accept_burned_in_risk=True)
    assert str(caught.value).startswith("patient_map ") and "--patient-map" not in str(caught.value)
    assert not (tmp_path / "out").exists()
