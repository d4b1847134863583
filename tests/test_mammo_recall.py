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
             turned: bool = False, value: float = TOP) -> Rect:
    """Draw `text` `thick` pixels thick with capitals `height` px tall at (x, y) (top left; `turned`: reading
    bottom to top, from (x, y) down) at `value`; returns its box."""
    (_, cap), _ = cv2.getTextSize("H", font, 1.0, 1)
    ink = np.zeros((COLS, ROWS) if turned else (ROWS, COLS), np.uint8)
    cv2.putText(ink, text, (ROWS - y - 1 if turned else x, (x if turned else y) + height), font, height / cap, 255,
                thick, cv2.LINE_AA)
    ink = np.ascontiguousarray(np.rot90(ink)) if turned else ink
    image[:] = image * (1 - ink / 255.0) + value * (ink / 255.0)
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


@pytest.mark.parametrize(("height", "thick", "font", "value", "photometric"), [
    (18, 3, cv2.FONT_HERSHEY_COMPLEX, 9000, "MONOCHROME2"),  # grey bold, as red team 4 planted it
    (22, 3, cv2.FONT_HERSHEY_TRIPLEX, 12000, "MONOCHROME2"),
    (17, 3, cv2.FONT_HERSHEY_DUPLEX, 16000, "MONOCHROME1"),
])
def test_bold_small_print_on_the_air_of_a_mammogram_is_masked(rapid: TextScanner, height: int, thick: int,
                                                               font: int, value: float, photometric: str) -> None:
    """17-24 px bold print is a 5-8 px solid bar at the scan's 1024 px (no glyph shape, no detector box), and in
    the stored frame its strokes are thicker than the flatness test's 5 px opening: it was masked nowhere."""
    image = planted_mammogram()
    line = hairline(image, "ROSE QUIGLEY", 2050, ROWS - height - 50, height, font, thick=thick, value=value)
    frame = image.round().clip(0, TOP).astype(np.uint16)
    if photometric == "MONOCHROME1":
        frame = TOP - frame
    result = rapid.scan(frame, photometric, 14)
    assert coverage(line, result.masked, ROWS, COLS) >= 0.95


def _label_then(image: np.ndarray, label: str, rest: str, x: int, y: int, height: int, gap: int) -> tuple[Rect, Rect]:
    first = hairline(image, label, x, y, height, cv2.FONT_HERSHEY_DUPLEX, thick=5)
    second = hairline(image, rest, first.x1 + gap, y, height, cv2.FONT_HERSHEY_DUPLEX, thick=3)
    return first, second


def test_a_label_followed_by_a_name_keeps_the_label_and_masks_the_name(rapid: TextScanner) -> None:
    image = planted_mammogram()
    label, name = _label_then(image, "L CC", "DUBOIS, AMELIE", 1900, 80, 60, 80)
    frame = image.round().clip(0, TOP).astype(np.uint16)
    result = rapid.scan(frame, "MONOCHROME2", 14)
    assert coverage(name, result.masked, ROWS, COLS) >= 0.98
    assert coverage(label, result.masked, ROWS, COLS) == 0.0
    assert [text for _, text in result.spared] == ["LCC"]


def test_a_line_whose_first_word_is_not_a_label_is_masked_whole(rapid: TextScanner) -> None:
    """Fail closed: the first word reads as no authorised word, so nothing of the line is spared."""
    image = planted_mammogram()
    first, name = _label_then(image, "LX CQ", "DUBOIS, AMELIE", 1900, 80, 60, 80)
    frame = image.round().clip(0, TOP).astype(np.uint16)
    result = rapid.scan(frame, "MONOCHROME2", 14)
    assert coverage(Rect(first.x0, first.y0, name.x1, name.y1), result.masked, ROWS, COLS) >= 0.98
    assert result.spared == []



def test_a_bar_that_is_a_piece_of_its_line_is_confirmed_to_the_line_s_last_glyph() -> None:
    """The scan's threshold breaks a line of small print into bars; the bar confirmed in the stored frame stands
    for its whole line (the `16` of a date two heights past the bar's end was left legible)."""
    field = np.random.default_rng(3).normal(40.0, 2.0, (120, 800)).clip(0, 255).astype(np.uint8)
    cv2.putText(field, "677177812 1974-04-16", (100, 60), cv2.FONT_HERSHEY_DUPLEX, 0.8, 250, 2, cv2.LINE_AA)
    ys, xs = np.nonzero(field > 128)
    scale = 0.3
    bar = Rect(30, int(ys.min() * scale), 60, int(ys.max() * scale) + 1)  # the line's first 100 px only
    found = confirmed(lambda r: field[r.y0 : r.y1, r.x0 : r.x1], bar, scale, 120, 800)
    assert found is not None and found.x0 <= xs.min() and found.x1 > xs.max()


def test_small_print_on_noisy_12_bit_air_is_confirmed() -> None:
    """14 px print with 2 px strokes at 45 % of the range over 12-bit air whose noise is a sixth of its level:
    with strokes up to a third of the bar's height taken out (5 px) the field around the glyphs was not flat."""
    rng = np.random.default_rng(11)
    frame = rng.normal(49.0, 8.0, (140, 700)).astype(np.float32)
    ink = np.zeros(frame.shape, np.uint8)
    (_, cap), _ = cv2.getTextSize("H", cv2.FONT_HERSHEY_TRIPLEX, 1.0, 1)
    cv2.putText(ink, "NAKAMURA-LOPEZ EMI", (100, 84), cv2.FONT_HERSHEY_TRIPLEX, 14 / cap, 255, 2, cv2.LINE_AA)
    frame = frame * (1 - ink / 255.0) + 1870.0 * (ink / 255.0)
    ys, xs = np.nonzero(ink > 64)
    scale = 0.3077
    bar = Rect(int(xs.min() * scale), int(ys.min() * scale), int(xs.max() * scale) + 1, int(ys.max() * scale) + 1)

    def picture(r: Rect) -> np.ndarray:
        crop = frame[r.y0 : r.y1, r.x0 : r.x1]
        return ((crop - crop.min()) * (255.0 / (crop.max() - crop.min()))).astype(np.uint8)

    found = confirmed(picture, bar, scale, 140, 700)
    assert found is not None and found.x0 <= xs.min() and found.x1 > xs.max()


def test_the_gap_between_two_masked_pieces_of_a_line_is_masked() -> None:
    from deidcli.ocr.scan import _bridge_pieces, _ScanState

    state = _ScanState(np.zeros((1024, 788), bool), 0.3077, ROWS, COLS)
    state.add_mark(Rect(0, 3239, 180, 3294), Rect(0, 996, 55, 1013))
    state.add_mark(Rect(200, 3240, 257, 3289), Rect(62, 997, 79, 1012))
    state.add_mark(Rect(1200, 3240, 1300, 3289), Rect(369, 997, 400, 1012))  # another line, far off: not joined
    _bridge_pieces(state)
    assert coverage(Rect(0, 3250, 257, 3280), state.masked, ROWS, COLS) == 1.0
    assert coverage(Rect(260, 3250, 1200, 3280), state.masked, ROWS, COLS) == 0.0
