"""A folder in, a folder out: discovery, workers, resume, interruption, progress, the audit.

Invariants this module keeps:

* the input is never modified and nothing is ever written inside IN_DIR;
* a file appears under its final name only complete (workers write temporary files; the parent renames
  them), so a kill at any moment leaves no partial output;
* group commit (`_commit`): the audit row of a file is written only after its output (with its folder
  entries) and its private mapping were synced, for a group of files at a time, so a file the audit calls
  done is on disk; a renamed file not yet recorded is redone (and replaced) by the re-run;
* the audit gets one flushed line per finished file; a re-run with the same recipe and key skips what
  was written and redoes what was in flight; at the end the audit is compacted to one row per input;
* Ctrl-C / SIGTERM stop the workers, remove temporary files, flush the audit and exit 130 / 143.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import signal
import stat
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
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
from deidcli.errors import FileRejected, KeyMismatch, OutputConflict, UsageError, storage_error
from deidcli.keys import key_fingerprint
from deidcli.mapping import record_run_folders
from deidcli.pipeline import Outcome, Pipeline, Settings, input_id, unprocessed_outcome
from deidcli.reasons import Status
from deidcli.verify.release import seal_release
from deidcli.write import mark_ready, resolve_inside

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


class Interrupted(BaseException):
    """Raised in the parent on SIGINT/SIGTERM; carries the exit code.

    A BaseException, like KeyboardInterrupt: the signal handler raises it wherever the parent happens to be,
    and library code that catches `Exception` must not swallow it (distributed's serializer turned a Ctrl-C
    during `client.submit` into a TypeError and the run exited 1 instead of 130; a per-file `except
    Exception` would record the file as failed and go on with the batch)."""

    def __init__(self, exit_code: int) -> None:
        super().__init__(exit_code)
        self.exit_code = exit_code


#: Space held in the temporary folder while the batch runs and freed (with the folder) before the last group
#: is recorded: when OUT_DIR fills up, the files completed so far still get their audit rows (~400 bytes each).
AUDIT_RESERVE_NAME = "audit-reserve"
AUDIT_RESERVE_BYTES = 32 * 1024


def _reserve_space(path: Path, size: int) -> None:
    """Allocate `size` real bytes at `path` (a sparse file would reserve nothing)."""
    with path.open("wb") as handle:
        try:
            os.posix_fallocate(handle.fileno(), 0, size)
        except OSError as error:
            if error.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
                raise
            handle.write(b"\0" * size)
            handle.flush()


class StorageFailure(Exception):
    """OUT_DIR or the private folder cannot be written (full, read-only, permission denied): stop the batch,
    keep what is complete, resume later (exit 4). Not a quarantine: the files are not at fault."""

    def __init__(self, where: str, error: OSError) -> None:
        super().__init__(where, error)
        self.where = where
        self.error = error

    @property
    def message(self) -> str:
        error = self.error
        place = f"{self.where} ({error.filename})" if error.filename else self.where
        if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            problem, fix = f"no space left on the disk of {place}", "free space"
        elif error.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
            problem, fix = f"{place} cannot be written: {error.strerror}", "make it writable"
        else:
            problem, fix = f"writing {place} failed: {error.strerror or type(error).__name__}", "fix the disk"
        return (f"Stopped: {problem}. Files completed so far are kept and recorded; {fix} and resume with "
                "the same command.")


#: Kept for callers of earlier versions: a full disk is one kind of storage failure.
DiskFull = StorageFailure


@dataclass
class BatchSummary:
    rows: list[dict[str, str]]
    exit_code: int
    counts: Counter
    seconds: float
    interrupted: bool = False
    message: str = ""  # why the batch stopped early (storage failure), for the user; no PHI

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
    """Every entry under IN_DIR that is or could be a file, in a stable order, each once.

    Regular files are processed. Everything else gets a skip reason and is never opened: a FIFO would block
    a worker until the time budget, a device could stream forever. Links are followed only to regular files
    inside IN_DIR; a linked folder (outside IN_DIR, inside it, or a loop) is not walked but gets its row, so
    the audit accounts for every name the user sees.
    """
    root = in_dir.resolve()
    unlisted: list[OSError] = []  # folders os.walk could not list (permissions, I/O): each gets a row too
    for folder, dirnames, filenames in os.walk(root, followlinks=False, onerror=unlisted.append):
        yield from _unlisted_rows(unlisted, root)
        dirnames.sort()
        linked_folders = [name for name in dirnames if os.path.islink(os.path.join(folder, name))]
        for name in sorted(filenames + linked_folders):
            path = Path(folder) / name
            yield InputFile(path, path.relative_to(root).as_posix(), _skip_reason(path, root))
    yield from _unlisted_rows(unlisted, root)


def _unlisted_rows(unlisted: list[OSError], root: Path) -> Iterator[InputFile]:
    while unlisted:
        error = unlisted.pop(0)
        path = Path(error.filename) if error.filename else root
        relative = path.relative_to(root).as_posix() if path.is_relative_to(root) else path.name
        yield InputFile(path, relative or ".", "unreadable")


def _skip_reason(path: Path, root: Path) -> str:
    """'' for a regular file to process, else the reason it is skipped; looks at metadata only."""
    try:
        info = os.lstat(path)
    except OSError:
        return "unreadable"
    if stat.S_ISLNK(info.st_mode):
        return _link_reason(path, root)
    return "" if stat.S_ISREG(info.st_mode) else "not_regular_file"


def _link_reason(path: Path, root: Path) -> str:
    try:
        target = path.resolve(strict=True)
    except RuntimeError:  # Python 3.11 reports a cycle of links this way
        return "symlink_loop"
    except OSError as error:
        return "symlink_loop" if error.errno == errno.ELOOP else "symlink_broken"
    if not target.is_relative_to(root):
        return "symlink_outside"
    try:
        info = os.stat(target)
    except OSError:
        return "symlink_broken"
    if stat.S_ISDIR(info.st_mode):
        return "symlink_loop" if path.parent.resolve().is_relative_to(target) else "symlink_folder"
    return "" if stat.S_ISREG(info.st_mode) else "not_regular_file"


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


def read_manifest(out_dir: Path) -> dict | None:
    """What an earlier run recorded in OUT_DIR (recipe hash, key fingerprint, org root), or None."""
    manifest_path = out_dir / MANIFEST_NAME
    if not manifest_path.exists():
        return None
    try:
        previous = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise OutputConflict("{out_dir}: its run record {name} cannot be read ({problem}); use a new OUT_DIR",
                             out_dir=out_dir, name=MANIFEST_NAME, problem=type(error).__name__) from None
    return previous if isinstance(previous, dict) else {}


def check_out_dir(out_dir: Path, settings: Settings, force: bool) -> None:
    """Refuse to mix runs, creating nothing: OUT_DIR is new, or a resume with the same recipe and key, or
    --force for another recipe. A different key is refused even with --force: pseudonyms would not link."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"OUT_DIR {out_dir} is a file, not a folder")
    previous = read_manifest(out_dir)
    wanted = _manifest(settings)
    if previous is not None:
        if previous.get("key_fingerprint") != wanted["key_fingerprint"]:
            raise KeyMismatch("{out_dir} was written with the key of fingerprint {expected}, not {given}: give "
                              "that key with {key}, or write to a new OUT_DIR",
                              out_dir=out_dir, expected=previous.get("key_fingerprint"),
                              given=wanted["key_fingerprint"])
        for field_name in ("recipe_hash", "org_root"):
            if previous.get(field_name) != wanted[field_name] and not force:
                raise OutputConflict(
                    "{out_dir} was written with a different {what} ({old} != {new}); use a new OUT_DIR, or "
                    "{force} to redo it", out_dir=out_dir, what=field_name.replace("_", " "),
                    old=previous.get(field_name), new=wanted[field_name])
    elif out_dir.is_dir() and any(p.name != TEMP_DIR_NAME for p in out_dir.iterdir()) and not force:
        raise OutputConflict("{out_dir} is not empty and was not written by deid run; use an empty folder or "
                             "{force}", out_dir=out_dir)


