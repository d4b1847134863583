"""Elements declared under a VR their dictionary entry forbids: sequences hidden as OB/UN/LT, a PN as OB."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset

from tests.conftest import planted_dataset
from tests.hostile.values_helpers import (
    audit_row,
    canary_hits,
    implicit_sequence_bytes,
    run_api,
    write_with_declared_vr,
)

CANARY = "CANARYVRSEQ7781"
SOURCE_IMAGE_SEQUENCE = 0x00082112
CONTENT_SEQUENCE = 0x0040A730


def _reference_item(padding: int = 0) -> Dataset:
    item = Dataset()
    item.ReferencedSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    item.ReferencedSOPInstanceUID = "1.2.3.4.5.6"
    item.PatientName = f"{CANARY}^HUSBAND"
    if padding:
        item.ImageComments = "x" * padding  # not kept by the default recipe; makes the value >= 64 KiB
    return item


@pytest.mark.parametrize("declared", ["OB", "UN", "LT"])
def test_source_image_sequence_under_a_wrong_vr_is_parsed_or_removed_never_copied(tmp_path: Path,
                                                                                   declared: str) -> None:
    # pydicom itself re-reads a short explicit UN as SQ; past 64 KiB it does not, and the raw bytes were kept.
    padding = 0x10000 if declared == "UN" else 0
    payload = implicit_sequence_bytes("SourceImageSequence", [_reference_item(padding)])
    write_with_declared_vr(planted_dataset(), tmp_path / "in" / "a.dcm", SOURCE_IMAGE_SEQUENCE, declared, payload)
    run_api(tmp_path / "in", tmp_path / "out")
    assert audit_row(tmp_path / "out")["reason"] == "ok"
    assert canary_hits(tmp_path / "out", CANARY) == []
    written = pydicom.dcmread(next((tmp_path / "out").rglob("*.dcm")))
    if SOURCE_IMAGE_SEQUENCE in written:
        element = written[SOURCE_IMAGE_SEQUENCE]
        assert element.VR == "SQ"
        assert element.value[0].ReferencedSOPClassUID == "1.2.840.10008.5.1.4.1.1.2"
        assert element.value[0].ReferencedSOPInstanceUID != "1.2.3.4.5.6"  # went through the recipe
    if declared == "OB":  # a well-formed sequence is parsed, not thrown away
        assert SOURCE_IMAGE_SEQUENCE in written


def test_content_sequence_stored_as_lt_is_not_kept_as_text(tmp_path: Path) -> None:
    item = Dataset()
    item.RelationshipType = "CONTAINS"
    item.ValueType = "TEXT"
    item.TextValue = f"husband of patient {CANARY}"
    payload = implicit_sequence_bytes("ContentSequence", [item])
    write_with_declared_vr(planted_dataset(), tmp_path / "in" / "a.dcm", CONTENT_SEQUENCE, "LT", payload)
    run_api(tmp_path / "in", tmp_path / "out")
    assert audit_row(tmp_path / "out")["reason"] == "ok"
    assert canary_hits(tmp_path / "out", CANARY) == []
    written = pydicom.dcmread(next((tmp_path / "out").rglob("*.dcm")))
    assert CONTENT_SEQUENCE not in written or written[CONTENT_SEQUENCE].VR == "SQ"


def test_person_name_stored_as_ob_gets_the_person_name_pseudonym(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({
        "0x00080016": ["SOPClassUID", "UI", "CONSERVER"], "0x00080018": ["SOPInstanceUID", "UI", "PSEUDONYMISER"],
        "0x00100010": ["PatientName", "PN", "PSEUDONYMISER"],
    }))
    write_with_declared_vr(planted_dataset(), tmp_path / "in" / "a.dcm", 0x00100010, "OB",
                           f"{CANARY}^WIFE ".encode())
    run_api(tmp_path / "in", tmp_path / "out", recipe=str(recipe))
    assert audit_row(tmp_path / "out")["reason"] == "ok"
    assert canary_hits(tmp_path / "out", CANARY) == []
    written = pydicom.dcmread(next((tmp_path / "out").rglob("*.dcm")))
    assert written["PatientName"].VR == "PN"
    assert str(written.PatientName).startswith("PAT^")


def test_value_that_does_not_read_under_its_dictionary_vr_is_removed(tmp_path: Path) -> None:
    write_with_declared_vr(planted_dataset(), tmp_path / "in" / "a.dcm", SOURCE_IMAGE_SEQUENCE, "OB",
                           CANARY.encode() + b"\xfe\xff\x00\xe0\xff\xff")  # not a sequence in any encoding
    run_api(tmp_path / "in", tmp_path / "out")
    assert audit_row(tmp_path / "out")["reason"] == "ok"
    assert canary_hits(tmp_path / "out", CANARY) == []
    assert SOURCE_IMAGE_SEQUENCE not in pydicom.dcmread(next((tmp_path / "out").rglob("*.dcm")))


def test_empty_elements_declared_un_are_emptied_under_their_dictionary_vr() -> None:
    """explicit_VR-UN.dcm declares every element UN; its empty Type 2 elements (AccessionNumber, PatientBirthDate)
    must stay present and empty (EFFACER), not vanish: removing them is a new dciodvfy error."""
    from pydicom.data import get_testdata_file

    import deidcli
    from tests.conftest import KEY

    source = pydicom.dcmread(get_testdata_file("explicit_VR-UN.dcm"))
    assert source._dict[0x00080050].VR == "UN" and source._dict[0x00080050].value is None
    result = deidcli.deidentify(source, recipe="default", key=KEY)
    for keyword in ("AccessionNumber", "PatientBirthDate", "ReferringPhysicianName"):
        element = result[keyword]
        assert element.VR != "UN" and not element.value, keyword
