"""Batch robustness: parallel workers, kill -9 and Ctrl-C with resume, hostile input, disk full, timeouts."""

from __future__ import annotations

import errno
import os
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

import deidcli
from deidcli import batch as batch_module
from deidcli.batch import EXIT_DISK_FULL, TEMP_DIR_NAME
from tests.conftest import KEY, ORG_ROOT, pydicom_file, write_planted

DEID = [sys.executable, "-m", "deidcli.cli"]


def make_folder(folder: Path, count: int) -> Path:
    for index in range(count):
        write_planted(folder / f"p{index % 5}" / f"file{index:03d}.dcm", patient_id=f"PLANTEDPATIENT{index % 5}")
    return folder


def header_run(in_dir: Path, out_dir: Path, **kwargs):
    options = {"key": KEY, "org_root": ORG_ROOT, "ocr": "never", "accept_burned_in_risk": True}
    options.update(kwargs)
    return deidcli.run(in_dir, out_dir, **options)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*.dcm")}


def audit_rows(out: Path) -> list[tuple[str, str, str, str]]:
    rows = deidcli.batch.read_audit(out / "audit.csv")
    return sorted((r["input_id"], r["output_path"], r["status"], r["reason"]) for r in rows)


def cli_command(in_dir: Path, out_dir: Path, key_file: Path, workers: int = 1) -> list[str]:
    return [*DEID, "run", str(in_dir), str(out_dir), "--key-file", str(key_file), "--org-root", ORG_ROOT,
            "--ocr", "never", "--accept-burned-in-risk", "--workers", str(workers), "--no-progress"]


def test_two_workers_write_byte_identical_output_to_one_worker(tmp_path):
    folder = make_folder(tmp_path / "in", 12)
    for name in ("CT_small.dcm", "MR_small.dcm", "US1_J2KR.dcm"):
        (folder / name).write_bytes(pydicom_file(name).read_bytes())
    header_run(folder, tmp_path / "one", workers=1)
    header_run(folder, tmp_path / "two", workers=2)
    assert snapshot(tmp_path / "one") == snapshot(tmp_path / "two")
    assert audit_rows(tmp_path / "one") == audit_rows(tmp_path / "two")


