"""Encapsulated documents and video are quarantined, whatever the recipe keeps: never written hollow or whole."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydicom.encaps import encapsulate
from pydicom.uid import MPEG4HP41, EncapsulatedCDAStorage, EncapsulatedPDFStorage

from tests.conftest import planted_dataset
from tests.hostile.values_helpers import audit_row, canary_hits, run_api, run_cli

CANARY = "CANARYDOC31337"
PDF = (b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\nBT (Patient " + CANARY.encode()
       + b" husband of the patient) Tj ET\n%%EOF\n")


def _pdf_instance(sop_class: str = EncapsulatedPDFStorage):
    dataset = planted_dataset()
    for keyword in ("Rows", "Columns", "SamplesPerPixel", "PhotometricInterpretation", "BitsAllocated",
                    "BitsStored", "HighBit", "PixelRepresentation", "PixelData"):
        delattr(dataset, keyword)
    dataset.SOPClassUID = dataset.file_meta.MediaStorageSOPClassUID = sop_class
    dataset.MIMETypeOfEncapsulatedDocument = "application/pdf"
    dataset.DocumentTitle = f"Report of {CANARY}"
    dataset.EncapsulatedDocument = PDF
    return dataset


def _save(dataset, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(path, enforce_file_format=True)


@pytest.mark.parametrize("sop_class", [EncapsulatedPDFStorage, EncapsulatedCDAStorage])
def test_encapsulated_document_is_quarantined_not_written_hollow(tmp_path: Path, sop_class: str) -> None:
    _save(_pdf_instance(sop_class), tmp_path / "in" / "doc.dcm")
    _save(planted_dataset(), tmp_path / "in" / "image.dcm")
    audit = run_api(tmp_path / "in", tmp_path / "out")
    assert sorted(audit["reason"]) == ["encapsulated_document", "ok"]
    assert canary_hits(tmp_path / "out", CANARY) == []


def test_encapsulated_document_is_quarantined_even_when_the_recipe_keeps_it(tmp_path: Path) -> None:
    recipe = tmp_path / "keep-document.json"
    recipe.write_text(json.dumps({
        "0x00080016": ["SOPClassUID", "UI", "CONSERVER"], "0x00080018": ["SOPInstanceUID", "UI", "PSEUDONYMISER"],
        "0x00420011": ["EncapsulatedDocument", "OB", "CONSERVER"],
        "0x00420012": ["MIMETypeOfEncapsulatedDocument", "LO", "CONSERVER"],
    }))
    _save(_pdf_instance(), tmp_path / "in" / "doc.dcm")
    run_api(tmp_path / "in", tmp_path / "out", recipe=str(recipe))
    assert audit_row(tmp_path / "out")["reason"] == "encapsulated_document"
    assert canary_hits(tmp_path / "out", CANARY) == []


def test_encapsulated_document_element_in_an_image_class_is_quarantined(tmp_path: Path) -> None:
    dataset = planted_dataset()
    dataset.EncapsulatedDocument = PDF
    _save(dataset, tmp_path / "in" / "a.dcm")
    run_api(tmp_path / "in", tmp_path / "out")
    assert audit_row(tmp_path / "out")["reason"] == "encapsulated_document"


def test_video_is_quarantined_even_when_the_recipe_drops_pixel_data(tmp_path: Path) -> None:
    dataset = planted_dataset()
    dataset.file_meta.TransferSyntaxUID = MPEG4HP41
    dataset.NumberOfFrames = 1
    dataset.PixelData = encapsulate([b"\x00\x00\x01\xb3" + CANARY.encode() * 4])
    _save(dataset, tmp_path / "in" / "video.dcm")
    recipe = tmp_path / "no-pixels.json"
    recipe.write_text(json.dumps({"0x00080016": ["SOPClassUID", "UI", "CONSERVER"],
                                  "0x00080018": ["SOPInstanceUID", "UI", "PSEUDONYMISER"]}))
    run_api(tmp_path / "in", tmp_path / "out", recipe=str(recipe))
    assert audit_row(tmp_path / "out")["reason"] == "video_not_cleanable"
    assert canary_hits(tmp_path / "out", CANARY) == []


def test_encapsulated_pdf_through_the_cli_exits_3(tmp_path: Path, key_file: Path) -> None:
    _save(_pdf_instance(), tmp_path / "in" / "doc.dcm")
    completed = run_cli(tmp_path / "in", tmp_path / "out", key_file)
    assert completed.returncode == 3, completed.stderr[-2000:]
    assert audit_row(tmp_path / "out")["reason"] == "encapsulated_document"
