"""Device chrome of small frames: detected enlarged, once per cine, and reused where it did not change.

Why: a 320x240 ultrasound cine (pydicom's examples_ybr_color) prints its toolbar and side labels 5-6 px
tall at 20-40 levels over a gray bar or black; the scan enlarges such a frame to 512 px (x1.6), where the
detector still misses them. At x3 it finds them (measured: "Gen", "Sector", "MB Off", "On", "Page 1/3";
not the 4-5 px "A" and "B" at 40 levels over black), but a whole frame at x3 costs ~9x a native detection. So only the chrome is enlarged: the
bands around the anatomy's extent, where device print lives. And a cine's chrome is mostly static: the
first frame's bands are detected whole and remembered with their pixels; on later frames of the same
file only the chrome pixels that differ from that frame (or that were not chrome there) are detected
again, and a remembered box is reused only where every pixel under it is identical. Every frame is
still checked in full: reuse is for pixels that are bit for bit those already detected.

Pure helpers here (bands, change windows, the memory, and `chrome_pixels`: where the glyph-component pass
of deidcli.ocr.chrome_print may look); the scanner (deidcli.ocr.scan) runs the detector.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from deidcli.geometry import Rect, outside
from deidcli.ocr.engines import DetectedText
from deidcli.ocr.layout import cell_counts, cell_windows

#: The enlargement of chrome bands relative to the stored frame (measured on examples_ybr_color's toolbar:
#: x1.6 and x2 find none of its 5-6 px words at 20-40 levels over the bar, x3 finds all of them).
CHROME_SCALE = 3.0
#: How far (stored pixels) a band reaches into the anatomy's extent, so that a line of print crossing the
#: extent's edge is seen whole from the outside.
CHROME_OVERLAP = 8
#: Changed chrome is grouped in cells of this many stored pixels; a window reaches this many cells
#: sideways and one up and down around changed cells, so a changed line is detected with its ends.
CHANGE_CELL = 8
CHANGE_REACH_X = 3
CHANGE_REACH_Y = 1
#: A changed window larger than a few words of small print (stored pixels) is the live image (echo, Doppler,
#: the dim speckle at a sector's sides), which changes on every frame: it is left to the scan's own pass at
#: scan resolution, which checks every frame whole. Measured on examples_ybr_color: enlarging those windows
#: too cost 0.6 s per 320x240 frame (0.29 s before any chrome pass), keeping them out 0.33 s.
PRINT_WINDOW_MAX = Rect(0, 0, 192, 48)


def chrome_bands(anatomy: np.ndarray, scale: float, rows: int, cols: int) -> list[Rect]:
    """The parts of a stored (rows, cols) frame around its anatomy's extent (`anatomy` at scan scale
    `scale`): left and right strips and top and bottom bands, each reaching CHROME_OVERLAP pixels into the
    extent and across the whole frame, so that a line of print is whole in one band (a toolbar word
    crossing from the bottom band into a strip was cut in two, and half of it missed). No anatomy: the
    whole frame is chrome."""
    ys = np.flatnonzero(anatomy.any(axis=1))
    if ys.size == 0:
        return [Rect(0, 0, cols, rows)]
    xs = np.flatnonzero(anatomy.any(axis=0))
    extent = Rect(int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1).scale(1 / scale, 1 / scale)
    extent = extent.clip(cols, rows)
    return [part for part in outside(extent, cols, rows, CHROME_OVERLAP, full_bands=True) if part.area]


#: How far (stored pixels) chrome keeps from the bounding box of each anatomy component.
CHROME_MARGIN = 4
#: How far chrome keeps from any anatomy pixel, as a share of the frame's longer side. The dim speckle at
#: a sector's edge lies under the anatomy threshold, and its blobs line up like small print (measured:
#: 4-43 px from the anatomy on an 800x600 echo cine, 31 px between the tissue layers of a 640x480 one);
#: device print stands clear of the picture (examples_ybr_color's button labels 83 px of 320, GREYSCALE_CINE's
#: `x3` 67 px of 800).
CHROME_CLEARANCE = 0.07


def chrome_pixels(anatomy: np.ndarray, scale: float, rows: int, cols: int) -> np.ndarray:
    """Where a stored (rows, cols) frame is device chrome (True): outside the bounding box of every
    component of its anatomy (`anatomy` at scan scale `scale`) by CHROME_MARGIN pixels, and
    CHROME_CLEARANCE of the frame's longer side away from any anatomy pixel. No anatomy: the whole frame.

    Why each component's box and not the extent of all of them: print drawn near the picture is often
    taken into the anatomy mask as a small component of its own (deid-data GREYSCALE_CINE: the header
    lines cut by the data region's top, "4.0cm" glued to the image's corner), and the extent of
    everything then reaches over the chrome beside the picture."""
    chrome = np.ones((rows, cols), bool)
    count, _, stats, _ = cv2.connectedComponentsWithStats(anatomy.astype(np.uint8), connectivity=8)
    if count <= 1:
        return chrome
    for x, y, w, h, _area in stats[1:count]:
        box = Rect(int(x), int(y), int(x + w), int(y + h)).scale(1 / scale, 1 / scale)
        box = box.pad(CHROME_MARGIN, CHROME_MARGIN).clip(cols, rows)
        chrome[box.y0 : box.y1, box.x0 : box.x1] = False
    outside = cv2.resize((~anatomy).astype(np.uint8), (cols, rows), interpolation=cv2.INTER_NEAREST)
    return chrome & (cv2.distanceTransform(outside, cv2.DIST_L2, 3) >= CHROME_CLEARANCE * max(rows, cols))


def band_mask(bands: list[Rect], rows: int, cols: int) -> np.ndarray:
    """The bands as one boolean mask of the frame."""
    mask = np.zeros((rows, cols), bool)
    for band in bands:
        mask[band.y0 : band.y1, band.x0 : band.x1] = True
    return mask


def change_windows(need: np.ndarray) -> list[Rect]:
    """Where `need` (True: a chrome pixel not detected before) lies, as windows to detect: cells of
    CHANGE_CELL pixels holding any such pixel, grown by CHANGE_REACH_X/Y cells, merged where they touch."""
    rows, cols = need.shape
    cells = cell_counts(need, CHANGE_CELL) > 0
    if not cells.any():
        return []
    return [window.clip(cols, rows) for window in cell_windows(cells, CHANGE_CELL, CHANGE_REACH_Y, CHANGE_REACH_X, 8)]


#: Levels a pixel of static print may differ by between two frames of a lossy cine (measured: 0 on
#: examples_ybr_color's JPEG frames and GREYSCALE_CINE; the speckle rows near ultrasound-multiframe's
#: apex differ by 5-31 from one frame to the next).
STATIC_TOLERANCE = 2


@dataclass
class ChromeMemory:
    """One file's chrome as first detected: the frame, where its chrome was, and what was found there
    (boxes in stored-frame pixels). Build one per file; the scanner fills it on the first frame it
    scans with a chrome pass and only reads it afterwards."""

    reference: np.ndarray | None = None
    chrome: np.ndarray | None = None
    found: list[DetectedText] = field(default_factory=list)
    reused: int = 0  # boxes taken over from the reference frame (for tests and the audit's curiosity)
    #: The frame scanned before (as stored, before masking): print in chrome stays put from frame to frame,
    #: speckle does not (deidcli.ocr.chrome_print's rows are kept on a cine's later frames only where
    #: they were there on the frame before).
    previous: np.ndarray | None = None

    def static(self, frame: np.ndarray, box: Rect) -> bool:
        """Whether `box` of `frame` holds what it held on the previous frame (within STATIC_TOLERANCE
        levels); True with no previous frame (a single frame, a cine's first)."""
        before = self.previous
        if before is None or before.shape != frame.shape or before.dtype != frame.dtype:
            return True
        now = frame[box.y0 : box.y1, box.x0 : box.x1].astype(np.int16)
        return bool(np.abs(now - before[box.y0 : box.y1, box.x0 : box.x1]).max(initial=0) <= STATIC_TOLERANCE)

    def matches(self, frame: np.ndarray) -> bool:
        """Whether a reference of the same geometry and sample type is held."""
        ref = self.reference
        return ref is not None and ref.shape == frame.shape and ref.dtype == frame.dtype

    def plan(self, frame: np.ndarray, bands: list[Rect], live: np.ndarray | None = None,
             ) -> tuple[list[DetectedText], list[Rect]]:
        """(remembered boxes still valid on `frame`, windows of `frame`'s chrome to detect anew).

        A remembered box is valid when no pixel under it (a pixel around it included) differs from the
        reference. The windows cover the chrome pixels of `frame` that differ from the reference or were
        not chrome there, and the whole of every remembered box that is no longer valid, where they
        form areas the size of print (PRINT_WINDOW_MAX); larger changed areas are live image, and so are
        the pixels of `frame`'s own anatomy (`live`, stored-frame pixels): the frame's scan judges them."""
        rows, cols = frame.shape[:2]
        assert self.reference is not None and self.chrome is not None
        changed = frame != self.reference
        if changed.ndim == 3:
            changed = changed.any(axis=2)
        need = (changed | ~self.chrome) & band_mask(bands, rows, cols)
        if live is not None:
            need &= ~live
        kept: list[DetectedText] = []
        for item in self.found:
            box = item.rect.pad(1, 1).clip(cols, rows)
            if changed[box.y0 : box.y1, box.x0 : box.x1].any():
                need[box.y0 : box.y1, box.x0 : box.x1] = True
            else:
                kept.append(item)
        self.reused += len(kept)
        windows = [w for w in change_windows(need)
                   if w.width <= PRINT_WINDOW_MAX.width and w.height <= PRINT_WINDOW_MAX.height]
        return kept, windows

    def remember(self, frame: np.ndarray, bands: list[Rect], found: list[DetectedText]) -> None:
        """Keep `frame` as the reference, with its chrome bands and the boxes found in them."""
        rows, cols = frame.shape[:2]
        self.reference = frame.copy()
        self.chrome = band_mask(bands, rows, cols)
        self.found = list(found)
