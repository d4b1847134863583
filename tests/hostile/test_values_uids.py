"""UIDs copied unchanged must be registered DICOM UIDs: SOP classes, file meta, class references."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from tests.conftest import planted_dataset
from tests.hostile.values_helpers import audit_row, canary_hits, run_api, run_cli, write_with_raw_meta

CANARY = "424242987001"  # digits only: a valid UID component, unique in every file


def _save(dataset: Dataset, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(path, enforce_file_format=False)


def _batch_with_clean_neighbour(in_dir: Path, hostile: Dataset) -> None:
    _save(hostile, in_dir / "hostile.dcm")
    _save(planted_dataset(), in_dir / "clean.dcm")



@pytest.mark.parametrize("where", ["dataset", "file_meta"])
def test_unregistered_sop_class_quarantines_the_file(tmp_path: Path, where: str) -> None:
    hostile = planted_dataset()
    forged = f"1.2.840.10008.5.1.4.1.1.{CANARY}"
    if where == "dataset":
        hostile.SOPClassUID = forged
    else:
        hostile.file_meta.MediaStorageSOPClassUID = forged
    _batch_with_clean_neighbour(tmp_path / "in", hostile)
    audit = run_api(tmp_path / "in", tmp_path / "out")
    assert sorted(zip(audit["status"], audit["reason"], strict=True)) == [("quarantined", "unknown_sop_class"),
                                                           ("written", "ok")]
    assert canary_hits(tmp_path / "out", CANARY) == []


def test_private_sop_class_with_a_name_in_it_quarantines(tmp_path: Path) -> None:
    hostile = planted_dataset()
    hostile.SOPClassUID = hostile.file_meta.MediaStorageSOPClassUID = f"1.3.12.2.1107.5.9.{CANARY}"
    _save(hostile, tmp_path / "in" / "a.dcm")
    run_api(tmp_path / "in", tmp_path / "out")
    assert audit_row(tmp_path / "out")["reason"] == "unknown_sop_class"
    assert canary_hits(tmp_path / "out", CANARY) == []


def test_unregistered_transfer_syntax_is_refused_before_it_reaches_meta_or_audit(tmp_path: Path) -> None:
    hostile = planted_dataset()
    write_with_raw_meta(hostile, tmp_path / "in" / "a.dcm", TransferSyntaxUID=f"1.2.840.10008.1.2.1.{CANARY}")
    run_api(tmp_path / "in", tmp_path / "out")
    row = audit_row(tmp_path / "out")
    assert (row["status"], row["reason"]) == ("quarantined", "unsupported_transfer_syntax")
    assert canary_hits(tmp_path / "out", CANARY) == []


def test_kept_referenced_sop_class_is_pseudonymised_unless_registered(tmp_path: Path) -> None:
    hostile = planted_dataset()
    forged, registered = Dataset(), Dataset()
    forged.ReferencedSOPClassUID = f"1.2.840.10008.5.1.4.1.1.{CANARY}"
    forged.ReferencedSOPInstanceUID = "1.2.3.4"
    registered.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    registered.ReferencedSOPInstanceUID = "1.2.3.5"
    hostile.ReferencedImageSequence = Sequence([forged, registered])  # kept by the default recipe
    _save(hostile, tmp_path / "in" / "a.dcm")
    run_api(tmp_path / "in", tmp_path / "out")
    assert audit_row(tmp_path / "out")["reason"] == "ok"
    assert canary_hits(tmp_path / "out", CANARY) == []
    import pydicom

    written = pydicom.dcmread(next((tmp_path / "out").rglob("*.dcm")))
    classes = [item.ReferencedSOPClassUID for item in written.ReferencedImageSequence]
    assert classes[1] == "1.2.840.10008.5.1.4.1.1.2"
    assert classes[0].startswith("1.2.826.0.1.3680043.10.999.")


def test_unknown_sop_class_through_the_cli_exits_3(tmp_path: Path, key_file: Path) -> None:
    hostile = planted_dataset()
    hostile.SOPClassUID = f"1.2.840.10008.5.1.4.1.1.{CANARY}"
    _batch_with_clean_neighbour(tmp_path / "in", hostile)
    completed = run_cli(tmp_path / "in", tmp_path / "out", key_file)
    assert completed.returncode == 3, completed.stderr[-2000:]
    assert CANARY not in completed.stdout + completed.stderr
    assert canary_hits(tmp_path / "out", CANARY) == []
