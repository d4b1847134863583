"""Bad bytes in UIDs (NUL, 300 characters, letters and slashes) never stop the batch: each file is
pseudonymised or quarantined with a reason, the others are written, the exit code is the documented one."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest

from tests.conftest import planted_dataset
from tests.hostile.values_helpers import canary_hits, run_api, run_cli

CANARY = "6060"  # digits: survives in a UID, so a raw search proves the UID was replaced
ROOT = "1.2.840.10008."  # the standard's own root: once trusted as is, it must prove nothing
HOSTILE_UIDS = {
    "nul_in_sop_instance": ("SOPInstanceUID", f"{ROOT}1.99{CANARY}\0.4"),
    "nul_in_study": ("StudyInstanceUID", f"{ROOT}99{CANARY}\0"),
    "long_sop_instance": ("SOPInstanceUID", ROOT + "2" * 300 + f".99{CANARY}"),
    "long_study": ("StudyInstanceUID", ROOT + "9" * 300 + f".99{CANARY}"),
    "letters_and_slashes": ("SeriesInstanceUID", f"{ROOT}99{CANARY}/ABC"),
    "plain_root_with_nul_and_length": ("SeriesInstanceUID", f"1.2.3.\0.99{CANARY}" + "7" * 300),
    "nul_and_long_frame_of_reference": ("FrameOfReferenceUID", f"{ROOT}\0.99{CANARY}" + "7" * 300),
    "nul_in_referenced_instance": ("ReferencedSOPInstanceUID", f"{ROOT}99{CANARY}\0\0"),
}


def _write_batch(in_dir: Path, cases: list[str]) -> None:
    in_dir.mkdir(parents=True)
    for name in cases:
        keyword, value = HOSTILE_UIDS[name]
        dataset = planted_dataset(referenced_sop_uid="1.2.3.4" if keyword == "ReferencedSOPInstanceUID" else None)
        if keyword == "ReferencedSOPInstanceUID":
            dataset.ReferencedImageSequence[0].ReferencedSOPInstanceUID = value
        else:
            setattr(dataset, keyword, value)
        if keyword == "SOPInstanceUID":
            dataset.file_meta.MediaStorageSOPInstanceUID = value
        dataset.save_as(in_dir / f"{name}.dcm", enforce_file_format=True)
    planted_dataset().save_as(in_dir / "clean.dcm", enforce_file_format=True)


def _assert_pseudonymised(out_dir: Path, expected_files: int) -> None:
    written = sorted(out_dir.rglob("*.dcm"))
    assert len(written) == expected_files
    assert canary_hits(out_dir, "99" + CANARY) == []
    for path in written:
        assert path.resolve().is_relative_to(out_dir.resolve())
        dataset = pydicom.dcmread(path)
        for keyword in ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"):
            value = str(dataset[keyword].value)
            assert len(value) <= 64 and "\0" not in value and set(value) <= set("0123456789.")


@pytest.mark.parametrize("case", sorted(HOSTILE_UIDS))
def test_bad_uid_bytes_are_pseudonymised_through_the_api(tmp_path: Path, case: str) -> None:
    _write_batch(tmp_path / "in", [case])
    audit = run_api(tmp_path / "in", tmp_path / "out")
    assert sorted(audit["reason"]) == ["ok", "ok"]
    _assert_pseudonymised(tmp_path / "out", 2)


def test_bad_uid_bytes_never_stop_the_cli_batch(tmp_path: Path, key_file: Path) -> None:
    _write_batch(tmp_path / "in", sorted(HOSTILE_UIDS))
    completed = run_cli(tmp_path / "in", tmp_path / "out", key_file)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert "99" + CANARY not in completed.stdout + completed.stderr
    _assert_pseudonymised(tmp_path / "out", len(HOSTILE_UIDS) + 1)
    again = run_cli(tmp_path / "in", tmp_path / "out", key_file)  # resume: nothing redone, still 0
    assert again.returncode == 0, again.stderr[-2000:]
