"""`deid verify` finds every planted leak in a copy of a clean release and names its place; clean is clean."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import pydicom
import pytest
from click.testing import CliRunner
from pydicom.sequence import Sequence

from deidcli.cli import main
from deidcli.verify.needles import build_needles, date_forms, person_name_forms, text_tokens, too_weak
from deidcli.verify.scan import verify_release
from tests.conftest import PLANTED
from tests.release_helpers import INSTITUTION, copy_release, edit_output, make_release, output_of

NAME = PLANTED["PatientName"]  # PLANTEDNAME^ALICE: emptied by the default recipe, known from the original


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> tuple[Path, Path, Path]:
    return make_release(tmp_path_factory.mktemp("release"))


@pytest.fixture
def leaky(release, tmp_path) -> tuple[Path, Path]:
    _, out_dir, private_dir = release
    return copy_release(out_dir, private_dir, tmp_path)


def findings(out_dir: Path, private_dir: Path, pixels: bool = False, **kwargs) -> list:
    return verify_release(out_dir, private_dir, pixels=pixels, engine="rapidocr", **kwargs).findings


def test_clean_release_has_no_finding_pixels_included(release):
    _, out_dir, private_dir = release
    result = verify_release(out_dir, private_dir, engine="rapidocr", pixels=True)
    assert result.findings == [], [f.line() for f in result.findings]
    assert result.exit_code == 0 and result.files_checked == 3
    document = json.loads((private_dir / "verify.json").read_text())
    assert document["findings"] == [] and document["engine"] == "rapidocr"


def test_run_seals_the_release_with_sums_of_every_output(release):
    _, out_dir, _ = release
    listed = (out_dir / "SHA256SUMS").read_text().splitlines()
    outputs = {p.relative_to(out_dir).as_posix() for p in out_dir.rglob("*.dcm")}
    assert outputs and outputs <= {line.split("  ", 1)[1] for line in listed}
    assert any(line.endswith("  audit.csv") for line in listed)
    import shutil
    import subprocess

    if shutil.which("sha256sum"):  # a recipient checks the release without deidcli
        checked = subprocess.run(["sha256sum", "-c", "--quiet", "SHA256SUMS"], cwd=out_dir, capture_output=True)
        assert checked.returncode == 0, checked.stdout


def test_name_in_a_private_tag_is_found_with_its_place(leaky):
    out_dir, private_dir = leaky
    relative = output_of(private_dir, "ct.dcm")
    edit_output(out_dir, relative, lambda ds: ds.private_block(0x0009, "EVIL CORP", create=True).add_new(
        0x01, "LO", "Dr note: " + NAME))
    found = [f for f in findings(out_dir, private_dir) if f.file == relative]
    assert any(f.check == "values" and "(0009,1001)" in f.place and f.value == NAME for f in found)
    assert any(f.check == "structure" and "(0009,0010)" in f.place for f in found)  # creator not allowed


def test_name_variant_in_a_nested_sequence_is_found(leaky):
    out_dir, private_dir = leaky
    relative = output_of(private_dir, "blob.dcm")

    def plant(ds):
        from pydicom.dataset import Dataset

        item = Dataset()
        item.CodeMeaning = "seen by Alice Plantedname"
        ds.ProcedureCodeSequence = Sequence([item])

    edit_output(out_dir, relative, plant)
    found = [f for f in findings(out_dir, private_dir) if f.file == relative and f.check == "values"]
    assert any("ProcedureCodeSequence[0] > (0008,0104) CodeMeaning" in f.place and f.value == "ALICE PLANTEDNAME"
               for f in found), [f.line() for f in found]


def test_original_id_in_a_file_name_is_found(leaky):
    out_dir, private_dir = leaky
    relative = output_of(private_dir, "ct.dcm")
    renamed = Path(relative).with_name(PLANTED["PatientID"] + ".dcm")
    (out_dir / relative).rename(out_dir / renamed)
    found = findings(out_dir, private_dir)
    assert any(f.file == renamed.as_posix() and f.place == "path" and f.value == PLANTED["PatientID"] for f in found)
    assert any(f.check == "reconciliation" and f.file == relative for f in found)  # the written file is gone


def test_original_uid_as_a_file_name_is_found(leaky):
    out_dir, private_dir = leaky
    relative = output_of(private_dir, "ct.dcm")
    from tests.conftest import pydicom_file

    original_uid = pydicom.dcmread(pydicom_file("CT_small.dcm")).SOPInstanceUID
    renamed = Path(relative).with_name(f"{original_uid}.dcm")
    (out_dir / relative).rename(out_dir / renamed)
    found = findings(out_dir, private_dir)
    assert any(f.file == renamed.as_posix() and f.place == "path" and f.value == original_uid for f in found)


def _draw_planted_name(ds) -> None:
    """A planted name drawn into the released pixels, where no mask covers it."""
    image = ds.pixel_array.copy()
    cv2.putText(image, "ALICE PLANTEDNAME", (60, 100), cv2.FONT_HERSHEY_SIMPLEX, 1.0, 255, 2, cv2.LINE_AA)
    ds.PixelData = image.tobytes()


def test_text_drawn_in_an_unmasked_pixel_region_is_found_with_a_crop(leaky):
    out_dir, private_dir = leaky
    relative = output_of(private_dir, "blob.dcm")

    edit_output(out_dir, relative, _draw_planted_name)
    found = [f for f in findings(out_dir, private_dir, pixels=True) if f.check == "pixels"]
    assert len(found) >= 1 and all(f.file == relative for f in found), [f.line() for f in found]
    assert "frame 0 box" in found[0].place and "PLANTEDNAME" in found[0].value.upper().replace(" ", "")
    assert Path(found[0].crop).is_file() and Path(found[0].crop).is_relative_to(private_dir)


def test_bytes_after_the_last_frame_are_found(leaky):
    out_dir, private_dir = leaky
    relative = output_of(private_dir, "blob.dcm")
    edit_output(out_dir, relative, lambda ds: setattr(ds, "PixelData", ds.PixelData + b"PLANTEDNAME^ALICE\x00"))
    found = [f for f in findings(out_dir, private_dir) if f.file == relative]
    assert any(f.check == "structure" and "bytes after the last frame" in f.message for f in found)
    assert any(f.check == "values" and f.place.startswith("pixel data bytes") for f in found)


def test_bytes_appended_after_the_dataset_are_found(leaky):
    out_dir, private_dir = leaky
    relative = output_of(private_dir, "ct.dcm")
    with (out_dir / relative).open("ab") as handle:
        handle.write(b"\x00" * 4 + PLANTED["PatientID"].encode())
    found = [f for f in findings(out_dir, private_dir) if f.file == relative]
    assert any(f.check == "values" and f.place.startswith("raw bytes at offset") and f.value == PLANTED["PatientID"]
               for f in found), [f.line() for f in found]
    assert any(f.check == "structure" and "bytes after the pixel data" in f.message for f in found)


def test_name_hidden_in_the_preamble_is_found(leaky):
    out_dir, private_dir = leaky
    relative = output_of(private_dir, "a.dcm")
    data = bytearray((out_dir / relative).read_bytes())
    data[10:10 + len(NAME)] = NAME.encode()
    (out_dir / relative).write_bytes(bytes(data))
    found = [f for f in findings(out_dir, private_dir) if f.file == relative]
    assert any(f.check == "values" and f.place == "raw bytes at offset 10" and f.value == NAME for f in found)
    assert any(f.check == "structure" and f.place == "preamble" for f in found)


def test_uid_from_the_mapping_is_found(leaky):
    out_dir, private_dir = leaky
    relative = output_of(private_dir, "ct.dcm")
    with (private_dir / "values.csv").open(newline="") as handle:
        original = next(r["original"] for r in csv.DictReader(handle) if r["keyword"] == "FrameOfReferenceUID")
    edit_output(out_dir, relative, lambda ds: setattr(ds, "FrameOfReferenceUID", original))
    found = [f for f in findings(out_dir, private_dir) if f.file == relative]
    assert any(f.check == "values" and "FrameOfReferenceUID" in f.place and f.value == original for f in found)


def test_uid_outside_the_org_root_is_found(leaky):
    out_dir, private_dir = leaky
    relative = output_of(private_dir, "blob.dcm")
    edit_output(out_dir, relative, lambda ds: setattr(ds, "FrameOfReferenceUID", "1.2.3.4.5.6.7"))
    found = [f for f in findings(out_dir, private_dir) if f.file == relative]
    assert any(f.check == "structure" and "org root" in f.message and "FrameOfReferenceUID" in f.place for f in found)


def test_attribute_outside_the_recipe_and_missing_mark_are_found(leaky):
    out_dir, private_dir = leaky
    relative = output_of(private_dir, "blob.dcm")

    def plant(ds):
        ds.PatientIdentityRemoved = "NO"
        ds.OtherPatientIDs = "X"  # RETIRER in the default recipe

    edit_output(out_dir, relative, plant)
    messages = {(f.place, f.message) for f in findings(out_dir, private_dir) if f.file == relative}
    assert ("(0012,0062) PatientIdentityRemoved", "is not YES") in messages
    assert ("(0010,1000) OtherPatientIDs", "attribute the recipe does not keep") in messages


def test_value_kept_by_the_recipe_where_the_original_had_it_is_not_a_finding_elsewhere_it_is(leaky):
    out_dir, private_dir = leaky  # blob's kept Manufacturer "ACMEVISION MEDICAL" holds its InstitutionName
    relative = output_of(private_dir, "ct.dcm")
    edit_output(out_dir, relative, lambda ds: setattr(ds, "Manufacturer", INSTITUTION + " MEDICAL"))
    found = [f for f in findings(out_dir, private_dir) if f.check == "values"]
    assert [(f.file, f.place, f.value) for f in found] == [(relative, "(0008,0070) Manufacturer", INSTITUTION)]


def test_hidden_copy_of_a_value_the_recipe_keeps_is_still_found(leaky):
    out_dir, private_dir = leaky
    relative = output_of(private_dir, "blob.dcm")  # its kept Manufacturer holds INSTITUTION legitimately
    data = bytearray((out_dir / relative).read_bytes())
    data[0:len(INSTITUTION)] = INSTITUTION.encode()
    (out_dir / relative).write_bytes(bytes(data))
    found = [f for f in findings(out_dir, private_dir) if f.check == "values"]
    assert len(found) == 1 and found[0].value == INSTITUTION and found[0].place.startswith("raw bytes at offset 0, ")


@pytest.mark.easyocr
def test_easyocr_engine_finds_drawn_text(leaky):
    pytest.importorskip("easyocr", reason="the easyocr extra is not installed")
    pytest.importorskip("easyocr_en_models", reason="the easyocr extra is not installed")
    out_dir, private_dir = leaky
    relative = output_of(private_dir, "blob.dcm")

    edit_output(out_dir, relative, _draw_planted_name)
    result = verify_release(out_dir, private_dir, engine="easyocr", pixels=True)
    found = [f for f in result.findings if f.check == "pixels"]
    assert found and all(f.file == relative for f in found) and result.engine == "easyocr"
    assert any("PLANTEDNAME" in f.value.upper().replace(" ", "") for f in found), [f.value for f in found]


def test_deleted_output_breaks_reconciliation(leaky):
    out_dir, private_dir = leaky
    relative = output_of(private_dir, "a.dcm")
    (out_dir / relative).unlink()
    found = findings(out_dir, private_dir)
    assert any(f.check == "reconciliation" and f.file == relative and "missing" in f.message for f in found)
    assert any(f.check == "sums" and f.file == relative for f in found)


def test_input_without_a_row_breaks_reconciliation(leaky):
    out_dir, private_dir = leaky
    rows = list(csv.DictReader((private_dir / "files.csv").open(newline="")))
    with (private_dir / "files.csv").open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(r for r in rows if r["input_path"] != "truncated.dcm")
    found = findings(out_dir, private_dir)
    assert any(f.check == "reconciliation" and f.place == "IN_DIR/truncated.dcm" for f in found)


def test_modified_output_breaks_the_sums(leaky):
    out_dir, private_dir = leaky
    relative = output_of(private_dir, "a.dcm")
    edit_output(out_dir, relative, lambda ds: setattr(ds, "StudyID", "2"))
    found = findings(out_dir, private_dir)
    assert [f.file for f in found if f.check == "sums"] == [relative]


def test_cli_exit_codes_and_no_phi_on_the_terminal(leaky):
    out_dir, private_dir = leaky
    runner = CliRunner()
    clean = runner.invoke(main, ["verify", str(out_dir), "--no-pixels", "--workers", "1"])
    assert clean.exit_code == 0, clean.output
    edit_output(out_dir, output_of(private_dir, "ct.dcm"), lambda ds: setattr(ds, "StudyDescription", NAME))
    dirty = runner.invoke(main, ["verify", str(out_dir), "--no-pixels", "--workers", "2"])
    assert dirty.exit_code == 1 and "(0008,1030) StudyDescription" in dirty.output
    assert "PLANTEDNAME" not in dirty.output.upper()
    assert runner.invoke(main, ["verify", str(private_dir)]).exit_code == 2


def test_short_and_common_values_are_listed_as_not_checked():
    needles = build_needles([], [("DOE^J", "PN", 0x00100010, "PatientName"), ("ANONYMOUS", "LO", None, "X")])
    assert {n["value"] for n in needles.not_checked} >= {"J", "ANONYMOUS"}
    assert (b"DOE",) in {n.tokens for n in needles.needles}


def test_person_name_and_birth_date_variants():
    forms = {text_tokens(f) for f in person_name_forms("DOE^JANE")}
    assert {text_tokens("Jane Doe"), text_tokens("DOE, JANE"), (b"DOE",), (b"JANE",)} <= forms
    dates = {text_tokens(f) for f in date_forms("19700312", human=True)}
    assert {text_tokens("1970-03-12"), text_tokens("12/03/1970"), text_tokens("March 12, 1970"),
            text_tokens("12 Mar 1970")} <= dates
    assert too_weak((b"J",)) and too_weak((b"000000000",)) and not too_weak((b"DOE",))


def test_short_name_part_does_not_match_inside_a_longer_word():
    needles = build_needles([], [("DOE^JANE", "PN", 0x00100010, "PatientName")])
    assert not needles.find_text("ADOE7 JANET") and needles.find_text("report for doe, jane")


def test_verify_imports_no_writer_module():
    """Independence is the point of verify: its modules import pydicom and each other, never the writer."""
    import ast

    import deidcli.verify

    folder = Path(deidcli.verify.__file__).parent
    imported = set()
    for module in folder.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                imported.add(node.module)
            elif isinstance(node, ast.Import):
                imported.update(alias.name for alias in node.names)
    ours = {name for name in imported if name.startswith("deidcli")}
    assert ours and all(name.startswith("deidcli.verify") for name in ours), ours


def test_release_without_its_facts_file_is_verified_from_the_manifest_and_the_mapping(leaky):
    out_dir, private_dir = leaky
    in_dir = json.loads((private_dir / "release.json").read_text())["in_dir"]
    (private_dir / "release.json").unlink()  # as an older deid left it: IN_DIR only in the mapping's run.json
    (private_dir / "run.json").write_text(json.dumps({"runs": [{"in_dir": in_dir, "out_dir": str(out_dir.resolve())}]}))
    result = verify_release(out_dir, private_dir, pixels=False)
    assert result.findings == [] and any("built-in 'default'" in note for note in result.notes)
    assert "PLANTEDNAME" in {n.tokens[0].decode() for n in collect_needles_for(out_dir, private_dir)}


def collect_needles_for(out_dir: Path, private_dir: Path):
    from deidcli.verify.scan import collect_needles
    from deidcli.verify.sources import load_run_facts

    return collect_needles(load_run_facts(out_dir, private_dir)).needles  # originals found through run.json
