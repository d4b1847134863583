"""The file's own VOI windows (deidcli.pixels.voi) and the scanner's pass through them: print a few tens of
HU above brain, plain in the file's window, invisible in the full-range views (red team 4's ct_touching_skull)."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset

from deidcli.geometry import Rect
from deidcli.ocr import TextScanner, make_detector
from deidcli.pixels.voi import MAX_WINDOWS, stored_windows

sys.path.insert(0, str(Path(__file__).parent))
from conftest import pydicom_file  # noqa: E402
from ocr_fixtures import coverage  # noqa: E402


def _dataset(**values: object) -> Dataset:
    ds = Dataset()
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


def test_windows_are_mapped_to_stored_values_through_the_rescale() -> None:
    ds = _dataset(WindowCenter=["40", "300"], WindowWidth=["400", "1500"], RescaleSlope="1",
                  RescaleIntercept="-1024")
    assert stored_windows(ds) == ((864.0, 1264.0), (574.0, 2074.0))
    halved = _dataset(WindowCenter="40", WindowWidth="400", RescaleSlope="0.5", RescaleIntercept="0")
    assert stored_windows(halved) == ((-320.0, 480.0),)


def test_no_window_or_no_rescale_is_fine() -> None:
    assert stored_windows(Dataset()) == ()
    assert stored_windows(_dataset(WindowCenter="100", WindowWidth="50")) == ((75.0, 125.0),)


@pytest.mark.parametrize("values", [
    {"WindowCenter": "40", "WindowWidth": "0"},  # no width
    {"WindowCenter": "40", "WindowWidth": "-400"},
    {"WindowCenter": "40", "WindowWidth": "400", "RescaleSlope": "0"},  # would divide by zero
])
def test_hostile_windows_give_no_window(values: dict) -> None:
    assert stored_windows(_dataset(**values)) == ()


def test_unreadable_window_values_give_no_window() -> None:
    ds = Dataset()
    ds.add_new(0x00281050, "DS", "40")
    ds.add_new(0x00281051, "LO", "wide")  # not a number
    assert stored_windows(ds) == ()
    ds = Dataset()
    ds.add_new(0x00281050, "LO", "nan")
    ds.add_new(0x00281051, "LO", "400")
    assert stored_windows(ds) == ()


def test_a_file_listing_many_windows_buys_a_bounded_number_of_passes() -> None:
    centres = [str(c) for c in range(100, 100 + 50 * 200, 50)]
    ds = _dataset(WindowCenter=centres, WindowWidth=["40"] * len(centres))
    assert len(stored_windows(ds)) == MAX_WINDOWS
    repeated = _dataset(WindowCenter=["40", "40", "40"], WindowWidth=["400", "400", "400"])
    assert stored_windows(repeated) == ((-160.0, 240.0),)


@pytest.fixture(scope="module")
def rapid() -> TextScanner:
    return TextScanner(make_detector("rapidocr"), None)


def test_print_just_above_brain_is_masked_through_the_files_window(rapid: TextScanner) -> None:
    """An ID 90 stored levels above brain on a real head CT: in the full-range views bone and air set the
    scale and it stands a few gray levels high (not found); through the file's 40/400 window it reads."""
    source = pydicom.dcmread(pydicom_file("693_UNCI.dcm"))
    stored = source.pixel_array
    brain = float(np.median(stored[200:300, 200:300]))
    ink = np.zeros(stored.shape, np.uint8)
    cv2.putText(ink, "893212336", (190, 264), cv2.FONT_HERSHEY_DUPLEX, 14 / 22, 255, 1, cv2.LINE_AA)
    share = ink / 255.0
    frame = np.rint(stored * (1 - share) + (brain + 90) * share).astype(stored.dtype)
    ys, xs = np.nonzero(ink > 64)
    printed = Rect(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    windows = stored_windows(_dataset(WindowCenter="40", WindowWidth="400", RescaleSlope="1",
                                      RescaleIntercept="-1024"))
    # What the pass is for: without the window (and without the band pass, scan._band_print, which reads this line
    # from its one level too) the print is not found.
    no_band = TextScanner(rapid.detector, None)
    no_band._band_print = lambda *_args: None  # type: ignore[method-assign]
    without = no_band.scan(frame, "MONOCHROME2", 16, True)
    assert coverage(printed, without.masked, 512, 512) < 0.5
    assert coverage(printed, rapid.scan(frame, "MONOCHROME2", 16, True).masked, 512, 512) >= 0.95  # the band pass
    through = rapid.scan(frame, "MONOCHROME2", 16, True, voi_windows=windows)
    assert coverage(printed, through.masked, 512, 512) >= 0.95
    # the same head without print: the window pass masks nothing on it
    assert rapid.scan(stored, "MONOCHROME2", 16, True, voi_windows=windows).masked == \
        rapid.scan(stored, "MONOCHROME2", 16, True).masked
