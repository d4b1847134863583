"""Device chrome of small frames (deidcli.ocr.chrome): detected enlarged, once per cine, reused only where
the pixels are those already detected."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest

from deidcli.geometry import Rect
from deidcli.ocr import DetectedText, TextScanner, make_detector
from deidcli.ocr.chrome import ChromeMemory, change_windows, chrome_bands
from tests.conftest import pydicom_file

#: examples_ybr_color (320x240 GE echo cine, 30 frames): its toolbar words, boxes drawn by looking
#: (bench/pixel_eval/annotations.json), print 5-6 px tall at 20-40 levels over a gray bar.
TOOLBAR = {"Gen": (56, 228, 77, 240), "Sector": (133, 228, 161, 240), "MB Off": (173, 228, 202, 240),
           "On": (221, 228, 237, 240), "Page 1/3": (243, 227, 279, 240)}
#: Inside the echo sector: heart walls and blood, no print.
SECTOR = Rect(110, 60, 200, 190)


def covered_share(frame: np.ndarray, rects: list[Rect], box: tuple[int, int, int, int]) -> float:
    """Share of the box's glyph pixels (the brightest third of the box) under the masks."""
    x0, y0, x1, y1 = box
    gray = frame.max(axis=2)[y0:y1, x0:x1].astype(float)
    glyphs = gray >= np.percentile(gray, 67)
    masked = np.zeros(frame.shape[:2], bool)
    for r in rects:
        masked[r.y0 : r.y1, r.x0 : r.x1] = True
    return float(masked[y0:y1, x0:x1][glyphs].mean())


@pytest.fixture(scope="module")
def cine() -> np.ndarray:
    source = pydicom.dcmread(pydicom_file("examples_ybr_color.dcm"))
    return source.pixel_array[:2]  # RGB, as the pixel stage decodes it


@pytest.fixture(scope="module")
def rapid() -> TextScanner:
    return TextScanner(make_detector("rapidocr"), None)


def test_small_cine_toolbar_words_are_masked_and_the_sector_is_not(cine, rapid) -> None:
    """Before the chrome pass the scan (x1.6) masked none of these words; the echo stays untouched."""
    memory = ChromeMemory()
    for frame in cine:
        masked = rapid.scan(frame, "RGB", 8, chrome=memory).masked
        for word, box in TOOLBAR.items():
            assert covered_share(frame, masked, box) >= 0.9, word
        assert not any(r.x0 < SECTOR.x1 and SECTOR.x0 < r.x1 and r.y0 < SECTOR.y1 and SECTOR.y0 < r.y1
                       for r in masked)
    assert memory.reused >= len(TOOLBAR)  # the second frame's static chrome was not detected again


def test_chrome_that_changed_is_detected_again_on_that_frame(cine, rapid) -> None:
    """A word that appears in the chrome of a later frame (a counter, a new label) is not covered by the
    first frame's boxes: the changed pixels are detected, enlarged, on the frame itself. The word is drawn
    like the toolbar's print (5 px, 35 levels over black), which the x1.6 scan alone does not see."""
    import cv2

    memory = ChromeMemory()
    rapid.scan(cine[0], "RGB", 8, chrome=memory)
    ink = np.zeros(cine[0].shape[:2], np.uint8)
    cv2.putText(ink, "DOE 62", (8, 120), cv2.FONT_HERSHEY_SIMPLEX, 0.25, 1, 1)
    later = cine[0].copy()
    later[ink > 0] = 35
    masked = np.zeros(ink.shape, bool)
    for r in rapid.scan(later, "RGB", 8, chrome=memory).masked:
        masked[r.y0 : r.y1, r.x0 : r.x1] = True
    assert masked[ink > 0].all()
    assert memory.reused >= len(TOOLBAR)  # the rest of the chrome was taken over, not detected again


def test_chrome_bands_surround_the_anatomy_and_reach_into_it() -> None:
    anatomy = np.zeros((120, 160), bool)  # scan resolution x2 of an 80x60... frame: 240x320 stored
    anatomy[20:100, 40:120] = True
    bands = chrome_bands(anatomy, 0.5, 240, 320)
    assert bands == [Rect(0, 0, 88, 240), Rect(232, 0, 320, 240), Rect(0, 0, 320, 48), Rect(0, 192, 320, 240)]
    assert chrome_bands(np.zeros((120, 160), bool), 0.5, 240, 320) == [Rect(0, 0, 320, 240)]


def test_change_windows_group_changed_pixels_with_room_for_a_line() -> None:
    need = np.zeros((240, 320), bool)
    need[100, 150] = True
    need[10:12, 10:40] = True
    windows = sorted(change_windows(need))
    assert windows == [Rect(0, 0, 64, 24), Rect(120, 88, 176, 112)]
    assert change_windows(np.zeros((240, 320), bool)) == []


def test_a_remembered_box_is_reused_only_where_its_pixels_are_unchanged() -> None:
    frame = np.zeros((240, 320), np.uint8)
    frame[228:238, 60:80] = 200
    memory = ChromeMemory()
    bands = [Rect(0, 200, 320, 240)]
    found = [DetectedText(Rect(58, 226, 82, 240), "", 0.0), DetectedText(Rect(200, 226, 230, 240), "", 0.0)]
    memory.remember(frame, bands, found)
    later = frame.copy()
    later[230, 210] = 255  # one pixel under the second box changed
    kept, windows = memory.plan(later, bands)
    assert [item.rect for item in kept] == [Rect(58, 226, 82, 240)]
    assert any(w.x0 <= 200 and w.x1 >= 230 and w.y0 <= 226 and w.y1 >= 240 for w in windows)
    assert memory.plan(frame, bands) == (found, [])


def test_wide_gray_frames_get_no_chrome_pass() -> None:
    """CT and MR (more than 8 bits) have the local-contrast pass for faint print; the chrome pass is for
    screens (8-bit gray, colour): a 16-bit 240x320 frame is never detected at x3."""
    sizes: list[tuple[int, int]] = []

    class Recording:
        name = "recording"

        def detect(self, image8: np.ndarray) -> list[DetectedText]:
            sizes.append(image8.shape[:2])
            return []

    frame = np.zeros((240, 320), np.uint16)
    frame[40:200, 80:240] = 1000  # "anatomy"
    frame[220:230, 10:60:4] = 3000  # marks in the background
    TextScanner(Recording(), None).scan(frame, "MONOCHROME2", 12)
    assert sizes and max(rows for rows, _ in sizes) < 240 * 3 and max(cols for _, cols in sizes) < 320 * 3 - 64
    sizes.clear()
    TextScanner(Recording(), None).scan((frame // 12).astype(np.uint8), "MONOCHROME2", 8)
    assert any(rows >= 700 or cols >= 900 for rows, cols in sizes)  # the 8-bit screen: bands at x3
