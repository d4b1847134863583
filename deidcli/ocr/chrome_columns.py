"""Vertical lines of small print on screens without data regions, found as columns of glyph components.

Why: a patient ID written top to bottom (or bottom to top) beside an ultrasound's colour bar, over it, or
along the picture's edge was left legible on 5 of 6 variants (bench/redteam/variants.py, US1_UNCR: 640x480 RGB,
no SequenceOfUltrasoundRegions). Without data regions the anatomy split takes the whole screen's middle band,
colour bar and grey scale included, for anatomy, so the background's column pass (`TextScanner._columns`) never
looks there; the upright detection reads a vertical line of 10-14 px digits as nothing or as a short piece,
and over the colour bar the brightest channel shows no print at all (cyan on yellow: 255 on 255).

So print is looked for as what a vertical line is drawn as: glyph-sized components (in any colour channel:
cyan over a yellow bar stands out in blue) stacked one under another, each about one text height wide, with
small gaps, several in a column. Speckle and tissue streaks do not stack so (streaks are wide and flat, speckle
is scattered); a colour bar or grey scale is one tall solid component, not glyphs. Only such columns are then
detected, turned a quarter and enlarged (the scanner: `TextScanner._print_columns`), never the whole frame,
and only what the detector finds along a column and reads as text is masked there: a column over anatomy is
not masked on its shape alone.

Where: the side bands of the screen whole, and between them its chrome (`screen_zones`). A fixed band alone left
lines a device or a sender put elsewhere: on a fresh draw (bench/redteam/us_vertical.py, seed 101) four lines
on the black below US1_UNCR's picture, 130-177 px from its left edge (the bands end at 128), were masked in part
or not at all. Speckle and colour flow stack into columns on the picture (US1_UNCR's flow, 11 of the bench's 16
US frames), so between the bands only what the foreground split leaves off the picture is searched.

Pure functions on stored 8-bit frames (gray or RGB).
"""

from __future__ import annotations

import cv2
import numpy as np

from deidcli.geometry import Rect, chained, enclosing, line_neighbours, overlaps

#: Text heights (stored pixels) of a vertical line: turned, a glyph is this wide. Smaller print is unreadable
#: turned at screen resolution; taller print the upright detection and the background passes handle.
GLYPH_MIN_WIDTH = 7
GLYPH_MAX_WIDTH = 17
#: A turned glyph's height (along the line): a `1` or a `-` is 2-3 px. Taller pieces are glyphs that touch.
GLYPH_MIN_HEIGHT = 2
#: Top-hat size (stored pixels): wider than any stroke of small print, narrower than a colour bar (its
#: swatches and the bar's edges do not respond inside it).
STROKE_SIZE = 15
#: Stroke response (8-bit levels over the local field, strongest channel) print needs, or NOISE_FACTOR times
#: the frame's median response where the picture is noisy.
PRINT_CONTRAST = 60
NOISE_FACTOR = 6.0
#: Runs of ink at least this long sideways are streaks (tissue layers, rules), not glyphs of a vertical line.
STREAK_LENGTH = GLYPH_MAX_WIDTH + 1
STREAK_KERNEL = cv2.getStructuringElement(cv2.MORPH_RECT, (STREAK_LENGTH, 1))
#: A component filling this share of its box is a block (a swatch, a bar's end), not print.
SOLID_SHARE = 0.85
#: Upright glyphs of one line differ in height by at most this share (a vertical line's glyphs that touch, crossing
#: a block of upright print, make a piece taller than its letters: it is not one of them).
LINE_HEIGHT_SLACK = 0.25
#: Glyphs of one column: their x-extents share COLUMN_SHARE of the narrower one's width, their widths are within
#: WIDTH_RATIO, and the gap between one and the next is at most GAP_SHARE of the wider one's width.
COLUMN_SHARE = 0.6
WIDTH_RATIO = 1.6
GAP_SHARE = 0.8
#: Pixels a glyph's left or right end may stray from the line's (antialiasing, a descender's tail is not counted).
ALIGN = 2
#: A column is at least MIN_GLYPHS glyphs and COLUMN_LENGTH times as long as wide (an ID, a name, a date).
MIN_GLYPHS = 4
#: A turned glyph's advance down the line, as a share of its width (the text height): digits are ~0.6-0.7.
GLYPH_PITCH = 0.7
COLUMN_LENGTH = 3.0
#: The share of a screen's width on each side where vertical chrome is looked for (`side_bands`).
SIDE_SHARE = 0.2
#: Columns per frame at most (each costs a turned detection): the longest first.
MAX_COLUMNS = 4


