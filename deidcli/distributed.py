"""Scale out: the per-file work of `deid run` on a Dask cluster (`dask.distributed`).

Imported only with `--scheduler` (the optional extra `deidcli[dask]`); a run without it never imports dask.

How the work is split, and why:

* **The client keeps the batch.** `BatchRun` on the client discovers, resumes, renames each temporary file
  into place, appends the audit and writes the private mapping, exactly as in local mode (this module is a
  `batch.FileExecutor`). Workers only run the pipeline and write fsync'd temporary files into OUT_DIR's
  temporary folder, which every worker reaches at the same path (a shared file system).
* **Settings travel once per worker, never in a task.** A `WorkerPlugin` carries the recipe, the key and
  the OCR options to every worker (and to workers that join later); each worker process builds its
  `Pipeline` once (recipe indexes, OCR model). Tasks carry only file paths and the plugin's name, so
  neither the dashboard nor the logs can show the key. Tasks never raise: a failed task's arguments would
  be logged by the worker.
* **Bounded streaming.** Files go out in small chunks with at most two chunks per worker thread in
  flight (`as_completed` and refill): a million files never become a million-future graph.
* **Workers that die.** When a worker dies, the scheduler reschedules its tasks elsewhere. Each file's
  start is marked in the temporary folder (`<input id>.startN`, removed when the file finishes), so a
  marker left behind means a worker died while that file ran. A file with two such markers is not
  started a third time: it is quarantined `worker_crashed`. This holds whatever the scheduler's
  `allowed-failures` is; when the scheduler gives up first (`KilledWorker`), the client resubmits the
  chunk and the markers decide again.
* **Per-file time budget.** Dask runs tasks in threads, where SIGALRM cannot reach; a timer raises the
  same time-out exception in the task's thread (between bytecodes, as SIGALRM would).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import itertools
import os
import platform
import secrets
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from deidcli.batch import InputFile, Interrupted, StorageFailure
from deidcli.errors import DeidError, FileRejected, UsageError, storage_error
from deidcli.pipeline import Outcome, Pipeline, Settings, input_id, unprocessed_outcome

try:
    from distributed import CancelledError, Client, KilledWorker, WorkerPlugin, as_completed, get_worker
except ImportError as _missing:  # pragma: no cover - exercised only without the extra
    raise UsageError("--scheduler needs Dask: pip install 'deidcli[dask]'") from _missing

#: A file whose start was marked this many times without finishing (its worker died each time) is quarantined.
MAX_CRASHES_PER_FILE = 2
#: How often one chunk may be lost (its worker died, the scheduler gave up) before its files are quarantined.
MAX_CHUNK_ATTEMPTS = 5
#: Files per task: enough to amortise the scheduler's per-task cost, small enough to keep workers balanced.
MAX_CHUNK_FILES = 32
#: Chunks in flight per worker thread.
IN_FLIGHT_PER_THREAD = 2
CONNECT_TIMEOUT_S = 30
#: Files the code digest covers (what a wheel installs of the two packages).
_CODE_SUFFIXES = (".py", ".json", ".txt", ".csv")


class ClusterError(DeidError):
    """The scheduler could not be reached or was lost during the run."""


# -- the worker side -------------------------------------------------------------------------------------
class RunSettingsPlugin(WorkerPlugin):
    """One run's Settings on every worker, sent once through the scheduler (never in a task).

    The pipeline is built once per worker process and shared by the worker's threads; the OCR model is
    loaded at setup when the run may need it, so the first file does not pay for it.
    """

    def __init__(self, name: str, settings: Settings, temp_dir: Path) -> None:
        self.name = name
        self.settings = settings
        self.temp_dir = temp_dir
        self._pipeline: Pipeline | None = None
        self._lock = threading.Lock()

    def __getstate__(self) -> dict:
        return {"name": self.name, "settings": self.settings, "temp_dir": self.temp_dir}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["name"], state["settings"], state["temp_dir"])

    def setup(self, worker) -> None:  # noqa: ARG002 - WorkerPlugin signature
        pipeline = self.pipeline()
        if self.settings.ocr != "never":
            pipeline.scanner  # noqa: B018 - loads the OCR model once, now

    def teardown(self, worker) -> None:  # noqa: ARG002 - WorkerPlugin signature
        self._pipeline = None

    def pipeline(self) -> Pipeline:
        with self._lock:
            if self._pipeline is None:
                self._pipeline = Pipeline(self.settings, self.temp_dir)
            return self._pipeline


@dataclass
class ChunkResult:
    """What one task sends back: the outcomes of the files it finished; a storage error (errno, message:
    OUT_DIR full or read-only) stops the batch as it does locally (exit 4)."""

    outcomes: list[Outcome] = field(default_factory=list)
    storage_error: tuple[int, str] | None = None
    plugin_missing: bool = False


def process_chunk(plugin_name: str, items: list[tuple[str, str, str]]) -> ChunkResult:
    """The task: (absolute path, relative path, input id) per file. Never raises (see the module doc)."""
    try:
        plugin = get_worker().plugins[plugin_name]
    except (KeyError, ValueError):
        return ChunkResult(plugin_missing=True)
    pipeline = plugin.pipeline()
    chunk = ChunkResult()
    for path, relative, identity in items:
        try:
            chunk.outcomes.append(_process_file(pipeline, Path(path), relative, identity))
        except OSError as error:  # the pipeline lets only storage errors through
            failure = storage_error(error)
            if failure is None:
                chunk.outcomes.append(unprocessed_outcome(pipeline.settings, relative, "write_failed",
                                                          type(error).__name__))
                continue
            chunk.storage_error = (failure.errno, failure.strerror or "")
            break
        except Exception as error:  # noqa: BLE001 - one bad file must never stop the batch
            chunk.outcomes.append(unprocessed_outcome(pipeline.settings, relative, "internal_error",
                                                      type(error).__name__))
    return chunk


def _process_file(pipeline: Pipeline, path: Path, relative: str, identity: str) -> Outcome:
    allowed, marker = _mark_start(pipeline.temp_dir, identity)
    if not allowed:
        return unprocessed_outcome(pipeline.settings, relative, "worker_crashed",
                                   f"{MAX_CRASHES_PER_FILE} workers died on it")
    try:
        return _process_with_thread_budget(pipeline, path, relative)
    finally:
        if marker is not None:
            with contextlib.suppress(OSError):
                marker.unlink()


def _mark_start(temp_dir: Path, identity: str) -> tuple[bool, Path | None]:
    """Claim the next start marker of a file: (may it start, the marker to remove when it finishes).

    Markers left by earlier starts mean workers died on this file. If the marker cannot be written (an odd
    shared file system), the file still runs: crash counting then falls back to the scheduler's.
    """
    for start in range(1, MAX_CRASHES_PER_FILE + 1):
        marker = temp_dir / f"{identity}.start{start}"
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
        except FileExistsError:
            continue
        except OSError:
            return True, None
        return True, marker
    return False, None


class _BudgetExceeded(FileRejected):
    """Raised asynchronously in a task's thread when its file is over the time budget."""

    def __init__(self) -> None:
        super().__init__("timeout", "per-file time budget exceeded")


