#!/usr/bin/env python3
"""Local process pool vs a Dask cluster on the header-only corpus, and the client's own cost per file.

    .venv/bin/python bench/make_corpus.py 500 bench/work/dask --no-pixels
    .venv/bin/python bench/dask_bench.py bench/work/dask/headers [--workers 2] [--runs 3]

Starts a real `dask scheduler` and `dask worker --nworkers W --nthreads 1` as separate processes on loopback
(as on a cluster: the scheduler is not in the client's process), then times, per run and mode:

* files/s of `deid run` local with 1 worker, local with W workers, and on the cluster (W worker processes);
* the client's own cost per completed file: CPU seconds of the client process (its Dask I/O thread
  included) between the first and the last outcome, and the wall time spent finishing each file (rename,
  audit line, mapping rows);
* the scheduler's and the workers' CPU seconds per file.

From these it projects the throughput with more worker processes: W * (1 / worker CPU per file), capped by
what the client (1 / client CPU per file) and the scheduler can coordinate. Prints a Markdown section.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from deidcli.batch import BatchRun  # noqa: E402
from deidcli.pipeline import Settings  # noqa: E402
from deidcli.recipe.load import load_recipe  # noqa: E402

KEY = bytes(range(32))
ORG_ROOT = "1.2.826.0.1.3680043.10.999"


class TimedExecutor:
    """Wraps a FileExecutor: marks the client's CPU time at each outcome and times the finishing of each."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.cpu_marks: list[float] = []
        self.finish_s = 0.0

    def outcomes(self, items, settings, temp_dir):
        for outcome in self.inner.outcomes(items, settings, temp_dir):
            self.cpu_marks.append(time.process_time())
            handed = time.perf_counter()
            yield outcome  # BatchRun._finish runs here: rename, audit, mapping
            self.finish_s += time.perf_counter() - handed


def cpu_seconds(processes: list[psutil.Process]) -> float:
    total = 0.0
    for process in processes:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def start_cluster(workers: int, folder: Path) -> tuple[list[subprocess.Popen], str]:
    scheduler_file = folder / "scheduler.json"
    environment = {"PYTHONPATH": str(ROOT), "PATH": str(Path(sys.executable).parent)}
    scheduler = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_scheduler", "--host", "127.0.0.1",
                                  "--no-dashboard", "--scheduler-file", str(scheduler_file)], cwd=ROOT,
                                 env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not scheduler_file.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    address = json.loads(scheduler_file.read_text())["address"]
    worker = subprocess.Popen([sys.executable, "-m", "distributed.cli.dask_worker", address, "--nworkers",
                               str(workers), "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"],
                              cwd=ROOT, env=environment, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from distributed import Client

    with Client(address, set_as_default=False) as client:
        client.wait_for_workers(workers, timeout=120)
    return [scheduler, worker], address


def one_run(corpus: Path, out: Path, workers: int, scheduler: str | None) -> dict:
    settings = Settings(recipe=load_recipe("default"), key=KEY, org_root=ORG_ROOT, ocr="never",
                        accept_burned_in_risk=True)
    executor = None
    if scheduler:
        from deidcli.distributed import DaskExecutor

        executor = TimedExecutor(DaskExecutor(scheduler))
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(out.parent / (out.name + ".private"), ignore_errors=True)
    started_cpu, started = time.process_time(), time.perf_counter()
    summary = BatchRun(corpus, out, settings, workers=workers, progress=False, executor=executor).run()
    wall = time.perf_counter() - started
    files = len(summary.rows)
    assert summary.exit_code == 0 and files, summary.counts
    result = {"files": files, "wall_s": wall, "files_per_s": files / wall,
              "client_cpu_s": time.process_time() - started_cpu}
    if executor is not None and len(executor.cpu_marks) > 1:
        marks = executor.cpu_marks
        result["client_cpu_per_file_ms"] = 1000 * (marks[-1] - marks[0]) / (len(marks) - 1)
        result["finish_per_file_ms"] = 1000 * executor.finish_s / files
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path, help="folder of header-only files (make_corpus.py ... /headers)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--max-chunk", type=int, default=None, help="files per Dask task at most")
    args = parser.parse_args()
    if args.max_chunk:
        import deidcli.distributed

        deidcli.distributed.MAX_CHUNK_FILES = args.max_chunk
    for path in args.corpus.rglob("*"):  # warm the page cache
        if path.is_file():
            path.read_bytes()
    work = Path(tempfile.mkdtemp(prefix="deid-dask-bench-"))
    cluster, address = start_cluster(args.workers, work)
    try:
        scheduler_process = psutil.Process(cluster[0].pid)
        worker_processes = psutil.Process(cluster[1].pid).children(recursive=True) + [psutil.Process(cluster[1].pid)]
        one_run(args.corpus, work / "warm", 1, None)  # imports, recipe load
        idle_before, idle_started = cpu_seconds([scheduler_process]), time.perf_counter()
        time.sleep(5)  # the scheduler's own heartbeat work, to subtract: it scales with time, not files
        scheduler_idle = (cpu_seconds([scheduler_process]) - idle_before) / (time.perf_counter() - idle_started)
        modes = [("local, 1 worker", 1, None), (f"local, {args.workers} workers", args.workers, None),
                 (f"Dask, {args.workers} worker processes", 1, address)]
        results: dict[str, list[dict]] = {name: [] for name, _, _ in modes}
        scheduler_cpu: list[float] = []
        worker_cpu: list[float] = []
        for run in range(args.runs):
            for name, workers, scheduler in modes[run % 3:] + modes[:run % 3]:  # rotate the order
                if scheduler:
                    before_scheduler = cpu_seconds([scheduler_process])
                    before_workers = cpu_seconds(worker_processes)
                result = one_run(args.corpus, work / "out", workers, scheduler)
                if scheduler:
                    busy = cpu_seconds([scheduler_process]) - before_scheduler - scheduler_idle * result["wall_s"]
                    scheduler_cpu.append(busy / result["files"])
                    worker_cpu.append((cpu_seconds(worker_processes) - before_workers) / result["files"])
                results[name].append(result)
    finally:
        for process in reversed(cluster):
            process.terminate()
        for process in cluster:
            process.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    report(args, results, statistics.median(scheduler_cpu), statistics.median(worker_cpu))