@pytest.mark.parametrize("kill_after_rows", [3, 15])
def test_sigkill_mid_batch_then_rerun_equals_a_clean_run(tmp_path, key_file, kill_after_rows):
    folder = make_folder(tmp_path / "in", 30)
    clean, killed = tmp_path / "clean", tmp_path / "killed"
    subprocess.run(cli_command(folder, clean, key_file), check=True, capture_output=True)
    process = subprocess.Popen(cli_command(folder, killed, key_file, workers=2), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    audit = killed / "audit.csv"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if audit.exists() and len(audit.read_text().splitlines()) > kill_after_rows:
            break
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    # nothing under a final name is incomplete: every .dcm present reads back whole
    for path in killed.rglob("*.dcm"):
        pydicom.dcmread(path).PixelData  # noqa: B018 - reading is the check
    rerun = subprocess.run(cli_command(folder, killed, key_file), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert snapshot(killed) == snapshot(clean)
    assert audit_rows(killed) == audit_rows(clean)
    assert not (killed / TEMP_DIR_NAME).exists()
    listed, actual = _sums_as_on_disk(killed)  # sealed from the workers' digests: equal to the files
    assert listed == actual


def _written_rows(audit: Path) -> list[dict[str, str]]:
    if not audit.exists():
        return []
    return [row for row in deidcli.batch.read_audit(audit) if row["status"] == "written"]


@pytest.mark.parametrize("workers", [1, 2])
def test_sigkill_while_a_group_is_renamed_but_not_recorded_then_resume_redoes_exactly_it(tmp_path, key_file,
                                                                                         workers):
    """Group commit: outputs are renamed as they finish and recorded (synced, then audited) in groups.
    Killed while some final names are not yet in the audit: every final name is a whole file, every
    audited file exists, and the re-run redoes only the unrecorded ones and ends equal to a clean run."""
    folder = make_folder(tmp_path / "in", 60)
    clean = tmp_path / "clean"
    subprocess.run(cli_command(folder, clean, key_file), check=True, capture_output=True)
    for attempt in range(10):  # the parent may record the group between our look and the signal: try again
        killed = tmp_path / f"killed{attempt}"
        audit = killed / "audit.csv"
        process = subprocess.Popen(cli_command(folder, killed, key_file, workers=workers),
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        caught = False
        while time.monotonic() < deadline and process.poll() is None:
            try:
                finals = len(list(killed.glob("*/*/*/*.dcm")))
            except FileNotFoundError:  # the run removed its temporary folder while we walked it
                continue
            if finals > len(_written_rows(audit)) and _written_rows(audit):
                process.send_signal(signal.SIGKILL)
                caught = True
                break
            time.sleep(0.002)
        process.wait()
        if not caught:
            continue  # the run ended on its own before a group was caught
        recorded = _written_rows(audit)
        finals = {path.relative_to(killed).as_posix() for path in killed.rglob("*.dcm")}
        assert {row["output_path"] for row in recorded} <= finals  # recorded => on disk, on every kill
        if len(finals) > len(recorded):
            break  # the state this test is about: renamed, not yet recorded
    else:
        pytest.skip("no run was killed between rename and record in 10 tries (machine too fast or too slow)")
    for path in killed.rglob("*.dcm"):
        pydicom.dcmread(path).PixelData  # noqa: B018 - every final name is a whole file
    rerun = subprocess.run(cli_command(folder, killed, key_file), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert f"{60 - len(recorded)} written" in rerun.stdout and "skipped (already done)" in rerun.stdout
    assert snapshot(killed) == snapshot(clean)
    assert audit_rows(killed) == audit_rows(clean)


def test_a_group_whose_sync_fails_is_not_recorded_and_resume_redoes_it(tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "in", 6)
    monkeypatch.setattr(batch_module, "AUDIT_COMMIT_FILES", 2)
    real_sync = batch_module.sync_paths
    calls = {"n": 0}

    def failing_sync(files, root):
        calls["n"] += 1
        if calls["n"] == 2:  # the second group: its files are renamed, the sync fails
            raise OSError(errno.EIO, "Input/output error")
        return real_sync(files, root)

    monkeypatch.setattr(batch_module, "sync_paths", failing_sync)
    out = tmp_path / "out"
    summary = deidcli.api.run_batch(folder, out, key=KEY, org_root=ORG_ROOT, ocr="never", accept_burned_in_risk=True)
    assert summary.exit_code == EXIT_DISK_FULL and summary.interrupted
    assert len(_written_rows(out / "audit.csv")) == 2  # only the first group, whose sync succeeded
    monkeypatch.setattr(batch_module, "sync_paths", real_sync)
    audit = header_run(folder, out)
    assert (audit["status"] == "written").sum() == 6
    assert len(list(out.rglob("*.dcm"))) == 6


def test_sigint_exits_130_leaves_no_temp_files_and_resume_completes(tmp_path, key_file):
    folder = make_folder(tmp_path / "in", 40)
    out = tmp_path / "out"
    process = subprocess.Popen(cli_command(folder, out, key_file, workers=2), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    # Outputs get their final names as they finish (the audit follows in groups): interrupt once a few have.
    while time.monotonic() < deadline and not len(list(out.glob("*/*/*/*.dcm"))) > 5:
        time.sleep(0.005)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr[-3000:]
    assert "resume with the same command" in stderr
    assert not list(out.rglob("*.part")) and not (out / TEMP_DIR_NAME).exists()
    rerun = subprocess.run(cli_command(folder, out, key_file), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert len(list(out.rglob("*.dcm"))) == 40
    assert len(audit_rows(out)) == 40


def test_disk_full_stops_the_batch_without_a_partial_file_and_resume_finishes(tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "in", 6)
    real_write = batch_module.Pipeline.process
    calls = {"n": 0}

    def failing_process(self, path, relative):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(self, path, relative)

    monkeypatch.setattr(batch_module.Pipeline, "process", failing_process)
    summary = deidcli.api.run_batch(folder, tmp_path / "out", key=KEY, org_root=ORG_ROOT, ocr="never",
                                    accept_burned_in_risk=True)
    assert summary.exit_code == EXIT_DISK_FULL and summary.interrupted
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == 2
    monkeypatch.setattr(batch_module.Pipeline, "process", real_write)
    audit = header_run(folder, tmp_path / "out")
    assert (audit["status"] == "written").sum() == 6


def test_a_file_over_its_time_budget_is_quarantined_with_timeout(tmp_path):
    folder = tmp_path / "in"
    write_planted(folder / "a.dcm")
    audit = header_run(folder, tmp_path / "out", file_timeout_s=1e-6)
    assert list(audit["reason"]) == ["timeout"]
    assert not list((tmp_path / "out").rglob("*.dcm"))


def test_deeply_nested_sequences_are_quarantined(tmp_path):
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    ds.SOPInstanceUID = "1.2.3.4"
    ds.Modality = "SR"
    folder = tmp_path / "in"
    folder.mkdir()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ExplicitVRLittleEndian
    ds.save_as(folder / "deep.dcm", enforce_file_format=True)
    # (0040,A730) ContentSequence nested 1000 deep, undefined lengths (explicit VR little endian bytes)
    sequence = b"\x40\x00\x30\xa7SQ\x00\x00\xff\xff\xff\xff"
    item = b"\xfe\xff\x00\xe0\xff\xff\xff\xff"
    item_end = b"\xfe\xff\x0d\xe0\x00\x00\x00\x00"
    sequence_end = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"
    depth = 1000
    nested = (sequence + item) * depth + (item_end + sequence_end) * depth
    with (folder / "deep.dcm").open("ab") as handle:
        handle.write(nested)
    audit = header_run(folder, tmp_path / "out", recipe=_keep_content_recipe(tmp_path))
    assert list(audit["reason"]) in (["too_deep"], ["parse_failed"])
    assert not list((tmp_path / "out").rglob("*.dcm"))


def _keep_content_recipe(tmp_path: Path) -> Path:
    import json

    recipe = json.loads(deidcli.recipe.load.builtin_text("default"))
    recipe["general_rules"]["0x0040a730"] = ["ContentSequence", "SQ", "CONSERVER"]
    path = tmp_path / "keep-content.json"
    path.write_text(json.dumps(recipe))
    return path


def test_an_element_claiming_2_gb_in_a_1_kb_file_is_quarantined(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    raw = bytearray(pydicom_file("CT_small.dcm").read_bytes()[:1024])
    # Patient's Name (0010,0010) PN with a 2 GB length: explicit VR short form caps at 64 KB, so use UT.
    marker = raw.find(b"\x10\x00\x10\x00PN")
    assert marker > 0
    raw[marker:marker + 8] = b"\x10\x00\x10\x00UT\x00\x00"
    raw[marker + 8:marker + 12] = struct.pack("<I", 0x7FFFFFF0)
    (folder / "huge.dcm").write_bytes(bytes(raw))
    audit = header_run(folder, tmp_path / "out")
    assert list(audit["status"]) == ["quarantined"]
    assert list(audit["reason"])[0] in ("parse_failed", "too_large")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file: permissions cannot be denied to it")
def test_unreadable_file_is_quarantined(tmp_path):
    folder = tmp_path / "in"
    write_planted(folder / "secret.dcm")
    (folder / "secret.dcm").chmod(0)
    audit = header_run(folder, tmp_path / "out")
    assert list(audit["reason"]) == ["unreadable"]


def test_symlink_loops_and_links_inside_in_dir(tmp_path):
    folder = tmp_path / "in"
    write_planted(folder / "real" / "a.dcm")
    os.symlink(folder / "real", folder / "real" / "loop")  # a directory loop: not followed
    os.symlink(folder / "real" / "a.dcm", folder / "alias.dcm")  # a file link inside IN_DIR
    audit = header_run(folder, tmp_path / "out")
    reasons = sorted(audit["reason"])
    assert reasons == ["duplicate_instance", "ok", "symlink_loop"]  # the loop is not walked but has its row


def test_a_file_that_kills_its_worker_is_quarantined_and_the_rest_are_written(tmp_path, monkeypatch):
    folder = make_folder(tmp_path / "in", 40)
    real_process = batch_module.Pipeline.process

    def crashing_process(self, path, relative):
        if path.name == "file007.dcm":
            os._exit(70)  # what a segfaulting codec does to the worker process
        return real_process(self, path, relative)

    monkeypatch.setattr(batch_module.Pipeline, "process", crashing_process)  # inherited by forked workers
    audit = header_run(folder, tmp_path / "out", workers=2)
    reasons = dict(zip(audit["input_id"], audit["reason"], strict=True))
    assert list(audit["reason"]).count("worker_crashed") == 1
    assert (audit["status"] == "written").sum() == 39
    assert len(reasons) == 40
    assert len(list((tmp_path / "out").rglob("*.dcm"))) == 39


def test_a_file_that_changes_while_read_is_quarantined(tmp_path, monkeypatch):
    import deidcli.read as read_module

    folder = tmp_path / "in"
    write_planted(folder / "growing.dcm")
    real_dcmread, real_read_file = read_module.pydicom.dcmread, read_module.read_file

    def while_a_copy_is_still_writing(reader):
        def read(source, *args, **kwargs):
            dataset = reader(source, *args, **kwargs)
            with open(folder / "growing.dcm", "ab") as handle:  # the sender appends more bytes while we parse
                handle.write(b"\x00" * 16)
            return dataset
        return read

    # Both readers: the fast one (deidcli.fastread) takes this file, dcmread the ones it leaves.
    monkeypatch.setattr(read_module.pydicom, "dcmread", while_a_copy_is_still_writing(real_dcmread))
    monkeypatch.setattr(read_module, "read_file", while_a_copy_is_still_writing(real_read_file))
    audit = header_run(folder, tmp_path / "out")
    assert list(audit["reason"]) == ["changed_while_read"]
    assert not list((tmp_path / "out").rglob("*.dcm"))


def _sums_as_on_disk(out: Path, leave_out: set[str] | None = None) -> tuple[dict[str, str], dict[str, str]]:
    """(SHA256SUMS as written, the SHA-256 of every release file hashed now, but those in `leave_out`)."""
    import hashlib

    from deidcli.verify.release import SUMS_NAME, read_sums, release_files

    listed = read_sums(out / SUMS_NAME)
    actual = {relative: hashlib.sha256((out / relative).read_bytes()).hexdigest() for relative in release_files(out)
              if relative not in (leave_out or set())}
    return listed, actual


@pytest.mark.parametrize("workers", [1, 2])
def test_the_seal_reads_no_output_back_and_its_sums_match_the_files(tmp_path, monkeypatch, workers):
    """Issue 15: the workers hash the bytes they write, so the end of the run hashes only the run's own
    files (audit, manifest), not every output again; the sums still equal the files on disk."""
    from deidcli.verify import release

    hashed: list[str] = []
    real_sha256_file = release.sha256_file
    monkeypatch.setattr(release, "sha256_file", lambda path: hashed.append(path.name) or real_sha256_file(path))
    folder = make_folder(tmp_path / "in", 12)
    header_run(folder, tmp_path / "out", workers=workers)
    assert sorted(hashed) == [".deid-run.json", "audit.csv"]
    listed, actual = _sums_as_on_disk(tmp_path / "out")
    assert listed == actual and len(listed) == 14


def test_a_resume_reuses_earlier_sums_only_for_outputs_not_modified_since(tmp_path, monkeypatch):
    """A re-run seals the outputs it redid from their new bytes, an earlier output untouched since the last
    seal from that seal, and one modified since (here: replaced behind the tool's back) from its new bytes."""
    from deidcli.verify import release

    folder = make_folder(tmp_path / "in", 10)
    out = tmp_path / "out"
    header_run(folder, out)
    outputs = sorted(out.rglob("*.dcm"))
    redone, modified = outputs[0], outputs[1]
    redone.unlink()  # its audit row says written, the file is gone: the re-run writes it again
    time.sleep(0.01)
    modified.write_bytes(modified.read_bytes() + b"\x00\x00")
    hashed: list[str] = []
    real_sha256_file = release.sha256_file
    monkeypatch.setattr(release, "sha256_file", lambda path: hashed.append(path.name) or real_sha256_file(path))
    header_run(folder, out)
    assert sorted(hashed) == sorted([".deid-run.json", "audit.csv", modified.name])
    listed, actual = _sums_as_on_disk(out)
    assert listed == actual and len(listed) == 12


def test_a_fifo_left_in_out_dir_gets_no_sum_and_does_not_block_the_seal(tmp_path, key_file):
    """Only regular files are hashed for SHA256SUMS: a FIFO in OUT_DIR (opened, it would block the end of the
    run forever) is left out of the sums, so `deid verify` reports it as added after the run."""
    folder = make_folder(tmp_path / "in", 3)
    out = tmp_path / "out"
    subprocess.run(cli_command(folder, out, key_file), check=True, capture_output=True, timeout=120)
    os.mkfifo(out / "planted-fifo")
    rerun = subprocess.run(cli_command(folder, out, key_file), capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    listed, actual = _sums_as_on_disk(out, leave_out={"planted-fifo"})
    assert listed == actual and "planted-fifo" not in listed and len(listed) == 5


def test_a_signal_during_library_code_that_catches_exception_still_stops_the_batch() -> None:
    """The handler raises Interrupted wherever the parent is; distributed's serializer (and any per-file
    `except Exception`) wraps what it catches, so a Ctrl-C inside `client.submit` once became a TypeError
    and exit 1 (seen in CI). The batch's own SIGINT handler must get through such code unchanged."""
    run = batch_module.BatchRun.__new__(batch_module.BatchRun)
    previous = run._install_signal_handlers()

    def library_call() -> None:
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        except Exception as error:  # what distributed.protocol.serialize does
            raise TypeError("Could not serialize object") from error

    try:
        with pytest.raises(batch_module.Interrupted) as stop:
            library_call()
    finally:
        run._restore_signal_handlers(previous)
    assert stop.value.exit_code == 130


def test_batch_collects_garbage_less_often_while_it_runs_and_restores_the_callers_setting(tmp_path) -> None:
    """The threshold is raised only for the batch (workers inherit it); the caller's comes back, a 0 (automatic
    collection off) is left alone."""
    import gc

    from deidcli.batch import GC_YOUNG_THRESHOLD, fewer_collections

    before = gc.get_threshold()
    try:
        gc.set_threshold(700, 10, 10)
        with fewer_collections():
            assert gc.get_threshold() == (GC_YOUNG_THRESHOLD, 10, 10)
        assert gc.get_threshold() == (700, 10, 10)
        gc.set_threshold(0, 10, 10)
        with fewer_collections():
            assert gc.get_threshold()[0] == 0
    finally:
        gc.set_threshold(*before)


def test_chunks_are_large_while_many_files_remain_and_shrink_to_one_at_the_end() -> None:
    """Guided chunking: fewer round trips on a long run, both workers finishing together, a small run spread."""
    from deidcli.batch import MAX_CHUNK_FILES, chunk_files

    remaining, sizes = 1000, []
    while remaining:
        sizes.append(chunk_files(remaining, 2))
        remaining -= sizes[-1]
    assert sizes[0] == MAX_CHUNK_FILES and sizes[-1] == 1
    assert sizes == sorted(sizes, reverse=True)
    assert len(sizes) < 1000 // 8  # fewer chunks than the fixed 8 files each it replaced
    assert [chunk_files(n, 2) for n in (3, 8, 9)] == [1, 1, 1]  # a handful of (OCR) files: one at a time