class _ThreadBudget:
    """A wall-clock budget for the calling thread: the thread gets `_BudgetExceeded` when it runs out.

    Why not SIGALRM: signals reach only the main thread and Dask runs tasks in worker threads. Like a
    signal handler, an asynchronous exception lands between bytecodes, so C code (a codec) finishes first.
    It can also land in a finaliser or weakref callback run by the garbage collector, which swallows it;
    so it is raised again every `REFIRE_S` until the budget is disarmed. The lock makes firing and
    disarming exclusive; a fired-but-undelivered exception is cleared on exit so it can never land in
    Dask's own code afterwards.
    """

    REFIRE_S = 0.1

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.thread_id = threading.get_ident()
        self.lock = threading.Lock()
        self.armed = False
        self.fired = False
        self.timer: threading.Timer | None = None

    def __enter__(self) -> _ThreadBudget:
        self.armed = True
        self._start_timer(self.seconds)
        return self

    def _start_timer(self, seconds: float) -> None:
        self.timer = threading.Timer(seconds, self._fire)
        self.timer.daemon = True
        self.timer.start()

    def _fire(self) -> None:
        with self.lock:
            if self.armed:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.thread_id),
                                                           ctypes.py_object(_BudgetExceeded))
                self.fired = True
                self._start_timer(self.REFIRE_S)

    def __exit__(self, *exc_info) -> None:
        with self.lock:
            self.armed = False
            if self.timer is not None:
                self.timer.cancel()
            if self.fired:  # not delivered yet? then never
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self.thread_id), None)


