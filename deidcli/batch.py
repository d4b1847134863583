"""A folder in, a folder out: discovery, workers, resume, interruption, progress, the audit.

Invariants this module keeps:

* the input is never modified and nothing is ever written inside IN_DIR;
* a file appears under its final name only complete (workers write temporary files, fsync'd; the parent
  renames them), so a kill at any moment leaves no partial output;
* the audit gets one flushed line per finished file; a re-run with the same recipe and key skips what
  was written and redoes what was in flight; at the end the audit is compacted to one row per input;
* Ctrl-C / SIGTERM stop the workers, remove temporary files, flush the audit and exit 130 / 143.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import sys
import time
from collections import Counter, deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tqdm import tqdm

from deidcli._version import __version__
from deidcli.audit import (
    AUDIT_COLUMNS,
    CsvAppender,
    PrivateMapping,
    audit_row,
    audit_table,
    compact_audit,
    read_audit,
)
from deidcli.errors import FileRejected, OutputConflict, UsageError
from deidcli.keys import key_fingerprint
from deidcli.pipeline import Outcome, Pipeline, Settings, input_id, unprocessed_outcome
from deidcli.reasons import Status
from deidcli.write import resolve_inside

AUDIT_NAME = "audit.csv"
MANIFEST_NAME = ".deid-run.json"
TEMP_DIR_NAME = ".deid-tmp"
#: Exit codes (documented in the README).
EXIT_OK = 0
EXIT_USAGE = 2
EXIT_QUARANTINED = 3
EXIT_DISK_FULL = 4
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class Interrupted(Exception):
    """Raised in the parent on SIGINT/SIGTERM; carries the exit code."""

    def __init__(self, exit_code: int) -> None:
        super().__init__(exit_code)
        self.exit_code = exit_code


class DiskFull(Exception):
    """The output disk is full: stop the batch, keep what is complete, resume later."""


@dataclass
class BatchSummary:
    rows: list[dict[str, str]]
    exit_code: int
    counts: Counter
    seconds: float
    interrupted: bool = False

    @property
    def audit(self):
        """The audit as a pandas DataFrame (imported on demand)."""
        return audit_table(self.rows)


# -- discovery -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class InputFile:
    path: Path
    relative: str
    skip_reason: str = ""  # set when discovery already knows the file is not to be processed


def discover(in_dir: Path) -> Iterator[InputFile]:
    """Every regular file under IN_DIR in a stable order. Symlinks are followed only inside IN_DIR."""
    root = in_dir.resolve()
    for folder, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(folder) / name
            relative = path.relative_to(root).as_posix()
            if path.is_symlink():
                try:
                    target = path.resolve(strict=True)
                except (OSError, RuntimeError):
                    yield InputFile(path, relative, "symlink_outside")
                    continue
                if not target.is_relative_to(root) or not target.is_file():
                    yield InputFile(path, relative, "symlink_outside")
                    continue
            yield InputFile(path, relative)


def check_folders(in_dir: Path, out_dir: Path, private_dir: Path) -> None:
    if not in_dir.is_dir():
        raise UsageError(f"IN_DIR {in_dir} is not a folder")
    source, output, private = in_dir.resolve(), out_dir.resolve(), private_dir.resolve()
    if output == source or output.is_relative_to(source):
        raise UsageError("OUT_DIR must not be inside IN_DIR (outputs would be read back as inputs)")
    if source.is_relative_to(output):
        raise UsageError("IN_DIR must not be inside OUT_DIR")
    if private.is_relative_to(output):
        raise UsageError("the private folder must not be inside OUT_DIR: it holds PHI")
    if private.is_relative_to(source):
        raise UsageError("the private folder must not be inside IN_DIR")


def default_private_dir(out_dir: Path) -> Path:
    return out_dir.parent / (out_dir.name + ".private")


# -- the run manifest: what OUT_DIR was made with ---------------------------------------------------------
def _manifest(settings: Settings) -> dict:
    return {
        "tool": f"deidcli {__version__}",
        "recipe": settings.recipe.name,
        "recipe_hash": settings.recipe.hash,
        "key_fingerprint": key_fingerprint(settings.key),
        "org_root": settings.org_root,
    }


def prepare_out_dir(out_dir: Path, settings: Settings, force: bool) -> None:
    """Refuse to mix runs: OUT_DIR is new, or a resume of the same recipe+key, or --force."""
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / MANIFEST_NAME
    wanted = _manifest(settings)
    if manifest_path.exists():
        previous = json.loads(manifest_path.read_text())
        for field_name in ("recipe_hash", "key_fingerprint", "org_root"):
            if previous.get(field_name) != wanted[field_name] and not force:
                raise OutputConflict(
                    f"{out_dir} was written with a different {field_name.replace('_', ' ')} "
                    f"({previous.get(field_name)} != {wanted[field_name]}); use a new OUT_DIR, or --force to redo it"
                )
    elif any(p.name not in (TEMP_DIR_NAME,) for p in out_dir.iterdir()) and not force:
        raise OutputConflict(f"{out_dir} is not empty and was not written by deid run; use an empty folder or --force")
    temporary = manifest_path.with_suffix(".tmp")
    temporary.write_text(json.dumps(wanted, indent=2) + "\n")
    os.replace(temporary, manifest_path)


# -- workers ---------------------------------------------------------------------------------------------
_worker_pipeline: Pipeline | None = None


class _FileTimeout(FileRejected):
    pass


def _on_alarm(signum, frame):  # noqa: ARG001 - signal handler signature
    raise _FileTimeout("timeout", "per-file time budget exceeded")


def _init_worker(settings: Settings, temp_dir: Path) -> None:
    """Runs once per worker process: ignore Ctrl-C (the parent coordinates) and build the pipeline."""
    global _worker_pipeline
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _worker_pipeline = Pipeline(settings, temp_dir)


def _process_with_budget(pipeline: Pipeline, path: Path, relative: str) -> Outcome:
    """Process one file under a wall-clock budget (SIGALRM interrupts pure-Python work)."""
    budget = pipeline.settings.file_timeout_s
    use_alarm = budget > 0 and hasattr(signal, "setitimer")
    previous = signal.getsignal(signal.SIGALRM) if use_alarm else None
    try:
        if use_alarm:
            signal.signal(signal.SIGALRM, _on_alarm)
            signal.setitimer(signal.ITIMER_REAL, budget)
        return pipeline.process(path, relative)
    except _FileTimeout:
        return unprocessed_outcome(pipeline.settings, relative, "timeout", f"over {budget:g} s")
    finally:
        if use_alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def _work_chunk(items: list[tuple[Path, str]]) -> list[Outcome]:
    assert _worker_pipeline is not None
    return [_process_with_budget(_worker_pipeline, path, relative) for path, relative in items]


def _kill_pool(pool: ProcessPoolExecutor) -> None:
    """Stop workers now (shutdown(wait=False) alone lets in-flight files run to completion)."""
    processes = list(getattr(pool, "_processes", {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        if process.is_alive():
            process.terminate()
    for process in processes:
        process.join(timeout=5)


# -- where the per-file work runs ------------------------------------------------------------------------
class FileExecutor(Protocol):
    """Runs the pipeline on files somewhere other than the inline loop or the local pool (a Dask cluster).

    It gets the files that need work (discovery's skips are already finished) and yields one `Outcome` per
    file as each completes, in any order; its temporary files must lie in `temp_dir`. The BatchRun does
    everything else in this process (rename, audit, private mapping), so resume and Ctrl-C behave the
    same wherever the work runs. Closing the iterator early (Ctrl-C, disk full) must stop the work.
    """

    def outcomes(self, items: list[InputFile], settings: Settings, temp_dir: Path) -> Iterator[Outcome]: ...


# -- the run ---------------------------------------------------------------------------------------------
class BatchRun:
    """One `deid run`: owns OUT_DIR's audit, the private mapping and the temporary folder."""

    def __init__(self, in_dir: Path, out_dir: Path, settings: Settings, *, private_dir: Path | None = None,
                 workers: int = 1, force: bool = False, progress: bool = True,
                 executor: FileExecutor | None = None) -> None:
        self.in_dir = Path(in_dir)
        self.out_dir = Path(out_dir)
        self.private_dir = Path(private_dir) if private_dir else default_private_dir(self.out_dir)
        self.settings = settings
        self.workers = max(1, workers)
        self.force = force
        self.progress = progress
        self.executor = executor
        self.counts: Counter = Counter()
        self.temp_dir = self.out_dir / TEMP_DIR_NAME

    def run(self) -> BatchSummary:
        started = time.perf_counter()
        check_folders(self.in_dir, self.out_dir, self.private_dir)
        prepare_out_dir(self.out_dir, self.settings, self.force)
        shutil.rmtree(self.temp_dir, ignore_errors=True)  # leftovers of a killed run: never complete files
        self.temp_dir.mkdir()
        audit_path = self.out_dir / AUDIT_NAME
        if self.force and audit_path.exists():
            audit_path.unlink()
        done, self.written_paths = self._already_done(audit_path)
        inputs = list(discover(self.in_dir))
        order = [input_id(self.settings.key, item.relative) for item in inputs]
        todo = [item for item, identity in zip(inputs, order, strict=True) if identity not in done]
        self.audit = CsvAppender(audit_path, AUDIT_COLUMNS)
        self.mapping = PrivateMapping(self.private_dir)
        exit_code = EXIT_OK
        interrupted = False
        previous_handlers = self._install_signal_handlers()
        bar = tqdm(total=len(inputs), initial=len(inputs) - len(todo), unit="file", disable=not self.progress,
                   dynamic_ncols=True, file=sys.stderr)
        self.bar = bar
        try:
            with contextlib.closing(self._outcomes(todo)) as outcomes:
                for outcome in outcomes:
                    self._finish(outcome)
        except Interrupted as stop:
            exit_code, interrupted = stop.exit_code, True
        except DiskFull:
            exit_code, interrupted = EXIT_DISK_FULL, True
        except OSError as error:
            if error.errno != errno.ENOSPC:
                raise
            exit_code, interrupted = EXIT_DISK_FULL, True
        finally:
            bar.close()
            self._restore_signal_handlers(previous_handlers)
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            self.audit.close()
            self.mapping.close()
        rows = compact_audit(audit_path, order) if not interrupted else read_audit(audit_path)
        if not interrupted and any(row["status"] == Status.QUARANTINED.value for row in rows):
            exit_code = EXIT_QUARANTINED
        return BatchSummary(rows, exit_code, self.counts, time.perf_counter() - started, interrupted)

    def _already_done(self, audit_path: Path) -> tuple[set[str], set[str]]:
        """Inputs finished by an earlier run into this OUT_DIR (written with the output still present, or
        skipped), and the output paths they own (so a duplicate instance redone on resume cannot overwrite)."""
        done: set[str] = set()
        owned: set[str] = set()
        fingerprint = key_fingerprint(self.settings.key)
        for row in read_audit(audit_path):
            if row["recipe_hash"] != self.settings.recipe.hash or row["key_fingerprint"] != fingerprint:
                continue
            if row["status"] == Status.SKIPPED.value or (
                row["status"] == Status.WRITTEN.value and (self.out_dir / row["output_path"]).is_file()
            ):
                done.add(row["input_id"])
                if row["output_path"]:
                    owned.add(row["output_path"])
        return done, owned

    # -- execution strategies: each yields Outcomes, finished here by _finish ----------------------------
    def _outcomes(self, todo: list[InputFile]) -> Iterator[Outcome]:
        if self.executor is not None:
            work = []
            for item in todo:
                skip = self._skip_outcome(item)
                if skip is not None:
                    yield skip
                else:
                    work.append(item)
            yield from self.executor.outcomes(work, self.settings, self.temp_dir)
        elif self.workers == 1:
            yield from self._inline_outcomes(todo)
        else:
            yield from self._pool_outcomes(todo)

    def _inline_outcomes(self, todo: list[InputFile]) -> Iterator[Outcome]:
        pipeline = Pipeline(self.settings, self.temp_dir)
        for item in todo:
            yield self._skip_outcome(item) or _process_with_budget(pipeline, item.path, item.relative)

    def _pool_outcomes(self, todo: list[InputFile]) -> Iterator[Outcome]:
        """Files go to workers in small chunks (fewer round trips); results are finished here, in the parent.

        If a worker dies (a codec crashing on hostile bytes kills the process, not just the file), every
        chunk in flight is lost; their files are retried one at a time, and a file that kills a worker
        on its own is quarantined as `worker_crashed`.
        """
        pending = iter(todo)
        window = self.workers * 2
        chunk_size = max(1, min(8, len(todo) // (self.workers * 8)))
        suspects: deque[InputFile] = deque()
        pool = self._new_pool()
        in_flight: dict[Future, list[InputFile]] = {}
        isolated: set[Future] = set()
        skipped: list[Outcome] = []
        try:
            while True:
                while len(in_flight) < window:
                    alone = bool(suspects)
                    if alone:
                        if in_flight:
                            break  # a suspect runs alone, so a crash names its file
                        chunk = [suspects.popleft()]
                    else:
                        chunk = self._next_chunk(pending, chunk_size, skipped)
                        yield from skipped
                        skipped.clear()
                        if not chunk:
                            break
                    future = pool.submit(_work_chunk, [(item.path, item.relative) for item in chunk])
                    in_flight[future] = chunk
                    if alone:
                        isolated.add(future)
                        break
                if not in_flight:
                    break
                finished, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                broken = False
                for future in finished:
                    chunk = in_flight.pop(future)
                    try:
                        outcomes = future.result()
                    except BrokenProcessPool:
                        broken = True
                        if future in isolated:
                            yield self._crash_outcome(chunk[0])
                        else:
                            suspects.extend(chunk)
                        continue
                    except OSError as error:
                        raise DiskFull() from error
                    yield from outcomes
                if broken:
                    for chunk in in_flight.values():
                        suspects.extend(chunk)
                    in_flight.clear()
                    isolated.clear()
                    _kill_pool(pool)
                    pool = self._new_pool()
        except BaseException:
            _kill_pool(pool)
            raise
        pool.shutdown(wait=True)

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.workers, initializer=_init_worker, initargs=(self.settings, self.temp_dir))

    def _next_chunk(self, pending: Iterator[InputFile], size: int, skipped: list[Outcome]) -> list[InputFile]:
        """Up to `size` files to process; files discovery already rejected go to `skipped` on the way."""
        chunk: list[InputFile] = []
        while len(chunk) < size:
            item = next(pending, None)
            if item is None:
                break
            skip = self._skip_outcome(item)
            if skip is not None:
                skipped.append(skip)
            else:
                chunk.append(item)
        return chunk

    def _crash_outcome(self, item: InputFile) -> Outcome:
        return unprocessed_outcome(self.settings, item.relative, "worker_crashed")

    def _skip_outcome(self, item: InputFile) -> Outcome | None:
        if not item.skip_reason and item.path.name.upper() != "DICOMDIR":
            return None
        return unprocessed_outcome(self.settings, item.relative, item.skip_reason or "dicomdir")

    # -- the parent's side of each finished file ----------------------------------------------------------
    def _finish(self, outcome: Outcome) -> None:
        result = outcome.result
        if outcome.temp_path is not None:
            refusal = "duplicate_instance" if result.output_path in self.written_paths else ""
            try:
                final = resolve_inside(self.out_dir, result.output_path)
            except FileRejected as rejection:
                refusal = rejection.reason
            if refusal:
                outcome.temp_path.unlink(missing_ok=True)
                result.status, result.reason = Status.QUARANTINED.value, refusal
                result.output_path = ""
                outcome.private.status, outcome.private.reason, outcome.private.output_path = (
                    result.status, result.reason, "")
                outcome.private.replacements.clear()
            else:
                try:
                    final.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(outcome.temp_path, final)
                except OSError as error:
                    outcome.temp_path.unlink(missing_ok=True)
                    raise DiskFull() from error
                self.written_paths.add(result.output_path)
        self.audit.append(audit_row(result))
        self.mapping.record(outcome.private)
        self.counts[(result.status, result.reason)] += 1
        self.bar.update(1)
        quarantined = sum(n for (status, _), n in self.counts.items() if status == Status.QUARANTINED.value)
        self.bar.set_postfix(quarantined=quarantined, refresh=False)

    # -- signals -------------------------------------------------------------------------------------------
    def _install_signal_handlers(self) -> dict:
        def stop(signum, frame):  # noqa: ARG001
            raise Interrupted(EXIT_SIGINT if signum == signal.SIGINT else EXIT_SIGTERM)

        previous = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread (a library thread): no handlers
                previous[signum] = signal.signal(signum, stop)
        return previous

    @staticmethod
    def _restore_signal_handlers(previous: dict) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def summarise(summary: BatchSummary) -> str:
    """The one-paragraph end-of-run summary (no PHI: counts and reason codes only)."""
    rows = summary.rows
    by_status = Counter(row["status"] for row in rows)
    reasons = Counter(row["reason"] for row in rows if row["status"] != Status.WRITTEN.value)
    rate = len(rows) / summary.seconds if summary.seconds else 0.0
    text = (
        f"{by_status['written']} written, {by_status['quarantined']} quarantined, "
        f"{by_status['skipped']} skipped of {len(rows)} files in {summary.seconds:.1f} s ({rate:.1f} files/s)."
    )
    if reasons:
        text += " Not written, by reason: " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())) + "."
    return text
