"""FIFOs, sockets, devices and linked folders in IN_DIR: skipped with a reason, never opened, never walked
out of IN_DIR, and each with its audit row."""

from __future__ import annotations

import os
import socket
import stat
import subprocess
import time
from pathlib import Path

import pytest

from deidcli.audit import FILES_COLUMNS, read_table
from tests.conftest import raw_leaks, write_planted
from tests.test_batch import cli_command

CANARY = "PLANTEDOUTSIDECANARY"


def _build(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """IN_DIR with one of each hostile entry; returns it and {relative name: expected reason}."""
    folder = tmp_path / "in"
    write_planted(folder / "real" / "a.dcm")
    outside = tmp_path / "elsewhere"
    write_planted(outside / "secret.dcm", patient_id=CANARY)
    expected = {"real/a.dcm": "ok"}
    os.mkfifo(folder / "pipe.dcm")
    expected["pipe.dcm"] = "not_regular_file"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(str(folder / "sock.dcm"))
    listener.close()
    expected["sock.dcm"] = "not_regular_file"
    os.symlink(folder / "pipe.dcm", folder / "link-to-pipe.dcm")
    expected["link-to-pipe.dcm"] = "not_regular_file"
    os.symlink(outside, folder / "outside-folder")
    expected["outside-folder"] = "symlink_outside"
    os.symlink(folder / "real", folder / "real" / "loop")
    expected["real/loop"] = "symlink_loop"
    os.symlink(folder / "real", folder / "alias-folder")
    expected["alias-folder"] = "symlink_folder"
    os.symlink(folder / "self.dcm", folder / "self.dcm")
    expected["self.dcm"] = "symlink_loop"
    os.symlink(folder / "missing.dcm", folder / "dangling.dcm")
    expected["dangling.dcm"] = "symlink_broken"
    try:
        os.mknod(folder / "device.dcm", 0o600 | stat.S_IFCHR, os.makedev(1, 5))  # like /dev/zero: endless
        expected["device.dcm"] = "not_regular_file"
    except PermissionError:
        pass  # only root makes device nodes
    return folder, expected


@pytest.mark.parametrize("workers", [1, 2])
def test_special_files_are_skipped_unopened_and_linked_folders_get_a_row(tmp_path, key_file, workers):
    folder, expected = _build(tmp_path)
    out, private = tmp_path / "out", tmp_path / "private"
    command = cli_command(folder, out, key_file, workers=workers) + ["--private-dir", str(private),
                                                                       "--file-timeout", "20"]
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, timeout=300)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert elapsed < 15, f"took {elapsed:.0f} s: something waited on a FIFO or a device"
    by_id = {row["input_id"]: row for row in read_table(out / "audit.csv").rows}
    files = read_table(private / "files.csv", FILES_COLUMNS).rows
    reasons = {row["input_path"]: by_id[row["input_id"]]["reason"] for row in files}
    assert reasons == expected
    assert len(by_id) == len(expected)
    assert {by_id[row["input_id"]]["status"] for row in files if row["input_path"] != "real/a.dcm"} == {"skipped"}
    assert raw_leaks(out, [CANARY]) == []
    assert len(list(out.rglob("*.dcm"))) == 1


def test_a_folder_that_cannot_be_listed_gets_an_unreadable_row_and_the_rest_runs(tmp_path, monkeypatch):
    import deidcli
    from tests.conftest import KEY, ORG_ROOT

    folder = tmp_path / "in"
    write_planted(folder / "open" / "a.dcm")
    write_planted(folder / "locked" / "b.dcm")
    real_scandir = os.scandir

    def scandir_refusing_locked(path="."):
        if isinstance(path, str | os.PathLike) and Path(path).name == "locked":  # chmod 000, but not for root
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir_refusing_locked)
    private = tmp_path / "private"
    audit = deidcli.run(folder, tmp_path / "out", key=KEY, org_root=ORG_ROOT, ocr="never",
                        accept_burned_in_risk=True, private_dir=private)
    files = {row["input_id"]: row["input_path"] for row in read_table(private / "files.csv", FILES_COLUMNS).rows}
    reasons = {files[input_id]: reason for input_id, reason in zip(audit["input_id"], audit["reason"], strict=True)}
    assert reasons == {"open/a.dcm": "ok", "locked": "unreadable"}


def test_a_fifo_swapped_in_after_discovery_is_refused_without_blocking(tmp_path: Path) -> None:
    """Discovery saw a regular file; by the time a worker opens it, it is a FIFO nobody writes to."""
    import signal

    from deidcli.errors import FileRejected
    from deidcli.read import read_dicom

    fifo = tmp_path / "swapped.dcm"
    os.mkfifo(fifo)
    previous = signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("blocked on a FIFO")))
    signal.alarm(5)
    try:
        with pytest.raises(FileRejected) as caught:
            read_dicom(fifo)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert caught.value.reason == "not_regular_file"