def _process_with_thread_budget(pipeline: Pipeline, path: Path, relative: str) -> Outcome:
    budget = pipeline.settings.file_timeout_s
    if budget <= 0:
        return pipeline.process(path, relative)
    try:
        with _ThreadBudget(budget):
            return pipeline.process(path, relative)
    except _BudgetExceeded:
        return unprocessed_outcome(pipeline.settings, relative, "timeout", f"over {budget:g} s")


# -- what a worker runs: its versions, OCR readiness, the shared folders -------------------------------------
def code_digest() -> str:
    """A digest of the installed deidcli code and built-in recipes: the same version string with other
    code (a development install) would not give byte-identical output, so the version alone is not enough."""
    digest = hashlib.sha256()
    for package in ("deidcli", "deidcli.recipes"):
        root = resources.files(package)
        for relative, data in sorted(_package_files(root, "")):
            digest.update(f"{package}/{relative}".encode() + b"\0" + hashlib.sha256(data).digest())
    return digest.hexdigest()[:16]


def _package_files(folder, prefix: str) -> Iterator[tuple[str, bytes]]:
    for entry in folder.iterdir():
        if entry.name.startswith((".", "__pycache__")):
            continue
        if entry.is_dir():
            if entry.name != "recipes" or prefix:  # deidcli.recipes is hashed as its own package
                yield from _package_files(entry, f"{prefix}{entry.name}/")
        elif entry.name.endswith(_CODE_SUFFIXES):
            yield f"{prefix}{entry.name}", entry.read_bytes()


def node_report(recipe_name: str | None = None, ocr_engine: str | None = None,
                folders: tuple[str, ...] = ()) -> dict:
    """Run on each worker: what it would run the batch with. Plain data only (no paths beyond `folders`)."""
    from deidcli import _version

    report: dict = {
        "host": socket.gethostname(), "pid": os.getpid(), "python": platform.python_version(),
        "deidcli": _version.__version__, "code": code_digest(), "recipe": "", "recipe_hash": "", "ocr": "",
        "folders": "",
    }
    with contextlib.suppress(ValueError):
        report["threads"] = get_worker().state.nthreads
    try:
        import pydicom

        report["pydicom"] = pydicom.__version__
    except ImportError:  # pragma: no cover - a broken worker environment
        report["pydicom"] = "missing"
    if recipe_name:
        report["recipe"] = recipe_name
        try:
            from deidcli.recipe.load import load_recipe

            report["recipe_hash"] = load_recipe(recipe_name).hash
        except Exception as error:  # noqa: BLE001 - reported, not raised
            report["recipe_hash"] = f"error: {type(error).__name__}"
    if ocr_engine:
        report["ocr"] = _ocr_readiness(ocr_engine)
    if folders:
        report["folders"] = _folders_reachable(folders)
    return report


def _ocr_readiness(engine: str) -> str:
    try:
        from deidcli.ocr import make_detector

        detector = make_detector(engine)
        load_all = getattr(detector, "load_all", None)
        if load_all is not None:  # models that load on first use: a readiness check must see them all
            load_all()
    except Exception as error:  # noqa: BLE001 - reported, not raised
        return f"{engine} not ready ({type(error).__name__})"
    return f"{engine} ready"


def _folders_reachable(folders: tuple[str, ...]) -> str:
    """IN_DIR must be a readable folder and OUT_DIR (or the folder it will be made in) writable, at the
    same paths as on the client. The probe file is removed at once."""
    in_dir, out_dir = folders
    if not os.path.isdir(in_dir) or not os.access(in_dir, os.R_OK | os.X_OK):
        return "IN_DIR not reachable"
    probe = Path(out_dir) / f".deid-probe-{socket.gethostname()}-{os.getpid()}"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError:
        return "OUT_DIR not writable"
    return "ok"


