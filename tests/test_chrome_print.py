"""Small print in device chrome found as glyph components (deidcli.ocr.chrome_print): what no detector view
found on real files, and what is not print (rulers, ticks, colour bars, icons, speckle)."""

from __future__ import annotations

import io
import zipfile

import cv2
import numpy as np
import pydicom
import pytest

from deidcli.geometry import Rect
from deidcli.ocr import TextScanner, make_detector
from deidcli.ocr.chrome import ChromeMemory, chrome_pixels
from deidcli.ocr.chrome_print import print_rows
from deidcli.ocr.layout import anatomy_mask
from deidcli.ocr.scan import choose_scale, resize
from deidcli.ocr.views import brightest_channel
from deidcli.pixels.stage import ultrasound_data_regions
from tests.conftest import deid_data_file, pydicom_file
from tests.pixel_helpers import read, sample_file


def masked_share(shape: tuple[int, ...], rects: list[Rect], pixels: np.ndarray) -> float:
    """Share of the True pixels of `pixels` (a frame-sized mask) lying under the rectangles."""
    masked = np.zeros(shape[:2], bool)
    for r in rects:
        masked[r.y0 : r.y1, r.x0 : r.x1] = True
    return float(masked[pixels].mean())


def box_pixels(shape: tuple[int, ...], box: tuple[int, int, int, int], keep: np.ndarray) -> np.ndarray:
    """The pixels of `keep` (frame-sized) inside `box`."""
    x0, y0, x1, y1 = box
    inside = np.zeros(shape[:2], bool)
    inside[y0:y1, x0:x1] = True
    return inside & keep


@pytest.fixture(scope="module")
def rapid() -> TextScanner:
    return TextScanner(make_detector("rapidocr"), None)


def test_small_screen_button_labels_beside_their_icons_are_masked(rapid) -> None:
    """examples_ybr_color (320x240 echo cine): `A` and `B O"` are 4-5 px letters ~50 levels over black
    beside their icons, found by no detector view at x1.6, x3 or x4; the echo sector stays untouched."""
    frame = pydicom.dcmread(pydicom_file("examples_ybr_color.dcm")).pixel_array[0]
    gray = frame.max(axis=2)
    masked = rapid.scan(frame, "RGB", 8, chrome=ChromeMemory()).masked
    # bench/pixel_eval/annotations.json's boxes, drawn by looking, less their first two columns (ruler dots)
    for box in ((300, 117, 309, 129), (300, 131, 318, 142)):
        glyphs = box_pixels(frame.shape, box, gray >= 30)
        assert glyphs.sum() >= 15
        assert masked_share(frame.shape, masked, glyphs) == 1.0, box
    sector = box_pixels(frame.shape, (110, 60, 200, 190), np.ones(frame.shape[:2], bool))
    assert masked_share(frame.shape, masked, sector) == 0.0


def test_zoom_mark_glued_to_the_depth_marker_is_masked_and_the_marker_kept(rapid) -> None:
    """deid-data GREYSCALE_CINE: `x3` (drawn at ~250) touches the depth marker's grey triangle (84), which
    sits on the ruler: one component at any threshold under 84. At a higher level the glyphs come apart;
    the lower triangle, the ruler away from the print and the image stay as they were."""
    with zipfile.ZipFile(deid_data_file("ultrasounds", "GREYSCALE_CINE.zip")) as archive:
        source = pydicom.dcmread(io.BytesIO(archive.read("GREYSCALE_CINE.dcm")))
    frame = source.pixel_array[0]
    masked = rapid.scan(frame, "MONOCHROME2", 8, data_regions=ultrasound_data_regions(source),
                        chrome=ChromeMemory()).masked
    glyphs = box_pixels(frame.shape, (706, 249, 723, 264), frame >= 128)
    assert glyphs.sum() >= 40
    assert masked_share(frame.shape, masked, glyphs) == 1.0
    lower_triangle = box_pixels(frame.shape, (695, 266, 712, 280), frame == 84)
    ruler_below = box_pixels(frame.shape, (703, 290, 707, 330), frame >= 200)
    image = box_pixels(frame.shape, (120, 350, 640, 520), np.ones(frame.shape, bool))
    assert lower_triangle.sum() >= 40 and ruler_below.sum() >= 40
    for kept in (lower_triangle, ruler_below, image):
        assert masked_share(frame.shape, masked, kept) == 0.0


