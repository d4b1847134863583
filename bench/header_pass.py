"""Header pass timing (issue 15): deidcli vs the bare pydicom read+write floor and dicognito, plus start-up.

    .venv/bin/python bench/header_pass.py CORPUS_HEADERS_DIR [--runs 3] [--out bench/work/header_pass]

Timing only (the safety columns are `bench/run_bench.py`'s job). Every tool runs as a whole process on the
same folder, one after the other, order rotated between runs; ratios are computed inside each run and the
median over runs is reported, with the load average at the start of each run (the machine is shared).
Start-up: `deid --version` and a one-file `deid run --ocr never`, median of 5 each. With `--baseline DEID`
another build (e.g. main's) runs with 1 and 2 workers in the same runs, and the summary gives this tree ÷
baseline (wall and CPU) and each build's 2 ÷ 1 worker ratio. Wall ratios need a quiet machine (2 workers
cannot show their speed-up when other processes hold a core); the CPU columns hold up better under load.
Prints a markdown section for bench/results.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV_BIN = Path(sys.executable).parent
DEID = str(VENV_BIN / "deid")
ORG_ROOT = "1.2.826.0.1.3680043.10.999"
DICOGNITO_PY = HERE / ".venvs" / "dicognito" / "bin" / "python"


def _deid(workers: int, key: Path, deid: str = DEID):
    def command(in_dir: Path, out_dir: Path) -> list[str]:
        return [deid, "run", str(in_dir), str(out_dir), "--org-root", ORG_ROOT, "--key-file", str(key),
                "--ocr", "never", "--accept-burned-in-risk", "--no-progress", "--workers", str(workers)]
    return command


def _adapter(python: Path, name: str):
    def command(in_dir: Path, out_dir: Path) -> list[str]:
        return [str(python), str(HERE / "adapters" / name), str(in_dir), str(out_dir)]
    return command


def _timed(command: list[str]) -> float:
    return _run(command)[0]


def _run(command: list[str]) -> tuple[float, float]:
    """(wall s, CPU s of the process and the children it waited for: user + system, from wait4)."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode not in (0, 3):
        raise subprocess.CalledProcessError(process.returncode, command)
    return wall, usage.ru_utime + usage.ru_stime