@dataclass
class ClusterCheck:
    """Each worker's report and what stops this client from using the cluster (empty: go)."""

    scheduler: str
    client: dict
    workers: dict[str, dict]
    problems: list[str]

    def table(self) -> str:
        columns = ("worker", "host", "threads", "deidcli", "code", "recipe_hash", "ocr", "folders")
        rows = [("(this client)", self.client["host"], "", self.client["deidcli"], self.client["code"],
                 self.client["recipe_hash"], self.client["ocr"], "")]
        for address, report in sorted(self.workers.items()):
            rows.append((address, *(str(report.get(name, "")) for name in columns[1:])))
        widths = [max(len(str(row[i])) for row in [columns, *rows]) for i in range(len(columns))]
        return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                         for row in [columns, *rows])


def check_cluster(client: Client, recipe_name: str | None, ocr_engine: str | None,
                  folders: tuple[str, ...] = ()) -> ClusterCheck:
    """Compare every worker with this client: deidcli version, code digest, recipe hash; OCR readiness and
    the shared folders where asked. Workers that cannot even run the check (deidcli missing) are problems."""
    mine = node_report(recipe_name, None)
    mine["ocr"] = ""
    answers = client.run(node_report, recipe_name, ocr_engine, folders, on_error="return")
    problems: list[str] = []
    workers: dict[str, dict] = {}
    if not answers:
        problems.append("the cluster has no workers")
    for address, report in sorted(answers.items()):
        if not isinstance(report, dict):
            problems.append(f"{address}: cannot run deidcli ({type(report).__name__})")
            workers[address] = {"deidcli": "?", "ocr": type(report).__name__}
            continue
        workers[address] = report
        if report["deidcli"] != mine["deidcli"]:
            problems.append(f"{address}: deidcli {report['deidcli']}, this client runs {mine['deidcli']}")
        elif report["code"] != mine["code"]:
            problems.append(f"{address}: deidcli {report['deidcli']} with other code (digest {report['code']}, "
                            f"this client {mine['code']}): install the same build everywhere")
        if recipe_name and report["recipe_hash"] != mine["recipe_hash"]:
            problems.append(f"{address}: recipe {recipe_name} hash {report['recipe_hash']}, "
                            f"this client {mine['recipe_hash']}")
        if ocr_engine and not report["ocr"].endswith(" ready"):
            problems.append(f"{address}: {report['ocr']}")
        if folders and report["folders"] != "ok":
            problems.append(f"{address}: {report['folders']} at the path this client uses (shared file system?)")
    return ClusterCheck(str(client.scheduler.address), mine, workers, problems)


def connect(scheduler: str) -> Client:
    """A client of the scheduler at `scheduler` (tcp://HOST:8786, or tls:// with Dask's TLS settings)."""
    try:
        return Client(scheduler, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError) as error:
        raise ClusterError(f"cannot reach the Dask scheduler at {scheduler}: {type(error).__name__}") from None


def builtin_recipe_name(settings: Settings) -> str | None:
    """The built-in recipe the run uses, if it is one (workers can then check they have the same)."""
    from deidcli.recipe.load import builtin_names, load_recipe

    name = settings.recipe.name
    if name in builtin_names() and load_recipe(name).hash == settings.recipe.hash:
        return name
    return None


