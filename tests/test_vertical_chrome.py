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
from deidcli.ocr.chrome_columns import print_columns, side_bands

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


def test_the_pass_masks_nothing_more_on_clean_screens(rapid: TextScanner, us1: np.ndarray,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """US1_UNCR and deid-data's echo (frame 0, scanned without its regions): the same rectangles with the pass as
    without it: its colour bars, grey scales, rulers and sectors are not taken for vertical print."""
    echo = pydicom.dcmread(deid_data_file("ultrasounds", "ultrasound-multiframe.dcm")).pixel_array[0]
    with_pass = [sorted(rapid.scan(frame, "RGB", 8).masked) for frame in (us1, echo)]
    monkeypatch.setattr(scan_module.TextScanner, "_vertical_print", lambda *args: None)
    without = [sorted(rapid.scan(frame, "RGB", 8).masked) for frame in (us1, echo)]
    assert with_pass == without
