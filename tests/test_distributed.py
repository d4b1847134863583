"""`deid run --scheduler` on a real Dask cluster: a LocalCluster of 2 worker processes on TCP loopback.

Worker processes are changed only through worker plugins (a worker that sleeps per file, one that dies on a
poisoned file), exactly as a crashing codec or a lost machine would look to the client.
"""

from __future__ import annotations

import csv
import os
import pickle
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

distributed = pytest.importorskip("distributed")

import dask  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from distributed import Client, LocalCluster, WorkerPlugin  # noqa: E402

import deidcli  # noqa: E402
import deidcli.distributed  # noqa: E402
from deidcli.cli import main  # noqa: E402
from deidcli.distributed import _process_with_thread_budget  # noqa: E402
from deidcli.pipeline import Outcome, Settings  # noqa: E402
from deidcli.recipe.load import load_recipe  # noqa: E402
from tests.conftest import KEY, ORG_ROOT, deid_data_file, pydicom_file, write_planted  # noqa: E402

DEID = [sys.executable, "-m", "deidcli.cli"]
#: Audit columns that measure time: they differ between any two runs.
TIMING_COLUMNS = {"seconds", "decode_seconds", "encode_seconds", "ocr_seconds"}


# -- the cluster and the worker-side test hooks ------------------------------------------------------------
@pytest.fixture(scope="module")
def cluster():
    # LocalCluster closes a worker's nanny when no worker of that name is back `lost-worker-timeout` after a
    # death; on a loaded machine a worker killed twice in a row can miss that window, so give it time.
    with dask.config.set({"distributed.deploy.lost-worker-timeout": "10 minutes"}), LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None) as local:
        assert local.scheduler_address.startswith("tcp://127.0.0.1:")
        yield local


@pytest.fixture
def client(cluster):
    with Client(cluster.scheduler_address, set_as_default=False) as connected:
        connected.wait_for_workers(2, timeout=60)
        yield connected
        connected.wait_for_workers(2, timeout=60)  # a killed worker is back before the next test


class PatchProcess(WorkerPlugin):
    """Wraps Pipeline.process in each worker: files whose name starts with `prefix` get `action`."""

    def __init__(self, name: str, prefix: str, action: str, seconds: float = 0.0) -> None:
        self.name, self.prefix, self.action, self.seconds = name, prefix, action, seconds

    def setup(self, worker) -> None:  # noqa: ARG002
        from deidcli.pipeline import Pipeline

        original = Pipeline.process
        self.original = original
        prefix, action, seconds = self.prefix, self.action, self.seconds

        def process(pipeline, path, relative_path):
            if Path(relative_path).name.startswith(prefix):
                if action == "die":
                    os.kill(os.getpid(), signal.SIGKILL)  # what a crashing codec does to its process
                time.sleep(seconds)
            return original(pipeline, path, relative_path)

        Pipeline.process = process

    def teardown(self, worker) -> None:  # noqa: ARG002
        from deidcli.pipeline import Pipeline

        Pipeline.process = self.original


@pytest.fixture
def slow_workers(client):
    """Every file takes 0.15 s more on the workers, so a run is still going when the test acts."""
    client.register_plugin(PatchProcess("test-slow", "", "sleep", 0.15))
    yield
    client.unregister_worker_plugin("test-slow")


# -- helpers ----------------------------------------------------------------------------------------------
def make_folder(folder: Path, count: int, *extra: str) -> Path:
    for index in range(count):
        write_planted(folder / f"p{index % 4}" / f"file{index:03d}.dcm", patient_id=f"PLANTEDPATIENT{index % 4}")
    for name in extra:
        (folder / name).write_bytes(pydicom_file(name).read_bytes())
    return folder


def header_options(**extra) -> dict:
    return {"key": KEY, "org_root": ORG_ROOT, "ocr": "never", "accept_burned_in_risk": True, **extra}


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*.dcm")}


def audit_without_timings(out: Path) -> list[tuple]:
    rows = deidcli.batch.read_audit(out / "audit.csv")
    return sorted(tuple((k, v) for k, v in row.items() if k not in TIMING_COLUMNS) for row in rows)


def private_table(private: Path, name: str) -> list[dict]:
    with (private / name).open(newline="") as handle:
        return sorted(csv.DictReader(handle), key=lambda row: tuple(row.values()))


