"""A line of print that starts or ends with an authorised label, cut at the gap beside the label.

Mammograms print the view label and the patient's name on one line (`L CC  DUBOIS, AMELIE`). The detector
outlines the whole line as one box; the box is too long to be an authorised word, so it is masked unread, and
the label (which readers and AI models need) went with the name. RapidOCR gives no per-character positions,
so the cut is made where the line's own ink has a wide gap (`cuts`): the part before (or after) a gap that could
hold an authorised word is detected and read again on its own, and only when it reads as exactly one
authorised word, and that box covers all the part's ink, is it spared; everything else of the line is
masked from the middle of the gap on (the scanner). Any doubt (no gap, a part read as two boxes or as other
text, ink outside the box read) keeps the whole line masked: a lost label is acceptable, a leaked name is not.

Functions are pure: an 8-bit picture and rectangles in view pixels in, candidate cuts out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from deidcli.geometry import Rect
from deidcli.ocr.layout import FIELD_CONTRAST, MARK_CONTRAST

#: A label's gap: at least this share of the line's ink height without ink. Letters of one word stand 0.1-0.2
#: of the height apart, words 0.33-0.45 (measured: `L CC`'s space 0.33; `ID: `, `DOB: `, `ACC: ` on the pixel
#: speed bench's mammograms 0.41-0.45); the red team's label stood 1.5 heights before the name. Only a label set
#: apart like that is looked for: each look is a recognition (~35 ms of CPU), and every line of a mammogram's
#: demographics has word spaces. A label one space before a name stays masked with it (fail closed).
LABEL_GAP = 0.8
#: Ink rows: rows holding at least this many ink pixels (a speck of noise is not the line's height).
MIN_ROW_INK = 2
#: Cuts tried at each end of a line (each costs one small detection).
MAX_CUTS = 3


@dataclass(frozen=True)
class Cut:
    """A candidate split of `line`: `label` is the ink of the part that may be an authorised word (the line's
    first or last words), `rest` everything else of the line from the middle of the gap on, `window` the
    picture to detect the label's part in (the part and some field, not reaching past the gap's middle)."""

    label: Rect
    rest: Rect
    window: Rect


def ink_mask(gray: np.ndarray, line: Rect) -> np.ndarray | None:
    """The print's pixels in `line` (those at least half the strongest deviation from the box's median, the
    field print stands on); None when nothing stands out like print (MARK_CONTRAST)."""
    crop = gray[line.y0 : line.y1, line.x0 : line.x1].astype(np.int32)
    if crop.size == 0:
        return None
    deviation = np.abs(crop - int(np.median(crop)))
    strongest = int(deviation.max())
    if strongest < MARK_CONTRAST:
        return None
    return deviation >= max(FIELD_CONTRAST, strongest // 2)


def cuts(gray: np.ndarray, line: Rect, max_aspect: float) -> list[Cut]:
    """Where `line` (view pixels, on `gray`) may be cut between an authorised label and the rest: after each of
    its first label gaps (LABEL_GAP) and before each of its last, for the parts at most `max_aspect` times as wide as the
    ink is tall (longer parts hold no authorised word). Longest parts first at each end (`L CC` before `L`)."""
    ink = ink_mask(gray, line)
    if ink is None:
        return []
    rows = np.flatnonzero(ink.sum(axis=1) >= MIN_ROW_INK)
    columns = np.flatnonzero(ink.any(axis=0))
    if rows.size == 0 or columns.size == 0:
        return []
    height = int(rows[-1] - rows[0] + 1)
    top, bottom = line.y0 + int(rows[0]), line.y0 + int(rows[-1]) + 1
    first, last = int(columns[0]), int(columns[-1])
    steps = np.diff(columns)
    gaps = [(int(columns[i]) + 1, int(columns[i + 1])) for i in np.flatnonzero(steps > max(2, LABEL_GAP * height))]
    found: list[Cut] = []
    pad = max(2, height // 2)
    gray_rows, gray_cols = gray.shape[:2]
    heads = [(start, end) for start, end in gaps if start - first <= max_aspect * height]
    for start, end in sorted(heads, reverse=True)[:MAX_CUTS]:  # label first, name after it
        middle = line.x0 + (start + end) // 2
        label = Rect(line.x0 + first, top, line.x0 + start, bottom)
        window = Rect(max(0, label.x0 - pad), max(0, top - pad), middle, min(gray_rows, bottom + pad))
        found.append(Cut(label, Rect(middle, line.y0, line.x1, line.y1), window))
    tails = [(start, end) for start, end in gaps if last + 1 - end <= max_aspect * height]
    for start, end in sorted(tails)[:MAX_CUTS]:  # name first, label after it
        middle = line.x0 + (start + end + 1) // 2
        label = Rect(line.x0 + end, top, line.x0 + last + 1, bottom)
        window = Rect(middle, max(0, top - pad), min(gray_cols, label.x1 + pad), min(gray_rows, bottom + pad))
        found.append(Cut(label, Rect(line.x0, line.y0, middle, line.y1), window))
    return found


def covers_ink(gray: np.ndarray, window: Rect, read: Rect) -> bool:
    """Whether the box read in `window` (both view pixels) holds every pixel of print in the window: a part
    read as a label must not carry ink the recogniser left out (an initial, the first letter of a name)."""
    ink = ink_mask(gray, window)
    if ink is None:
        return False
    ys, xs = np.nonzero(ink)
    ys, xs = ys + window.y0, xs + window.x0
    return bool(((xs >= read.x0) & (xs < read.x1) & (ys >= read.y0) & (ys < read.y1)).all())
