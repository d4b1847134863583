"""SpecificCharacterSet is kept only when every value is a defined term; anything else is replaced by the
term of the character set the text was read in, so kept text still decodes to the same characters."""

from __future__ import annotations

import json
from pathlib import Path

import pydicom
import pytest

from tests.conftest import planted_dataset
from tests.hostile.values_helpers import audit_row, canary_hits, run_api, run_cli

CANARY = "CANARYCS77"
PLACEHOLDER = "ISO_IR 999"  # written by pydicom, then replaced byte for byte by the hostile value


def _write(path: Path, charset: bytes, institution: bytes) -> None:
    """A file whose SpecificCharacterSet bytes are `charset` (hostile, pydicom would refuse to encode it)."""
    dataset = planted_dataset()
    dataset.SpecificCharacterSet = PLACEHOLDER
    dataset.InstitutionName = "I" * len(institution)
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(path, enforce_file_format=True)
    data = path.read_bytes()
    assert data.count(PLACEHOLDER.encode()) == 1 and len(charset) == len(PLACEHOLDER)
    data = data.replace(PLACEHOLDER.encode(), charset).replace(b"I" * len(institution), institution, 1)
    path.write_bytes(data)


def _recipe(tmp_path: Path) -> str:
    path = tmp_path / "keep-institution.json"
    path.write_text(json.dumps({
        "0x00080016": ["SOPClassUID", "UI", "CONSERVER"], "0x00080018": ["SOPInstanceUID", "UI", "PSEUDONYMISER"],
        "0x00080080": ["InstitutionName", "LO", "CONSERVER"],
        "0x00081040": ["InstitutionalDepartmentName", "LO", "PSEUDONYMISER"],
    }))
    return str(path)


@pytest.mark.parametrize(("charset", "institution", "expected_term", "expected_text"), [
    (b"ISO_IR 100", "Hôpital".encode("latin-1"), "ISO_IR 100", "Hôpital"),             # defined: kept
    (b"ISO-IR 192", "Hôpital".encode(), "ISO_IR 192", "Hôpital"),               # typo: corrected
    (CANARY.encode(), "Hôpital".encode("latin-1"), "ISO_IR 100", "Hôpital"),           # free text
])
def test_character_set_is_a_defined_term_and_text_still_decodes(tmp_path: Path, charset: bytes, institution: bytes,
                                                                 expected_term: str, expected_text: str) -> None:
    _write(tmp_path / "in" / "a.dcm", charset, institution)
    run_api(tmp_path / "in", tmp_path / "out", recipe=_recipe(tmp_path))
    assert audit_row(tmp_path / "out")["reason"] == "ok"
    assert canary_hits(tmp_path / "out", CANARY[:9]) == []
    written = pydicom.dcmread(next((tmp_path / "out").rglob("*.dcm")))
    assert written.SpecificCharacterSet == expected_term
    assert written.InstitutionName == expected_text


def test_nul_in_character_set_quarantines_and_the_batch_goes_on(tmp_path: Path) -> None:
    _write(tmp_path / "in" / "a.dcm", b"\0" + CANARY[:9].encode(), b"ABC")  # pydicom's reader raises on it
    planted_dataset().save_as(tmp_path / "in" / "b.dcm", enforce_file_format=True)
    audit = run_api(tmp_path / "in", tmp_path / "out", recipe=_recipe(tmp_path))
    assert sorted(audit["reason"]) == ["ok", "parse_failed"]
    assert canary_hits(tmp_path / "out", CANARY[:9]) == []


def test_multi_valued_character_set_keeps_its_defined_terms(tmp_path: Path) -> None:
    _write(tmp_path / "in" / "a.dcm", b"\\ISO 2022 ", b"ABC")  # '' + a truncated term
    run_api(tmp_path / "in", tmp_path / "out", recipe=_recipe(tmp_path))
    written = pydicom.dcmread(next((tmp_path / "out").rglob("*.dcm")))
    assert list(written.SpecificCharacterSet) == ["", "ISO 2022 IR 100"]


def test_hostile_character_set_through_the_cli_exits_0(tmp_path: Path, key_file: Path) -> None:
    _write(tmp_path / "in" / "a.dcm", CANARY.encode(), b"ABC")
    completed = run_cli(tmp_path / "in", tmp_path / "out", key_file)
    assert completed.returncode == 0, completed.stderr[-2000:]
    assert canary_hits(tmp_path / "out", CANARY) == []