def ink(frame: np.ndarray) -> np.ndarray:
    """The strongest white top-hat of any channel (8-bit) down the frame (a STROKE_SIZE tall line): print
    brighter than its field in at least one colour (cyan over a yellow bar is bright in blue, white over tissue
    in all three), and nothing of a colour bar, a grey scale or an edge that runs on longer than a glyph."""
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (1, STROKE_SIZE))
    response = cv2.morphologyEx(np.ascontiguousarray(frame), cv2.MORPH_TOPHAT, kernel)
    if response.ndim == 2:
        return response
    # Channel planes, not a reduction over the last axis (7x slower on 8-bit RGB; see views.brightest_channel).
    return np.maximum(np.maximum(response[..., 0], response[..., 1]), response[..., 2])


def side_bands(rows: int, cols: int) -> list[Rect]:
    """Where a screen without data regions keeps its vertical chrome: the left and right SIDE_SHARE of the
    frame, full height (colour bars, grey scales, TGC curves and vertical labels stand beside the picture;
    the middle is the picture, where speckle stacks into columns of its own)."""
    side = max(GLYPH_MAX_WIDTH * 2, round(SIDE_SHARE * cols))
    if 2 * side >= cols:
        return [Rect(0, 0, cols, rows)]
    return [Rect(0, 0, side, rows), Rect(cols - side, 0, cols, rows)]


def between_bands(bands: list[Rect]) -> Rect | None:
    """The part of the frame between its two side bands (`side_bands`), full height, overlapping each by a glyph's
    width (a line standing on a band's inner edge is cut by both zones otherwise, and its glyphs so cut are not
    counted); None where the bands take the whole frame."""
    if len(bands) != 2:
        return None
    return Rect(bands[0].x1 - GLYPH_MAX_WIDTH, 0, bands[1].x0 + GLYPH_MAX_WIDTH, bands[0].y1)


def screen_zones(anatomy: np.ndarray) -> tuple[list[Rect], tuple[Rect, np.ndarray] | None]:
    """Where `print_columns` looks on a screen without data regions, from its foreground split at frame resolution
    (`anatomy`): its side bands whole (a colour bar or a grey scale beside the picture is foreground too), and
    between them the chrome only (what the split left off the picture: the black below or beside it, where a line
    may stand anywhere; on the picture, speckle and colour flow stack into columns of their own)."""
    rows, cols = anatomy.shape[:2]
    bands = side_bands(rows, cols)
    middle = between_bands(bands)
    return bands, None if middle is None else (middle, ~anatomy[:, middle.x0 : middle.x1])


def print_columns(frame: np.ndarray, zones: list[Rect], background: tuple[Rect, np.ndarray] | None = None
                  ) -> list[Rect]:
    """Columns of stacked glyph components inside `zones` of a stored 8-bit frame (gray or RGB), and inside
    `background` ((zone, its mask: True where the frame is chrome, not picture) when given), as the glyphs'
    extent in frame pixels, longest first, at most MAX_COLUMNS."""
    if frame.dtype != np.uint8:
        return []
    cols = frame.shape[1]
    # One response for the frame: zones are full-height bands and the top-hat runs down columns only, so each
    # zone's slice of it is the zone's own response (a copy and a top-hat per zone cost more, measured).
    response = ink(frame)
    found: list[Rect] = []
    searched = [(zone, None) for zone in zones] + ([background] if background is not None else [])
    for zone, chrome in searched:
        crop = response[zone.y0 : zone.y1, zone.x0 : zone.x1]
        for c in _columns_in(crop, zone.x0 > 0, zone.x1 < cols, chrome):
            column = Rect(c.x0 + zone.x0, c.y0 + zone.y0, c.x1 + zone.x0, c.y1 + zone.y0)
            if not any(overlaps(column, other) for other in found):  # one line found in two zones: detected once
                found.append(column)
    return sorted(found, key=lambda c: -c.height)[:MAX_COLUMNS]


