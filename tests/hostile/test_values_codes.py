"""Free text hidden in kept code items: only dictionary meanings and well-formed codes leave."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from deidcli.codes import clean_code_item, dictionary_meanings, is_code
from tests.conftest import dciodvfy_errors, planted_dataset
from tests.hostile.values_helpers import audit_row, canary_hits, run_api

CANARY = "CANARYCODE5150"


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def _written(tmp_path: Path, dataset: Dataset, recipe: str = "default") -> Dataset:
    path = tmp_path / "in" / "a.dcm"
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(path, enforce_file_format=True)
    run_api(tmp_path / "in", tmp_path / "out", recipe=recipe)
    assert audit_row(tmp_path / "out")["reason"] == "ok"
    assert canary_hits(tmp_path / "out", CANARY) == []
    return pydicom.dcmread(next((tmp_path / "out").rglob("*.dcm")))


def test_known_code_gets_its_dictionary_meaning_not_the_senders_text(tmp_path: Path) -> None:
    dataset = planted_dataset()
    dataset.AnatomicRegionSequence = Sequence([_code("T-04000", "SRT", f"husband of patient {CANARY}")])
    written = _written(tmp_path, dataset)
    item = written.AnatomicRegionSequence[0]
    assert (item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning) == ("T-04000", "SRT", "Breast")


def test_dictionary_meaning_of_the_sender_is_kept(tmp_path: Path) -> None:
    dataset = planted_dataset()
    dataset.AnatomicRegionSequence = Sequence([_code("76752008", "SCT", "Breast structure (body structure)")])
    assert _written(tmp_path, dataset).AnatomicRegionSequence[0].CodeMeaning == "Breast structure (body structure)"


def test_unknown_well_formed_code_keeps_its_code_and_loses_its_text(tmp_path: Path) -> None:
    dataset = planted_dataset()
    dataset.AnatomicRegionSequence = Sequence([_code("XB-123", "99LOCAL", f"wife of {CANARY}")])
    item = _written(tmp_path, dataset).AnatomicRegionSequence[0]
    assert (item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning) == ("XB-123", "99LOCAL", "XB-123")


@pytest.mark.parametrize(("value", "scheme"), [
    (f"husband {CANARY}", "99LOCAL"),            # spaces
    (f"{CANARY.lower()}", "99LOCAL"),              # a lower-case word
    (CANARY, "99LOCAL"),                          # an upper-case word (a surname fits): 4+ letters
    ("A" * 10 + CANARY, "99LOCAL"),               # over-long for SH
    ("T-04001", f"mother-{CANARY.lower()}"),      # a scheme that is a word
])
def test_code_item_whose_code_is_free_text_is_removed(tmp_path: Path, value: str, scheme: str) -> None:
    dataset = planted_dataset()
    dataset.AnatomicRegionSequence = Sequence([_code(value, scheme, "Breast"), _code("T-04000", "SRT", "Breast")])
    written = _written(tmp_path, dataset)
    assert [item.CodeValue for item in written.AnatomicRegionSequence] == ["T-04000"]


def test_code_meaning_at_any_depth_of_an_sr_content_tree(tmp_path: Path) -> None:
    leaf = Dataset()
    leaf.RelationshipType, leaf.ValueType = "CONTAINS", "CODE"
    leaf.ConceptNameCodeSequence = Sequence([_code("121071", "DCM", f"Finding by {CANARY}")])
    leaf.ConceptCodeSequence = Sequence([_code("T-04000", "SRT", f"the husband {CANARY}")])
    container = Dataset()
    container.RelationshipType, container.ValueType = "CONTAINS", "CONTAINER"
    container.ConceptNameCodeSequence = Sequence([_code("111059", "DCM", CANARY)])
    container.ContentSequence = Sequence([leaf])
    dataset = planted_dataset()
    dataset.ContentSequence = Sequence([container])
    written = _written(tmp_path, dataset)
    inner = written.ContentSequence[0].ContentSequence[0]
    assert inner.ConceptNameCodeSequence[0].CodeMeaning == "Finding"
    assert inner.ConceptCodeSequence[0].CodeMeaning == "Breast"


def test_mapping_resource_name_and_odd_version_are_removed() -> None:
    item = _code("T-04000", "SRT", "Breast")
    item.MappingResourceName = f"notes on {CANARY}"
    item.CodingSchemeVersion = f"v {CANARY}"
    assert clean_code_item(item)
    assert "MappingResourceName" not in item and "CodingSchemeVersion" not in item


def test_code_shapes_and_dictionary() -> None:
    assert dictionary_meanings("DCM", "113100") == ("Basic Application Confidentiality Profile",)
    assert dictionary_meanings("UCUM", "{ratio}")  # a UCUM annotation is text: known ones only
    assert is_code("mm[Hg]") and is_code("T-04000") and is_code("min") and not is_code("{husband}")
    assert not is_code("husband") and not is_code("A B") and not is_code("X" * 17)


def test_cleaned_code_items_keep_the_image_valid(tmp_path: Path) -> None:
    from tests.test_recipes import make_mammogram

    source = make_mammogram()
    source.AnatomicRegionSequence[0].CodeMeaning = f"Breast of {CANARY}"
    source.ViewCodeSequence[0].CodeMeaning = CANARY
    written = _written(tmp_path, source, recipe="mammography")
    assert written.ViewCodeSequence[0].CodeMeaning == "cranio-caudal"
    path, output = tmp_path / "in" / "a.dcm", next((tmp_path / "out").rglob("*.dcm"))
    assert dciodvfy_errors(output) - dciodvfy_errors(path) == set()


def test_in_memory_deidentify_cleans_code_items_too() -> None:
    import deidcli
    from tests.conftest import KEY

    dataset = planted_dataset()
    dataset.AnatomicRegionSequence = Sequence([_code("T-04000", "SRT", f"husband of {CANARY}"),
                                               _code(f"{CANARY} X", "99LOCAL", "Breast")])
    result = deidcli.deidentify(dataset, recipe="default", key=KEY)
    assert [(item.CodeValue, item.CodeMeaning) for item in result.AnatomicRegionSequence] == [("T-04000", "Breast")]


def test_a_name_as_coding_scheme_designator_is_not_a_scheme() -> None:
    from deidcli.codes import is_scheme

    assert not is_scheme("SMITH")
    assert not is_scheme("DOEJANE")
    assert not is_scheme("JONES")
    assert all(is_scheme(scheme) for scheme in ("DCM", "SCT", "LN", "SRT", "99PMP", "99LOCAL", "L", "ACR", "UCUM", "TEST", "SCPECG"))


@pytest.mark.parametrize("scheme", ["LEE", "DOE", "99SMITH", "TEST", "99PMP"])
def test_a_designator_outside_ps3_16_becomes_the_local_scheme(scheme: str) -> None:
    """A short token can be a surname ("LEE") and a "99" token can carry one: only PS3.16 designators leave."""
    item = _code("XB-123", scheme, "Breast")
    item.MappingResource = "SMITH"
    assert clean_code_item(item)
    assert (item.CodeValue, item.CodingSchemeDesignator) == ("XB-123", "99LOCAL")
    assert "MappingResource" not in item


def test_a_ps3_16_designator_and_mapping_resource_are_kept() -> None:
    item = _code("T-04000", "SRT", "Breast")
    item.MappingResource = "DCMR"
    assert clean_code_item(item)
    assert (item.CodingSchemeDesignator, item.MappingResource) == ("SRT", "DCMR")


def test_code_dictionary_matches_a_plain_build_of_pydicoms_concepts() -> None:
    """The dictionary's fast build (single meanings kept apart) gives exactly what the plain one would:
    every (scheme, value) of pydicom's concepts, all meanings, most-used first, SRT through the SCT map."""
    from pydicom.sr._concepts_dict import concepts
    from pydicom.sr._snomed_dict import mapping

    from deidcli.codes import _dictionary

    uses: dict[tuple[str, str], dict[str, int]] = {}
    for scheme, names in concepts.items():
        for codes in names.values():
            for value, (meaning, cids) in codes.items():
                counts = uses.setdefault((scheme, value), {})
                counts[meaning] = max(counts.get(meaning, 0), len(cids))
    for srt, sct in mapping["SRT"].items():
        if ("SCT", sct) in uses:
            uses[("SRT", srt)] = uses[("SCT", sct)]
    plain = {key: tuple(sorted(counts, key=lambda meaning: (-counts[meaning], len(meaning), meaning)))
             for key, counts in uses.items()}
    assert _dictionary() == plain
    assert sum(len(meanings) > 1 for meanings in plain.values()) > 1000  # the slow path is exercised too
