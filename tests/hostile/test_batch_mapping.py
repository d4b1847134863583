"""The private mapping loses no line on a crash, its readers survive a damaged line and say where, and every
file holding PHI is readable by its owner only."""

from __future__ import annotations

import signal
import stat
import subprocess
import time
from pathlib import Path

import deidcli
from deidcli.audit import FILES_COLUMNS, OCR_TEXT_COLUMNS, VALUES_COLUMNS, read_table
from tests.conftest import KEY, ORG_ROOT
from tests.test_batch import DEID, cli_command, make_folder

TABLES = {"files.csv": FILES_COLUMNS, "values.csv": VALUES_COLUMNS, "ocr_text.csv": OCR_TEXT_COLUMNS}


def _run(folder: Path, out: Path, private: Path):
    return deidcli.run(folder, out, key=KEY, org_root=ORG_ROOT, ocr="never", accept_burned_in_risk=True,
                       private_dir=private)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _deid(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*DEID, *args], capture_output=True, text=True, timeout=120)


def _assert_tables_whole(private: Path) -> None:
    for name, columns in TABLES.items():
        assert read_table(private / name, columns).skipped == [], name


def test_mapping_tables_and_the_generated_key_are_0600_in_a_0700_folder(tmp_path):
    folder = make_folder(tmp_path / "in", 2)
    out, private = tmp_path / "out", tmp_path / "out.private"
    result = _deid("run", str(folder), str(out), "--org-root", ORG_ROOT, "--ocr", "never", "--accept-burned-in-risk",
                   "--workers", "1", "--no-progress")
    assert result.returncode == 0, result.stderr
    assert _mode(private) == 0o700
    for name in (*TABLES, "deid.key"):
        assert _mode(private / name) == 0o600, name


def test_a_table_an_older_version_left_world_readable_is_tightened_on_resume(tmp_path):
    folder = make_folder(tmp_path / "in", 2)
    out, private = tmp_path / "out", tmp_path / "private"
    _run(folder, out, private)
    (private / "values.csv").chmod(0o644)
    _run(folder, out, private)
    assert _mode(private / "values.csv") == 0o600


def test_a_damaged_line_is_skipped_and_named_by_mapping_show_lookup_reverse_and_resume(tmp_path):
    folder = make_folder(tmp_path / "in", 3)
    out, private = tmp_path / "out", tmp_path / "private"
    _run(folder, out, private)
    values = private / "values.csv"
    lines = values.read_text().splitlines(keepends=True)
    lines.insert(2, 'deadbeef,"half a record\n')  # unbalanced quote: swallows nothing else but itself
    lines.insert(2, "00100010,PatientName,PN\n")  # too few fields
    values.write_text("".join(lines))
    ids = [row for row in read_table(values, VALUES_COLUMNS).rows if row["original"] == "PLANTEDPATIENT0"]
    assert len(ids) == 1, "the run recorded no PatientID pseudonym"
    shown = _deid("mapping", "show", str(private))
    assert shown.returncode == 0, shown.stderr
    assert f"{values}:3: damaged record skipped (3 fields, 5 expected)" in shown.stderr
    assert f"{values}:4: damaged record skipped (unbalanced quotes)" in shown.stderr
    assert "Traceback" not in shown.stderr
    lookup = _deid("mapping", "lookup", str(private), "PLANTEDPATIENT0")
    assert lookup.returncode == 0, lookup.stderr
    assert ids[0]["pseudonym"] in lookup.stdout
    reverse = _deid("mapping", "reverse", str(private), ids[0]["pseudonym"])
    assert reverse.returncode == 0 and "PLANTEDPATIENT0" in reverse.stdout
    make_folder(tmp_path / "in", 6)
    audit = _run(folder, out, private)  # resume reads values.csv back: it must not stop on the damage
    assert (audit["status"] == "written").sum() == 6


def test_a_torn_last_line_is_cut_on_resume_and_never_merged_with_the_next(tmp_path, capsys):
    folder = make_folder(tmp_path / "in", 3)
    out, private = tmp_path / "out", tmp_path / "private"
    _run(folder, out, private)
    for name in ("files.csv", "values.csv"):
        with (private / name).open("a") as handle:
            handle.write("p0/file999.dcm,0123456789abcdef,PARTIAL")  # a write a power cut stopped
    make_folder(tmp_path / "in", 8)
    capsys.readouterr()
    audit = _run(folder, out, private)
    warned = capsys.readouterr().err
    for name in ("files.csv", "values.csv"):
        assert f"{private / name}: an unfinished last line (a write cut short) was removed" in warned
    assert (audit["status"] == "written").sum() == 8
    _assert_tables_whole(private)
    assert "PARTIAL" not in (private / "files.csv").read_text() + (private / "values.csv").read_text()
    mapped = {row["input_id"] for row in read_table(private / "files.csv", FILES_COLUMNS).rows}
    assert set(audit["input_id"]) <= mapped


def test_kill_9_mid_batch_leaves_whole_tables_and_a_mapping_for_every_audited_file(tmp_path, key_file):
    folder = make_folder(tmp_path / "in", 60)
    out, private = tmp_path / "out", tmp_path / "private"
    command = cli_command(folder, out, key_file, workers=2) + ["--private-dir", str(private)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    audit = out / "audit.csv"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (audit.exists() and len(audit.read_text().splitlines()) > 10):
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    _assert_tables_whole(private)
    audited = {row["input_id"] for row in read_table(audit).rows}
    mapped = {row["input_id"] for row in read_table(private / "files.csv", FILES_COLUMNS).rows}
    assert audited and audited <= mapped
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    _assert_tables_whole(private)
    assert len(read_table(audit).rows) == 60
