"""Vertical print beside a screen's picture without data regions (deidcli.ocr.chrome_columns, scan._vertical_print),
on real ultrasound files: IDs written top to bottom or bottom to top beside, over and along US1_UNCR's colour bar
(bench/redteam/variants.py `usbar_*`: 5 of 6 left legible before), and what the pass must not take."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pydicom
import pytest

from deidcli.ocr import TextScanner, make_detector
from deidcli.ocr import scan as scan_module
from deidcli.ocr.chrome_columns import print_columns, screen_zones, side_bands
from deidcli.ocr.layout import anatomy_mask
from deidcli.ocr.views import brightest_channel
from deidcli.pixels import fit as fit_module
from deidcli.pixels.fit import fit_to_ink, value_span

sys.path.insert(0, str(Path(__file__).parent))
from conftest import deid_data_file, pydicom_file  # noqa: E402
from ocr_fixtures import burn_text, hidden_share  # noqa: E402


@pytest.fixture(scope="module")
def rapid() -> TextScanner:
    return TextScanner(make_detector("rapidocr"), None)


@pytest.fixture(scope="module")
def us1() -> np.ndarray:
    return pydicom.dcmread(pydicom_file("US1_UNCR.dcm")).pixel_array


@pytest.mark.parametrize(("text", "x", "y", "height", "colour", "turns"), [
    # Along the sector's top right corner, through the header block: the upright detection read nothing of it
    # (main 89250db's rectangles covered 77 % of its glyphs, the header lines' masks; `9426` left).
    ("942654354", 548, 60, 14, (0, 255, 255), 1),
    # Over the grey scale below the colour bar, orange: main's rectangles covered 57 % of it.
    ("749918011", 626, 180, 12, (255, 128, 0), 3),
    # Green over the colour bar itself (green on yellow shows only in red): main's rectangles covered it, but
    # fitted to ink 87 % was changed (`3` left); here the column is read whole (`703734330`).
    ("703734330", 612, 150, 10, (0, 255, 0), 1),
])
def test_a_vertical_id_beside_the_colour_bar_of_a_screen_without_regions_is_masked(
        rapid: TextScanner, us1: np.ndarray, text: str, x: int, y: int, height: int, colour, turns: int) -> None:
    image = us1.copy()
    glyphs = burn_text(image, text, x, y, height, colour, 1, turns)
    result = rapid.scan(image, "RGB", 8)
    assert hidden_share(glyphs, result.masked) >= 0.98


def test_columns_are_found_where_a_vertical_line_is_and_nowhere_on_clean_screens(us1: np.ndarray) -> None:
    """The geometry alone (no detector): a column over the drawn ID, none on three clean colour screens without
    data regions (each column found costs a turned detection; on clean frames that would be spent for nothing)."""
    image = us1.copy()
    burn_text(image, "703734330", 612, 150, 10, (0, 255, 0), 1, 1)
    rows, cols = image.shape[:2]
    found = print_columns(image, side_bands(rows, cols))
    assert any(c.x0 <= 620 and c.x1 >= 614 and c.y0 <= 190 and c.y1 >= 180 for c in found)
    echo = pydicom.dcmread(deid_data_file("ultrasounds", "ultrasound-multiframe.dcm")).pixel_array[0]
    small = pydicom.dcmread(pydicom_file("examples_rgb_color.dcm")).pixel_array
    for clean in (us1, echo, small):
        assert print_columns(clean, side_bands(*clean.shape[:2])) == []
        assert print_columns(clean, *screen_zones(anatomy_mask(brightest_channel(clean)))) == []


def test_a_vertical_date_on_the_black_below_the_picture_beyond_the_side_bands_is_masked(
        rapid: TextScanner, us1: np.ndarray) -> None:
    """A cyan date written bottom to top on the black below US1_UNCR's picture, 130 px from the left edge (the side
    bands end at 128; bench/redteam/us_vertical.py seed 101's `us1_uncr_0`): main f5a5e45 masked none of it."""
    image = us1.copy()
    glyphs = burn_text(image, "1996-02-05", 130, 379, 10, (0, 255, 255), 1, 1)
    rows, cols = image.shape[:2]
    assert side_bands(rows, cols)[0].x1 < 130
    assert hidden_share(glyphs, rapid.scan(image, "RGB", 8).masked) >= 0.98


