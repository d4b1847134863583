"""Workers forked after the batch's parent imported the OCR libraries (deidcli.ocr.engines.import_engine) scan
like a single in-process pipeline: the same pixels out, nothing legible left."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pydicom
from pydicom.uid import generate_uid

import deidcli
from tests.conftest import KEY, ORG_ROOT, deid_data_file, raw_leaks


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
