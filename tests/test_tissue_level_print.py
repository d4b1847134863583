"""Red team 4's last leaks (issue 12), reproduced on real files: print drawn a few tens of levels over MR/CT tissue
(scan._level_print, fit.print_level_ink) and a vertical ID beside an ultrasound's colour bar
(scan._upright_pieces)."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest

from deidcli.geometry import Rect
from deidcli.ocr import TextScanner, make_detector
from deidcli.ocr.scan import level_ink, level_windows
from deidcli.pixels.fit import fit_to_ink

sys.path.insert(0, str(Path(__file__).parent))
from conftest import pydicom_file  # noqa: E402
from ocr_fixtures import burn_text, hidden_share  # noqa: E402


@pytest.fixture(scope="module")
def rapid() -> TextScanner:
    return TextScanner(make_detector("rapidocr"), None)


def test_a_date_thirty_levels_above_mr_tissue_is_masked(rapid: TextScanner) -> None:
    """MR2_UNCI (1024x1024, 0-600): a date +30 levels over the shoulder's tissue was left, 0 % changed (red team
    mr_lowcontrast); every contrast view shows it as faint as the tissue's texture."""
    image = pydicom.dcmread(pydicom_file("MR2_UNCI.dcm")).pixel_array.copy()
    level = float(np.median(image[500:524, 420:580])) + 30
    glyphs = burn_text(image, "1984-03-21", 420, 500, 24, level, 3)
    result = rapid.scan(image, "MONOCHROME2", 12)
    assert hidden_share(glyphs, result.masked) >= 0.98


def test_an_id_thirty_levels_below_ct_tissue_is_masked_to_its_own_extent(rapid: TextScanner) -> None:
    """explicit_VR-UN (CT abdomen): an ID 30 HU below the liver; masked, and the mask is the print's extent
    (a padded detector box filled whole took a block of abdomen with it)."""
    image = pydicom.dcmread(pydicom_file("explicit_VR-UN.dcm")).pixel_array.copy()
    level = float(np.median(image[250:268, 180:300])) - 30
    glyphs = burn_text(image, "21888304", 180, 250, 16, level, 2)
    result = rapid.scan(image, "MONOCHROME2", 16)
    assert hidden_share(glyphs, result.masked) >= 0.98
    ys, xs = np.nonzero(glyphs)
    text = Rect(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1).pad(3, 3)
    outside = sum(r.area for r in result.masked) - sum(
        max(0, min(r.x1, text.x1) - max(r.x0, text.x0)) * max(0, min(r.y1, text.y1) - max(r.y0, text.y0))
        for r in result.masked)
    assert outside <= 0.002 * image.size


@pytest.mark.parametrize("name", ["MR2_UNCI.dcm", "explicit_VR-UN.dcm", "MR-SIEMENS-DICOM-WithOverlays.dcm",
                                  "693_UNCI.dcm"])
def test_tissue_without_print_gets_no_level_window_or_no_mask(rapid: TextScanner, name: str) -> None:
    """The same real frames without print: the level pass finds no crowd of drawn pixels on their tissue, or
    nothing there reads as text; no box is masked on anatomy."""
    source = pydicom.dcmread(pydicom_file(name))
    image = source.pixel_array
    result = rapid.scan(image, "MONOCHROME2", int(source.BitsStored))
    windows = level_windows(level_ink(image))
    assert not windows or all(r.area <= 0.002 * image.size for r in result.masked)
    assert sum(r.area for r in result.masked) <= 0.005 * image.size


def test_the_fit_keeps_print_drawn_at_a_level_inside_the_tissue_range() -> None:
    """A mask over a date +30 levels over CT tissue (neither the box's highest nor lowest value): the fit cut
    its first glyphs off (83 % of them changed); the print's level is the box's commonest value."""
    image = pydicom.dcmread(pydicom_file("explicit_VR-UN.dcm")).pixel_array.copy()
    level = float(np.median(image[245:270, 175:340])) + 30
    glyphs = burn_text(image, "1989-02-05", 176, 246, 24, level, 3)
    ys, xs = np.nonzero(glyphs)
    box = Rect(int(xs.min()) - 1, int(ys.min()) - 1, int(xs.max()) + 2, int(ys.max()) + 2)
    fitted = fit_to_ink(image, box)
    assert hidden_share(glyphs, [fitted]) == 1.0