def test_a_vertical_name_half_over_the_picture_keeps_its_whole_line_once_fitted(
        rapid: TextScanner, us1: np.ndarray) -> None:
    """A pale blue name standing from US1_UNCR's picture onto the black below it (seed 101's `us1_uncr_3`): the
    scanner's rectangle held the whole line, but fitted (deidcli.pixels.fit, as the pixel stage does) main f5a5e45
    kept the black half only (61 % of its glyphs; `GRETA` left on the tissue). The fitted mask ends where the line
    does: the tissue above and below it stays."""
    image = us1.copy()
    glyphs = burn_text(image, "OYELARAN GRETA", 580, 292, 13, (120, 200, 255), 1, 1)
    span = value_span(image)
    fitted = [fit_to_ink(image, rect, span) for rect in rapid.scan(image, "RGB", 8).masked]
    assert hidden_share(glyphs, fitted) >= 0.98
    ys = np.flatnonzero(glyphs.any(axis=1))
    over_line = [rect for rect in fitted if rect.x0 < 590 and rect.x1 > 580 and rect.y1 > ys[0] and rect.y0 < ys[-1]]
    assert over_line and all(rect.y0 >= ys[0] - 4 and rect.y1 <= ys[-1] + 6 for rect in over_line)


def test_the_pass_masks_nothing_more_on_clean_screens(rapid: TextScanner, us1: np.ndarray,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """US1_UNCR and deid-data's echo (frame 0, scanned without its regions): the same rectangles with the pass as
    without it: its colour bars, grey scales, rulers and sectors are not taken for vertical print."""
    echo = pydicom.dcmread(deid_data_file("ultrasounds", "ultrasound-multiframe.dcm")).pixel_array[0]
    with_pass = [sorted(rapid.scan(frame, "RGB", 8).masked) for frame in (us1, echo)]
    monkeypatch.setattr(scan_module.TextScanner, "_vertical_print", lambda *args: None)
    without = [sorted(rapid.scan(frame, "RGB", 8).masked) for frame in (us1, echo)]
    assert with_pass == without


def test_masks_fitted_on_clean_screens_take_nothing_for_print_going_on(rapid: TextScanner, us1: np.ndarray,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The fit's `print_going_on` (a line of print kept where it goes on over a structure crossing its box) adds
    nothing to the masks of clean screens' own print: deid-data's GREYSCALE_IMAGE, pydicom-data's
    JPGLosslessP14SV1 and color3d_jpeg_baseline (frame 0), where the scanner's boxes lie across the pictures'
    edges, rulers and toolbars (it is asked 7 times), and US1_UNCR."""
    def frame_of(path) -> tuple[np.ndarray, str]:
        ds = pydicom.dcmread(path)
        pixels = ds.pixel_array
        frame = pixels[0] if int(ds.get("NumberOfFrames", 1) or 1) > 1 else pixels
        return frame, "RGB" if frame.ndim == 3 else ds.PhotometricInterpretation  # pydicom 3 hands colour as RGB

    frames = [frame_of(deid_data_file("ultrasounds", "GREYSCALE_IMAGE.dcm")),
              frame_of(pydicom_file("JPGLosslessP14SV1_1s_1f_8b.dcm")),
              frame_of(pydicom_file("color3d_jpeg_baseline.dcm")), (us1, "RGB")]
    boxes = [(frame, rapid.scan(frame, photometric, 8).masked) for frame, photometric in frames]
    asked = []

    def fitted(going_on) -> list[list]:
        monkeypatch.setattr(fit_module, "print_going_on", going_on)
        return [[fit_to_ink(frame, rect, value_span(frame)) for rect in rects] for frame, rects in boxes]

    real = fit_module.print_going_on
    with_it = fitted(lambda crop, ink, over: asked.append(1) or real(crop, ink, over))
    assert len(asked) >= 5
    assert with_it == fitted(lambda crop, ink, over: np.zeros(over.shape, bool))
