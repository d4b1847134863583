"""A full or read-only OUT_DIR / private folder stops the batch with exit 4 and a clear message, keeps every
completed file, loses no mapping line, and resumes. Real small disks (tmpfs) where the tests run as root,
monkeypatched failures everywhere."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pydicom
import pytest

import deidcli
from deidcli.audit import FILES_COLUMNS, VALUES_COLUMNS, read_table
from deidcli.batch import EXIT_DISK_FULL
from tests.conftest import KEY, ORG_ROOT
from tests.test_batch import DEID, cli_command, make_folder


def _mount_tmpfs(folder: Path, size: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode(errors='replace').strip()}")


def _remount(folder: Path, options: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{options}", str(folder)], check=True)


@pytest.fixture
def small_disk(tmp_path: Path):
    """A mount point factory; everything mounted is unmounted at the end."""
    mounted: list[Path] = []

    def make(name: str, size: str) -> Path:
        folder = tmp_path / name
        _mount_tmpfs(folder, size)
        mounted.append(folder)
        return folder

    yield make
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], check=False)


def _run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def _assert_whole(out: Path, private: Path) -> None:
    """Every .dcm reads back; every private table and the audit parse with no damaged record."""
    for path in out.rglob("*.dcm"):
        pydicom.dcmread(path).PixelData  # noqa: B018 - reading is the check
    assert read_table(out / "audit.csv").skipped == []
    assert read_table(private / "files.csv", FILES_COLUMNS).skipped == []
    assert read_table(private / "values.csv", VALUES_COLUMNS).skipped == []


def _written_have_mappings(out: Path, private: Path) -> None:
    written = {r["input_id"] for r in read_table(out / "audit.csv").rows if r["status"] == "written"}
    mapped = {r["input_id"] for r in read_table(private / "files.csv", FILES_COLUMNS).rows}
    assert written and written <= mapped


def test_full_out_dir_is_exit_4_with_a_message_and_resume_completes(tmp_path, small_disk, key_file):
    folder = make_folder(tmp_path / "in", 40)
    disk = small_disk("disk", "64k")
    out, private = disk / "out", tmp_path / "private"
    command = cli_command(folder, out, key_file, workers=2) + ["--private-dir", str(private)]
    first = _run(command)
    assert first.returncode == EXIT_DISK_FULL, first.stderr
    assert "Traceback" not in first.stderr
    assert "Stopped: no space left" in first.stderr and "resume with the same command" in first.stderr
    audit = read_table(out / "audit.csv").rows
    assert audit and all(row["reason"] != "write_failed" for row in audit)
    assert 0 < len(list(out.rglob("*.dcm"))) < 40
    _assert_whole(out, private)
    _written_have_mappings(out, private)
    _remount(disk, "size=4m")
    second = _run(command)
    assert second.returncode == 0, second.stderr
    assert len(list(out.rglob("*.dcm"))) == 40
    _assert_whole(out, private)
    _written_have_mappings(out, private)


def test_full_private_folder_is_exit_4_and_no_mapping_line_is_lost_or_merged(tmp_path, small_disk, key_file):
    folder = make_folder(tmp_path / "in", 40)
    private = small_disk("private", "16k")  # the tables and key.json (which key the mapping is made with)
    out = tmp_path / "out"
    command = cli_command(folder, out, key_file) + ["--private-dir", str(private)]
    first = _run(command)
    assert first.returncode == EXIT_DISK_FULL, first.stderr
    assert "Traceback" not in first.stderr and "the private folder" in first.stderr
    _assert_whole(out, private)
    _written_have_mappings(out, private)
    shown = _run([*DEID, "mapping", "show", str(private)])
    assert shown.returncode == 0, shown.stderr
    _remount(private, "size=4m")
    second = _run(command)
    assert second.returncode == 0, second.stderr
    _assert_whole(out, private)
    _written_have_mappings(out, private)
    assert len(read_table(out / "audit.csv").rows) == 40


def test_read_only_out_dir_is_exit_4_with_a_message_not_a_traceback(tmp_path, small_disk, key_file):
    folder = make_folder(tmp_path / "in", 3)
    disk = small_disk("disk", "1m")
    _remount(disk, "ro")
    result = _run(cli_command(folder, disk / "out", key_file) + ["--private-dir", str(tmp_path / "private")])
    assert result.returncode == EXIT_DISK_FULL
    assert "Traceback" not in result.stderr
    assert "cannot be written: Read-only file system" in result.stderr


def test_out_dir_turning_read_only_mid_batch_stops_with_exit_4(tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "in", 6)
    out, private = tmp_path / "out", tmp_path / "private"
    real_replace = os.replace
    calls = {"n": 0}

    def replace_on_a_remounted_disk(source, target):
        if str(source).endswith(".part"):
            calls["n"] += 1
            if calls["n"] == 3:
                raise OSError(errno.EROFS, os.strerror(errno.EROFS), str(target))
        return real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace_on_a_remounted_disk)
    summary = deidcli.api.run_batch(folder, out, key=KEY, org_root=ORG_ROOT, ocr="never",
                                    accept_burned_in_risk=True, private_dir=private)
    monkeypatch.setattr(os, "replace", real_replace)
    assert summary.exit_code == EXIT_DISK_FULL
    assert "cannot be written: Read-only file system" in summary.message
    assert [row["status"] for row in summary.rows] == ["written", "written"]
    audit = deidcli.run(folder, out, key=KEY, org_root=ORG_ROOT, ocr="never", accept_burned_in_risk=True,
                        private_dir=private)
    assert (audit["status"] == "written").sum() == 6


# -- the same failures simulated, for machines where mount is not allowed -------------------------------
def test_a_write_error_pydicom_rewraps_is_still_a_full_disk_not_write_failed(tmp_path, monkeypatch):
    """pydicom re-raises ENOSPC as an OSError without errno; the batch must still see a full disk."""
    folder = make_folder(tmp_path / "in", 5)
    import deidcli.write as write_module

    real_dcmwrite = write_module.dcmwrite
    calls = {"n": 0}
    monkeypatch.setattr(write_module, "encode_parts", lambda target: None)  # pydicom writes the file itself

    def dcmwrite_on_a_full_disk(handle, dataset, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            try:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
            except OSError as error:
                raise OSError(f"With tag (7FE0,0010) got exception: {error}") from error
        return real_dcmwrite(handle, dataset, **kwargs)

    monkeypatch.setattr(write_module, "dcmwrite", dcmwrite_on_a_full_disk)
    summary = deidcli.api.run_batch(folder, tmp_path / "out", key=KEY, org_root=ORG_ROOT, ocr="never",
                                    accept_burned_in_risk=True)
    assert summary.exit_code == EXIT_DISK_FULL and summary.interrupted
    assert "no space left" in summary.message
    assert [row["reason"] for row in summary.rows] == ["ok", "ok"]


def test_private_folder_full_mid_record_leaves_whole_lines_and_resume_records_the_rest(tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "in", 8)
    out, private = tmp_path / "out", tmp_path / "private"
    real_write = os.write
    state = {"values_writes": 0}

    def write_until_full(fd, data):
        if os.readlink(f"/proc/self/fd/{fd}").endswith("values.csv"):
            state["values_writes"] += 1
            if state["values_writes"] == 5:  # half the record fits, then the disk is full
                real_write(fd, bytes(data)[: len(data) // 2])
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", write_until_full)
    summary = deidcli.api.run_batch(folder, out, key=KEY, org_root=ORG_ROOT, ocr="never",
                                    accept_burned_in_risk=True, private_dir=private)
    monkeypatch.setattr(os, "write", real_write)
    assert summary.exit_code == EXIT_DISK_FULL and "the private folder" in summary.message
    _assert_whole(out, private)
    _written_have_mappings(out, private)
    audit = deidcli.run(folder, out, key=KEY, org_root=ORG_ROOT, ocr="never", accept_burned_in_risk=True,
                        private_dir=private)
    assert (audit["status"] == "written").sum() == 8
    _assert_whole(out, private)
    _written_have_mappings(out, private)


def test_files_completed_before_out_dir_filled_are_recorded_even_in_one_group(tmp_path, small_disk, monkeypatch):
    """Group commit records audit rows late; when every completed file is still unrecorded as the disk fills,
    the space reserved in the temporary folder is what lets their rows be written before exit 4."""
    import deidcli.batch as batch

    monkeypatch.setattr(batch, "AUDIT_COMMIT_S", 1e9)  # nothing is recorded before the batch stops
    monkeypatch.setattr(batch, "AUDIT_COMMIT_FILES", 10**6)
    folder = make_folder(tmp_path / "in", 40)
    out = small_disk("disk", "64k") / "out"
    result = deidcli.run(folder, out, key=KEY, org_root=ORG_ROOT, ocr="never", accept_burned_in_risk=True,
                         workers=1, private_dir=tmp_path / "private")
    assert result.exit_code == EXIT_DISK_FULL
    written = [row for row in read_table(out / "audit.csv").rows if row["status"] == "written"]
    assert 0 < len(written) == len(list(out.rglob("*.dcm")))