def test_a_vertical_id_beside_an_ultrasound_colour_bar_is_masked_to_its_last_digit(rapid: TextScanner) -> None:
    """US1_UNCR (RGB): a cyan ID written top to bottom beside the colour bar; the upright detection read `706`
    of it and its last digits, over the bar's grey scale, were left (65 % of the glyphs changed)."""
    image = pydicom.dcmread(pydicom_file("US1_UNCR.dcm")).pixel_array.copy()
    glyphs = burn_text(image, "670699058", 620, 100, 12, (0, 255, 255), 1, turns=3)
    result = rapid.scan(image, "RGB", 8)
    assert hidden_share(glyphs, result.masked) >= 0.98


def test_the_fit_does_not_take_the_black_beyond_a_ct_field_of_view_for_drawn_print() -> None:
    """693_UNCI's bottom left corner: a name in small print on the black outside the field of view, under a
    scanner box reaching over the field of view's edge. The black is the box core's commonest value but a field,
    not strokes: the box is still fitted to the name (kept whole, it added 1 % of the frame's pixels)."""
    image = pydicom.dcmread(pydicom_file("693_UNCI.dcm")).pixel_array.copy()
    glyphs = burn_text(image, "ciaran fitzgerald", 4, 490, 12, float(image.max()), 1)
    fitted = fit_to_ink(image, Rect(0, 475, 114, 512))
    assert hidden_share(glyphs, [fitted]) == 1.0
    assert fitted.area <= 0.5 * Rect(0, 475, 114, 512).area


def test_faint_hairline_print_over_quantised_ct_brain_is_masked(rapid: TextScanner) -> None:
    """eCT_Supplemental (CT head, the brain in few levels, holes flat at one value): a 12 px ID in 1 px antialiased
    strokes 40 levels above the brain was left, 0 % changed (red team variants `tissue_ect_*`): no contrast view reads
    it and the level pass gets no window on a quantised frame. The band pass reads it; the mask is the print's own
    extent."""
    image = pydicom.dcmread(pydicom_file("eCT_Supplemental.dcm")).pixel_array[0].copy()
    level = float(np.median(image[251:263, 250:308])) + 40
    glyphs = burn_text(image, "78801539", 250, 251, 12, level, 1, face=cv2.FONT_HERSHEY_SIMPLEX)
    result = rapid.scan(image, "MONOCHROME2", 12)
    assert hidden_share(glyphs, result.masked) >= 0.98
    ys, xs = np.nonzero(glyphs)
    text = Rect(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1).pad(3, 3)
    assert all(text.x0 <= r.x0 and r.x1 <= text.x1 and text.y0 <= r.y0 and r.y1 <= text.y1 for r in result.masked)


@pytest.mark.parametrize("name", ["eCT_Supplemental.dcm", "MR2_UNCI.dcm", "explicit_VR-UN.dcm",
                                  "MR-SIEMENS-DICOM-WithOverlays.dcm", "693_UNCI.dcm", "CT_small.dcm"])
def test_band_pass_masks_nothing_on_tissue_without_print(rapid: TextScanner, name: str) -> None:
    """The red team's clean bases: the band pass may find candidate lines in their tissue, but nothing there reads
    as text strictly, so it adds no mask (the scan masks exactly what it masks without the pass)."""
    source = pydicom.dcmread(pydicom_file(name))
    image = source.pixel_array
    image = image[0] if image.ndim == 3 else image
    with_pass = rapid.scan(image, "MONOCHROME2", int(source.BitsStored))
    without = TextScanner(rapid.detector, None)
    without._band_print = lambda *_args: None  # type: ignore[method-assign]
    assert sorted(with_pass.masked) == sorted(without.scan(image, "MONOCHROME2", int(source.BitsStored)).masked)
