"""Where a multi-worker `deid run` spends its wall time: a timeline of the parent and each pool worker.

    .venv/bin/python bench/w2_timeline.py HEADERS_DIR [--workers 2] [--out bench/work/w2_timeline]

Runs one `deid run --ocr never --accept-burned-in-risk` in this process with time stamps around the run's
phases (imports, prepare_run, OUT_DIR preparation, the warm-up before fork, the pool, every chunk in the
workers, the group commits, compaction and seal) and prints, as markdown:

- the parent's serial phases: wall and CPU at each boundary (one core idle while they run);
- per worker: when it started and finished its first and last chunk, its CPU in chunks, the time it waited
  for a core (`/proc/self/schedstat`, Linux) and the gaps between chunks (waiting for work);
- the parent's CPU while the workers ran (receiving outcomes, rename, mapping, audit, group commit).

Instrumentation only wraps functions (no change to what is written); the figures include its small cost.
"""

from __future__ import annotations

import time

T0 = time.perf_counter()

import argparse  # noqa: E402 - the clock starts before any import
import contextlib  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
ORG_ROOT = "1.2.826.0.1.3680043.10.999"


def _schedstat() -> tuple[float, float]:
    """(seconds on a CPU, seconds runnable but waiting for one) of this process's main thread."""
    try:
        fields = Path("/proc/self/schedstat").read_text().split()
        return int(fields[0]) / 1e9, int(fields[1]) / 1e9
    except (OSError, ValueError, IndexError):
        return 0.0, 0.0


class _Log:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __call__(self, event: str) -> None:
        on_cpu, waiting = _schedstat()
        record = {"pid": os.getpid(), "t": time.perf_counter() - T0, "cpu": time.process_time(), "ev": event,
                  "wait": waiting}
        with self.path.open("a") as handle:  # one short O_APPEND write per event: safe across processes
            handle.write(json.dumps(record) + "\n")


def _wrap(owner, name: str, log: _Log) -> None:
    original = getattr(owner, name)

    def wrapper(*args, **kwargs):
        log(name + ">")
        try:
            return original(*args, **kwargs)
        finally:
            log(name + "<")

    for attribute in ("__name__", "__qualname__", "__module__"):  # pickled by reference into the workers
        setattr(wrapper, attribute, getattr(original, attribute))
    setattr(owner, name, wrapper)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("headers", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE / "work" / "w2_timeline")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    log = _Log(args.out / "events.jsonl")
    log.path.unlink(missing_ok=True)
    log("start")
    import deidcli.api
    import deidcli.batch as batch
    import deidcli.cli as cli

    log("imported")
    _wrap(deidcli.api, "prepare_run", log)
    _wrap(batch.BatchRun, "_prepare", log)
    _wrap(batch, "_warm_up_before_fork", log)
    _wrap(batch, "_work_chunk", log)
    for name in ("compact_audit", "seal_release"):
        _wrap(batch, name, log)
    key = args.out / "bench.key"
    out = args.out / "out"
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(out.with_name("out.private"), ignore_errors=True)
    if not key.exists():
        with contextlib.suppress(SystemExit):
            cli.main(["keygen", str(key)], standalone_mode=False)
    command = ["run", str(args.headers), str(out), "--org-root", ORG_ROOT, "--key-file", str(key), "--ocr", "never",
               "--accept-burned-in-risk", "--no-progress", "--workers", str(args.workers)]
    with contextlib.suppress(SystemExit):
        cli.main(command, standalone_mode=False)
    log("end")
    print(_report(log.path, sum(1 for _ in args.headers.iterdir()), args.workers))
    return 0


def _report(path: Path, files: int, workers: int) -> str:
    events = [json.loads(line) for line in path.read_text().splitlines()]
    parent = events[0]["pid"]
    mine = [e for e in events if e["pid"] == parent]
    first = {e["ev"]: e for e in reversed(mine)}
    last = {e["ev"]: e for e in mine}
    lines = [f"{files} files, {workers} workers, load average {os.getloadavg()[0]:.1f} at the end, "
             f"{os.cpu_count()} cores.", "", "| parent phase | ends at s (wall) | CPU s at its end |", "|---|---|---|"]
    for label, event in (("imports", "imported"), ("prepare_run (options, recipe check, key)", "prepare_run<"),
                         ("OUT_DIR, audit, mapping, discovery", "_prepare<"),
                         ("warm-up before fork (pixel modules, coding dictionary)", "_warm_up_before_fork<"),
                         ("audit compaction", "compact_audit<"), ("seal (SHA256SUMS)", "seal_release<"),
                         ("end", "end")):
        if event in first:
            lines.append(f"| {label} | {first[event]['t']:.3f} | {first[event]['cpu']:.3f} |")
    lines += ["", "| worker | first chunk starts s | last chunk ends s | chunks | CPU in chunks s | waited for a "
              "core s | gaps between chunks s |", "|---|---|---|---|---|---|---|"]
    ends = []
    for number, pid in enumerate(sorted({e["pid"] for e in events} - {parent}), 1):
        chunks = [e for e in events if e["pid"] == pid and e["ev"].startswith("_work_chunk")]
        starts = [e for e in chunks if e["ev"].endswith(">")]
        stops = [e for e in chunks if e["ev"].endswith("<")]
        if not starts:
            continue
        cpu = sum(b["cpu"] - a["cpu"] for a, b in zip(starts, stops, strict=False))
        waited = sum(b["wait"] - a["wait"] for a, b in zip(starts, stops, strict=False))
        gaps = sum(b["t"] - a["t"] for a, b in zip(stops, starts[1:], strict=False))
        ends.append(stops[-1])
        lines.append(f"| {number} | {starts[0]['t']:.3f} | {stops[-1]['t']:.3f} | {len(starts)} | {cpu:.2f} | "
                     f"{waited:.2f} | {gaps:.2f} |")
    if ends and "_prepare<" in first and "compact_audit>" in first:
        pool_start = last.get("_warm_up_before_fork<", last["_prepare<"])
        pool_end = first["compact_audit>"]
        cpu = pool_end["cpu"] - pool_start["cpu"]
        lines += ["", f"Parent from the pool's start to the end of its last group commit ({pool_start['t']:.3f}-"
                  f"{pool_end['t']:.3f} s): {cpu:.2f} s CPU ({cpu / files * 1000:.2f} ms per file: outcomes "
                  "received, rename, folders, mapping, audit, group commits)."]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