def _clear(out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(out.with_name(out.name + ".private"), ignore_errors=True)


def _warm(folder: Path) -> None:
    for path in folder.iterdir():
        path.read_bytes()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("headers", type=Path, help="folder of header-track files (make_corpus.py OUT/headers)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=HERE / "work" / "header_pass")
    parser.add_argument("--baseline", type=Path, help="another `deid` executable (e.g. main's) timed alongside")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    # An installed deidcli has its bytecode compiled (pip does it); an editable checkout run with
    # PYTHONDONTWRITEBYTECODE=1 would compile every module at every start (~0.2 s CPU) instead.
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "deidcli")], check=True,
                   stdout=subprocess.DEVNULL)
    key = args.out / "bench.key"
    if not key.exists():
        subprocess.run([DEID, "keygen", str(key)], check=True, stdout=subprocess.DEVNULL)
    tools = {
        "floor": _adapter(Path(sys.executable), "floor_adapter.py"),
        "deidcli w1": _deid(1, key),
        "deidcli w2": _deid(2, key),
    }
    if args.baseline:
        tools["baseline w1"] = _deid(1, key, str(args.baseline))
        tools["baseline w2"] = _deid(2, key, str(args.baseline))
    if DICOGNITO_PY.exists():
        tools["dicognito"] = _adapter(DICOGNITO_PY, "dicognito_adapter.py")
    names = list(tools)
    n_files = sum(1 for _ in args.headers.iterdir())
    runs: list[dict[str, float]] = []
    cpus: list[dict[str, float]] = []
    cpu: dict[str, float] = {}
    loads = []
    for run in range(args.runs):
        loads.append(os.getloadavg()[0])
        order = names[run % len(names):] + names[:run % len(names)]
        seconds: dict[str, float] = {}
        for name in order:
            out = args.out / name.replace(" ", "_")
            _clear(out)
            _warm(args.headers)
            seconds[name], cpu[name] = _run(tools[name](args.headers, out))
        runs.append(seconds)
        cpus.append(dict(cpu))
        print(f"run {run + 1}: load {loads[-1]:.1f} " + ", ".join(f"{k} {v:.2f} s ({cpu[k]:.2f} CPU)"
                                                                for k, v in seconds.items()), file=sys.stderr)
    startup = _startup(key)

    def median(values) -> float:
        return statistics.median(values)

    lines = [f"{n_files} header files, {args.runs} runs, load average (1 min) at run starts: "
             f"{', '.join(f'{load:.1f}' for load in loads)} on {os.cpu_count()} cores.", "",
             "| tool | wall s | files/s | wall ÷ floor | CPU s | CPU ÷ floor |", "|---|---|---|---|---|---|"]
    for name in names:
        wall = median(r[name] for r in runs)
        ratio = median(r[name] / r["floor"] for r in runs)
        used = median(c[name] for c in cpus)
        cpu_ratio = median(c[name] / c["floor"] for c in cpus)
        lines.append(f"| {name} | {wall:.2f} | {n_files / wall:.1f} | {ratio:.2f}x | {used:.2f} | {cpu_ratio:.2f}x |")
    lines += ["", "Values are medians over runs; ratios are computed inside each run, then the median is taken."]
    speedup = median(r["deidcli w1"] / r["deidcli w2"] for r in runs)
    cpu_cost = median(c["deidcli w2"] / c["deidcli w1"] for c in cpus)
    lines += ["", f"- deidcli 2 workers ÷ 1 worker (files/s, median of per-run ratios): {speedup:.2f}x; "
              f"2 workers use {cpu_cost:.2f}x the CPU seconds of 1 worker"]
    if args.baseline:
        before = median(r["baseline w1"] / r["baseline w2"] for r in runs)
        lines.append(f"- baseline 2 workers ÷ 1 worker, same runs: {before:.2f}x; this tree ÷ baseline wall, w1 "
                     f"{median(r['deidcli w1'] / r['baseline w1'] for r in runs):.2f}x, w2 "
                     f"{median(r['deidcli w2'] / r['baseline w2'] for r in runs):.2f}x; CPU, w1 "
                     f"{median(c['deidcli w1'] / c['baseline w1'] for c in cpus):.2f}x, w2 "
                     f"{median(c['deidcli w2'] / c['baseline w2'] for c in cpus):.2f}x")
    if "dicognito" in names:
        for workers in ("w1", "w2"):
            versus = median(r["dicognito"] / r[f"deidcli {workers}"] for r in runs)
            lines.append(f"- deidcli {workers} files/s ÷ dicognito files/s: {versus:.2f}x")
        if args.baseline:
            lines.append(f"- baseline w2 files/s ÷ dicognito files/s: "
                         f"{median(r['dicognito'] / r['baseline w2'] for r in runs):.2f}x")
    lines.append(f"- start-up, median of 5: `deid --version` {startup['version']:.2f} s, one-file `deid run "
                 f"--ocr never` {startup['one file']:.2f} s")
    print("\n".join(lines))
    return 0


def _startup(key: Path) -> dict[str, float]:
    """`deid --version` and a one-file header run, whole process, median of 5."""
    from pydicom.data import get_testdata_file

    with tempfile.TemporaryDirectory() as scratch:
        one = Path(scratch) / "in"
        one.mkdir()
        shutil.copy(get_testdata_file("CT_small.dcm"), one / "ct.dcm")
        version = [_timed([DEID, "--version"]) for _ in range(5)]
        single = []
        for _ in range(5):
            out = Path(scratch) / "out"
            _clear(out)
            single.append(_timed(_deid(1, key)(one, out)))
    return {"version": statistics.median(version), "one file": statistics.median(single)}


if __name__ == "__main__":
    sys.exit(main())
