"""Probe (not in the scanner): faint print drawn at one level over textured, blocky or quantised tissue.

    .venv/bin/python bench/redteam/band_probe.py CASES_DIR [--only NAME]   # cases from variants.py

Per case: the candidate lines (`band_lines`), what the detector reads in their band picture at 1x and 2x, how much of
each PHI box the strict reads (3+ characters at 0.7) cover, the CPU seconds, and on `clean_*` bases what would be
masked for nothing. A measured lead for the next pass over tissue, kept out of deidcli until it holds on the whole
evaluation set (see README.md, run 7).

Why (issue 12, red team variants `tissue_*`): a date or ID drawn 20-40 stored levels from MR/CT tissue, 10-12 px
with 1 px antialiased strokes, or over tissue that is itself made of flat blocks (693_UNCI, upsampled) or few levels
(eCT_Supplemental, 132 levels), was left legible. `scan._level_print` looks where pixels equal to their neighbours
crowd: hairlines have too few such pixels, and blocky tissue has them everywhere (no window). The display, contrast
and VOI-window views show the print as strongly as the tissue's own texture, so the detector reads nothing there.

What print has that tissue lacks: one stored level L shared by the strokes of a whole line. So:
- `band_lines`: in each CELL x CELL cell, the commonest value among the pixels that stand out from their 5x5 median
  (`outstanding`); a cell "votes" for L when at least CELL_VOTES of them hold it. Print lies along a line, so a
  candidate is a run of RUN_CELLS or more cells side by side voting for the same L (within LEVEL_SLACK): tissue's
  outstanding pixels scatter over many values, and neighbouring cells seldom agree on one.
- `band_picture`: the window around a run shown black where a pixel is near L (BAND_NEAR of the way) and away from
  its local median (BAND_AWAY of the way), white elsewhere: the strokes, antialiased or not, stand out of any
  texture, and the detector reads them (measured on the variants: 0.73-1.0 where every other view read nothing).
Only boxes that read as text are masked (the scanner's rule for anatomy): never a window for being a candidate.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from deidcli.geometry import Rect  # noqa: E402

#: Cells (pixels square) in which outstanding pixels vote for a level.
CELL = 16
#: A cell votes for its commonest outstanding value when at least this many of its pixels hold it.
CELL_VOTES = 6
#: A pixel stands out when it differs from the median of its 5x5 neighbourhood by this many stored levels.
OUTSTANDING = 4
#: ... and that count is at least this many times the cell's mean count per distinct outstanding value.
CHANCE_RATIO = 3.0
#: A line is at least this many cells side by side voting for one level (LEVEL_SLACK apart at most).
RUN_CELLS = 3
LEVEL_SLACK = 1
#: At most this many candidate lines per frame (print is a few lines; more is the tissue's own texture).
MAX_LINES = 12
#: The band picture: ink is within BAND_NEAR x |L - median| of L and BAND_AWAY x |L - median| from the median.
BAND_NEAR = 0.4
BAND_AWAY = 0.3
#: Levels at or beyond these percentiles of the frame (each end) are not print's (air, bone).
EXTREME_SHARE = 2.0
#: A voted level lies within this share of the anatomy's value spread (2nd-98th percentile) of its cell's median.
MAX_CONTRAST_SHARE = 0.25
#: Cells whose median is under this percentile of the anatomy's values are not tissue (air counted as body).
TISSUE_PERCENTILE = 25
#: A band picture with more ink than this share is texture at that level, not print: not read.
MAX_INK_SHARE = 0.12
#: The band picture is read at these enlargements (some 1 px strokes of 10-12 px print read only at 2x, some only at 1x).
BAND_SCALES = (1.0, 2.0)
#: Windows reach this many cells beyond a run (the detector needs the line's ends and some field).
REACH = 2


def outstanding(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pixels differing from their 5x5 median by OUTSTANDING levels or more, that median) of a gray frame."""
    med = cv2.medianBlur(values, 5) if values.dtype == np.uint8 else _median5(values.astype(np.float32))
    return np.abs(values.astype(np.float32) - med) >= OUTSTANDING, med