def prepare_out_dir(out_dir: Path, settings: Settings, force: bool) -> None:
    """Check OUT_DIR (see `check_out_dir`), then create it and record what this run is made with."""
    check_out_dir(out_dir, settings, force)
    out_dir.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / MANIFEST_NAME
    temporary = manifest_path.with_suffix(".tmp")
    temporary.write_text(json.dumps(_manifest(settings), indent=2) + "\n")
    os.replace(temporary, manifest_path)


# -- workers ---------------------------------------------------------------------------------------------
_worker_pipeline: Pipeline | None = None


class _FileTimeout(FileRejected):
    pass


def _on_alarm(signum, frame):  # noqa: ARG001 - signal handler signature
    raise _FileTimeout("timeout", "per-file time budget exceeded")


#: Audit rows wait for the private mapping to be synced: at most this many files or seconds (see _commit).
AUDIT_COMMIT_FILES = 256
AUDIT_COMMIT_S = 0.25
#: Most files in one chunk sent to a pool worker (see `chunk_files`).
MAX_CHUNK_FILES = 16
#: Pools that may break before running anything, in a row, before the batch gives up.
MAX_IDLE_POOL_RESTARTS = 3
#: Linux prctl(2) option: the signal a process gets when its parent dies.
PR_SET_PDEATHSIG = 1
#: How often a worker checks that its parent is still there (the fallback where prctl is not available).
PARENT_WATCH_INTERVAL_S = 0.5


