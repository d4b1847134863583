"""kill -9 of `deid run` must not leave worker processes running on (holding files, CPU, a GPU)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

from tests.test_batch import cli_command, make_folder


def _children(pid: int) -> set[int]:
    """Live (non-zombie) processes whose parent is `pid`, from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == pid and fields[0] != "Z":
            found.add(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_workers_die_within_seconds_of_a_kill_9_of_the_parent(tmp_path, key_file):
    folder = make_folder(tmp_path / "in", 150)
    out = tmp_path / "out"
    process = subprocess.Popen(cli_command(folder, out, key_file, workers=2), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    audit = out / "audit.csv"
    workers: set[int] = set()
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        workers |= _children(process.pid)
        if len(workers) >= 2 and audit.exists() and len(audit.read_text().splitlines()) > 3:
            break
        time.sleep(0.01)
    assert len(workers) >= 2, "the pool never started"
    assert process.poll() is None, "the batch finished before it could be killed: give it more files"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.05)
    survivors = [pid for pid in workers if _alive(pid)]
    for pid in survivors:  # do not leave them behind for the rest of the suite
        os.kill(pid, signal.SIGKILL)
    assert survivors == []
