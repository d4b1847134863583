"""The recipe engine: zero trust, private creators, sequence precedence, actions by VR."""

from __future__ import annotations

import json

import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from deidcli.attributes import apply_recipe
from deidcli.pseudonyms import Pseudonymizer
from deidcli.recipe import Action, parse_recipe_text
from tests.conftest import KEY, ORG_ROOT, PLANTED, planted_dataset


def recipe_from(rules: dict, specific: dict | None = None):
    recipe, problems = parse_recipe_text(json.dumps({"general_rules": rules, "specific_rules": specific or {}}))
    assert recipe is not None, problems
    return recipe


def run(ds: Dataset, rules: dict, specific: dict | None = None):
    return apply_recipe(ds, recipe_from(rules, specific), Pseudonymizer(KEY, ORG_ROOT))


def test_unknown_public_tag_is_removed():
    ds = Dataset()
    ds.PatientName = "DOE^JOHN"
    ds.Modality = "CT"
    out, report = run(ds, {"0x00080060": ["Modality", "CS", "CONSERVER"]})
    assert "PatientName" not in out
    assert out.Modality == "CT"
    assert report.removed == 1 and report.kept == 1


def test_tag_keys_are_case_insensitive_and_accept_keywords():
    ds = Dataset()
    ds.ContentSequence = Sequence([Dataset()])
    ds.Modality = "MR"
    out, _ = run(ds, {"0x0040A730": ["ContentSequence", "SQ", "CONSERVER"], "Modality": ["Modality", "CS", "CONSERVER"]})
    assert "ContentSequence" in out and out.Modality == "MR"


def test_unknown_private_tag_is_removed_and_creator_must_match():
    ds = Dataset()
    kept_block = ds.private_block(0x0029, "SAFE CREATOR", create=True)
    kept_block.add_new(0x10, "LO", "keep me")
    other_block = ds.private_block(0x0029, "OTHER CREATOR", create=True)
    other_block.add_new(0x10, "LO", PLANTED["private_value"])
    rules = {"0x0029xx10": ["SafeValue", "LO", "CONSERVER", {"creator": "SAFE CREATOR"}]}
    out, _ = run(ds, rules)
    values = [str(element.value) for element in out]
    assert "keep me" in values
    assert PLANTED["private_value"] not in values
    assert "OTHER CREATOR" not in values and "SAFE CREATOR" in values


def test_private_rule_without_creator_keeps_nothing():
    ds = Dataset()
    block = ds.private_block(0x0029, "ANY", create=True)
    block.add_new(0x10, "LO", PLANTED["private_value"])
    out, _ = run(ds, {"0x00291010": ["X", "LO", "CONSERVER"]})
    assert len(out) == 0


def test_kept_tag_inside_removed_sequence_is_gone():
    ds = planted_dataset()
    rules = {
        "0x00400275": ["RequestAttributesSequence", "SQ", "RETIRER"],
        "0x00100010": ["PatientName", "PN", "CONSERVER"],
    }
    out, _ = run(ds, rules)
    assert "RequestAttributesSequence" not in out
    assert str(out.PatientName) == PLANTED["PatientName"]


def test_strictest_action_of_the_path_wins_inside_sequences():
    ds = planted_dataset()
    rules = {
        "0x00400275": ["RequestAttributesSequence", "SQ", "PSEUDONYMISER"],
        "0x00401001": ["RequestedProcedureID", "SH", "CONSERVER"],
        "0x00081120": ["ReferencedPatientSequence", "SQ", "CONSERVER"],
        "0x00100010": ["PatientName", "PN", "CONSERVER"],
    }
    out, _ = run(ds, rules)
    item = out.RequestAttributesSequence[0]
    assert item.RequestedProcedureID != PLANTED["nested_id"] and item.RequestedProcedureID
    assert str(item.ReferencedPatientSequence[0].PatientName).startswith("PAT^")
    assert "PatientID" not in item.ReferencedPatientSequence[0]  # no rule: zero trust inside too
    assert str(out.PatientName) == PLANTED["PatientName"]  # top level: its own rule


