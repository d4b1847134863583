"""Faint print drawn at one stored level over textured or quantised tissue: where to look, and the picture to read.

Why (issue 12, red team variants `tissue_*`, bench/redteam/variants.py): a date or an ID drawn 40 stored levels
from MR/CT tissue, 10-12 px, with 1 px antialiased strokes, was left legible (0 % changed) on MR2_UNCI, MR-SIEMENS,
explicit_VR-UN and eCT_Supplemental (whose brain takes few levels). The scanner's other passes miss it for measured
reasons (every detector call logged on each case: none proposed it):
- the display, contrast and VOI-window views show its strokes no stronger than the tissue's own texture (the
  detector reads nothing there, nor in top-hat or median-residual views at 2-4x);
- `scan._level_print` looks where pixels equal to their neighbours crowd: 1 px hairlines have few such pixels, and
  on a quantised frame such pixels are everywhere (12.6 % of eCT_Supplemental: its holes at one value and the
  water ring around them), so it gets no window at all.

What the print has that tissue lacks: one level L shared by the strokes of a whole line. So (`band_lines`): in each
CELL x CELL cell, the commonest value among the pixels that stand out from their 5x5 median; a cell votes for L when
enough of them hold it, more than chance allows; a line is a run of cells side by side voting for the same L.
Tissue's outstanding pixels scatter over many values, and neighbouring cells seldom agree on one. `band_picture`
shows a window around such a run black where a pixel is near L and away from its local median: the strokes, thin or
antialiased, stand out of any texture and the detector reads them.

Only what reads as text, strictly (three characters or more, confident), is masked: a window is never masked for
being a candidate (tissue is never blanked to be safe). First measured as bench/redteam/band_probe.py (run 7); run 8
in bench/redteam/README.md has the figures (9/21 -> 4-5/21 on three seeds, clean bases unchanged).
All functions are pure: stored values in, windows or pictures out.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from deidcli.geometry import Rect, enclosing, overlaps

#: Cells (pixels square) in which outstanding pixels vote for a level.
CELL = 16
#: A cell votes for its commonest outstanding value when at least this many of its pixels hold it.
CELL_VOTES = 6
#: A pixel stands out when it differs from the median of its 5x5 neighbourhood by this many stored levels.
OUTSTANDING = 4
#: ... and a cell's count for a value must be at least this many times its mean count per distinct outstanding value.
CHANCE_RATIO = 3.0
#: A line is at least this many cells side by side voting for one level (LEVEL_SLACK apart at most).
RUN_CELLS = 3
LEVEL_SLACK = 1
#: At most this many candidate lines per frame (print is a few lines; more is the tissue's own texture).
MAX_LINES = 12
#: The band picture: ink is within BAND_NEAR x |L - median| of L and BAND_AWAY x |L - median| from the median.
BAND_NEAR = 0.4
BAND_AWAY = 0.3
#: Levels at or beyond these percentiles of the anatomy's values (each end) are not print's: air, bone, and the
#: flat holes of a quantised frame, which would vote everywhere and whose print, if any, is plain in other views.
EXTREME_SHARE = 2.0
#: A voted level lies within this share of the anatomy's value spread (2nd-98th percentile) of its cell's median:
#: faint print lies near its tissue's level.
MAX_CONTRAST_SHARE = 0.25
#: Cells whose median is under this percentile of the anatomy's values are not tissue (air inside the body).
TISSUE_PERCENTILE = 25
#: A band picture with more ink than this share is texture at that level, not print: not read.
MAX_INK_SHARE = 0.12
#: Ink components of fewer pixels are noise at the level, not strokes, and are left out of the detector's picture.
#: Measured (run 8) on the red team's variants, seeds 4207 and 11: at 3 the detector read eCT_Supplemental's print
#: and no MR hairline; at 8 it also read three MR hairlines whole or nearly (their strokes hold 8+ pixels, the
#: tissue's specks fewer), the eCT print as well, and explicit_VR-UN's band pictures gave a few boxes to read, not 60.
SPECK_PIXELS = 8
#: Windows reach this many cells beyond a run (the detector needs the line's ends and some field).
REACH = 2


def outstanding(values: np.ndarray) -> np.ndarray:
    """Pixels of a gray frame (stored values) differing from the median of their 5x5 neighbourhood by OUTSTANDING
    levels or more (OpenCV's medianBlur takes float32 up to 5x5)."""
    as_float = values.astype(np.float32)
    return np.abs(as_float - cv2.medianBlur(as_float, 5)) >= OUTSTANDING


def cell_levels(values: np.ndarray, standing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per CELL x CELL cell: the commonest value among its `standing` pixels and how many hold it (0 where none,
    or where that count is within CHANCE_RATIO of the cell's mean count per distinct value)."""
    rows, cols = values.shape
    grid_r, grid_c = rows // CELL, cols // CELL
    level = np.zeros((grid_r, grid_c), np.int64)
    votes = np.zeros((grid_r, grid_c), np.int64)
    if grid_r == 0 or grid_c == 0:
        return level, votes
    v = values[: grid_r * CELL, : grid_c * CELL].astype(np.int64)
    ys, xs = np.nonzero(standing[: grid_r * CELL, : grid_c * CELL])
    if ys.size == 0:
        return level, votes
    cell = (ys // CELL) * grid_c + xs // CELL
    vals = v[ys, xs]
    low = int(vals.min())
    span = int(vals.max()) - low + 1
    keys, counts = np.unique(cell * span + (vals - low), return_counts=True)
    cells = keys // span
    # A level repeats by chance where the cell's outstanding pixels take few values (air noise, quantised tissue).
    total = np.bincount(cells, weights=counts, minlength=grid_r * grid_c)
    distinct = np.bincount(cells, minlength=grid_r * grid_c)
    chance = total[cells] / np.maximum(distinct[cells], 1)
    counts = np.where(counts >= CHANCE_RATIO * chance, counts, 0)
    order = np.lexsort((-counts, cells))  # per cell, the largest count first
    first = np.ones(order.size, bool)
    first[1:] = cells[order][1:] != cells[order][:-1]
    best = order[first]
    level.reshape(-1)[cells[best]] = keys[best] % span + low
    votes.reshape(-1)[cells[best]] = counts[best]
    return level, votes


@dataclass(frozen=True)
class BandLine:
    """A candidate line: its window (frame pixels), the level its cells voted for, and the most its print may
    differ from the tissue around it (MAX_CONTRAST_SHARE of the anatomy's spread)."""

    window: Rect
    level: int
    max_contrast: float


def band_lines(values: np.ndarray, anatomy: np.ndarray) -> list[BandLine]:
    """Candidate lines of print drawn at one level over tissue; none when there are more than MAX_LINES (texture,
    not print). `values` is an integer gray frame (stored values), `anatomy` a bool mask of its size: only its
    cells vote. Cells are counted on two grids, the second half a cell lower (ROW_OFFSETS): a line of 10-12 px
    print split by a cell row gives each cell too few votes (measured: eCT_Supplemental's ID two rows lower than
    the red team's had no candidate)."""
    if values.ndim != 2 or values.dtype.kind not in "iu" or values.shape != anatomy.shape:
        return []
    sample = values[::4, ::4][anatomy[::4, ::4]]
    if sample.size == 0:
        return []
    low, high, floor = np.percentile(sample, (EXTREME_SHARE, 100 - EXTREME_SHARE, TISSUE_PERCENTILE))
    max_contrast = MAX_CONTRAST_SHARE * max(float(high - low), 1.0)
    # Extreme values do not vote at all: eCT_Supplemental's holes (one value) and the ring around them outnumber
    # a print's pixels in a cell and hide its level from the chance test.
    standing = outstanding(values) & anatomy & (values > low) & (values < high)
    rows, cols = values.shape
    lines: list[BandLine] = []
    for offset in ROW_OFFSETS:
        for window, level in _runs_of_cells(values[offset:], standing[offset:], floor, max_contrast):
            line = BandLine(Rect(window.x0, window.y0 + offset, window.x1, window.y1 + offset).clip(cols, rows),
                            level, max_contrast)
            lines = _merged(lines, line)
    return [] if len(lines) > MAX_LINES else lines


#: Row offsets (pixels) of the grids the cells are counted on.
ROW_OFFSETS = (0, CELL // 2)


def _runs_of_cells(values: np.ndarray, standing: np.ndarray, floor: float, max_contrast: float
                   ) -> list[tuple[Rect, int]]:
    """(window reaching REACH cells around, level) of each run of RUN_CELLS or more cells side by side voting for
    one level, on the grid starting at the frame's top left."""
    level, votes = cell_levels(values, standing)
    grid_r, grid_c = level.shape
    if grid_r == 0 or grid_c == 0:
        return []
    cells = values[: grid_r * CELL, : grid_c * CELL].reshape(grid_r, CELL, grid_c, CELL).swapaxes(1, 2)
    middle = np.median(cells.reshape(grid_r, grid_c, -1), axis=2)
    # Faint print lies near its tissue's level; cells under `floor` are air inside the body, not tissue.
    voting = (votes >= CELL_VOTES) & (np.abs(level - middle) <= max_contrast) & (middle >= floor)
    runs = []
    for gy in range(grid_r):
        gx = 0
        while gx < grid_c:
            if not voting[gy, gx]:
                gx += 1
                continue
            start, first = gx, level[gy, gx]
            while gx + 1 < grid_c and voting[gy, gx + 1] and abs(level[gy, gx + 1] - first) <= LEVEL_SLACK:
                gx += 1
            if gx - start + 1 >= RUN_CELLS:
                runs.append((Rect((start - REACH) * CELL, (gy - REACH) * CELL, (gx + 1 + REACH) * CELL,
                                  (gy + 1 + REACH) * CELL), int(first)))
            gx += 1
    return runs


def _merged(lines: list[BandLine], line: BandLine) -> list[BandLine]:
    """`lines` with `line` added, or joined to one of them at its level (LEVEL_SLACK) whose window it overlaps
    (the two grids find most lines twice): one window, detected once."""
    for i, other in enumerate(lines):
        if abs(other.level - line.level) <= LEVEL_SLACK and overlaps(other.window, line.window):
            joined = enclosing((other.window, line.window))
            return lines[:i] + [BandLine(joined, other.level, other.max_contrast)] + lines[i + 1 :]
    return lines + [line]


def band_ink_mask(crop: np.ndarray, line: BandLine) -> np.ndarray:
    """Pixels of a window near the line's level (BAND_NEAR of the way from their local median) and away from that
    median (BAND_AWAY of the way): a print's strokes drawn at that level, antialiased or not. Only where the level
    is faint against the median (`max_contrast`): beside a hole or bone every tissue pixel is "near" a level
    a thousand values away (eCT_Supplemental: the mask reached over a hole and the fit shrank it onto the hole)."""
    values = crop.astype(np.float32)
    median = cv2.medianBlur(values, 5)
    contrast = np.abs(line.level - median)
    return ((np.abs(values - line.level) <= BAND_NEAR * contrast) & (np.abs(values - median) >= BAND_AWAY * contrast)
            & (contrast >= OUTSTANDING) & (contrast <= line.max_contrast))


def band_picture(crop: np.ndarray, line: BandLine) -> np.ndarray:
    """8-bit picture of a window for the detector: black strokes (`band_strokes`) on white."""
    return np.where(band_strokes(crop, line), 0, 255).astype(np.uint8)


def band_strokes(crop: np.ndarray, line: BandLine) -> np.ndarray:
    """`band_ink_mask` without its specks."""
    return strokes_only(band_ink_mask(crop, line))


def strokes_only(ink: np.ndarray) -> np.ndarray:
    """A bool mask without its 8-connected components under SPECK_PIXELS."""
    _, labels, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    kept = stats[:, cv2.CC_STAT_AREA] >= SPECK_PIXELS
    kept[0] = False
    return kept[labels]


#: Rows of a line's strokes count when they hold at least this share of its fullest row's stroke pixels.
ROW_SHARE = 0.2
#: Beyond the outer strokes, the extent follows the line's raw ink (specks included) through gaps of at most
#: INK_GAP text heights (the space between two glyphs), for at most a text height: a thin glyph at a line's end ("1" of a 10 px date, 1 px wide) breaks
#: into specks that are not strokes (measured: the "19" of "1982-10-06" was left), while textured tissue's specks
#: would lead the mask on along the line.
INK_GAP = 0.6


def band_extent(crop: np.ndarray, line: BandLine, box: Rect, read: Rect) -> Rect | None:
    """The print's own extent (crop pixels) inside `box`, the detector's box `read` grown along the line: the rows
    holding ROW_SHARE of the fullest row's strokes, and the columns of strokes in them that reach `read` with gaps
    under a text height (the detector ends a line of this picture a glyph or two early or starts it late; strokes
    beyond a wider gap are tissue's), then the raw ink at either end (INK_GAP). Its level is not the box's extreme,
    so the mask's fit cannot find its glyphs. None if no strokes."""
    ink = band_ink_mask(crop[box.y0 : box.y1, box.x0 : box.x1], line)
    inside = strokes_only(ink)
    per_row = inside.sum(axis=1)
    if not per_row.any():
        return None
    rows = np.flatnonzero(per_row >= ROW_SHARE * per_row.max())
    y0, y1 = int(rows[0]), int(rows[-1]) + 1
    height = max(y1 - y0, 2)
    x0 = x1 = None
    for start, end in _runs(np.flatnonzero(inside[y0:y1].any(axis=0)), height):
        if box.x0 + end >= read.x0 and box.x0 + start < read.x1:  # a run reaching the read box
            x0 = start if x0 is None else x0
            x1 = end
    if x0 is None or x1 is None:
        return None
    inked = ink[y0:y1].any(axis=0)
    x0, x1 = _follow(inked, x0, -1, height), _follow(inked, x1 - 1, 1, height) + 1
    return Rect(box.x0 + x0 - 1, box.y0 + y0 - 2, box.x0 + x1 + 1, box.y0 + y1 + 2).clip(crop.shape[1], crop.shape[0])


def _follow(inked: np.ndarray, edge: int, step: int, height: int) -> int:
    """The last inked column reached from `edge` going `step` through gaps of at most INK_GAP text heights, one
    text height (`height`) at most."""
    last, gap = edge, 0
    for column in range(edge + step, edge + step * (height + 1), step):
        if not 0 <= column < inked.size or gap > INK_GAP * height:
            break
        if inked[column]:
            last, gap = column, 0
        else:
            gap += 1
    return last


def _runs(columns: np.ndarray, gap: int) -> list[tuple[int, int]]:
    """Sorted column indices grouped where they lie less than `gap` apart: (first, last + 1) of each group."""
    if columns.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(columns) > gap)
    starts = np.concatenate(([0], breaks + 1))
    ends = np.concatenate((breaks, [columns.size - 1]))
    return [(int(columns[a]), int(columns[b]) + 1) for a, b in zip(starts, ends, strict=True)]