def _columns_in(response: np.ndarray, cut_left: bool, cut_right: bool, chrome: np.ndarray | None = None
                ) -> list[Rect]:
    """`print_columns` on one zone (its `ink` response); `cut_left`/`cut_right`: the zone ends inside the frame
    there; `chrome`: where in the zone print is looked for (None: everywhere)."""
    if response.size == 0 or (chrome is not None and not chrome.any()):
        return []
    mask = None if chrome is None else chrome.view(np.uint8)
    counts = np.cumsum(cv2.calcHist([response], [0], mask, [256], [0, 256]).ravel())
    median = float(np.searchsorted(counts, counts[-1] / 2))
    level = max(float(PRINT_CONTRAST), NOISE_FACTOR * median)
    marked = response >= level
    if chrome is not None:
        marked &= chrome
    edge = _outside_edge(chrome) if chrome is not None else None
    # Labelled by blocks of rows apart by more than a column's widest gap (no line crosses such a gap): a screen's
    # chrome is mostly empty, and one labelling of the whole zone cost 2-3 times the rest of the pass (measured).
    found, pieces = [], 0
    for y0, y1 in _row_blocks(marked.any(axis=1), int(GAP_SHARE * GLYPH_MAX_WIDTH) + 1):
        block = marked[y0:y1].view(np.uint8)
        # Tissue streaks and rules run longer sideways than a turned glyph is tall: taken out, they no longer join
        # the glyphs of a line crossing them into one component.
        block = block & (1 - cv2.morphologyEx(block, cv2.MORPH_OPEN, STREAK_KERNEL))
        count, candidates = _glyph_pieces(block, cut_left, cut_right, None if edge is None else edge[y0:y1])
        pieces += count
        found += [Rect(x0, y0 + top, x1, y0 + bottom) for x0, top, x1, bottom in candidates]
    return columns_of(found) if pieces >= 2 else []


def _row_blocks(marked_rows: np.ndarray, gap: int) -> list[tuple[int, int]]:
    """(first, end) of the runs of rows holding marks, joined over fewer than `gap` empty rows."""
    ys = np.flatnonzero(marked_rows)
    if not ys.size:
        return []
    breaks = np.flatnonzero(np.diff(ys) > gap)
    return list(zip(np.r_[ys[0], ys[breaks + 1]].tolist(), (np.r_[ys[breaks], ys[-1]] + 1).tolist(), strict=True))


def _glyph_pieces(marked: np.ndarray, cut_left: bool, cut_right: bool, edge: np.ndarray | None
                  ) -> tuple[int, list[tuple[int, int, int, int]]]:
    """The glyph-sized components of `marked` (a block of a zone's rows): how many, and those that may be glyphs of
    a vertical line (not beside upright print) as (x0, y0, x1, y1); `edge`: the block's pixels beside the picture
    (None: a zone searched whole)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(marked, connectivity=8)
    # Cut by the picture's edge, like by a zone's side: a speckle blob or a line's glyph cut there is no glyph.
    cut = np.zeros(count, bool)
    if edge is not None:
        cut[labels[edge]] = True
    stats, cut = stats[1:count], cut[1:count]
    widths, heights, areas = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT], stats[:, cv2.CC_STAT_AREA]
    solid = (areas >= SOLID_SHARE * widths * heights) & (heights > 2)
    piece = (widths >= GLYPH_MIN_WIDTH) & (widths <= GLYPH_MAX_WIDTH) & (heights >= GLYPH_MIN_HEIGHT) & ~solid
    # Cut by the zone's inner side: its ends there are the zone's, and would line up with every other cut piece.
    piece &= ~(((stats[:, 0] == 0) & cut_left) | ((stats[:, 0] + widths == marked.shape[1]) & cut_right) | cut)
    if not piece.any():
        return 0, []
    # Upright print stacked in lines (a header block in a monospaced face) lines up in columns too; its glyphs
    # have neighbours of their own height beside them in the line, a vertical line's glyphs do not.
    upright = (heights > widths) & (heights >= GLYPH_MIN_WIDTH) & (heights <= GLYPH_MAX_WIDTH) & ~solid
    candidates = stats[piece]
    candidates = candidates[~_in_line(candidates, stats[upright])]
    return int(np.count_nonzero(piece)), [(int(x), int(y), int(x + w), int(y + h)) for x, y, w, h, _ in candidates]


def _outside_edge(chrome: np.ndarray) -> np.ndarray:
    """The pixels of `chrome` beside (8-neighbours) or on a pixel outside it."""
    return cv2.dilate((~chrome).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)


def _in_line(pieces: np.ndarray, lines: np.ndarray) -> np.ndarray:
    """Which pieces (cv2 stats rows) taller than wide stand beside an upright glyph-sized component (a row of
    `lines`) in a line of print: about its height, sharing most of its rows, within a glyph's width of it."""
    if not len(pieces) or not len(lines):
        return np.zeros(len(pieces), bool)
    px, py, pw, ph = (pieces[:, i, None] for i in range(4))
    x, y, w, h = (lines[None, :, i] for i in range(4))
    shared = np.minimum(y + h, py + ph) - np.maximum(y, py)
    gap = np.maximum(np.maximum(x - (px + pw), px - (x + w)), 0)
    similar = np.abs(h - ph) <= LINE_HEIGHT_SLACK * np.maximum(h, ph)
    beside = similar & (shared >= 0.7 * np.minimum(h, ph)) & (gap <= pw) & ((x != px) | (y != py))
    return (ph[:, 0] > pw[:, 0]) & beside.any(axis=1)