# -- the client side: a batch.FileExecutor -------------------------------------------------------------------
class DaskExecutor:
    """Runs the pipeline on a Dask cluster and yields each file's Outcome as it completes."""

    def __init__(self, scheduler: str) -> None:
        self.scheduler = scheduler
        self._client: Client | None = None

    def check(self, settings: Settings, in_dir: Path, out_dir: Path) -> None:
        """Before anything is created (key, OUT_DIR): connect, and refuse with a UsageError a cluster whose
        workers run another deidcli, other code or another recipe, lack the OCR engine the run needs, or do
        not reach IN_DIR and OUT_DIR at this client's paths."""
        client = self._client or connect(self.scheduler)
        self._client = client
        try:
            target = out_dir.resolve()
            while not target.exists() and target != target.parent:
                target = target.parent
            folders = (str(in_dir.resolve()), str(target))
            check = check_cluster(client, builtin_recipe_name(settings),
                                  settings.ocr_engine if settings.ocr != "never" else None, folders)
        except BaseException:
            self.close()
            raise
        if check.problems:
            self.close()
            raise UsageError("the Dask cluster cannot run this batch:\n  " + "\n  ".join(check.problems))

    def close(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close(timeout=10)
            self._client = None

    def outcomes(self, items: list[InputFile], settings: Settings, temp_dir: Path) -> Iterator[Outcome]:
        if not items:
            self.close()
            return
        temp_dir = temp_dir.resolve()
        if self._client is None:
            self.check(settings, _input_root(items[0]), temp_dir)
        client = self._client
        assert client is not None
        plugin_name = ""
        try:
            plugin_name = f"deidcli-{secrets.token_hex(8)}"
            client.register_plugin(RunSettingsPlugin(plugin_name, settings, temp_dir))
            yield from self._stream(client, plugin_name, items, settings)
        finally:
            if plugin_name:  # the key must not stay on the scheduler after the run
                with contextlib.suppress(Exception):
                    client.unregister_worker_plugin(plugin_name)
            self.close()

    def _stream(self, client: Client, plugin_name: str, items: list[InputFile],
                settings: Settings) -> Iterator[Outcome]:
        threads = max(1, sum(client.nthreads().values()))
        size = max(1, min(MAX_CHUNK_FILES, len(items) // (threads * 8)))
        chunks = iter([items[start:start + size] for start in range(0, len(items), size)])
        run_tag = plugin_name.removeprefix("deidcli-")
        in_flight: dict = {}  # future -> (chunk number, files, attempt)
        # Results are fetched here, not by as_completed(with_results=True): a result lost with its worker is
        # recomputed, and a recomputation that fails surfaces from result(), where it can be handled.
        completed = as_completed(loop=client.loop)

        def submit(number: int, chunk: list[InputFile], attempt: int) -> None:
            payload = [(str(item.path), item.relative, input_id(settings.key, item.relative)) for item in chunk]
            future = client.submit(process_chunk, plugin_name, payload, key=f"deid-file-{run_tag}-{number}-{attempt}",
                                   pure=False)
            in_flight[future] = (number, chunk, attempt)
            completed.add(future)

        numbers = itertools.count()

        def refill() -> None:
            while len(in_flight) < IN_FLIGHT_PER_THREAD * threads:
                chunk = next(chunks, None)
                if chunk is None:
                    return
                submit(next(numbers), chunk, 0)

        try:
            refill()
            for future in completed:
                number, chunk, attempt = in_flight.pop(future)
                try:
                    result = future.result()
                except Interrupted:  # Ctrl-C / SIGTERM while waiting: the batch stops, as locally
                    raise
                except (KilledWorker, CancelledError, OSError, TimeoutError) as error:
                    result = _Lost(type(error).__name__)  # the worker or the connection, not the files
                except Exception as error:  # noqa: BLE001 - the task itself failed: decided below
                    result = error
                finally:
                    future.release()
                if isinstance(result, ChunkResult) and not result.plugin_missing:
                    yield from result.outcomes
                    if result.storage_error:
                        raise StorageFailure("OUT_DIR", OSError(*result.storage_error))
                elif isinstance(result, ChunkResult | _Lost):
                    # the worker died (KilledWorker), the task was cancelled, or a new worker had no settings yet
                    if client.status != "running":  # the scheduler is gone: stop, never blame the files
                        raise ClusterError(f"lost the Dask scheduler at {self.scheduler}; completed files are "
                                           "kept, re-run the same command to resume")
                    if attempt + 1 < MAX_CHUNK_ATTEMPTS:
                        submit(number, chunk, attempt + 1)
                    else:
                        for item in chunk:
                            yield unprocessed_outcome(settings, item.relative, "worker_crashed", "chunk lost")
                else:  # the task raised outside our code (a worker that cannot unpickle it): fail closed
                    for item in chunk:
                        yield unprocessed_outcome(settings, item.relative, "internal_error", type(result).__name__)
                refill()
        finally:
            if in_flight:
                with contextlib.suppress(Exception):
                    client.cancel(list(in_flight), force=True)


@dataclass(frozen=True)
class _Lost:
    """A chunk whose result never came back: its worker died (KilledWorker), it was cancelled, or the
    connection failed. Its files are resubmitted."""

    why: str


def _input_root(item: InputFile) -> Path:
    """IN_DIR as discovery resolved it (every input path is IN_DIR / relative)."""
    return item.path.parents[len(Path(item.relative).parts) - 1]


