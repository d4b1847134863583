"""Burned-in text through `deid run`: real ultrasounds with patient names, mammograms with view labels,
and the fail-closed paths (engine error, low confidence, --ocr never)."""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

import deidcli
import deidcli.ocr
from deidcli.geometry import Rect
from deidcli.ocr import DetectedText, TextScanner, make_detector
from tests.conftest import KEY, ORG_ROOT, deid_data_file, raw_leaks


def ocr_run(in_dir: Path, out_dir: Path, **kwargs):
    options = {"key": KEY, "org_root": ORG_ROOT, "ocr": "auto", "workers": 1}
    options.update(kwargs)
    return deidcli.run(in_dir, out_dir, **options)


def outputs_by_input(private: Path) -> dict[str, str]:
    import csv

    with (private / "files.csv").open() as handle:
        return {row["input_path"]: row["output_path"] for row in csv.DictReader(handle) if row["output_path"]}


def readable_text(pixels: np.ndarray, photometric: str, bits: int) -> list[str]:
    scanner = TextScanner(make_detector("rapidocr"), None, read_all=True)
    result = scanner.scan(pixels, photometric, bits)
    return [text for text in result.recognised_masked_text if text.strip()]


@pytest.mark.parametrize("name, needle", [("GREYSCALE_IMAGE.dcm", "PATIENT"), ("RGB_IMAGE.dcm", "DOWNTIME")])
def test_real_ultrasound_names_are_unreadable_after_deid_run(name, needle, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(deid_data_file("ultrasounds", name), folder / name)
    source = pydicom.dcmread(folder / name)
    before = " ".join(readable_text(source.pixel_array, source.PhotometricInterpretation, 8)).upper()
    assert needle in before  # the name is really burned in and OCR can read it
    audit = ocr_run(folder, tmp_path / "out")
    assert list(audit["status"]) == ["written"]
    assert int(audit["ocr_boxes_masked"][0]) > 5
    output = pydicom.dcmread(tmp_path / "out" / outputs_by_input(tmp_path / "out.private")[name])
    after = readable_text(output.pixel_array, output.PhotometricInterpretation, 8)
    assert after == []
    assert output.BurnedInAnnotation == "NO"
    assert "113101" in [item.CodeValue for item in output.DeidentificationMethodCodeSequence]
    # text read in masked boxes is PHI: it may only reach the private folder
    assert raw_leaks(tmp_path / "out", [needle, needle.lower()]) == []


def synthetic_mammogram(path: Path, photometric: str = "MONOCHROME2") -> None:
    """A 16-bit 3328x2560 mammogram-like image with a name and a view label burned in."""
    rows, columns = 3328, 2560
    image = np.full((rows, columns), 300, dtype=np.uint16)
    canvas = np.zeros((rows, columns), dtype=np.uint8)  # OpenCV 5 draws on 8-bit images only
    cv2.ellipse(canvas, (0, rows // 2), (1700, 1400), 0, -90, 90, 1, -1)
    image[canvas == 1] = 2600
    cv2.putText(canvas, "SMITH JANE 1234567", (1300, 200), cv2.FONT_HERSHEY_SIMPLEX, 3.0, 2, 8)
    cv2.putText(canvas, "R MLO", (2000, 3000), cv2.FONT_HERSHEY_SIMPLEX, 4.0, 2, 10)
    image[canvas == 2] = 4095
    if photometric == "MONOCHROME1":
        image = 4095 - image
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.1.2"  # Digital Mammography For Presentation
    ds.SOPInstanceUID = generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = "MG"
    ds.PatientName, ds.PatientID = "SMITH^JANE", "1234567"
    ds.Rows, ds.Columns = rows, columns
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.ImageLaterality = "R"
    ds.BurnedInAnnotation = "YES"
    ds.PixelData = image.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_mammogram_name_is_masked_and_view_label_is_spared(photometric, tmp_path):
    folder = tmp_path / "in"
    synthetic_mammogram(folder / "mg.dcm", photometric)
    audit = ocr_run(folder, tmp_path / "out", recipe="mammography")
    assert list(audit["status"]) == ["written"], list(audit["detail"])
    assert "RMLO" in audit["ocr_spared_text"][0].replace(" ", "").upper()
    out = pydicom.dcmread(tmp_path / "out" / outputs_by_input(tmp_path / "out.private")["mg.dcm"])
    source = pydicom.dcmread(folder / "mg.dcm")
    name_box = (slice(0, 400), slice(1200, 2560))
    label_box = (slice(2800, 3100), slice(1950, 2500))
    text_value = 4095 if photometric == "MONOCHROME2" else 0
    assert (source.pixel_array[name_box] == text_value).sum() > 1000  # the name was there
    assert (out.pixel_array[name_box] == text_value).sum() == 0  # every glyph pixel of the name is masked
    assert np.array_equal(out.pixel_array[label_box], source.pixel_array[label_box])  # label untouched
    assert out.ImageLaterality == "R"


class _RaisingDetector:
    name = "raising"

    def detect(self, image8):
        raise RuntimeError("engine crashed")


class _LowConfidenceDetector:
    name = "unsure"

    def detect(self, image8):
        height, width = image8.shape[:2]
        return [DetectedText(Rect(10, 10, min(width, 200), min(height, 40)), "R MLO", 0.3)]


def _us_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(deid_data_file("ultrasounds", "GREYSCALE_IMAGE.dcm"), folder / "us.dcm")
    return folder


def test_an_engine_that_raises_quarantines_the_file(tmp_path, monkeypatch):
    monkeypatch.setattr(deidcli.ocr, "make_detector", lambda name, **_: _RaisingDetector())
    audit = ocr_run(_us_folder(tmp_path), tmp_path / "out")
    assert list(audit["reason"]) == ["ocr_failed"]
    assert not list((tmp_path / "out").rglob("*.dcm"))


def test_a_low_confidence_authorised_word_is_masked_not_spared(tmp_path, monkeypatch):
    monkeypatch.setattr(deidcli.ocr, "make_detector", lambda name, **_: _LowConfidenceDetector())
    audit = ocr_run(_us_folder(tmp_path), tmp_path / "out", recipe="mammography")
    assert list(audit["status"]) == ["written"]
    assert int(audit["ocr_boxes_masked"][0]) >= 1 and int(audit["ocr_boxes_spared"][0]) == 0
    out = pydicom.dcmread(next((tmp_path / "out").rglob("*.dcm")))
    masked = out.pixel_array[10:40, 10:200]
    # one value per row (the header band's grey above its edge, black below: mask.band_field), nothing of a glyph
    assert (np.ptp(masked, axis=1) == 0).all()
    assert len(np.unique(masked[:, 0])) <= 2


def test_burned_in_yes_with_ocr_never_and_no_region_is_quarantined(tmp_path):
    folder = tmp_path / "in"
    synthetic_mammogram(folder / "mg.dcm")
    with pytest.raises(deidcli.UsageError):
        ocr_run(folder, tmp_path / "out", ocr="never")
    audit = deidcli.api.run_batch(folder, tmp_path / "out2", key=KEY, org_root=ORG_ROOT, ocr="never",
                                  region_rules=_empty_rules(tmp_path)).audit
    assert list(audit["reason"]) == ["burned_in_unchecked"]


def _empty_rules(tmp_path: Path) -> Path:
    path = tmp_path / "rules.json"
    path.write_text('{"rules": []}')
    return path


def test_text_in_a_kept_overlay_plane_is_masked(tmp_path):
    import json

    from pydicom.pixels import pack_bits, unpack_bits

    rows = columns = 512
    image = np.full((rows, columns), 40, dtype=np.uint8)
    overlay = np.zeros((rows, columns), dtype=np.uint8)
    cv2.putText(overlay, "DOE JOHN 4711", (40, 120), cv2.FONT_HERSHEY_SIMPLEX, 1.5, 1, 3)
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID = "1.2.840.10008.5.1.4.1.1.7", generate_uid()
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.Modality = generate_uid(), generate_uid(), "OT"
    ds.Rows, ds.Columns, ds.SamplesPerPixel, ds.PhotometricInterpretation = rows, columns, 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.PixelData = image.tobytes()
    ds.add_new(0x60000010, "US", rows)
    ds.add_new(0x60000011, "US", columns)
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60000050, "SS", [1, 1])
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60000102, "US", 0)
    ds.add_new(0x60003000, "OW", pack_bits(overlay.reshape(-1)))
    folder = tmp_path / "in"
    folder.mkdir()
    ds.save_as(folder / "overlay.dcm", enforce_file_format=True)
    recipe = json.loads(deidcli.recipe.load.builtin_text("default"))
    for tag, keyword, vr in (("0x60xx0010", "OverlayRows", "US"), ("0x60xx0011", "OverlayColumns", "US"),
                             ("0x60xx0040", "OverlayType", "CS"), ("0x60xx0050", "OverlayOrigin", "SS"),
                             ("0x60xx0100", "OverlayBitsAllocated", "US"), ("0x60xx0102", "OverlayBitPosition", "US"),
                             ("0x60xx3000", "OverlayData", "OW")):
        recipe["general_rules"][tag] = [keyword, vr, "CONSERVER"]
    (tmp_path / "keep-overlays.json").write_text(json.dumps(recipe))
    audit = ocr_run(folder, tmp_path / "out", recipe=tmp_path / "keep-overlays.json")
    assert list(audit["status"]) == ["written"]
    out = pydicom.dcmread(next((tmp_path / "out").rglob("*.dcm")))
    assert 0x60003000 in out
    bits = unpack_bits(out[0x60003000].value)[: rows * columns]
    assert overlay.sum() > 500 and bits.sum() == 0  # every set bit of the overlay text is cleared