def test_specific_rule_within_parent_wins_over_general_rule():
    ds = Dataset()
    code = Dataset()
    code.CodeValue = "R-10226"
    code.CodeMeaning = "medio-lateral oblique"
    ds.ViewCodeSequence = Sequence([code])
    ds.CodeValue = "TOPLEVEL"
    rules = {"0x00540220": ["ViewCodeSequence", "SQ", "CONSERVER"], "0x00080100": ["CodeValue", "SH", "RETIRER"]}
    specific = {"0x00080100": {"sequence": "0x00540220", "rule": "CONSERVER"}}
    out, _ = run(ds, rules, specific)
    assert out.ViewCodeSequence[0].CodeValue == "R-10226"
    assert "CodeMeaning" not in out.ViewCodeSequence[0]
    assert "CodeValue" not in out


def test_effacer_keeps_the_attribute_empty():
    ds = planted_dataset()
    out, report = run(ds, {"0x00080090": ["ReferringPhysicianName", "PN", "EFFACER"],
                           "0x00400275": ["RequestAttributesSequence", "SQ", "EFFACER"]})
    assert "ReferringPhysicianName" in out and not out.ReferringPhysicianName
    assert len(out.RequestAttributesSequence) == 0
    assert report.emptied == 2


def test_repeating_group_rule_matches_every_overlay_group():
    ds = Dataset()
    ds.add_new(0x60003000, "OW", b"\x01\x02")
    ds.add_new(0x60023000, "OW", b"\x03\x04")
    ds.add_new(0x60000010, "US", 4)
    out, _ = run(ds, {"0x60xx3000": ["OverlayData", "OW", "CONSERVER"]})
    assert 0x60003000 in out and 0x60023000 in out and 0x60000010 not in out


def test_pseudonymiser_gives_valid_values_per_vr():
    ds = planted_dataset()
    rules = {keyword: [keyword, "", "PSEUDONYMISER"] for keyword in
             ("PatientName", "PatientID", "StudyInstanceUID", "StudyDate", "AccessionNumber", "StudyTime",
              "InstitutionName", "Rows")}
    out, report = run(ds, rules)
    assert str(out.PatientName).startswith("PAT^")
    assert out.PatientID != PLANTED["PatientID"] and len(out.PatientID) <= 64
    assert out.StudyInstanceUID.startswith(ORG_ROOT + ".") and len(out.StudyInstanceUID) <= 64
    assert out.StudyDate != PLANTED["study_date"] and len(out.StudyDate) == 8
    assert out.StudyTime == "101500"
    assert len(out.AccessionNumber) <= 16
    assert out.Rows == 0
    originals = {r.original for r in report.replacements}
    assert PLANTED["PatientName"] in originals and PLANTED["PatientID"] in originals


def test_pseudonymised_references_match_definitions():
    referenced = "1.2.3.4.5.6.7.8"
    defining = planted_dataset(sop_uid=referenced)
    referencing = planted_dataset(referenced_sop_uid=referenced)
    rules = {"SOPInstanceUID": ["", "UI", "PSEUDONYMISER"],
             "ReferencedImageSequence": ["", "SQ", "CONSERVER"],
             "ReferencedSOPInstanceUID": ["", "UI", "PSEUDONYMISER"]}
    out_defining, _ = run(defining, rules)
    out_referencing, _ = run(referencing, rules)
    assert out_referencing.ReferencedImageSequence[0].ReferencedSOPInstanceUID == out_defining.SOPInstanceUID


def test_every_action_is_counted():
    ds = planted_dataset()
    out, report = run(ds, {})
    assert len(out) == 0
    # every top-level element is counted as removed, except the private creator (it follows its block)
    assert report.removed == len(ds) - 1
    assert report.kept == report.emptied == report.pseudonymised == 0


@pytest.mark.parametrize("action", list(Action))
def test_actions_parse_case_insensitively(action):
    recipe = recipe_from({"0x00100010": ["PatientName", "PN", action.value.lower()]})
    assert recipe.general_rule(0x00100010).action is action


