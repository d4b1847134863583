"""Print too small for the scan's resolution: found there as thin bars, confirmed in the stored frame.

A 3328x2560 mammogram is scanned at 1024 px (deidcli.ocr.scan), a factor of 3.25: a line of 10-14 px
hairline print becomes a solid bar 3-4 px tall. Neither the detector nor `layout.text_marks` can take
it for print there (too short to be a glyph, solid like a swatch), yet on the stored frame it is
legible. Scanning the whole stored frame costs ~10x the scan; the background holds few such bars, so
each is looked at again in the stored frame, at full resolution, and masked when `text_marks` finds
a line of print in it. A bar that is a straight line at full resolution too (a paddle edge, a ruler)
holds no glyph and stays.

Functions are pure: arrays in, rectangles out (`bars` in view pixels, `confirmed` in frame pixels).
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np

from deidcli.geometry import Rect, enclosing, overlaps
from deidcli.ocr.layout import FLAT_STROKE, MIN_MARK_HEIGHT, noise_floor, text_marks
from deidcli.ocr.views import brightest_channel

#: Tallest bar (scan pixels) looked at again: print up to this tall at scan resolution is a bar there; taller
#: print keeps its glyph shapes and is `text_marks`'s own. Bold print keeps no glyph shape up to ~8 px (24 px
#: print on a 3328-row mammogram): its glyphs merge into one blob the scan's flatness test takes for field.
BAR_MAX_HEIGHT = 3 * MIN_MARK_HEIGHT
#: Shortest bar (scan pixels): a few glyphs of the smallest print (a lone speck of noise is shorter).
BAR_MIN_LENGTH = 4
#: Top-hat size (scan pixels) for the bars: a few times their height.
BAR_STROKE = 9
#: A bar is looked at with this many of its heights (at full resolution) of field around it, so that
#: `text_marks` measures the field's noise and the line's glyph height.
CONTEXT_HEIGHTS = 2
#: And this many sideways: a bar is often a piece of its line (the scan's threshold breaks it where glyphs are
#: thinner), and the line's last glyphs beyond it were left (`16` of a date, 2 heights past the bar's end).
CONTEXT_WIDTHS = 6
#: A line reaching the side of its crop is looked at again this many times at most, 6 heights wider each time.
MAX_WIDENINGS = 3
#: In the stored frame, strokes up to this share of the bar's height are taken out before `text_marks` tests
#: the field's flatness: bold print (strokes a sixth to a quarter of its height) is otherwise "texture" there,
#: and a grey bold 18 px name on a mammogram's air was confirmed nowhere (0 % masked). A third (5 px for a
#: 14 px line) left a 14 px 2 px-stroke line at 45 % contrast on 12 bits unconfirmed; a half (7 px) finds it.
FLAT_STROKE_SHARE = 1 / 2
#: More bars than this on one frame's background are texture or noise, not print: none is looked at
#: (the cost stays bounded; the scan's other passes still run).
MAX_BARS = 40


def bars(view8: np.ndarray, anatomy: np.ndarray) -> list[Rect]:
    """Thin bars standing out of the background (bright or dark, view pixels): candidates for print shrunk
    below glyph size. Bars on (or within a few pixels of) the anatomy are not candidates: there only text
    the detector reads is masked."""
    gray = brightest_channel(view8)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (BAR_STROKE, BAR_STROKE))
    free = ~cv2.dilate(anatomy.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    found: list[Rect] = []
    # Bright and dark strokes apart: the dark gap between two bright lines is a "bar" of the black top-hat, and
    # joined to them it made one block too tall for a bar.
    for operation in (cv2.MORPH_TOPHAT, cv2.MORPH_BLACKHAT):
        strokes = cv2.morphologyEx(gray, operation, kernel)
        stroked = ((strokes >= noise_floor(strokes[::3, ::3], free[::3, ::3])) & free).view(np.uint8)
        # Specks of noise (a pixel or two) out first: a bar is at least 2 px tall. Words join over 5 px.
        stroked = cv2.morphologyEx(stroked, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
        joined = cv2.morphologyEx(stroked, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (5, 1)))
        # Outer contours' boxes, not connected components: the same boxes (holes aside) on a sparse mask,
        # 0.2 ms instead of 7 (OpenCV labels every pixel of a 1024x788 picture).
        contours, _ = cv2.findContours(joined, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for x, y, w, h in (cv2.boundingRect(contour) for contour in contours):
            short, long_ = min(w, h), max(w, h)
            if 2 <= short <= BAR_MAX_HEIGHT and long_ >= max(BAR_MIN_LENGTH, 2 * short):
                found.append(Rect(int(x), int(y), int(x + w), int(y + h)))
    return found if len(found) <= MAX_BARS else []


def confirmed(picture: Callable[[Rect], np.ndarray], bar: Rect, scale: float, rows: int, cols: int
              ) -> Rect | None:
    """The frame-pixel rectangle of print in `bar` (view pixels), or None when the stored frame shows no
    line of print there.

    `picture` cuts a rectangle of the (rows, cols) frame out as an 8-bit display picture at full
    resolution (only the crops are converted, never the whole frame). The bar is cut out with
    CONTEXT_HEIGHTS of its heights around it; `text_marks` runs on that crop (all of it background);
    lines it finds that overlap the bar are print, and the rectangle returned covers the bar and them."""
    full = bar.scale(1 / scale, 1 / scale).pad(1, 1).clip(cols, rows)
    around = min(full.height, full.width)
    flat_stroke = max(FLAT_STROKE, int(FLAT_STROKE_SHARE * around) | 1)
    reach = CONTEXT_WIDTHS * around
    context = full.pad(reach, CONTEXT_HEIGHTS * around).clip(cols, rows)
    hits: list[Rect] = []
    for _ in range(MAX_WIDENINGS + 1):
        crop = np.ascontiguousarray(picture(context))
        lines = [Rect(r.x0 + context.x0, r.y0 + context.y0, r.x1 + context.x0, r.y1 + context.y0)
                 for r in text_marks(crop, np.zeros(crop.shape[:2], bool), flat_stroke=flat_stroke)]
        hits = _same_line([r for r in lines if overlaps(r, full)],
                          lines, around)
        # A line ending within a height of the crop's side may go on past it: looked at again, wider on that side.
        left = any(r.x0 <= context.x0 + around for r in hits) and context.x0 > 0
        right = any(r.x1 >= context.x1 - around for r in hits) and context.x1 < cols
        if not (left or right):
            break
        context = Rect(context.x0 - reach if left else context.x0, context.y0,
                       context.x1 + reach if right else context.x1, context.y1).clip(cols, rows)
    if not hits:
        return None
    return enclosing([full, *hits])


def _same_line(hits: list[Rect], lines: list[Rect], height: int) -> list[Rect]:
    """`hits` with the other `lines` that go on along their rows (overlapping half the lower one's height, at
    most `height` apart sideways), until none is added: `text_marks` ends a line at a dash or a wide space (a
    date's `-16` after `1974-04`, whose hyphen is too small to be a glyph, was left legible)."""
    found = list(hits)
    added = True
    while added and found:
        added = False
        x0, x1 = min(r.x0 for r in found), max(r.x1 for r in found)
        for line in lines:
            if line in found:
                continue
            near = max(line.x0 - x1, x0 - line.x1) <= height
            rows = any(min(line.y1, r.y1) - max(line.y0, r.y0) >= 0.5 * min(line.height, r.height) for r in found)
            if near and rows:
                found.append(line)
                added = True
    return found
