"""Start-up stays lean: `deid --version` and an `--ocr never` run import no engine they do not use.

Behavioural, not timed: each check runs a fresh interpreter and lists the modules it ended up with.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from deidcli.keys import generate_key_file
from tests.conftest import pydicom_file

HEAVY = ("pandas", "torch", "easyocr", "rapidocr_onnxruntime", "onnxruntime", "cv2", "dask", "distributed")

_PROBE = """
import json, sys
from deidcli.cli import main
try:
    main(sys.argv[1:])
except SystemExit as stop:
    code = stop.code
print("MODULES=" + json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _modules_after(*args: str) -> tuple[int, set[str]]:
    done = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, timeout=120,
                          check=False)
    line = next(line for line in done.stdout.splitlines() if line.startswith("MODULES="))
    found = json.loads(line.removeprefix("MODULES="))
    return found["code"], set(found["modules"])


def _loaded(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return [name for name in names if name in modules]


def test_import_cli_and_version_load_no_pydicom_and_no_engine():
    code, modules = _modules_after("--version")
    assert code == 0
    assert _loaded(modules, HEAVY) == []
    assert _loaded(modules, ("pydicom", "numpy")) == []


def test_import_deidcli_is_lazy_but_exports_everything():
    probe = ("import sys, deidcli; before = 'pydicom' in sys.modules; "
             "missing = [n for n in deidcli.__all__ if getattr(deidcli, n, None) is None]; "
             "print(before, missing)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert done.stdout.split() == ["False", "[]"]


def test_one_file_run_without_ocr_loads_no_engine_and_no_pandas(tmp_path: Path):
    in_dir = tmp_path / "in"
    in_dir.mkdir()
    (in_dir / "ct.dcm").write_bytes(Path(pydicom_file("CT_small.dcm")).read_bytes())
    key = tmp_path / "deid.key"
    generate_key_file(key)
    code, modules = _modules_after("run", str(in_dir), str(tmp_path / "out"), "--org-root",
                                   "1.2.826.0.1.3680043.10.999", "--key-file", str(key), "--ocr", "never",
                                   "--accept-burned-in-risk", "--no-progress")
    assert code == 0
    assert (tmp_path / "out" / "audit.csv").is_file()
    assert _loaded(modules, HEAVY) == []


# The `deid` executable (`deidcli.cli:console`) skips the interpreter's teardown but not the exit itself.
_CONSOLE = """
import atexit, sys, threading, time
atexit.register(lambda: print("atexit ran", flush=False))  # unflushed: console must flush after the handlers
if sys.argv.pop(1) == "thread":  # a non-daemon thread still running when the command returns
    def late() -> None:
        time.sleep(0.3)
        print("thread finished", flush=True)
    threading.Thread(target=late).start()
from deidcli.cli import console
sys.argv[0] = "deid"
console()
"""


def _console(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", _CONSOLE, *args], capture_output=True, text=True, timeout=120,
                          check=False)


def test_console_keeps_exit_status_handlers_and_output(tmp_path: Path) -> None:
    key = tmp_path / "k.key"
    generate_key_file(key)
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "ct.dcm").write_bytes(pydicom_file("CT_small.dcm").read_bytes())
    done = _console("-", "run", str(folder), str(tmp_path / "out"), "--org-root", "1.2.826.0.1.3680043.10.999",
                    "--key-file", str(key), "--ocr", "never", "--accept-burned-in-risk", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "1 written" in done.stdout and done.stdout.rstrip().endswith("atexit ran")
    assert len((tmp_path / "out" / "audit.csv").read_text().splitlines()) == 2
    usage = _console("-", "run", str(tmp_path / "missing"), str(tmp_path / "out2"))
    assert usage.returncode == 2 and "does not exist" in usage.stderr and "atexit ran" in usage.stdout


def test_console_waits_for_a_running_thread_as_a_normal_exit_does() -> None:
    done = _console("thread", "reasons")
    assert done.returncode == 0, done.stderr
    assert "thread finished" in done.stdout and "atexit ran" in done.stdout
