"""Workers forked after the batch's parent imported the OCR libraries (deidcli.ocr.engines.import_engine) scan
like a single in-process pipeline: the same pixels out, nothing legible left."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

import deidcli
from tests.conftest import KEY, ORG_ROOT, deid_data_file, raw_leaks

#: Seconds a 3-file, 2-worker batch gets in a child process (about 10 s on a quiet 2-core host; a hung one never ends).
BATCH_LIMIT_S = 240


def _pixel_digests(out_dir: Path) -> list[str]:
    return sorted(hashlib.sha256(pydicom.dcmread(path).PixelData).hexdigest() for path in out_dir.rglob("*.dcm"))


def test_two_workers_forked_after_the_engine_import_write_what_one_worker_writes(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    source = pydicom.dcmread(deid_data_file("ultrasounds", "GREYSCALE_IMAGE.dcm"))
    for index in range(3):  # more files than workers: the parent warms up (and imports the engine) before forking
        source.SOPInstanceUID = generate_uid()  # distinct instances, not duplicates of one
        source.save_as(folder / f"us{index}.dcm")
    options = {"key": KEY, "org_root": ORG_ROOT, "ocr": "auto", "ocr_engine": "rapidocr"}
    forked = deidcli.run(folder, tmp_path / "forked", workers=2, **options)
    inline = deidcli.run(folder, tmp_path / "inline", workers=1, **options)
    assert list(forked["status"]) == list(inline["status"]) == ["written"] * 3
    assert all(int(count) > 5 for count in forked["ocr_boxes_masked"])
    assert _pixel_digests(tmp_path / "forked") == _pixel_digests(tmp_path / "inline")
    assert raw_leaks(tmp_path / "forked", ["PATIENT"]) == []


#: A batch whose parent used OpenCV with another thread count than its workers', run in a child process so that a
#: hang fails the test instead of stopping the suite: the workers set their share (make_detector) first thing.
_BATCH_AFTER_OPENCV = """
import sys
from pathlib import Path

import cv2
import numpy as np

import deidcli
from tests.conftest import KEY, ORG_ROOT

cv2.setNumThreads(4)  # what an earlier OCR run on a 4-core machine, or the caller's own OpenCV work, leaves
cv2.GaussianBlur(np.zeros((2048, 2048), np.uint8), (0, 0), 3)  # a parallel call: the pool has live workers
result = deidcli.run(Path(sys.argv[1]), Path(sys.argv[2]), workers=2, key=KEY, org_root=ORG_ROOT, ocr="auto",
                     ocr_engine="rapidocr")
print(",".join(result["status"]))
"""


def test_a_batch_forked_by_a_process_that_used_opencv_threaded_finishes(tmp_path: Path) -> None:
    """`deid run --workers 2` from a process that had run OpenCV on several threads (the Python API called a
    second time, a test suite): each worker sets its own OpenCV thread count, which used to block for good on
    the pool's bookkeeping copied by the fork (deidcli.forksafe); it must finish and write every file."""
    folder = tmp_path / "in"
    folder.mkdir()
    source = pydicom.dcmread(deid_data_file("ultrasounds", "GREYSCALE_IMAGE.dcm"))
    for index in range(3):
        source.SOPInstanceUID = generate_uid()
        source.save_as(folder / f"us{index}.dcm")
    environment = {**os.environ, "DEID_OCR_THREADS": "1"}  # the workers' count differs from the parent's 4
    done = subprocess.run([sys.executable, "-c", _BATCH_AFTER_OPENCV, str(folder), str(tmp_path / "out")],
                          cwd=Path(__file__).resolve().parents[1], env=environment, capture_output=True,
                          text=True, timeout=BATCH_LIMIT_S)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "written,written,written"
    assert raw_leaks(tmp_path / "out", ["PATIENT"]) == []