def chrome_of(frame: np.ndarray) -> np.ndarray:
    """The chrome of a stored frame as the scanner finds it (anatomy at scan scale)."""
    rows, cols = frame.shape[:2]
    scale = choose_scale(rows, cols, 1024, 512, 4.0)
    return chrome_pixels(anatomy_mask(brightest_channel(resize(frame, scale))), scale, rows, cols)


@pytest.mark.parametrize("name", ["color-pl.dcm", "color-px.dcm", "SC_rgb_jpeg_dcmtk.dcm", "image_dfl.dcm"])
def test_text_free_screens_have_no_chrome_print(name: str) -> None:
    """Sector speckle, its dim fringe, photographs and a CT screenshot: no row of print anywhere."""
    frame = read(sample_file(name)).pixel_array
    frame = frame[0] if frame.ndim == 4 or (frame.ndim == 3 and frame.shape[-1] != 3) else frame
    assert print_rows(brightest_channel(frame), chrome_of(frame)) == []


def chrome_picture() -> np.ndarray:
    """480x640 black chrome (an ultrasound screen, scanned at x1) with a square of 'anatomy' in the middle."""
    frame = np.zeros((480, 640), np.uint8)
    frame[80:400, 160:480] = 120
    return frame


def test_ruler_ticks_colour_bar_dots_and_a_lone_icon_are_not_print() -> None:
    frame = chrome_picture()
    frame[40:440, 560:562] = 250  # ruler with ticks every 20 px
    frame[40:440:20, 562:568] = 250
    frame[60:400, 600:614] = np.linspace(255, 0, 340).astype(np.uint8)[:, None]  # grey bar
    frame[440:442, 40:400:6] = 200  # dotted line
    cv2.rectangle(frame, (40, 40), (51, 49), 200, 1)  # one icon alone
    frame[100:440:8, 520:526] = 200  # a column of short ticks
    assert print_rows(frame, chrome_of(frame)) == []


def test_a_word_in_chrome_is_a_row_and_a_glyph_glued_to_a_graphic_comes_apart() -> None:
    frame = chrome_picture()
    ink = np.zeros_like(frame)
    cv2.putText(ink, "AB 12", (16, 450), cv2.FONT_HERSHEY_PLAIN, 0.6, 1, 1)
    frame[ink > 0] = 60  # small print ~60 over black
    frame[120:320, 520:522] = 250  # a ruler ...
    cv2.fillPoly(frame, [np.array([[522, 197], [536, 206], [522, 215]], np.int32)], 84)  # ... its marker at 84 ...
    mark = np.zeros_like(frame)
    cv2.putText(mark, "x3", (532, 211), cv2.FONT_HERSHEY_PLAIN, 0.8, 1, 1)
    frame[mark > 0] = 250  # ... and the zoom glued to the marker
    rows = print_rows(frame, chrome_of(frame))
    covered = np.zeros(frame.shape, bool)
    for r in rows:
        covered[r.y0 : r.y1, r.x0 : r.x1] = True
    assert covered[ink > 0].all() and covered[mark > 0].all()
    assert not covered[120:195, 520:522].any() and not covered[220:320, 520:522].any()  # the ruler away from the mark


class Blind:
    """A detector that finds nothing: what is masked comes from the scanner's own passes."""

    name = "blind"

    def detect(self, image8: np.ndarray) -> list:
        return []