#: The cyclic garbage collector's first threshold while a batch runs (Python's default is 700 allocations).
GC_YOUNG_THRESHOLD = 10_000


@contextlib.contextmanager
def fewer_collections() -> Iterator[None]:
    """Run the cyclic garbage collector about 14 times less often while the batch runs (workers forked here
    inherit it); the caller's setting comes back after.

    Why: every file allocates tens of thousands of short-lived objects (pydicom elements, values), so the
    default threshold made ~630 young and 2 full collections per 1000 header files, 3-4 % of a header-only
    run's CPU; with 10 000 most of them are gone before a collection looks (~25 young, no full one; 0.26 ->
    0.08 s measured). Memory stays bounded: a collection still runs every 10 000 net allocations."""
    import gc

    previous = gc.get_threshold()
    if previous[0]:  # 0: the caller turned automatic collection off; leave it so
        gc.set_threshold(max(previous[0], GC_YOUNG_THRESHOLD), *previous[1:])
    try:
        yield
    finally:
        gc.set_threshold(*previous)


def chunk_files(remaining: int, workers: int) -> int:
    """How many of the `remaining` files the next chunk takes: a quarter of each worker's share, at most
    MAX_CHUNK_FILES, at least one ("guided" scheduling).

    Why: each chunk is a round trip through the pool's queues (pickled outcomes, a wake-up of the parent's
    feeder thread, the worker idle until its next chunk arrives); chunks of 8 left each worker idle 3-7 % of
    a 1000-file header-only run. Large chunks while many files remain, then smaller ones, so both workers
    finish together; small batches (a few OCR files) still go one or two files at a time. The cap bounds
    what a crashing worker takes down: its chunks in flight are retried one file at a time."""
    return max(1, min(MAX_CHUNK_FILES, remaining // (workers * 4)))


def _die_with_parent(parent_pid: int) -> None:
    """Make this worker die when the parent does, even on kill -9 of the parent.

    Why: a pool worker blocks on its task queue whose write end it inherited, so it never sees EOF and an
    orphaned worker would run on (holding files, CPU and GPU) long after the batch is gone. Linux delivers
    SIGKILL through PR_SET_PDEATHSIG; a daemon thread watching getppid() covers other systems and the race
    where the parent died before prctl ran.
    """
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(PARENT_WATCH_INTERVAL_S)
        os._exit(1)

    threading.Thread(target=watch, name="deid-parent-watch", daemon=True).start()


def _kernel_reports_syncfs_errors() -> bool:
    """syncfs(2) returns write-back errors (EIO, ENOSPC) only since Linux 5.8; before, it says 0 regardless."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        major, minor = (int(part) for part in os.uname().release.split(".")[:2])
    except ValueError:
        return False
    return (major, minor) >= (5, 8)


_SYNCFS = None
if _kernel_reports_syncfs_errors():
    with contextlib.suppress(OSError, AttributeError):
        _SYNCFS = ctypes.CDLL(None, use_errno=True).syncfs


def sync_paths(files: list[Path], root: Path) -> None:
    """Make `files` (renamed into `root`) durable, with their names and any new folders.

    Linux >= 5.8: one syncfs(2) of the file system holding `root` (data, inodes and folder entries of the
    whole group in one journal commit, errors reported). Elsewhere: fsync each file, then every folder
    from theirs up to `root`. Raises OSError: the caller stops the batch and records nothing of the group.
    """
    if not files:
        return
    if _SYNCFS is not None:
        descriptor = os.open(root, os.O_RDONLY)
        try:
            if _SYNCFS(descriptor) != 0:
                number = ctypes.get_errno()
                raise OSError(number, os.strerror(number), str(root))
        finally:
            os.close(descriptor)
        return
    folders: set[Path] = set()
    for path in files:
        descriptor = os.open(path, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        folder = path.parent
        while folder not in folders and folder != root and root in folder.parents:
            folders.add(folder)
            folder = folder.parent
    folders.add(root)
    for folder in folders:
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            with contextlib.suppress(OSError):  # some file systems cannot fsync a folder
                os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _warm_up_before_fork(settings: Settings) -> None:
    """Load in the parent what every worker would otherwise load on its first files (the pixel modules, the
    20 000-concept coding dictionary: ~0.2 s of CPU each), so forked workers share one copy. With OCR on, the
    engine's libraries too (`deidcli.ocr.engines.import_engine`: ~0.27 s of CPU per worker, measured); each
    worker still loads its own models. And numpy.ma, which `np.median` imports on its first call (its NaN
    check): ~0.06 s of CPU in each worker's first file, measured."""
    import numpy.ma  # noqa: F401 - imported for its side effect

    import deidcli.pixels  # noqa: F401 - imported for its side effect
    from deidcli.codes import dictionary_meanings

    dictionary_meanings("DCM", "113100")
    if settings.ocr != "never":
        from deidcli.ocr.engines import import_engine

        import_engine(settings.ocr_engine)


def _ocr_threads(workers: int) -> int:
    """Each worker's share of the cores for its OCR engine (one worker on two cores: two threads)."""
    from deidcli.ocr.threads import engine_threads

    return engine_threads(workers)


def _init_worker(settings: Settings, temp_dir: Path, parent_pid: int | None = None,
                 ocr_threads: int | None = None) -> None:
    """Runs once per worker process: die with the parent, ignore Ctrl-C (the parent coordinates) and build
    the pipeline."""
    global _worker_pipeline
    if parent_pid is not None:
        _die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _worker_pipeline = Pipeline(settings, temp_dir, ocr_threads)
    _worker_pipeline.fsync_each_file = False  # the parent syncs each group before recording it


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


def _work_chunk(items: list[tuple[Path, str]]) -> tuple[list[Outcome], OSError | None]:
    """The outcomes of a chunk's files, and the storage error that stopped it (the disk, not a file: the
    pipeline raises only those) or None. The files finished before the error come back with it, so the parent
    records them before it stops the batch, however many files a chunk holds."""
    assert _worker_pipeline is not None
    outcomes: list[Outcome] = []
    for path, relative in items:
        try:
            outcomes.append(_process_with_budget(_worker_pipeline, path, relative))
        except OSError as error:
            return outcomes, error
    return outcomes, None


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
        #: output path -> SHA-256 of what this run wrote there (from the workers): the seal reads none back
        self.digests: dict[str, str] = {}
        #: output folders (relative) resolved inside OUT_DIR and created by this run (see `resolve_inside`)
        self._ready_folders: set[str] = set()

    def run(self) -> BatchSummary:
        with fewer_collections():
            return self._run()

    def _run(self) -> BatchSummary:
        started = time.perf_counter()
        check_folders(self.in_dir, self.out_dir, self.private_dir)
        audit_path = self.out_dir / AUDIT_NAME
        try:
            done, self.written_paths, order, todo = self._prepare(audit_path)
        except StorageFailure as failure:  # detected before the first file: same exit, same message
            return self._stopped(failure, audit_path, started)
        exit_code = EXIT_OK
        interrupted = False
        stopped: StorageFailure | None = None
        previous_handlers = self._install_signal_handlers()
        bar = tqdm(total=len(order), initial=len(order) - len(todo), unit="file", disable=not self.progress,
                   dynamic_ncols=True, file=sys.stderr)
        self.bar = bar
        try:
            with contextlib.closing(self._outcomes(todo)) as outcomes:
                for outcome in outcomes:
                    self._finish(outcome)
        except Interrupted as stop:
            exit_code, interrupted = stop.exit_code, True
        except StorageFailure as failure:
            stopped = failure
        except OSError as error:
            if storage_error(error) is None:
                raise
            stopped = StorageFailure("OUT_DIR", storage_error(error))
        finally:
            late: list[int] = []  # Ctrl-C / SIGTERM while finishing: noted, honoured once the audit is whole
            self._install_signal_handlers(late.append)
            bar.close()
            shutil.rmtree(self.temp_dir, ignore_errors=True)
            try:
                self._commit()
            except StorageFailure as failure:
                stopped = stopped or failure
            self.audit.close()
            self.mapping.close()
            record_run_folders(self.private_dir, self.in_dir, self.out_dir)  # best effort: lookups only
        try:
            if stopped is not None:
                return self._stopped(stopped, audit_path, started)
            if interrupted or late:
                rows = read_audit(audit_path)
                exit_code = exit_code if interrupted else _exit_code_of(late[0])
                return BatchSummary(rows, exit_code, self.counts, time.perf_counter() - started, True)
            try:
                rows = compact_audit(audit_path, order)
                # OUT_DIR/SHA256SUMS + run facts for `deid verify` / `deid report`
                seal_release(self.out_dir, self.private_dir, in_dir=self.in_dir, recipe=self.settings.recipe.to_json(),
                             known=self.digests)
            except OSError as error:
                return self._stopped(StorageFailure("OUT_DIR", error), audit_path, started)
            if any(row["status"] == Status.QUARANTINED.value for row in rows):
                exit_code = EXIT_QUARANTINED
            return BatchSummary(rows, exit_code, self.counts, time.perf_counter() - started, interrupted)
        finally:
            self._restore_signal_handlers(previous_handlers)

    def _prepare(self, audit_path: Path) -> tuple[set[str], set[str], list[str], list[InputFile]]:
        """Everything before the first file: OUT_DIR's manifest, the temporary folder, the audit and the
        private mapping opened, what is already done. Any write failure here is a StorageFailure."""
        where = "OUT_DIR"
        try:
            prepare_out_dir(self.out_dir, self.settings, self.force)
            shutil.rmtree(self.temp_dir, ignore_errors=True)  # leftovers of a killed run: never complete files
            self.temp_dir.mkdir()
            _reserve_space(self.temp_dir / AUDIT_RESERVE_NAME, AUDIT_RESERVE_BYTES)
            if self.force and audit_path.exists():
                audit_path.unlink()
            skipped: list[str] = []
            done, written = self._already_done(audit_path, skipped)
            self.audit = CsvAppender(audit_path, AUDIT_COLUMNS)
            self._unaudited: list[list] = []  # rows of finished files whose mapping is not yet synced
            self._unsynced: list[Path] = []  # outputs renamed since the last commit
            self._committed = time.monotonic()
            where = "the private folder"
            self.mapping = PrivateMapping(self.private_dir)
        except OSError as error:
            if hasattr(self, "audit"):
                self.audit.close()
            raise StorageFailure(where, error) from error
        repaired = [table.path for table in (self.audit, *self.mapping.tables) if table.repaired]
        skipped += [f"{path}: an unfinished last line (a write cut short) was removed" for path in repaired]
        for problem in skipped + self.mapping.skipped:
            print(f"warning: {problem}", file=sys.stderr)
        inputs = list(discover(self.in_dir))
        order = [input_id(self.settings.key, item.relative) for item in inputs]
        todo = [item for item, identity in zip(inputs, order, strict=True) if identity not in done]
        return done, written, order, todo

    def _stopped(self, failure: StorageFailure, audit_path: Path, started: float) -> BatchSummary:
        return BatchSummary(read_audit(audit_path), EXIT_DISK_FULL, self.counts, time.perf_counter() - started,
                            interrupted=True, message=failure.message)

    def _already_done(self, audit_path: Path, skipped: list[str]) -> tuple[set[str], set[str]]:
        """Inputs finished by an earlier run into this OUT_DIR (written with the output still present, or
        skipped), and the output paths they own (so a duplicate instance redone on resume cannot overwrite).
        A damaged audit record is reported in `skipped`; its file is simply redone."""
        done: set[str] = set()
        owned: set[str] = set()
        fingerprint = key_fingerprint(self.settings.key)
        for row in read_audit(audit_path, skipped):
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
        pipeline = Pipeline(self.settings, self.temp_dir, _ocr_threads(1))
        pipeline.fsync_each_file = False  # _commit syncs each group before recording it
        for item in todo:
            yield self._skip_outcome(item) or _process_with_budget(pipeline, item.path, item.relative)

    def _pool_outcomes(self, todo: list[InputFile]) -> Iterator[Outcome]:
        """Files go to workers in small chunks (fewer round trips); results are finished here, in the parent.

        If a worker dies (a codec crashing on hostile bytes kills the process, not just the file), every
        chunk in flight is lost; their files are retried one at a time, and a file that kills a worker
        on its own is quarantined as `worker_crashed`.

        A chunk stopped by a storage error (full disk) ends the batch, but first the chunks still in flight
        are let finish (they stop at their own first failed write): every file some worker completed is
        recorded, whichever chunk happens to report the full disk first.
        """
        if len(todo) > self.workers:
            _warm_up_before_fork(self.settings)  # shared by the workers; a run of a file or two loads only what it needs
        pending = deque(todo)
        window = self.workers * 2
        suspects: deque[InputFile] = deque()
        pool = self._new_pool()
        in_flight: dict[Future, list[InputFile]] = {}
        isolated: set[Future] = set()
        skipped: list[Outcome] = []
        restarts = 0  # pools that broke with nothing in flight (workers that cannot even start)
        storage: OSError | None = None  # the first storage error a chunk reported: nothing more is sent
        try:
            while True:
                while len(in_flight) < window and storage is None:
                    alone = bool(suspects)
                    if alone:
                        if in_flight:
                            break  # a suspect runs alone, so a crash names its file
                        chunk = [suspects.popleft()]
                    else:
                        chunk = self._next_chunk(pending, chunk_files(len(pending), self.workers), skipped)
                        yield from skipped
                        skipped.clear()
                        if not chunk:
                            break
                    try:
                        future = pool.submit(_work_chunk, [(item.path, item.relative) for item in chunk])
                    except BrokenProcessPool:  # a worker died since the last wait(): retry after the restart
                        if alone:
                            suspects.appendleft(chunk[0])
                        else:
                            pending.extendleft(reversed(chunk))
                        if not in_flight:
                            pool = self._restart_pool(pool, restarts := restarts + 1)
                            continue
                        break
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
                        outcomes, stopped = future.result()
                    except BrokenProcessPool:
                        broken = True
                        if future in isolated:
                            yield self._crash_outcome(chunk[0])
                        else:
                            suspects.extend(chunk)
                        continue
                    restarts = 0
                    yield from outcomes
                    storage = storage or stopped  # the pipeline re-raises only storage errors
                if broken:
                    for chunk in in_flight.values():
                        suspects.extend(chunk)
                    in_flight.clear()
                    isolated.clear()
                    _kill_pool(pool)
                    pool = self._new_pool()
            if storage is not None:
                raise StorageFailure("OUT_DIR", storage) from storage
        except BaseException:
            _kill_pool(pool)
            raise
        pool.shutdown(wait=True)

    def _new_pool(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(self.workers, initializer=_init_worker,
                                   initargs=(self.settings, self.temp_dir, os.getpid(), _ocr_threads(self.workers)))

    def _restart_pool(self, pool: ProcessPoolExecutor, restarts: int) -> ProcessPoolExecutor:
        """A new pool for one that broke with nothing in flight; a few in a row means workers cannot start."""
        _kill_pool(pool)
        if restarts > MAX_IDLE_POOL_RESTARTS:
            raise RuntimeError("worker processes die as they start; try --workers 1 to see why")
        return self._new_pool()

    def _next_chunk(self, pending: deque[InputFile], size: int, skipped: list[Outcome]) -> list[InputFile]:
        """Up to `size` files to process; files discovery already rejected go to `skipped` on the way."""
        chunk: list[InputFile] = []
        while len(chunk) < size and pending:
            item = pending.popleft()
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
                final = resolve_inside(self.out_dir, result.output_path, self._ready_folders)
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
                    folder = result.output_path.rpartition("/")[0]
                    if folder not in self._ready_folders:
                        final.parent.mkdir(parents=True, exist_ok=True)
                        mark_ready(self._ready_folders, folder)
                    os.replace(outcome.temp_path, final)
                except OSError as error:
                    outcome.temp_path.unlink(missing_ok=True)
                    raise StorageFailure("OUT_DIR", error) from error
                self.written_paths.add(result.output_path)
                self._unsynced.append(final)
                if outcome.sha256:
                    self.digests[result.output_path] = outcome.sha256
        # The private mapping before the audit row: the row is what makes resume skip the file, so a file
        # the audit calls done always has its mapping on disk. A failure leaves no row: the file is redone.
        try:
            self.mapping.record(outcome.private)
        except OSError as error:
            raise StorageFailure("the private folder", error) from error
        self._unaudited.append(audit_row(result))
        if len(self._unaudited) >= AUDIT_COMMIT_FILES or time.monotonic() - self._committed >= AUDIT_COMMIT_S:
            self._commit()
        self.counts[(result.status, result.reason)] += 1
        if not self.bar.disable:  # --no-progress (or no terminal): no per-file bar bookkeeping at all
            self.bar.update(1)
            quarantined = sum(n for (status, _), n in self.counts.items() if status == Status.QUARANTINED.value)
            self.bar.set_postfix(quarantined=quarantined, refresh=False)

    def _commit(self) -> None:
        """Make the outputs and the mapping of the files finished since the last commit durable, then write
        their audit rows (issue 15: outputs are no longer fsync'd one by one in the workers).

        Why grouped: one fdatasync per file costs ~10 ms on a plain disk (header-only runs went from 59 to 37
        files/s); one per quarter second costs little and keeps the rule that an audited file has its mapping
        on disk. A kill loses at most the rows of the last quarter second: those files are redone on resume.
        """
        if not self._unaudited:
            return
        try:
            sync_paths(self._unsynced, self.out_dir)  # outputs first: an audited file is on disk
        except OSError as error:
            self._unaudited = []  # nothing of this group is recorded: resume redoes it
            raise StorageFailure("OUT_DIR", error) from error
        self._unsynced = []
        try:
            self.mapping.sync()
        except OSError as error:
            raise StorageFailure("the private folder", error) from error
        try:
            self.audit.append(self._unaudited)
        except OSError as error:
            raise StorageFailure("OUT_DIR", error) from error
        self._unaudited = []
        self._committed = time.monotonic()

    # -- signals -------------------------------------------------------------------------------------------
    def _install_signal_handlers(self, note: Callable[[int], None] | None = None) -> dict:
        """SIGINT/SIGTERM raise Interrupted (the batch stops); with `note`, they are only noted (while the
        audit and the mapping are being finished, which must not be cut in half)."""
        def stop(signum, frame):  # noqa: ARG001
            if note is not None:
                note(signum)
                return
            raise Interrupted(_exit_code_of(signum))

        previous = {}
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(ValueError):  # not the main thread (a library thread): no handlers
                previous[signum] = signal.signal(signum, stop)
        return previous

    @staticmethod
    def _restore_signal_handlers(previous: dict) -> None:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _exit_code_of(signum: int) -> int:
    return EXIT_SIGINT if signum == signal.SIGINT else EXIT_SIGTERM


def summarise(summary: BatchSummary) -> str:
    """The one-paragraph end-of-run summary (no PHI: counts and reason codes only).

    Counts are this run's; inputs an earlier run already finished (same recipe and key) are reported as
    "skipped (already done)", so a re-run never claims to have written what it did not touch."""
    rows = summary.rows
    by_status = Counter()
    for (status, _reason), number in summary.counts.items():
        by_status[status] += number
    processed = sum(by_status.values())
    already_done = max(0, len(rows) - processed)
    reasons = Counter(row["reason"] for row in rows if row["status"] != Status.WRITTEN.value)
    if already_done and not processed:
        text = f"{already_done} skipped (already done) of {len(rows)} files: nothing new to do."
    else:
        rate = processed / summary.seconds if summary.seconds else 0.0
        done = f", {already_done} skipped (already done)" if already_done else ""
        text = (
            f"{by_status['written']} written, {by_status['quarantined']} quarantined, "
            f"{by_status['skipped']} skipped{done} of {len(rows)} files in {summary.seconds:.1f} s "
            f"({rate:.1f} files/s)."
        )
    if reasons:
        text += " Not written, by reason: " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())) + "."
    return text
