"""A small clean release (OUT_DIR + private folder) made by `deid run`, for the verify and report tests."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from deidcli.api import run_batch
from tests.conftest import KEY, ORG_ROOT, PLANTED, pydicom_file, write_planted

BLOB_ROWS, BLOB_COLUMNS, BAND_ROWS = 160, 480, 20
INSTITUTION = "ACMEVISION"


def blob_dataset() -> Dataset:
    """An 8-bit image with a smooth 'anatomy' blob and no text, for the same planted patient."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = "OT"
    ds.PatientName = PLANTED["PatientName"]
    ds.PatientID = PLANTED["PatientID"]
    ds.PatientBirthDate = PLANTED["birth_date"]
    ds.StudyDescription = "<script>alert('x')</script> KNEE"
    ds.InstitutionName = INSTITUTION  # pseudonymised, and also the start of the kept Manufacturer
    ds.Manufacturer = INSTITUTION + " MEDICAL"
    ds.Rows, ds.Columns = BLOB_ROWS, BLOB_COLUMNS
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    y, x = np.mgrid[0:BLOB_ROWS, 0:BLOB_COLUMNS]
    blob = 40 + 140 * np.exp(-(((x - 240) / 150.0) ** 2 + ((y - 90) / 50.0) ** 2))
    ds.PixelData = blob.astype(np.uint8).tobytes()
    return ds


def make_release(root: Path) -> tuple[Path, Path, Path]:
    """IN_DIR with three images and a truncated file; returns (in_dir, out_dir, private_dir)."""
    in_dir, out_dir = root / "in", root / "out"
    write_planted(in_dir / "a.dcm")
    shutil.copy(pydicom_file("CT_small.dcm"), in_dir / "ct.dcm")
    blob_dataset().save_as(in_dir / "blob.dcm", enforce_file_format=True)
    (in_dir / "truncated.dcm").write_bytes(pydicom_file("CT_small.dcm").read_bytes()[:2000])
    key = root / "site.key"
    key.write_text(KEY.hex() + "\n")
    rules = root / "regions.json"
    rules.write_text(json.dumps({"rules": [{"name": "band", "match": {"Modality": "OT", "Rows": BLOB_ROWS},
                                            "rectangles": [[0, 0, BLOB_COLUMNS, BAND_ROWS]]}]}))
    summary = run_batch(in_dir, out_dir, key=key, org_root=ORG_ROOT, ocr="never", region_rules=rules, workers=1)
    assert {row["status"] for row in summary.rows} == {"written", "quarantined"}
    return in_dir, out_dir, root / "out.private"


def copy_release(out_dir: Path, private_dir: Path, target: Path) -> tuple[Path, Path]:
    """A copy of a release (OUT_DIR and its private folder side by side) to plant leaks in."""
    shutil.copytree(out_dir, target / "out")
    shutil.copytree(private_dir, target / "out.private")
    return target / "out", target / "out.private"


def output_of(private_dir: Path, input_name: str) -> str:
    """The output path (relative to OUT_DIR) of an input, from files.csv."""
    import csv

    with (private_dir / "files.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            if row["input_path"] == input_name:
                return row["output_path"]
    raise KeyError(input_name)


def edit_output(out_dir: Path, relative: str, change) -> None:
    """Read an output, let `change(dataset)` plant something, write it back in place."""
    path = out_dir / relative
    dataset = pydicom.dcmread(path)
    change(dataset)
    dataset.save_as(path, enforce_file_format=True)


__all__ = ["KEY", "ORG_ROOT", "copy_release", "edit_output", "make_release", "output_of"]