def glued_mark(shift: int) -> np.ndarray:
    """chrome_picture with a ruler, its marker at 84 and an `x3` at 250 glued to the marker, `shift` px right."""
    frame = chrome_picture()
    frame[120:320, 520 + shift : 522 + shift] = 250
    cv2.fillPoly(frame, [np.array([[522 + shift, 197], [536 + shift, 206], [522 + shift, 215]], np.int32)], 84)
    mark = np.zeros_like(frame)
    cv2.putText(mark, "x3", (532 + shift, 211), cv2.FONT_HERSHEY_PLAIN, 0.8, 1, 1)
    frame[mark > 0] = 250
    return frame


def test_a_cine_row_that_moves_between_frames_is_speckle_and_one_that_stays_is_print() -> None:
    """Rows of speckle blobs near an echo sector's apex line up like print on some frames, never at the
    same place twice (deid-data ultrasound-multiframe); device print stays put. A cine's first frame has
    nothing to compare with: its rows count. (The print here is glued to a graphic: no other pass masks it.)"""
    scanner = TextScanner(Blind(), None)
    first, moved = glued_mark(0), glued_mark(3)

    def covers_mark(frame: np.ndarray, memory: ChromeMemory) -> bool:
        rects = scanner.scan(frame, "MONOCHROME2", 8, chrome=memory).masked
        glyphs = box_pixels(frame.shape, (530, 195, 560, 216), frame == 250)
        return masked_share(frame.shape, rects, glyphs) == 1.0

    memory = ChromeMemory()
    assert covers_mark(first, memory)
    assert covers_mark(first.copy(), memory)  # the same print on the next frame
    assert not covers_mark(moved, memory)  # what moved is not print (a transient row of blobs)
    assert covers_mark(moved, ChromeMemory())  # the same picture alone: nothing to compare with


def test_speckle_between_tissue_layers_is_not_chrome() -> None:
    """gdcm-US-ALOKA-16 (palette colour, two images side by side): between the tissue layers of the left
    image, 31 px from the anatomy mask, speckle blobs line up like a row of print; the chrome keeps
    CHROME_CLEARANCE of the frame's side from any anatomy, so no row is taken there."""
    from deidcli.pixels.stage import palette_rgb8

    source = read(sample_file("gdcm-US-ALOKA-16.dcm"))
    frame = palette_rgb8(source.pixel_array, source)
    rows = print_rows(brightest_channel(frame), chrome_of(frame))
    assert not any(r.x0 < 336 and r.x1 > 32 and 60 < r.y0 < 416 for r in rows)  # inside the left image


def test_a_mark_that_moved_inside_the_picture_on_a_later_frame_is_speckle_not_print() -> None:
    """The marks pass (text-like blobs masked unread) took speckle in ultrasound-multiframe's dark heart
    chambers on 14 of 30 frames. A mark enclosed by anatomy whose pixels changed since the frame before is
    dropped; the same mark unchanged (print stays put), a mark in the chrome beside the picture, and any mark
    on a cine's first frame are kept."""
    from deidcli.ocr.scan import _ScanState, moved_inside_anatomy

    rows, cols = 200, 300
    anatomy = np.zeros((rows, cols), bool)
    anatomy[40:180, 80:280] = True
    anatomy[90:120, 150:200] = False  # a dark chamber inside the picture
    state = _ScanState(anatomy, 1.0, rows, cols)
    rng = np.random.default_rng(7)
    before = rng.integers(0, 60, (rows, cols), dtype=np.uint8)
    after = before.copy()
    chamber, chrome = Rect(155, 95, 190, 112), Rect(10, 95, 60, 112)
    after[95:112, 155:190] = rng.integers(100, 255, (17, 35), dtype=np.uint8)  # speckle moved in
    after[95:112, 10:60] = 200  # changing chrome (a clock): not enclosed, left to the marks pass

    memory = ChromeMemory()
    assert not moved_inside_anatomy(chamber, after, state, memory)  # first frame: no frame before
    memory.previous = before
    assert moved_inside_anatomy(chamber, after, state, memory)
    assert not moved_inside_anatomy(chrome, after, state, memory)
    memory.previous = after
    assert not moved_inside_anatomy(chamber, after, state, memory)  # unchanged since the frame before
    assert not moved_inside_anatomy(chamber, after, state, None)  # a single frame