def _same_column(a: Rect, b: Rect) -> bool:
    """Whether two glyph boxes are neighbours in one vertical line of print."""
    return line_neighbours(a, b, True, WIDTH_RATIO, COLUMN_SHARE, GAP_SHARE)


def columns_of(boxes: list[Rect]) -> list[Rect]:
    """Glyph boxes joined into vertical lines (neighbours of neighbours); a line of MIN_GLYPHS glyphs at least
    COLUMN_LENGTH times as long as wide, as its bounding box, longest first."""
    found = []
    for members in chained(boxes, True, GAP_SHARE * GLYPH_MAX_WIDTH, _same_column):
        # The glyphs of a line share its baseline and cap line: turned, their left and right ends line up
        # (speckle and colour-flow blobs that happen to stack do not).
        left = sorted(m.x0 for m in members)[len(members) // 2]
        right = sorted(m.x1 for m in members)[len(members) // 2]
        members = [m for m in members if abs(m.x0 - left) <= ALIGN and abs(m.x1 - right) <= ALIGN]
        if not members:
            continue
        column = enclosing(members)
        # Glyphs that touch come as one piece: a piece counts a glyph per GLYPH_PITCH of its width down the line.
        glyphs = sum(max(1, round(m.height / (GLYPH_PITCH * m.width))) for m in members)
        if glyphs >= MIN_GLYPHS and column.height >= COLUMN_LENGTH * column.width:
            found.append(column)
    return sorted(found, key=lambda c: -c.height)


#: A column is detected enlarged this much (stored pixels to detector pixels): turned 10-14 px print at its stored
#: size read as pieces (`9838` of `983868871`) or not at all; at x2 the whole ID read on 5 of 6 variants (measured).
COLUMN_SCALE = 2.0
#: The window around a column: this many of its widths sideways (the detector wants some field) and along it
#: (a line's ends that did not stand out as glyphs: a glyph over a grey scale's white end).
WINDOW_SIDE = 1.0
WINDOW_ALONG = 2.0
#: Times a column whose line was read to its window's end is grown and detected again at most.
COLUMN_GROWTH = 2


def upright_lines(found: list[Rect], scale: float, zones: list[Rect]) -> list[Rect]:
    """Boxes found so far (view pixels at `scale`) standing up in `zones` (frame pixels) like a vertical line of
    print (COLUMN_LENGTH times as tall as wide, no wider than a padded line of the largest print here), as
    columns in frame pixels: a vertical line read in part (a piece turned and read as `9838688` of `983868871`,
    its last digits over a grey scale) is detected again along its column and grown to its ends."""
    out = []
    for box in found:
        full = box.scale(1 / scale, 1 / scale)
        if (full.height >= COLUMN_LENGTH * full.width and full.width <= 2 * GLYPH_MAX_WIDTH
                and any(full.x0 >= z.x0 and full.x1 <= z.x1 for z in zones)):
            out.append(full)
    return out[:MAX_COLUMNS]


def column_window(column: Rect, rows: int, cols: int) -> Rect:
    """The part of a (rows, cols) frame to detect a column in: the column with some field around it."""
    width = column.width
    return column.pad(round(WINDOW_SIDE * width), round(WINDOW_ALONG * width)).clip(cols, rows)