def report(args, results: dict[str, list[dict]], scheduler_cpu: float, worker_cpu: float) -> None:
    files = next(iter(results.values()))[0]["files"]
    load = psutil.getloadavg()
    from deidcli.distributed import MAX_CHUNK_FILES

    print(f"{files} header-only files, {args.runs} runs (medians), at most {MAX_CHUNK_FILES} files per Dask task, "
          f"nproc={psutil.cpu_count()}, "
          f"load avg at the end {load[0]:.2f}; scheduler and workers on loopback, separate processes.\n")
    print("| mode | files/s | wall s | client CPU ms / file | client finishing ms / file |")
    print("|---|---|---|---|---|")
    dask = None
    for name, runs in results.items():
        rate = statistics.median(r["files_per_s"] for r in runs)
        wall = statistics.median(r["wall_s"] for r in runs)
        client = "" if "client_cpu_per_file_ms" not in runs[0] else \
            f"{statistics.median(r['client_cpu_per_file_ms'] for r in runs):.2f}"
        finish = "" if "finish_per_file_ms" not in runs[0] else \
            f"{statistics.median(r['finish_per_file_ms'] for r in runs):.2f}"
        if client:  # the conservative client cost: its CPU, or the wall time its loop spends finishing files
            dask = (max(float(client), float(finish)), rate)
        print(f"| {name} | {rate:.1f} | {wall:.2f} | {client} | {finish} |")
    print(f"\nScheduler CPU per file (its idle heartbeat work subtracted): {1000 * scheduler_cpu:.2f} ms; worker CPU per file: {1000 * worker_cpu:.2f} ms "
          f"(one worker process on its own core: {1 / worker_cpu:.0f} files/s).")
    if dask:
        client_ceiling = 1000 / dask[0]
        scheduler_ceiling = 1 / scheduler_cpu if scheduler_cpu > 0 else float("inf")
        per_worker = 1 / worker_cpu
        print(f"Ceilings: client {client_ceiling:.0f} files/s, scheduler {scheduler_ceiling:.0f} files/s.\n")
        print("| worker processes | projected files/s |")
        print("|---|---|")
        for count in (2, 8, 32, 128, 512):
            print(f"| {count} | {min(count * per_worker, client_ceiling, scheduler_ceiling):.0f} |")


if __name__ == "__main__":
    main()