def cli_command(in_dir: Path, out_dir: Path, key_file: Path, scheduler: str | None) -> list[str]:
    command = [*DEID, "run", str(in_dir), str(out_dir), "--key-file", str(key_file), "--org-root", ORG_ROOT,
               "--ocr", "never", "--accept-burned-in-risk", "--no-progress"]
    return [*command, "--scheduler", scheduler] if scheduler else [*command, "--workers", "1"]


def wait_for_rows(audit: Path, rows: int, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if audit.exists() and len(audit.read_text().splitlines()) > rows:
            return
        time.sleep(0.01)
    raise AssertionError(f"{audit} never reached {rows} rows")


# -- same output as local mode ------------------------------------------------------------------------------
def test_cluster_run_is_byte_identical_to_local_mode_with_the_same_audit_and_mapping(client, cluster, tmp_path):
    folder = make_folder(tmp_path / "in", 12, "CT_small.dcm", "MR_small.dcm", "US1_J2KR.dcm")
    (folder / "notes.txt").write_text("not dicom")
    (folder / "DICOMDIR").write_bytes(pydicom_file("DICOMDIR").read_bytes())
    runner = CliRunner()
    common = ["--org-root", ORG_ROOT, "--ocr", "never", "--accept-burned-in-risk", "--no-progress"]
    key_file = tmp_path / "site.key"
    key_file.write_text(KEY.hex())
    local = runner.invoke(main, ["run", str(folder), str(tmp_path / "local"), "--key-file", str(key_file),
                                 "--workers", "1", *common])
    remote = runner.invoke(main, ["run", str(folder), str(tmp_path / "dask"), "--key-file", str(key_file),
                                  "--scheduler", cluster.scheduler_address, *common])
    assert local.exit_code == remote.exit_code == 0, remote.output
    assert len(snapshot(tmp_path / "local")) == 15
    assert snapshot(tmp_path / "dask") == snapshot(tmp_path / "local")
    assert audit_without_timings(tmp_path / "dask") == audit_without_timings(tmp_path / "local")
    for table in ("files.csv", "values.csv"):
        assert private_table(tmp_path / "dask.private", table) == private_table(tmp_path / "local.private", table)
    assert not (tmp_path / "dask" / ".deid-tmp").exists()


def test_burned_in_text_is_masked_by_the_workers_ocr_model_as_in_local_mode(client, cluster, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(deid_data_file("ultrasounds", "GREYSCALE_IMAGE.dcm"), folder / "us.dcm")
    options = {"key": KEY, "org_root": ORG_ROOT, "ocr": "auto"}
    local = deidcli.run(folder, tmp_path / "local", workers=1, **options)
    remote = deidcli.run(folder, tmp_path / "dask", scheduler=cluster.scheduler_address, **options)
    assert list(remote["status"]) == ["written"]
    assert remote["ocr_engine"][0] == "rapidocr"
    assert int(remote["ocr_boxes_masked"][0]) == int(local["ocr_boxes_masked"][0]) > 5
    assert snapshot(tmp_path / "dask") == snapshot(tmp_path / "local")


def test_the_key_travels_in_no_task_and_leaves_no_plugin_behind(client, cluster, tmp_path, monkeypatch):
    payloads: list[bytes] = []
    submit = Client.submit

    def recording_submit(self, function, *args, **kwargs):
        payloads.append(pickle.dumps((function.__qualname__, args, kwargs)))
        return submit(self, function, *args, **kwargs)

    monkeypatch.setattr(Client, "submit", recording_submit)
    folder = make_folder(tmp_path / "in", 6)
    audit = deidcli.run(folder, tmp_path / "out", scheduler=cluster.scheduler_address, **header_options())
    assert set(audit["status"]) == {"written"}
    assert payloads and all(b"process_chunk" in payload for payload in payloads)
    for payload in payloads:
        assert KEY not in payload and KEY.hex().encode() not in payload
    # the run's settings (with the key) are unregistered from the scheduler when the run ends
    assert not [name for name in cluster.scheduler.worker_plugins if name.startswith("deidcli-")]


# -- workers that die ----------------------------------------------------------------------------------------
def test_killing_a_worker_process_mid_run_still_completes_the_batch(client, cluster, slow_workers, tmp_path):
    folder = make_folder(tmp_path / "in", 30)
    key_file = tmp_path / "site.key"
    key_file.write_text(KEY.hex())
    subprocess.run(cli_command(folder, tmp_path / "local", key_file, None), check=True, capture_output=True)
    pids = client.run(os.getpid)
    process = subprocess.Popen(cli_command(folder, tmp_path / "dask", key_file, cluster.scheduler_address),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_rows(tmp_path / "dask" / "audit.csv", 5)
    victim = sorted(pids.values())[0]
    os.kill(victim, signal.SIGKILL)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr
    assert victim not in client.run(os.getpid).values()  # the worker really died (its nanny started a new one)
    assert snapshot(tmp_path / "dask") == snapshot(tmp_path / "local")
    assert audit_without_timings(tmp_path / "dask") == audit_without_timings(tmp_path / "local")


@pytest.mark.parametrize("allowed_failures", [3, 1], ids=["scheduler-default", "scheduler-gives-up-first"])
def test_a_file_that_kills_two_workers_is_quarantined_worker_crashed(client, cluster, tmp_path, allowed_failures):
    """Whatever the scheduler's allowed-failures (3 by default; 1 raises KilledWorker after 2 deaths), the
    poisoned file kills exactly two workers and is quarantined; every other file is written."""
    folder = make_folder(tmp_path / "in", 8)
    write_planted(folder / "poison.dcm")
    previous = cluster.scheduler.allowed_failures
    cluster.scheduler.allowed_failures = allowed_failures
    client.register_plugin(PatchProcess("test-poison", "poison", "die"))
    deaths_before = cluster.scheduler._workers_removed_total
    try:
        audit = deidcli.run(folder, tmp_path / "out", scheduler=cluster.scheduler_address, **header_options())
    finally:
        client.unregister_worker_plugin("test-poison")
        cluster.scheduler.allowed_failures = previous
    by_status = audit.groupby(["status", "reason"]).size().to_dict()
    assert by_status == {("quarantined", "worker_crashed"): 1, ("written", "ok"): 8}
    files = private_table(tmp_path / "out.private", "files.csv")
    assert [row["reason"] for row in files if row["input_path"] == "poison.dcm"] == ["worker_crashed"]
    assert cluster.scheduler._workers_removed_total - deaths_before == 2
    assert len(snapshot(tmp_path / "out")) == 8


# -- Ctrl-C and resume, as in local mode ---------------------------------------------------------------------
def test_ctrl_c_mid_cluster_run_exits_130_and_the_rerun_completes_it(client, cluster, slow_workers, tmp_path):
    folder = make_folder(tmp_path / "in", 24)
    key_file = tmp_path / "site.key"
    key_file.write_text(KEY.hex())
    subprocess.run(cli_command(folder, tmp_path / "local", key_file, None), check=True, capture_output=True)
    command = cli_command(folder, tmp_path / "dask", key_file, cluster.scheduler_address)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_rows(tmp_path / "dask" / "audit.csv", 4)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "resume" in stderr
    assert not (tmp_path / "dask" / ".deid-tmp").exists()
    interrupted = snapshot(tmp_path / "dask")
    assert 0 < len(interrupted) < 24
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert snapshot(tmp_path / "dask") == snapshot(tmp_path / "local")
    assert audit_without_timings(tmp_path / "dask") == audit_without_timings(tmp_path / "local")


# -- cluster-check ---------------------------------------------------------------------------------------
def test_cluster_check_lists_workers_and_accepts_a_matching_cluster(client, cluster):
    result = CliRunner().invoke(main, ["cluster-check", "--scheduler", cluster.scheduler_address])
    assert result.exit_code == 0, result.output
    assert "2 worker(s)" in result.output
    assert result.output.count("rapidocr ready") == 2
    assert load_recipe("default").hash in result.output
    assert f"deidcli {deidcli.__version__}" in result.output


def test_a_worker_with_another_deidcli_version_is_refused_by_cluster_check_and_run(client, cluster, tmp_path):
    odd = sorted(client.scheduler_info()["workers"])[0]

    def set_version(version: str) -> None:
        import deidcli._version

        deidcli._version.__version__ = version

    client.run(set_version, "0.0.9", workers=[odd])
    try:
        result = CliRunner().invoke(main, ["cluster-check", "--scheduler", cluster.scheduler_address,
                                           "--ocr", "never"])
        folder = make_folder(tmp_path / "in", 3)
        run = CliRunner().invoke(main, ["run", str(folder), str(tmp_path / "out"), "--org-root", ORG_ROOT,
                                        "--ocr", "never", "--accept-burned-in-risk", "--no-progress",
                                        "--scheduler", cluster.scheduler_address])
    finally:
        client.run(set_version, deidcli.__version__, workers=[odd])
    assert result.exit_code == 2
    assert f"{odd}: deidcli 0.0.9, this client runs {deidcli.__version__}" in result.output
    assert run.exit_code == 2
    assert "deidcli 0.0.9" in run.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.private").exists()  # refused: nothing made


def test_a_worker_without_the_shared_folders_is_refused_before_any_file(client, cluster, tmp_path):
    odd = sorted(client.scheduler_info()["workers"])[0]

    def hide_folders(hidden: bool) -> None:
        import deidcli.distributed as module

        if hidden:
            module._real_reachable = module._folders_reachable
            module._folders_reachable = lambda folders: "IN_DIR not reachable"
        else:
            module._folders_reachable = module._real_reachable

    client.run(hide_folders, True, workers=[odd])
    try:
        with pytest.raises(deidcli.errors.UsageError, match="IN_DIR not reachable"):
            deidcli.run(make_folder(tmp_path / "in", 2), tmp_path / "out", scheduler=cluster.scheduler_address,
                        **header_options())
    finally:
        client.run(hide_folders, False, workers=[odd])
    assert not (tmp_path / "out").exists()


def test_an_unreachable_scheduler_is_a_clear_usage_error(monkeypatch):
    monkeypatch.setattr(deidcli.distributed, "CONNECT_TIMEOUT_S", 2)
    result = CliRunner().invoke(main, ["cluster-check", "--scheduler", "tcp://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "cannot reach the Dask scheduler" in result.output


# -- without --scheduler nothing changes -----------------------------------------------------------------------
def test_a_local_run_never_imports_dask(tmp_path):
    folder = make_folder(tmp_path / "in", 2)
    code = (
        "import sys, deidcli, deidcli.cli\n"
        f"deidcli.run({str(folder)!r}, {str(tmp_path / 'out')!r}, key=bytes(range(32)), ocr='never',"
        " accept_burned_in_risk=True, workers=2)\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed', 'deidcli.distributed'))\n"
        "print(loaded)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    assert len(snapshot(tmp_path / "out")) == 2


# -- the per-file time budget in a worker thread -------------------------------------------------------------
class _BusyPipeline:
    """Stands in for Pipeline in the budget test: pure-Python work for `seconds`."""

    def __init__(self, seconds: float, budget: float) -> None:
        self.seconds = seconds
        self.settings = Settings(recipe=load_recipe("default"), key=KEY, org_root=ORG_ROOT, file_timeout_s=budget)

    def process(self, path, relative_path) -> Outcome:  # noqa: ARG002
        end = time.monotonic() + self.seconds
        while time.monotonic() < end:
            pass
        from deidcli.pipeline import unprocessed_outcome

        return unprocessed_outcome(self.settings, relative_path, "ok")


def test_a_file_over_its_budget_in_a_worker_thread_is_quarantined_timeout_and_the_thread_lives_on():
    results: dict[str, Outcome] = {}

    def work() -> None:  # a thread, as in a Dask worker: SIGALRM cannot reach it
        results["slow"] = _process_with_thread_budget(_BusyPipeline(5.0, 0.3), Path("x"), "slow.dcm")
        results["fast"] = _process_with_thread_budget(_BusyPipeline(0.01, 0.3), Path("y"), "fast.dcm")
        time.sleep(0.5)  # a cancelled budget never fires later
        results["after"] = _process_with_thread_budget(_BusyPipeline(0.01, 0.0), Path("z"), "after.dcm")

    started = time.monotonic()
    thread = threading.Thread(target=work)
    thread.start()
    thread.join(timeout=10)
    assert time.monotonic() - started < 3
    assert results["slow"].result.reason == "timeout"
    assert results["fast"].result.reason == "ok"
    assert results["after"].result.reason == "ok"
