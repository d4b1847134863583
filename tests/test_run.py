"""`deid run` end to end on real and planted files: nothing leaks, outputs are valid and deterministic."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import pandas as pd
import pydicom
import pytest

import deidcli
from deidcli.audit import AUDIT_COLUMNS
from deidcli.errors import OutputConflict, UsageError
from tests.conftest import (
    KEY,
    ORG_ROOT,
    OTHER_KEY,
    PLANTED,
    dciodvfy_errors,
    pydicom_file,
    raw_leaks,
    write_planted,
)

REAL_FILES = ["CT_small.dcm", "MR_small.dcm", "rtplan.dcm", "test-SR.dcm", "JPEG2000.dcm", "chrH31.dcm",
              "explicit_VR-UN.dcm", "MR_small_bigendian.dcm"]


def header_run(in_dir: Path, out_dir: Path, key: bytes = KEY, **kwargs):
    options = {"key": key, "org_root": ORG_ROOT, "ocr": "never", "accept_burned_in_risk": True}
    options.update(kwargs)
    return deidcli.run(in_dir, out_dir, **options)


@pytest.fixture
def planted_folder(tmp_path: Path) -> Path:
    """Planted files whose names and folders are PHI too, plus real files from other software."""
    folder = tmp_path / "in"
    first = write_planted(folder / "PLANTEDNAME^ALICE" / "PLANTEDPID4711_1.dcm")
    write_planted(folder / "PLANTEDNAME^ALICE" / "PLANTEDPID4711_2.dcm", study_uid=first.StudyInstanceUID,
                  referenced_sop_uid=first.SOPInstanceUID)
    write_planted(folder / "other" / "b.dcm", patient_id="PLANTEDSECONDPATIENT")
    for name in REAL_FILES:
        shutil.copy(pydicom_file(name), folder / Path(name).name)
    return folder


def original_uids(folder: Path) -> set[str]:
    uids = set()
    for path in folder.rglob("*.dcm"):
        ds = pydicom.dcmread(path, force=True)
        for element in ds.iterall():
            if element.VR == "UI" and element.value and element.keyword not in ("SOPClassUID", "ReferencedSOPClassUID",
                                                                               "TransferSyntaxUID", "CodingSchemeUID"):
                for value in element.value if element.VM > 1 else [element.value]:
                    if not str(value).startswith("1.2.840.10008."):  # standard UIDs (classes, syntaxes) are no PHI
                        uids.add(str(value))
    return uids


def test_no_planted_value_or_original_uid_survives_anywhere_in_out_dir(planted_folder, tmp_path):
    out = tmp_path / "out"
    audit = header_run(planted_folder, out)
    assert (audit["status"] == "written").sum() >= 3
    values = list(PLANTED.values()) + ["PLANTEDSECONDPATIENT", "ALICE"]
    assert raw_leaks(out, values) == []
    uids = original_uids(planted_folder)
    assert len(uids) > 10
    assert raw_leaks(out, sorted(uids)) == []


def test_real_patient_names_do_not_survive(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    names = []
    for name in REAL_FILES:
        shutil.copy(pydicom_file(name), folder / Path(name).name)
        ds = pydicom.dcmread(pydicom_file(name), force=True)
        patient = str(ds.get("PatientName", "")).strip()
        if len(patient) > 4:
            names.append(patient)
    assert names
    header_run(folder, tmp_path / "out")
    assert raw_leaks(tmp_path / "out", names) == []


def test_outputs_read_back_and_file_meta_is_rebuilt(planted_folder, tmp_path):
    out = tmp_path / "out"
    header_run(planted_folder, out)
    outputs = list(out.rglob("*.dcm"))
    assert outputs
    for path in outputs:
        ds = pydicom.dcmread(path)
        meta = ds.file_meta
        assert meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID
        assert meta.MediaStorageSOPClassUID == ds.SOPClassUID
        assert "SourceApplicationEntityTitle" not in meta
        assert meta.ImplementationVersionName.startswith("DEIDCLI")
        assert ds.PatientIdentityRemoved == "YES"
        assert "113100" in [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]
        assert path.relative_to(out).parts[-1] == f"{ds.SOPInstanceUID}.dcm"


def test_two_runs_with_the_same_key_are_byte_identical_and_another_key_differs(planted_folder, tmp_path):
    header_run(planted_folder, tmp_path / "a")
    header_run(planted_folder, tmp_path / "b")
    header_run(planted_folder, tmp_path / "c", key=OTHER_KEY)

    def contents(folder: Path) -> dict[str, bytes]:
        return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*.dcm")}

    first, second, third = contents(tmp_path / "a"), contents(tmp_path / "b"), contents(tmp_path / "c")
    assert first == second
    assert not set(first) & set(third)


def test_same_patient_same_pseudonym_and_references_stay_consistent(planted_folder, tmp_path):
    out = tmp_path / "out"
    header_run(planted_folder, out, recipe="mammography")
    files = pd.read_csv(tmp_path / "out.private" / "files.csv", dtype=str, keep_default_na=False)
    outputs = {row.input_path: pydicom.dcmread(out / row.output_path) for row in files.itertuples() if row.output_path}
    first = outputs["PLANTEDNAME^ALICE/PLANTEDPID4711_1.dcm"]
    second = outputs["PLANTEDNAME^ALICE/PLANTEDPID4711_2.dcm"]
    other = outputs["other/b.dcm"]
    assert first.PatientID == second.PatientID != other.PatientID
    assert first.PatientID not in ("", PLANTED["PatientID"])
    assert first.StudyInstanceUID == second.StudyInstanceUID != other.StudyInstanceUID
    assert first.StudyDate == second.StudyDate != PLANTED["study_date"]
    # the second file references the first: the reference follows the first file's new UID
    assert second.ReferencedImageSequence[0].ReferencedSOPInstanceUID == first.SOPInstanceUID


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small.dcm", "US1_UNCR.dcm", "US1_J2KR.dcm"])
def test_outputs_pass_dciodvfy_with_no_new_errors(name, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(pydicom_file(name), folder / Path(name).name)
    header_run(folder, tmp_path / "out")
    (output,) = list((tmp_path / "out").rglob("*.dcm"))
    new_errors = dciodvfy_errors(output) - dciodvfy_errors(folder / name)
    assert new_errors == set()


def test_audit_has_one_row_per_input_and_the_mapping_stays_private(planted_folder, tmp_path):
    out = tmp_path / "out"
    audit = header_run(planted_folder, out)
    inputs = [p for p in planted_folder.rglob("*") if p.is_file()]
    assert len(audit) == len(inputs)
    assert list(audit.columns) == AUDIT_COLUMNS
    assert audit["input_id"].is_unique
    private = tmp_path / "out.private"
    assert oct(private.stat().st_mode & 0o777) == "0o700"
    values = (private / "values.csv").read_text()
    planted_study = pydicom.dcmread(planted_folder / "other" / "b.dcm").StudyInstanceUID
    assert planted_study in values
    files = (private / "files.csv").read_text()
    assert "PLANTEDNAME^ALICE/PLANTEDPID4711_1.dcm" in files
    assert not list(out.glob("*.private"))


def test_inputs_are_never_modified(planted_folder, tmp_path):
    before = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in planted_folder.rglob("*") if p.is_file()}
    header_run(planted_folder, tmp_path / "out")
    after = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in planted_folder.rglob("*") if p.is_file()}
    assert before == after


def test_out_dir_inside_in_dir_is_refused(planted_folder):
    with pytest.raises(UsageError, match="inside IN_DIR"):
        header_run(planted_folder, planted_folder / "out")


def test_non_empty_out_dir_from_elsewhere_is_refused(planted_folder, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "something.txt").write_text("x")
    with pytest.raises(OutputConflict, match="not empty"):
        header_run(planted_folder, out)


def test_a_different_key_into_the_same_out_dir_is_refused_even_forced(planted_folder, tmp_path):
    """A second key would break the linkage of pseudonyms: --force redoes a recipe, never a key."""
    out = tmp_path / "out"
    header_run(planted_folder, out)
    for force in (False, True):
        with pytest.raises(OutputConflict, match="key of fingerprint") as caught:
            header_run(planted_folder, out, key=OTHER_KEY, force=force)
        assert "force" not in str(caught.value)


def test_rerun_skips_what_was_written(planted_folder, tmp_path):
    out = tmp_path / "out"
    first = header_run(planted_folder, out)
    stamps = {p: p.stat().st_mtime_ns for p in out.rglob("*.dcm")}
    second = header_run(planted_folder, out)
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.dcm")} == stamps
    assert second.drop(columns="seconds").equals(first.drop(columns="seconds"))


def test_hostile_inputs_get_reason_codes_and_never_reach_out_dir(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "empty.dcm").write_bytes(b"")
    (folder / "notes.dcm").write_text("PLANTEDTEXTFILE this is not DICOM\n" * 10)
    (folder / "wrapped.dcm.gz").write_bytes(gzip.compress(pydicom_file("CT_small.dcm").read_bytes()))
    shutil.copy(pydicom_file("DICOMDIR"), folder / "DICOMDIR")
    truncated = pydicom_file("CT_small.dcm").read_bytes()[:1000]
    (folder / "truncated.dcm").write_bytes(truncated)
    outside = tmp_path / "outside.dcm"
    shutil.copy(pydicom_file("CT_small.dcm"), outside)
    os.symlink(outside, folder / "link.dcm")
    out = tmp_path / "out"
    audit = header_run(folder, out)
    private = (tmp_path / "out.private" / "files.csv").read_text().splitlines()
    reasons = {line.split(",")[0]: line.split(",")[4] for line in private[1:]}
    assert reasons == {
        "empty.dcm": "empty_file",
        "notes.dcm": "not_dicom",
        "wrapped.dcm.gz": "gzip_wrapped",
        "DICOMDIR": "dicomdir",
        "truncated.dcm": "parse_failed",
        "link.dcm": "symlink_outside",
    }
    assert (audit["status"] != "written").all()
    assert list(out.rglob("*.dcm")) == []
    assert raw_leaks(out, ["PLANTEDTEXTFILE", "CompressedSamples"]) == []


def test_file_without_preamble_or_meta_is_processed(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
    pydicom.dcmwrite(folder / "bare.dcm", ds, enforce_file_format=False, write_like_original=True)
    raw = (folder / "bare.dcm").read_bytes()
    (folder / "bare.dcm").write_bytes(raw[raw.index(b"DICM") + 4:] if b"DICM" in raw[:200] else raw)
    audit = header_run(folder, tmp_path / "out")
    assert list(audit["status"]) == ["written"]


def test_big_endian_word_data_is_swapped_when_written_little_endian(tmp_path):
    import json

    import numpy as np

    ds = pydicom.dcmread(pydicom_file("MR_small_bigendian.dcm"))
    words = np.arange(1, 9, dtype=">u2")
    ds.add_new(0x60003000, "OW", words.tobytes())  # overlay data as big endian words
    folder = tmp_path / "in"
    folder.mkdir()
    ds.save_as(folder / "be.dcm", enforce_file_format=True)
    recipe = json.loads(deidcli.recipe.load.builtin_text("default"))
    recipe["general_rules"]["0x60xx3000"] = ["OverlayData", "OW", "CONSERVER"]
    (tmp_path / "r.json").write_text(json.dumps(recipe))
    header_run(folder, tmp_path / "out", recipe=tmp_path / "r.json")
    (output,) = list((tmp_path / "out").rglob("*.dcm"))
    out = pydicom.dcmread(output)
    assert out.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian
    assert np.frombuffer(out[0x60003000].value, dtype="<u2").tolist() == list(range(1, 9))
    assert np.array_equal(out.pixel_array, ds.pixel_array)


@pytest.mark.parametrize("name", ["image_dfl.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "JPGExtended.dcm",
                                  "SC_rgb_rle_2frame.dcm", "emri_small_jpeg_ls_lossless.dcm"])
def test_every_transfer_syntax_is_written_header_only_with_pixels_unchanged(name, tmp_path):
    import numpy as np

    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(pydicom_file(name), folder / name)
    audit = header_run(folder, tmp_path / "out")
    assert list(audit["status"]) == ["written"], list(audit["detail"])
    (output,) = list((tmp_path / "out").rglob("*.dcm"))
    assert np.array_equal(pydicom.dcmread(output).pixel_array, pydicom.dcmread(folder / name).pixel_array)


def test_instances_without_sop_instance_uid_get_distinct_new_uids(tmp_path):
    folder = tmp_path / "in"
    for name in ("a.dcm", "b.dcm"):
        ds = pydicom.dcmread(pydicom_file("CT_small.dcm"))
        del ds.SOPInstanceUID
        del ds.file_meta.MediaStorageSOPInstanceUID
        folder.mkdir(exist_ok=True)
        ds.save_as(folder / name, enforce_file_format=False)
    audit = header_run(folder, tmp_path / "out")
    assert list(audit["status"]) == ["written", "written"]
    uids = {pydicom.dcmread(p).SOPInstanceUID for p in (tmp_path / "out").rglob("*.dcm")}
    assert len(uids) == 2


@pytest.mark.parametrize("name", ["chrH31.dcm", "chrRuss.dcm", "chrGreek.dcm", "chrArab.dcm", "chrX1.dcm",
                                  "chrJapMulti.dcm", "chrFrenMulti.dcm"])
def test_kept_text_survives_every_character_set_unchanged(name, tmp_path):
    """Kept elements are copied raw: with the character set carried over they must decode identically."""
    import json

    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(pydicom_file(name), folder / name)
    source = pydicom.dcmread(folder / name)
    if "SOPClassUID" not in source:
        pytest.skip("charset fragment without SOPClassUID")
    recipe = json.loads(deidcli.recipe.load.builtin_text("default"))
    recipe["general_rules"]["0x00100010"] = ["PatientName", "PN", "CONSERVER"]
    (tmp_path / "keep-name.json").write_text(json.dumps(recipe))
    audit = header_run(folder, tmp_path / "out", recipe=tmp_path / "keep-name.json", accept_recipe_risk=True)
    assert list(audit["status"]) == ["written"]
    out = pydicom.dcmread(next((tmp_path / "out").rglob("*.dcm")))
    assert str(out.PatientName) == str(source.PatientName)
    assert out.SpecificCharacterSet == source.SpecificCharacterSet