def test_specific_rule_on_a_private_tag_keeps_nothing_without_its_creator():
    """A specific rule names a number; in a private block that number is whatever any vendor stores there."""
    ds = Dataset()
    item = Dataset()
    block = item.private_block(0x0029, "ANY VENDOR", create=True)
    block.add_new(0x10, "LO", "CANARYPRIVATESPECIFIC")
    ds.ReferencedImageSequence = Sequence([item])
    rules = {"0x00081140": ["ReferencedImageSequence", "SQ", "CONSERVER"]}
    specific = {"0x00291010": {"sequence": "0x00081140", "rule": "CONSERVER"}}
    out, _ = run(ds, rules, specific)
    kept = [element for element in out.iterall() if element.value == "CANARYPRIVATESPECIFIC"]
    assert kept == []
    assert all(element.tag.group != 0x0029 for element in out.ReferencedImageSequence[0])


def test_output_datasets_are_built_like_a_new_dataset_with_the_source_encoding():
    """The engine builds its datasets without `Dataset.__init__` (speed, issue 15): each must hold exactly
    what `Dataset()` + `set_original_encoding` would, at every depth, with dicts of its own."""
    import pydicom

    from tests.conftest import pydicom_file

    source = pydicom.dcmread(pydicom_file("rtplan.dcm"))
    recipe = recipe_from({"0x300a00b0": ["BeamSequence", "SQ", "CONSERVER"],
                          "0x300a00c2": ["BeamName", "LO", "CONSERVER"]})
    out, _ = apply_recipe(source, recipe, Pseudonymizer(KEY, ORG_ROOT))
    items = list(out.BeamSequence)
    assert items
    for built, original in [(out, source), *zip(items, source.BeamSequence, strict=True)]:
        expected = Dataset()
        expected.set_original_encoding(*original.original_encoding, original.original_character_set)
        expected._parent_encoding = original._parent_encoding
        state = {name: value for name, value in built.__dict__.items() if name != "_dict"}
        assert state == {name: value for name, value in expected.__dict__.items() if name != "_dict"}
    assert out._private_blocks is not items[0]._private_blocks
    assert out._pixel_id is not items[0]._pixel_id


def test_empty_elements_pydicom_leaves_without_a_value_are_still_emptied_not_removed():
    """explicit_VR-UN.dcm stores empty Type 2 attributes (AccessionNumber, PatientBirthDate...) as UN of
    length 0, which pydicom reads as raw elements with no value. The engine must decode them as
    `Dataset.get_item` does, re-read them under their dictionary VR and empty them: removing them would
    make the output invalid (dciodvfy: missing Type 2 attributes)."""
    import pydicom

    from deidcli.recipe.load import load_recipe
    from tests.conftest import pydicom_file

    source = pydicom.dcmread(pydicom_file("explicit_VR-UN.dcm"))
    valueless = [tag for tag, element in source._dict.items() if element.value is None]
    assert 0x00080050 in valueless  # the case this pins is still in the file
    out, _ = apply_recipe(source, load_recipe("default"), Pseudonymizer(KEY, ORG_ROOT))
    for keyword, vr in (("AccessionNumber", "SH"), ("PatientBirthDate", "DA"), ("ReferringPhysicianName", "PN")):
        assert keyword in out, keyword
        element = out[keyword]
        actual_vr = element.VR
        assert actual_vr == vr
        assert not element.value


def test_emptied_element_is_what_pydicom_builds_for_every_vr():
    """The attribute pass skips pydicom's value setter for emptied elements: same element, every VR."""
    import warnings

    from pydicom.datadict import DicomDictionary
    from pydicom.dataelem import DataElement
    from pydicom.tag import BaseTag

    from deidcli.attributes import _emptied
    from deidcli.pseudonyms import BINARY_VRS

    vrs = {entry[0] for entry in DicomDictionary.values() if " or " not in entry[0]} | {"UN", "XX"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for tag in (0x00100010, 0x00091010, 0x7FE00010, 0x00280106):
            for vr in sorted(vrs):
                built = _emptied(BaseTag(tag), vr)
                expected = DataElement(BaseTag(tag), vr, b"" if vr in BINARY_VRS else None)
                assert built.__dict__ == expected.__dict__, (hex(tag), vr)
                assert type(built.value) is type(expected.value)
