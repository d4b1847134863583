"""Shared fixtures: real files from installed packages, a key, and datasets with planted PHI.

Real files come from `pydicom` / `pydicom-data` / `deid-data` (installed by the test extra), never from
the network and never from the team's shared reference folder.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from pydicom.data import get_testdata_file
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

ORG_ROOT = "1.2.826.0.1.3680043.10.999"
KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))

#: Every planted value is unique, so a raw byte search of OUT_DIR proves it did not survive.
PLANTED = {
    "PatientName": "PLANTEDNAME^ALICE",
    "PatientID": "PLANTEDPID4711",
    "OtherPatientIDs": "PLANTEDOTHERID",
    "InstitutionName": "PLANTED GENERAL HOSPITAL",
    "ReferringPhysicianName": "PLANTEDDOC^BOB",
    "StudyDescription": "PLANTED STUDY DESCRIPTION",
    "AccessionNumber": "PLANTEDACC99",
    "PatientAddress": "PLANTED 1 MAIN STREET",
    "nested_name": "PLANTEDNESTED^CAROL",
    "nested_id": "PLANTEDNESTEDID",
    "private_value": "PLANTEDPRIVATEVALUE",
    "private_seq_value": "PLANTEDPRIVSEQ",
    "meta_aet": "PLANTEDAET",
    "un_value": "PLANTEDUNVALUE",
    "birth_date": "19340812",
    "study_date": "20190417",
}


def pydicom_file(name: str) -> Path:
    """A pydicom / pydicom-data test file by name (offline once pydicom-data is installed)."""
    found = get_testdata_file(name)
    if found is None:
        import pydicom.data

        found = Path(pydicom.data.__file__).parent / "charset_files" / name
        assert found.exists(), name
    return Path(found)


def deid_data_file(*parts: str) -> Path:
    import deid_data

    return Path(deid_data.__file__).parent / "data" / Path(*parts)


def planted_dataset(patient_id: str = PLANTED["PatientID"], study_uid: str | None = None,
                    sop_uid: str | None = None, referenced_sop_uid: str | None = None) -> Dataset:
    """A small CT-like instance with PHI planted where careless tools miss it."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.file_meta.MediaStorageSOPInstanceUID = sop_uid or generate_uid()
    ds.file_meta.SourceApplicationEntityTitle = PLANTED["meta_aet"]
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality = "OT"
    ds.PatientName = PLANTED["PatientName"]
    ds.PatientID = patient_id
    ds.OtherPatientIDs = PLANTED["OtherPatientIDs"]
    ds.PatientBirthDate = PLANTED["birth_date"]
    ds.PatientSex = "F"
    ds.PatientAddress = PLANTED["PatientAddress"]
    ds.StudyDate = PLANTED["study_date"]
    ds.StudyTime = "101500"
    ds.InstitutionName = PLANTED["InstitutionName"]
    ds.ReferringPhysicianName = PLANTED["ReferringPhysicianName"]
    ds.StudyDescription = PLANTED["StudyDescription"]
    ds.AccessionNumber = PLANTED["AccessionNumber"]
    ds.StudyID = "1"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    # A nested sequence two levels deep with a name and an ID.
    inner = Dataset()
    inner.PatientName = PLANTED["nested_name"]
    inner.PatientID = PLANTED["nested_id"]
    request = Dataset()
    request.RequestedProcedureID = PLANTED["nested_id"]
    request.ReferencedPatientSequence = Sequence([inner])
    ds.RequestAttributesSequence = Sequence([request])
    if referenced_sop_uid:
        reference = Dataset()
        reference.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
        reference.ReferencedSOPInstanceUID = referenced_sop_uid
        ds.ReferencedImageSequence = Sequence([reference])
    # A private block with a creator, a value, and a private sequence.
    block = ds.private_block(0x0011, "PLANTED CREATOR", create=True)
    block.add_new(0x01, "LO", PLANTED["private_value"])
    private_item = Dataset()
    private_item.PatientName = PLANTED["private_seq_value"]
    block.add_new(0x02, "SQ", Sequence([private_item]))
    # An element with VR UN (a public tag sent as unknown by some PACS).
    ds.add_new(0x00102000, "UN", PLANTED["un_value"].encode())  # MedicalAlerts, sent as UN
    ds.Rows, ds.Columns = 4, 4
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = bytes(range(16))
    return ds


def write_planted(path: Path, **kwargs) -> Dataset:
    ds = planted_dataset(**kwargs)
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return ds


def raw_leaks(folder: Path, values: list[str]) -> list[tuple[str, str]]:
    """(path, value) for every planted value found in the bytes of any file, or in any path name, under folder."""
    leaks = []
    encoded = [(v, v.encode()) for v in values]
    for path in folder.rglob("*"):
        for value, raw in encoded:
            if value in str(path.relative_to(folder)):
                leaks.append((str(path), value))
            if path.is_file() and raw in path.read_bytes():
                leaks.append((str(path), value))
    return leaks


def dciodvfy_errors(path: Path) -> set[str]:
    """The 'Error' lines dciodvfy prints for a file, values stripped, so input and output can be compared."""
    executable = shutil.which("dciodvfy") or str(Path(__file__).resolve().parents[1] / ".venv/bin/dciodvfy")
    completed = subprocess.run([executable, str(path)], capture_output=True, text=True, timeout=120, check=False)
    errors = set()
    for line in (completed.stdout + completed.stderr).splitlines():
        if line.startswith("Error"):
            errors.add(line.split(" - value")[0].split("Value = ")[0].strip())
    return errors


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "site.key"
    path.write_text(KEY.hex() + "\n")
    return path
