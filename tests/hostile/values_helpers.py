"""Shared checks for the value-level hostile tests: run a batch, then prove a canary went nowhere.

"Nowhere" means: no byte of any file under OUT_DIR (DICOM files and audit.csv), no path name, and no
decoded value of any written DICOM file (so a canary re-encoded in another character set is found too).
The private folder is not scanned: it holds the original <-> pseudonym mapping by design.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pydicom
from pydicom.dataset import Dataset

import deidcli
from tests.conftest import KEY, ORG_ROOT

REPO = Path(__file__).resolve().parents[2]


def run_api(in_dir: Path, out_dir: Path, recipe: str = "default", **options) -> pd.DataFrame:
    return deidcli.run(in_dir, out_dir, key=KEY, org_root=ORG_ROOT, recipe=recipe, ocr="never",
                       accept_burned_in_risk=True, workers=1, **options)


def run_cli(in_dir: Path, out_dir: Path, key_file: Path, *extra: str) -> subprocess.CompletedProcess:
    """`python -m deidcli.cli run ...` as a user types it; returns the completed process (exit code)."""
    command = [sys.executable, "-m", "deidcli.cli", "run", str(in_dir), str(out_dir), "--key-file", str(key_file),
               "--org-root", ORG_ROOT, "--ocr", "never", "--accept-burned-in-risk", "--workers", "1", *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO, check=False)


def decoded_values(dataset: Dataset) -> list[str]:
    """Every value of a dataset, at every depth, as text (file meta included)."""
    values: list[str] = []
    for element in [*getattr(dataset, "file_meta", Dataset()), *dataset]:
        if element.VR == "SQ":
            for item in element.value:
                values.extend(decoded_values(item))
        else:
            values.append(repr(element.value))
    return values


def canary_hits(out_dir: Path, canary: str) -> list[str]:
    """Where `canary` appears under OUT_DIR: paths, raw bytes (ASCII, UTF-8, UTF-16) and decoded values."""
    hits = []
    forms = {canary.encode("utf-8"), canary.encode("utf-16-le"), canary.encode("latin-1", "ignore")} - {b""}
    for path in out_dir.rglob("*"):
        if canary in str(path.relative_to(out_dir)):
            hits.append(f"path {path}")
        if not path.is_file():
            continue
        data = path.read_bytes()
        hits.extend(f"bytes {path}" for form in forms if form in data)
        if path.suffix == ".dcm":
            dataset = pydicom.dcmread(path)
            hits.extend(f"value {path}" for value in decoded_values(dataset) if canary in value)
    return hits


def audit_row(out_dir: Path) -> dict:
    audit = pd.read_csv(out_dir / "audit.csv", dtype=str, keep_default_na=False)
    assert len(audit) == 1, audit
    return audit.iloc[0].to_dict()


def write_with_raw_meta(dataset: Dataset, path: Path, **meta_values: str) -> None:
    """Save `dataset` (Explicit VR Little Endian body) with file meta values pydicom refuses to write
    (an unregistered TransferSyntaxUID): the meta is encoded by hand, as an attacker's tool would."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset, write_file_meta_info

    meta = dataset.file_meta
    for keyword, value in meta_values.items():
        setattr(meta, keyword, value)
    head, body = DicomBytesIO(), DicomBytesIO()
    head.is_little_endian, head.is_implicit_VR = True, False
    body.is_little_endian, body.is_implicit_VR = True, False
    write_file_meta_info(head, meta, enforce_standard=True)
    write_dataset(body, dataset)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\0" * 128 + b"DICM" + head.getvalue() + body.getvalue())


def write_with_declared_vr(dataset: Dataset, path: Path, tag: int, vr: str, payload: bytes) -> None:
    """Save `dataset` (Explicit VR Little Endian) with element `tag` declared as `vr` and holding `payload`,
    whatever its dictionary VR: pydicom would turn an explicit UN back into SQ, so the header is patched."""
    import struct

    from pydicom.dataelem import DataElement

    dataset[tag] = DataElement(tag, "OB", payload)
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(path, enforce_file_format=True)
    data = path.read_bytes()
    header = struct.pack("<HH", tag >> 16, tag & 0xFFFF) + b"OB\0\0"
    assert data.count(header) == 1
    start = data.index(header)
    if vr in ("OB", "OW", "OF", "OD", "OL", "OV", "SQ", "UC", "UN", "UR", "UT"):
        patched = header[:4] + vr.encode() + b"\0\0" + data[start + 8:start + 12]
    else:  # short explicit header: 2-byte length (the padded length pydicom wrote)
        length = struct.unpack("<I", data[start + 8:start + 12])[0]
        assert length < 0x10000
        patched = header[:4] + vr.encode() + struct.pack("<H", length)
    path.write_bytes(data[:start] + patched + data[start + 12:])


def implicit_sequence_bytes(keyword: str, items: list[Dataset]) -> bytes:
    """The value of a sequence encoded implicit VR little endian (what a UN-declared sequence holds)."""
    from pydicom.filebase import DicomBytesIO
    from pydicom.filewriter import write_dataset
    from pydicom.sequence import Sequence

    holder = Dataset()
    setattr(holder, keyword, Sequence(items))
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, True
    write_dataset(buffer, holder)
    return buffer.getvalue()[8:]  # drop the tag and length: keep the items
