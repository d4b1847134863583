"""Small print in device chrome found as glyph components, without a detector.

Why: on screens (ultrasound, secondary capture) the chrome around the picture carries print the detector
misses at any scale or view, and that the background marks (deidcli.ocr.layout.text_marks) cannot see
either, because their flat-field test reads a solid graphic beside the print as texture:
- pydicom's examples_ybr_color (320x240 echo cine) labels two buttons `A` and `B` in 4-5 px letters ~50
  levels over black, beside their icons: no detector view found them at x1.6, x3 or x4, and enlarged
  for the scan the letters blur into blobs thicker than the flat test's stroke size;
- deid-data's GREYSCALE_CINE prints its zoom `x3` glued to the depth marker's grey triangle, which is
  glued to the ruler: one component of the whole ruler at any low threshold.

So, in the chrome only (outside the anatomy's extent and away from anatomy), print is looked for as
what it is drawn as: small components of glyph size, several in a row with similar heights, found at
several levels over the field, so that a glyph glued to a dimmer graphic (the triangle at 84 under an
`x` at 250) separates from it at a higher level. Nothing is read; a row is masked as print. Not print:
single marks (a tick, a dot, an icon alone), rows of bare bars (ruler ticks), anything taller than
small print (colour bars, the ruler itself), solid blocks (swatches, buttons).

Pure functions on stored-frame pixels; the scanner (deidcli.ocr.scan) decides where the chrome is.
"""

from __future__ import annotations

import cv2
import numpy as np

from deidcli.geometry import Rect, chained, enclosing, line_neighbours

#: Glyph height range (stored pixels) for this pass: 4-5 px letters of a small screen up to the 12-14 px
#: print of an 800x600 ultrasound; taller print is the detector's, and taller marks are graphics.
GLYPH_MIN_HEIGHT = 4
GLYPH_MAX_HEIGHT = 20
#: A glyph (or an icon drawn beside a word) is at most this many times as wide as it is tall.
GLYPH_MAX_ASPECT = 2.0
#: Stroke response (8-bit levels over the local field) print needs: 4-5 px letters at ~50 over black
#: respond 40-60 (examples_ybr_color); the lowest level looked at is this or NOISE_FACTOR times the
#: chrome's median response, when the chrome is noisy (the median: a header band can be a tenth print).
PRINT_CONTRAST = 30
NOISE_FACTOR = 5.0
#: The levels looked at, as multiples of the lowest: a glyph glued to a dimmer graphic comes apart from
#: it at a higher level (GREYSCALE_CINE's `x3`, ~250, on a triangle at 84).
LEVEL_STEPS = (1.0, 2.0, 4.0, 6.0)
#: Glyphs of one row: heights within this ratio, rows overlapping by half the smaller height, and gaps
#: under this share of the taller height (letters of a word and a label beside its icon).
ROW_HEIGHT_RATIO = 1.7
ROW_GAP_SHARE = 1.0
#: Marks too short for a glyph join a row from this many pixels (a superscript, a dash, a colon's dots;
#: a 2x2 dot of the depth ruler right before examples_ybr_color's `A` goes with it, single noise pixels not).
MARK_MIN_AREA = 4
#: The highest level looked at (8-bit): above it a glyph and its graphic no longer come apart.
TOP_LEVEL = 250


def print_rows(gray: np.ndarray, chrome: np.ndarray) -> list[Rect]:
    """Rows of small print in `chrome` (True: a pixel where device print may be) of an 8-bit picture,
    as rectangles in its pixels (the glyphs' extent, unpadded).

    Components are taken at the lowest level over the whole chrome; only those too large for a glyph
    (print glued to a graphic) are looked at again, inside their own box, at the higher LEVEL_STEPS."""
    if gray.dtype != np.uint8 or not chrome.any():
        return []
    size = 2 * GLYPH_MAX_HEIGHT + 1
    strokes = cv2.morphologyEx(gray, cv2.MORPH_TOPHAT, cv2.getStructuringElement(cv2.MORPH_RECT, (size, size)))
    strokes[~chrome] = 0
    lowest = max(float(PRINT_CONTRAST), NOISE_FACTOR * _median(strokes[chrome]))
    count, labels, stats, _ = cv2.connectedComponentsWithStats((strokes >= lowest).astype(np.uint8), connectivity=8)
    stats = stats[1:count]
    fits = glyph_like(stats)
    boxes = [_box(row) for row in stats[fits]]
    small = [_box(row) for row in stats if row[cv2.CC_STAT_HEIGHT] < GLYPH_MIN_HEIGHT
             and row[cv2.CC_STAT_WIDTH] <= GLYPH_MAX_HEIGHT and row[cv2.CC_STAT_AREA] >= MARK_MIN_AREA]
    too_large = (stats[:, cv2.CC_STAT_HEIGHT] > GLYPH_MAX_HEIGHT) | (
        stats[:, cv2.CC_STAT_WIDTH] > GLYPH_MAX_ASPECT * stats[:, cv2.CC_STAT_HEIGHT])
    for label in np.flatnonzero(too_large & ~fits) + 1:
        boxes += _split(strokes, labels, int(label), _box(stats[label - 1]), lowest)
    return [with_marks(row, small) for row in _rows(boxes)]


