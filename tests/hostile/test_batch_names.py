"""Input file names are bytes: names that are not UTF-8, or hold a newline, a quote or a comma, go through
the batch, the audit, the private files.csv (byte for byte) and resume, on one worker and on two."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from deidcli.audit import FILES_COLUMNS, read_table
from tests.conftest import planted_dataset, write_planted
from tests.test_batch import DEID, cli_command

#: Relative names as the file system holds them (bytes); each gets its own planted instance.
HOSTILE_NAMES = [
    b"caf\xe9\xff.dcm",            # Latin-1 and a byte no encoding decodes
    b"dir\xe9\x80/inner.dcm",      # a folder name that is not UTF-8
    b"new\nline.dcm",              # a newline inside the name
    b'quote",comma.dcm',           # CSV's own characters
    b"plain.dcm",
]
NO_SOP_INSTANCE = b"\xfe\xfeno-instance-uid.dcm"  # keyed on the input path by the pipeline


def _build(folder: Path) -> set[str]:
    root = os.fsencode(folder)
    for name in HOSTILE_NAMES:
        write_planted(Path(os.fsdecode(root + b"/" + name)))
    dataset = planted_dataset()
    del dataset.SOPInstanceUID
    dataset.save_as(os.fsdecode(root + b"/" + NO_SOP_INSTANCE), enforce_file_format=False)
    return {os.fsdecode(name) for name in [*HOSTILE_NAMES, NO_SOP_INSTANCE]}


@pytest.mark.parametrize("workers", [1, 2])
def test_undecodable_names_run_end_to_end_and_files_csv_keeps_their_bytes(tmp_path, key_file, workers):
    folder = tmp_path / "in"
    names = _build(folder)
    out, private = tmp_path / "out", tmp_path / "private"
    command = cli_command(folder, out, key_file, workers=workers) + ["--private-dir", str(private)]
    first = subprocess.run(command, capture_output=True, timeout=300)
    assert first.returncode == 0, first.stderr.decode(errors="replace")
    audit = read_table(out / "audit.csv").rows
    assert len(audit) == len(names) and {row["status"] for row in audit} == {"written"}
    assert len(list(out.rglob("*.dcm"))) == len(names)
    files = read_table(private / "files.csv", FILES_COLUMNS)
    assert files.skipped == []
    assert {row["input_path"] for row in files.rows} == names
    raw = (private / "files.csv").read_bytes()
    assert b"caf\xe9\xff.dcm" in raw and b"dir\xe9\x80/inner.dcm" in raw
    # resume: nothing redone, nothing lost, the tables stay whole
    second = subprocess.run(command, capture_output=True, timeout=300)
    assert second.returncode == 0, second.stderr.decode(errors="replace")
    again = read_table(private / "files.csv", FILES_COLUMNS)
    assert again.skipped == [] and {row["input_path"] for row in again.rows} == names
    assert len(read_table(out / "audit.csv").rows) == len(names)


def test_mapping_prints_and_finds_an_undecodable_name_on_a_strict_utf8_terminal(tmp_path, key_file):
    folder = tmp_path / "in"
    _build(folder)
    out, private = tmp_path / "out", tmp_path / "private"
    subprocess.run(cli_command(folder, out, key_file) + ["--private-dir", str(private)], check=True,
                   capture_output=True, timeout=300)
    strict = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    shown = subprocess.run([*DEID, "mapping", "show", "--files", str(private)], capture_output=True, env=strict)
    assert shown.returncode == 0, shown.stderr.decode(errors="replace")
    assert b"caf\xe9\xff.dcm" in shown.stdout
    lookup = subprocess.run([*DEID, "mapping", "lookup", "--format", "csv", str(private),
                             os.fsdecode(b"caf\xe9\xff.dcm")],
                            capture_output=True, env=strict)
    assert lookup.returncode == 0, lookup.stderr.decode(errors="replace")
    written = {row["input_path"]: row["output_path"]
               for row in read_table(private / "files.csv", FILES_COLUMNS).rows}
    assert written[os.fsdecode(b"caf\xe9\xff.dcm")].encode() in lookup.stdout
