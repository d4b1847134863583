"""Hostile UIDs must never shape a path: every output lies inside OUT_DIR, built from generated names."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

import deidcli
from deidcli.errors import FileRejected
from deidcli.pseudonyms import Pseudonymizer, is_registered_uid
from deidcli.write import check_output_relative_path
from tests.conftest import KEY, ORG_ROOT, write_planted

CANARY_MRN = "987654321020"


def _run(in_dir: Path, out_dir: Path):
    return deidcli.run(in_dir, out_dir, key=KEY, org_root=ORG_ROOT, ocr="never", accept_burned_in_risk=True,
                       workers=1)


@pytest.mark.parametrize("keyword", ["SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID"])
def test_uid_with_dot_dot_never_writes_outside_out_dir(tmp_path: Path, keyword: str) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "ESCAPED.dcm").write_bytes(b"precious")
    in_dir, out_dir = tmp_path / "in", tmp_path / "work" / "out"
    hostile = f"1.2.840.10008.1/../../../../{victim.relative_to(tmp_path)}/ESCAPED"
    kwargs = {"sop_uid": hostile} if keyword == "SOPInstanceUID" else {}
    if keyword == "StudyInstanceUID":
        kwargs["study_uid"] = hostile
    dataset = write_planted(in_dir / "a.dcm", **kwargs)
    if keyword == "SeriesInstanceUID":
        dataset.SeriesInstanceUID = hostile
        dataset.save_as(in_dir / "a.dcm", enforce_file_format=True)
    _run(in_dir, out_dir)
    assert (victim / "ESCAPED.dcm").read_bytes() == b"precious"
    assert sorted(p.name for p in victim.iterdir()) == ["ESCAPED.dcm"]
    outside = [p for p in tmp_path.rglob("*") if p.is_file() and not p.is_relative_to(tmp_path / "in")
               and not p.is_relative_to(tmp_path / "work") and not p.is_relative_to(victim)]
    assert outside == []
    for path in out_dir.rglob("*.dcm"):
        assert "ESCAPED" not in str(path)
        assert path.resolve().is_relative_to(out_dir.resolve())


def test_phi_under_the_dicom_root_is_pseudonymised_everywhere(tmp_path: Path) -> None:
    in_dir, out_dir = tmp_path / "in", tmp_path / "out"
    study = f"1.2.840.10008.99.{CANARY_MRN}"
    write_planted(in_dir / "a.dcm", study_uid=study, sop_uid=f"1.2.840.10008.98.{CANARY_MRN}")
    audit = _run(in_dir, out_dir)
    assert list(audit["status"]) == ["written"]
    hits = [p for p in out_dir.rglob("*") if CANARY_MRN in str(p) or (p.is_file() and CANARY_MRN.encode() in p.read_bytes())]
    assert hits == []
    assert CANARY_MRN not in pd.read_csv(out_dir / "audit.csv").to_csv()


def test_registered_uids_are_kept_and_unregistered_ones_under_the_root_are_not() -> None:
    pseudonymizer = Pseudonymizer(KEY, ORG_ROOT)
    ct_storage = "1.2.840.10008.5.1.4.1.1.2"
    assert is_registered_uid(ct_storage)
    assert pseudonymizer.uid(ct_storage) == ct_storage
    assert pseudonymizer.uid("1.2.840.10008.1.2.1") == "1.2.840.10008.1.2.1"
    forged = f"1.2.840.10008.99.{CANARY_MRN}"
    assert not is_registered_uid(forged)
    assert pseudonymizer.uid(forged).startswith(ORG_ROOT + ".")
    assert CANARY_MRN not in pseudonymizer.uid(forged)


@pytest.mark.parametrize("relative", [
    "../a/b/c.dcm", "A/../b/c.dcm", "A/B/C/../../x.dcm", "A/B/C", "A/B/C/D/E.dcm", "/etc/B/C/D.dcm",
    "A/B/C/.dcm", "A/.B/C/D.dcm", "A/B\x00/C/D.dcm", "a/b/c/d.dcm",
])
def test_output_path_check_refuses_anything_not_generated(relative: str) -> None:
    with pytest.raises(FileRejected) as caught:
        check_output_relative_path(relative)
    assert caught.value.reason == "unsafe_output_path"


def test_output_path_check_accepts_generated_names() -> None:
    relative = f"ABCD23456789/{ORG_ROOT}.12/{ORG_ROOT}.34/{ORG_ROOT}.56.dcm"
    assert check_output_relative_path(relative) == relative


def test_resolve_inside_refuses_a_linked_folder_and_a_final_name_taken_by_a_link_or_a_folder(tmp_path) -> None:
    from deidcli.write import resolve_inside

    out, outside = tmp_path / "out", tmp_path / "elsewhere"
    outside.mkdir()
    folder = f"ABCD23456789/{ORG_ROOT}.12/{ORG_ROOT}.34"
    (out / folder).parent.mkdir(parents=True)
    (out / folder).symlink_to(outside, target_is_directory=True)  # planted before the run
    with pytest.raises(FileRejected, match="resolves outside"):
        resolve_inside(out, f"{folder}/{ORG_ROOT}.56.dcm")
    (out / folder).unlink()
    (out / folder).mkdir()
    ready = {folder}  # resolved and created once by the run: not resolved again per file
    assert resolve_inside(out, f"{folder}/{ORG_ROOT}.56.dcm", ready) == out / folder / f"{ORG_ROOT}.56.dcm"
    (out / folder / f"{ORG_ROOT}.57.dcm").symlink_to(outside / "x.dcm")
    (out / folder / f"{ORG_ROOT}.58.dcm").mkdir()
    for name in ("57", "58"):  # the final name is looked at for every file, ready folder or not
        with pytest.raises(FileRejected, match="taken by a link or a non-file"):
            resolve_inside(out, f"{folder}/{ORG_ROOT}.{name}.dcm", ready)
    (out / folder / f"{ORG_ROOT}.59.dcm").write_bytes(b"an earlier output")  # replaced on resume: allowed
    assert resolve_inside(out, f"{folder}/{ORG_ROOT}.59.dcm", ready).is_file()