def _median5(values: np.ndarray) -> np.ndarray:
    """5x5 median of a float32 frame (OpenCV's medianBlur takes float32 only up to 5x5: that is what is used)."""
    return cv2.medianBlur(values, 5)


def cell_levels(values: np.ndarray, standing: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per CELL x CELL cell: the commonest value among its `standing` pixels and how many hold it (0 where none)."""
    rows, cols = values.shape
    grid_r, grid_c = rows // CELL, cols // CELL
    level = np.zeros((grid_r, grid_c), np.int64)
    votes = np.zeros((grid_r, grid_c), np.int64)
    if grid_r == 0 or grid_c == 0:
        return level, votes
    v = values[: grid_r * CELL, : grid_c * CELL].astype(np.int64)
    s = standing[: grid_r * CELL, : grid_c * CELL]
    ys, xs = np.nonzero(s)
    if ys.size == 0:
        return level, votes
    cell = (ys // CELL) * grid_c + xs // CELL
    vals = v[ys, xs]
    low = int(vals.min())
    key = cell * (int(vals.max()) - low + 1) + (vals - low)
    keys, counts = np.unique(key, return_counts=True)
    cells = keys // (int(vals.max()) - low + 1)
    # A level repeats by chance where the cell's outstanding pixels take few values (air noise, quantised tissue):
    # a cell's votes count as the share above that chance, its count over its mean count per distinct value.
    total = np.bincount(cells, weights=counts, minlength=grid_r * grid_c)
    distinct = np.bincount(cells, minlength=grid_r * grid_c)
    chance = total[cells] / np.maximum(distinct[cells], 1)
    counts = np.where(counts >= CHANCE_RATIO * chance, counts, 0)
    order = np.lexsort((-counts, cells))  # per cell, the largest count first
    first = np.ones(order.size, bool)
    first[1:] = cells[order][1:] != cells[order][:-1]
    best = order[first]
    flat_level, flat_votes = level.reshape(-1), votes.reshape(-1)
    flat_level[cells[best]] = keys[best] % (int(vals.max()) - low + 1) + low
    flat_votes[cells[best]] = counts[best]
    return level, votes


def band_lines(values: np.ndarray, anatomy: np.ndarray) -> list[tuple[Rect, int]]:
    """Candidate lines of print drawn at one level over tissue: (window in frame pixels, the level), at most
    MAX_LINES (none when more: texture, not print). `anatomy` (frame-sized bool) bounds where cells may vote."""
    if values.ndim != 2 or values.dtype.kind not in "iu":
        return []
    standing, _ = outstanding(values)
    level, votes = cell_levels(values, standing & anatomy)
    # Not at the frame's extreme levels: air or bone clipped flat (eCT_Supplemental's holes at one level) would
    # vote everywhere, and print at the extremes is plain in the display view.
    sample = values[:: 4, :: 4][anatomy[:: 4, :: 4]]
    if sample.size == 0:
        return []
    low, high = np.percentile(sample, (EXTREME_SHARE, 100 - EXTREME_SHARE))
    grid_r, grid_c = level.shape
    cells = values[: grid_r * CELL, : grid_c * CELL].reshape(grid_r, CELL, grid_c, CELL).swapaxes(1, 2)
    middle = np.median(cells.reshape(grid_r, grid_c, -1), axis=2)
    # Faint print lies near its tissue's level: a level far from its cell's median is a flat clip (eCT's air holes at
    # one value inside the head), whose print, if any, is plain in the other views.
    near = np.abs(level - middle) <= MAX_CONTRAST_SHARE * max(float(high - low), 1.0)
    tissue = middle >= np.percentile(sample, TISSUE_PERCENTILE)  # not air or the dark edge of the body
    voting = (votes >= CELL_VOTES) & (level > low) & (level < high) & near & tissue
    rows, cols = values.shape
    lines: list[tuple[Rect, int]] = []
    for gy in range(voting.shape[0]):
        gx = 0
        while gx < voting.shape[1]:
            if not voting[gy, gx]:
                gx += 1
                continue
            start, first = gx, level[gy, gx]
            while gx + 1 < voting.shape[1] and voting[gy, gx + 1] and abs(level[gy, gx + 1] - first) <= LEVEL_SLACK:
                gx += 1
            if gx - start + 1 >= RUN_CELLS:
                window = Rect((start - REACH) * CELL, (gy - REACH) * CELL, (gx + 1 + REACH) * CELL,
                              (gy + 1 + REACH) * CELL).clip(cols, rows)
                lines.append((window, int(first)))
            gx += 1
    if len(lines) > MAX_LINES:
        return []
    return lines


def band_picture(crop: np.ndarray, level: int) -> np.ndarray:
    """8-bit picture of a window: black where a pixel is near `level` and away from its local median, else white."""
    values = crop.astype(np.float32)
    med = cv2.medianBlur(values, 5)
    contrast = np.abs(level - med)
    ink = (np.abs(values - level) <= BAND_NEAR * contrast) & (np.abs(values - med) >= BAND_AWAY * contrast) & (
        contrast >= OUTSTANDING)
    return np.where(ink, 0, 255).astype(np.uint8)


def band_ink(crop: np.ndarray, level: int, box: Rect) -> Rect | None:
    """The extent (crop pixels, one pixel around) of the band picture's ink inside `box`: the print's own
    extent, since its level is not the box's extreme and the mask's fit cannot find its glyphs; None if no ink."""
    inside = band_picture(crop[box.y0 : box.y1, box.x0 : box.x1], level) == 0
    if not inside.any():
        return None
    ys, xs = np.nonzero(inside)
    return Rect(box.x0 + int(xs.min()) - 1, box.y0 + int(ys.min()) - 1, box.x0 + int(xs.max()) + 2,
                box.y0 + int(ys.max()) + 2).clip(crop.shape[1], crop.shape[0])


def probe(values: np.ndarray, detect) -> list[tuple[Rect, str, float]]:
    """Strict reads (frame pixels, text, confidence) in the band pictures of every candidate line of a gray frame."""
    from deidcli.ocr.scan import fit_engine_grid, reads_as_text, resize

    rows, cols = values.shape
    anatomy = values > np.percentile(values, 5)
    out = []
    lines = band_lines(values, anatomy)
    print(f"  {len(lines)} candidate lines", [(str(w), lv) for w, lv in lines][:6], file=sys.stderr)
    for window, level in lines:
        full = fit_engine_grid(window, cols, rows)
        crop = values[full.y0 : full.y1, full.x0 : full.x1]
        band = band_picture(crop, level)
        if (band == 0).mean() > MAX_INK_SHARE:
            continue
        for enlarge in BAND_SCALES:
            for item in detect(resize(band, enlarge)):
                if not reads_as_text(item, strict=True):
                    continue
                box = item.rect.scale(1 / enlarge, 1 / enlarge)
                # A text height longer at each end: the detector ends a line of this picture a glyph or two early.
                line = box.pad(min(box.width, box.height), 0).clip(crop.shape[1], crop.shape[0])
                tight = band_ink(crop, level, line) or line
                out.append((Rect(tight.x0 + full.x0, tight.y0 + full.y0, tight.x1 + full.x0, tight.y1 + full.y0),
                            item.text, item.confidence))
    return out


def main() -> int:
    import pydicom

    from deidcli.ocr import make_detector

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("cases", type=Path)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    detector = make_detector("rapidocr", 1)
    truth = json.loads((args.cases / "truth.json").read_text())
    for case in truth["cases"]:
        if args.only not in case["name"]:
            continue
        values = pydicom.dcmread(args.cases / case["file"]).pixel_array
        values = values[0] if values.ndim == 3 else values
        start = time.process_time()
        reads = probe(values, detector.detect)
        seconds = time.process_time() - start
        masked = np.zeros(values.shape, bool)
        for rect, _, _ in reads:
            masked[rect.y0 : rect.y1, rect.x0 : rect.x1] = True
        cover = [round(float(masked[b["box"][1] : b["box"][3], b["box"][0] : b["box"][2]].mean()), 2)
                 for b in case["boxes"]]
        print(f"{case['name']:38s} cover {cover} reads {[(t, round(c, 2)) for _, t, c in reads]} "
              f"masked {masked.mean():.4f} cpu {seconds:.2f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
