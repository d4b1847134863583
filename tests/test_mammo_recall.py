"""Print a mammogram scan used to leave: hairline print too small for the scan's resolution
(deidcli.ocr.fine_print), a vertical line along the edge (scan.column_boxes), on planted mammograms."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from deidcli.geometry import Rect
from deidcli.ocr import BUILTIN_MAMMOGRAPHY_WORDS, TextScanner, make_detector
from deidcli.ocr.fine_print import confirmed

sys.path.insert(0, str(Path(__file__).parent))
from ocr_fixtures import coverage  # noqa: E402

ROWS, COLS, TOP = 3328, 2560, 16383


def planted_mammogram(seed: int = 7, grains: bool = False) -> np.ndarray:
    """A 14-bit MONOCHROME2 mammogram (breast on the left, noisy air on the right), float for drawing.
    `grains`: fibroglandular texture down to 6 px grains (as fine, at the scan's 1024 px, as 40 px print's
    strokes), not only broad blobs."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:ROWS, 0:COLS].astype(np.float32)
    inside = (xx / (0.55 * COLS)) ** 2 + ((yy - ROWS / 2) / (0.42 * ROWS)) ** 2 <= 1.0
    if grains:
        texture = 0.6 * _noise(rng, 120) + 0.3 * _noise(rng, 30) + 0.1 * _noise(rng, 6)
        tissue = TOP * (0.30 + 0.45 * (0.45 + 0.55 * np.clip(0.5 + 0.18 * texture, 0, 1)))
    else:
        small = rng.normal(0.0, 1.0, (ROWS // 16 + 1, COLS // 16 + 1)).astype(np.float32)
        tissue = 0.7 * TOP + 0.1 * TOP * cv2.resize(cv2.GaussianBlur(small, (0, 0), 2.0), (COLS, ROWS))
    air = rng.normal(200.0, 32.0, (ROWS, COLS)).astype(np.float32)
    return np.where(inside, tissue, air)


def _noise(rng: np.random.Generator, grain: float) -> np.ndarray:
    """Smooth noise of unit deviation whose blobs are about `grain` pixels across."""
    small = rng.normal(0, 1, (int(ROWS / grain), int(COLS / grain))).astype(np.float32)
    big = cv2.resize(small, (COLS, ROWS), interpolation=cv2.INTER_CUBIC)
    return big / (big.std() + 1e-9)


def hairline(image: np.ndarray, text: str, x: int, y: int, height: int, font: int, thick: int = 1,
             turned: bool = False) -> Rect:
    """Draw `text` `thick` pixels thick with capitals `height` px tall at (x, y) (top left; `turned`: reading
    bottom to top, from (x, y) down); returns its box."""
    (_, cap), _ = cv2.getTextSize("H", font, 1.0, 1)
    ink = np.zeros((COLS, ROWS) if turned else (ROWS, COLS), np.uint8)
    cv2.putText(ink, text, (ROWS - y - 1 if turned else x, (x if turned else y) + height), font, height / cap, 255,
                thick, cv2.LINE_AA)
    ink = np.ascontiguousarray(np.rot90(ink)) if turned else ink
    image[:] = image * (1 - ink / 255.0) + TOP * (ink / 255.0)
    ys, xs = np.nonzero(ink > 64)
    return Rect(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


@pytest.fixture(scope="module")
def rapid() -> TextScanner:
    return TextScanner(make_detector("rapidocr"), BUILTIN_MAMMOGRAPHY_WORDS)


def test_hairline_print_on_the_air_of_a_mammogram_is_masked(rapid: TextScanner) -> None:
    image = planted_mammogram()
    name = hairline(image, "FITZGERALD^CIARAN", 2100, 40, 10, cv2.FONT_HERSHEY_PLAIN)
    patient_id = hairline(image, "634200712", 2100, 62, 12, cv2.FONT_HERSHEY_SIMPLEX)
    date = hairline(image, "1955-12-24", 2100, 3290, 14, cv2.FONT_HERSHEY_COMPLEX)
    # A solid bar as thin as the print at scan resolution: a plate edge, not print (it must stay).
    image[1500:1510, 2200:2300] = TOP
    frame = image.round().clip(0, TOP).astype(np.uint16)
    result = rapid.scan(frame, "MONOCHROME2", 14)
    for box in (name, patient_id, date):
        assert coverage(box, result.masked, ROWS, COLS) >= 0.95, box
    assert coverage(Rect(2200, 1500, 2300, 1510), result.masked, ROWS, COLS) == 0.0


def test_a_solid_bar_is_not_confirmed_as_print_but_hairline_text_is() -> None:
    field = np.random.default_rng(3).normal(40.0, 2.0, (120, 400)).clip(0, 255).astype(np.uint8)
    bar = field.copy()
    bar[50:60, 100:300] = 250
    text = field.copy()
    cv2.putText(text, "ZHANG WEI 1959", (100, 60), cv2.FONT_HERSHEY_PLAIN, 0.9, 250, 1, cv2.LINE_AA)
    scale = 0.3  # the bar as the scan saw it: rows 15-18, columns 30-90
    in_view = Rect(30, 15, 90, 18)
    assert confirmed(lambda r: bar[r.y0 : r.y1, r.x0 : r.x1], in_view, scale, 120, 400) is None
    found = confirmed(lambda r: text[r.y0 : r.y1, r.x0 : r.x1], in_view, scale, 120, 400)
    assert found is not None and found.y0 <= 50 and found.y1 >= 59


def test_vertical_line_along_the_edge_of_a_mammogram_is_masked_whole(rapid: TextScanner) -> None:
    image = planted_mammogram()
    line = hairline(image, "MBEKI THABO 1975-04-10", 2500, 1400, 36, cv2.FONT_HERSHEY_DUPLEX, thick=3, turned=True)
    assert line.height > 10 * line.width  # drawn turned: a column along the right edge
    frame = image.round().clip(0, TOP).astype(np.uint16)
    result = rapid.scan(frame, "MONOCHROME2", 14)
    assert coverage(line, result.masked, ROWS, COLS) >= 0.98


def test_low_contrast_print_over_dense_tissue_is_masked_and_clean_tissue_is_not(rapid: TextScanner) -> None:
    image = planted_mammogram(grains=True)
    clean = rapid.scan(image.round().clip(0, TOP).astype(np.uint16), "MONOCHROME2", 14)
    base = float(np.median(image[1500:1540, 300:900]))
    ink = np.zeros((ROWS, COLS), np.uint8)
    cv2.putText(ink, "MBEKI THABO", (300, 1540), cv2.FONT_HERSHEY_DUPLEX, 40 / 22, 255, 4, cv2.LINE_AA)
    name = _box(ink)
    image[:] = image * (1 - ink / 255.0) + (base + 120) * (ink / 255.0)  # 30 levels at 12 bits
    ink[:] = 0
    cv2.putText(ink, "1959-05-27", (300, 1740), cv2.FONT_HERSHEY_DUPLEX, 40 / 22, 255, 4, cv2.LINE_AA)
    date = _box(ink)
    image[:] = image * (1 - ink / 255.0) + (base - 120) * (ink / 255.0)
    result = rapid.scan(image.round().clip(0, TOP).astype(np.uint16), "MONOCHROME2", 14)
    for box in (name, date):
        assert coverage(box, result.masked, ROWS, COLS) >= 0.95, box
    assert clean.masked == []  # the same tissue without print: nothing masked


def _box(ink: np.ndarray) -> Rect:
    ys, xs = np.nonzero(ink > 64)
    return Rect(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