def _split(strokes: np.ndarray, labels: np.ndarray, label: int, box: Rect, lowest: float) -> list[Rect]:
    """The glyphs inside one component too large for a glyph, found at the higher LEVEL_STEPS (each
    glyph once: at the first level where it stands apart)."""
    crop = np.where(labels[box.y0 : box.y1, box.x0 : box.x1] == label, strokes[box.y0 : box.y1, box.x0 : box.x1], 0)
    found: list[Rect] = []
    for step in LEVEL_STEPS[1:]:
        level = lowest * step
        if level > TOP_LEVEL:
            break
        count, parts, stats, _ = cv2.connectedComponentsWithStats((crop >= level).astype(np.uint8), connectivity=8)
        fits = np.zeros(count, bool)
        fits[1:] = glyph_like(stats[1:])
        found += [Rect(int(x) + box.x0, int(y) + box.y0, int(x + w) + box.x0, int(y + h) + box.y0)
                  for x, y, w, h, _ in stats[fits]]
        crop[fits[parts]] = 0  # found: not again, in pieces, at the next level
    return found


def _median(values: np.ndarray) -> float:
    """Median of 8-bit values from their histogram (a sort of a 480k-pixel chrome costs more than the rest)."""
    counts = np.cumsum(np.bincount(values.ravel(), minlength=256))
    return float(np.searchsorted(counts, counts[-1] / 2))


def _box(stat: np.ndarray) -> Rect:
    x, y, w, h = (int(v) for v in stat[:4])
    return Rect(x, y, x + w, y + h)


def with_marks(row: Rect, small: list[Rect]) -> Rect:
    """A row grown over the marks too small to be glyphs (dots, dashes, a superscript) that lie within its
    height and at most one height beyond its ends: examples_ybr_color's `B O"` ends in a 3 px superscript
    left beside a masked row."""
    x0, y0, x1, y1 = row.x0, row.y0, row.x1, row.y1
    for mark in small:
        if mark.y0 >= row.y0 - 1 and mark.y1 <= row.y1 + 1 and row.x0 - row.height <= mark.x0 and mark.x1 <= row.x1 + row.height:
            x0, y0, x1, y1 = min(x0, mark.x0), min(y0, mark.y0), max(x1, mark.x1), max(y1, mark.y1)
    return Rect(x0, y0, x1, y1)


def glyph_like(stats: np.ndarray) -> np.ndarray:
    """Which components (cv2 stats rows) have a glyph's size and shape: GLYPH_MIN..MAX_HEIGHT tall, at
    most GLYPH_MAX_ASPECT times as wide, not a solid block thicker than two pixels."""
    widths, heights, areas = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT], stats[:, cv2.CC_STAT_AREA]
    solid = (areas >= 0.9 * widths * heights) & (np.minimum(widths, heights) > 2)
    return ((heights >= GLYPH_MIN_HEIGHT) & (heights <= GLYPH_MAX_HEIGHT)
            & (widths <= GLYPH_MAX_ASPECT * heights) & ~solid)


def _same_row(a: Rect, b: Rect) -> bool:
    """Whether two glyph boxes are neighbours in one row of print (sharing half the lower one's height)."""
    return line_neighbours(a, b, False, ROW_HEIGHT_RATIO, 0.5, ROW_GAP_SHARE)


def _rows(boxes: list[Rect]) -> list[Rect]:
    """Glyph boxes joined into rows (neighbours of neighbours); a row of at least two glyphs, one of them
    more than a bar (ruler ticks are rows of bars), is returned as its bounding box."""
    rows = []
    for members in chained(boxes, False, ROW_GAP_SHARE * GLYPH_MAX_HEIGHT, _same_row):
        if len(members) < 2 or not any(m.width >= 3 for m in members):
            continue
        rows.append(enclosing(members))
    return sorted(rows)
