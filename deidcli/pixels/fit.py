"""Masks shrunk to the print they cover: a text box blanks the glyphs, not the field around them.

The scanner's rectangles are generous on purpose: detector boxes fall short of the glyphs by a
fraction of their height, so each is widened by a share of its text height (deidcli.ocr.scan), and
a box found on a shrunk or enlarged view is mapped back with a pixel of rounding. On large print that
margin is large: GDCMJ2K_TextGBR's 40 px words were blanked with 19 px of grey field around each
(18 % of the picture's text-free pixels), a header line of an ultrasound takes a slice of the image
under it.

`fit_to_ink` keeps the part of a rectangle that holds something drawn: the pixels that differ from
the rectangle's own rim (its field) by more than the rim's noise. Only ever shrinks, and only where
the field is flat: on tissue or on a noisy field every pixel "differs" and the rectangle stays whole,
so print over anatomy is still masked as the scanner decided. All functions are pure.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from deidcli.geometry import Rect

#: Rim (pixels) whose values define the field around the print.
RIM = 2
#: A pixel is ink when it differs from the field by more than this many noise levels; the noise level
#: is this percentile of the rim's deviations from the field (about one standard deviation of the
#: field's noise while at least FIELD_RIM_SHARE of the rim is field).
NOISE_LEVELS = 6.0
NOISE_PERCENTILE = 30
#: Margin kept around the ink, as a share of the ink's height (antialiasing, lossy ringing).
INK_MARGIN = 0.15
#: Smallest margin (pixels) kept around the ink.
MIN_MARGIN = 2
#: The scanner's margin is about this share of a padded box's short side on each side: what lies further
#: in is the detector's own box (the core).
CORE_SHARE = 0.25
#: Share of a box's core at one extreme value that makes that value the print's level (glyphs fill
#: 15-40 % of a text line's box), and the share above which that value is the field the print stands on,
#: not print (the black around ultrasound print: trimmed to it, the box would shrink onto the field).
PRINT_LEVEL_SHARE = 0.08
FIELD_LEVEL_SHARE = 0.5
#: White colour print: the pixels within this share of the contrast (core's whitest minus its median) below
#: the whitest.
WHITE_TOLERANCE = 0.25
#: A field whose noise tolerance exceeds this share of the frame's value range is texture, not a field
#: (examples_rgb_color's "PWR" over the image edge lost its lower half to a tolerance of 60 levels).
FLAT_SHARE_OF_RANGE = 0.04
#: A component crossing a rectangle is a structure, not print, when its ink fills this share of its bounding
#: box (a patch of grey) or when it is at most THIN_LINE pixels thick (a grid line, a ruler).
SOLID_SHARE = 0.9
THIN_LINE = 2
#: Share of a rectangle's core covered by one structure crossing it from which that structure is the plate
#: the print stands on (its field), not a band beside it.
PLATE_SHARE = 0.5
#: Share of the rim that must sit on the field: a rim that is mostly print or tissue gives no field to
#: measure against (the rectangle is kept whole).
FIELD_RIM_SHARE = 0.4


def rim_of(shape: tuple[int, ...]) -> np.ndarray:
    """The outer RIM pixels of a box of `shape` (rows, cols): where its field is measured, print kept off."""
    rim = np.ones(shape[:2], bool)
    rim[RIM:-RIM, RIM:-RIM] = False
    return rim


def glyph_ink(ink: np.ndarray) -> np.ndarray:
    """The ink that belongs to the print: components (joined over one pixel) that reach the core of the
    rectangle (the detector's own box, inside the scanner's margin) or lie wholly inside it. A component
    entering from the border without reaching the core is tissue or a neighbour the margin happened to
    cover (US1's "PWR" box held a strip of the image beside it), not this box's print, unless it stands
    on the same rows as the print (a glyph at the end of the line that the detector's box fell short of:
    masked in part before the fit, it must not lose its mask to it)."""
    import cv2  # here, not at import: a run with OCR off must not load OpenCV (tests/test_startup.py)

    rows, cols = ink.shape
    joined = cv2.dilate(ink.astype(np.uint8), np.ones((3, 3), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    if count <= 1:
        return ink
    edge = max(1, round(CORE_SHARE * min(rows, cols)))
    x, y, w, h = (stats[:, i] for i in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
    touches_border = touching_border(stats, ink.shape)
    # The core is judged on the ink itself, not on the joined (dilated) component: a pixel of growth let the
    # line above and the picture's edge below both "reach" the core of ultrasound's IM#2 box.
    ix0, iy0 = np.where(x > 0, x + 1, x), np.where(y > 0, y + 1, y)
    ix1, iy1 = np.where(x + w < cols, x + w - 1, x + w), np.where(y + h < rows, y + h - 1, y + h)
    reaches_core = (ix0 < cols - edge) & (ix1 > edge) & (iy0 < rows - edge) & (iy1 > edge)
    # A solid block or a thin straight line crossing the whole rectangle (border to opposite border) is a
    # structure the box lies on: the grey patch beside a label, a grid line (mlut_18's "30%" box reached into
    # the patch beside the label, which held it whole). Only those shapes: two lines of print joined by the
    # dilation also cross a box (ALOKA's date over its time), and they are print.
    ink_area = np.bincount(labels[ink], minlength=count)
    solid = ink_area >= SOLID_SHARE * np.maximum(ix1 - ix0, 1) * np.maximum(iy1 - iy0, 1)
    thin = np.minimum(ix1 - ix0, iy1 - iy0) <= THIN_LINE
    crossing = (((x == 0) & (x + w == cols)) | ((y == 0) & (y + h == rows))) & (solid | thin)
    keep = (reaches_core | ~touches_border) & ~crossing
    keep[0] = False
    if keep.any():  # a glyph the box cut short at the end of its line is print: on the line's rows, kept
        top, bottom = int(y[keep].min()), int((y + h)[keep].max())
        slack = max(2, (bottom - top) // 4)
        keep |= (y >= top - slack) & (y + h <= bottom + slack)
        keep[0] = False
    return ink if keep[1:].all() else ink & keep[labels]  # ink lies in components 1.. only


#: (count, labels, stats) of OpenCV's 8-connected components of a mask, as `components_of` gives them.
Components = tuple[int, np.ndarray, np.ndarray]


def components_of(ink: np.ndarray) -> Components:
    """The 8-connected components of a mask (count, label image, stats), as drawn (not joined).

    Why one function: `structures`, `without_texture` and `without_specks` each need them, and in the common
    case (no wall, nothing textured dropped) they label the same mask: `fit_to_ink` labels it once and hands
    the result on (three labellings of a 1400x90 mammogram box were a fifth of its fit)."""
    import cv2

    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    return count, labels, stats


def structures(ink: np.ndarray, components: Components | None = None) -> np.ndarray:
    """The ink of components (8-connected, as drawn: not joined over a pixel) that cross the whole rectangle
    from border to opposite border as a solid block (SOLID_SHARE of their bounding box) or a thin line:
    the band, plate or grid line the box lies across, never print.

    Why before the join: a line of print one blank row above a header band (gdcm-US-ALOKA-16's
    "9123 5.0 R15" over its "3:PELVIS" band) is joined to the band by a pixel of growth, and the print
    and band together are neither solid nor thin: the mask kept 14 rows of the band, blacked out.
    `components`: `components_of(ink)` when the caller has them already."""
    import cv2

    rows, cols = ink.shape
    if not may_cross(ink):  # nothing reaches two opposite borders: no component can cross (no labelling)
        return np.zeros(ink.shape, bool)
    count, labels, stats = components or components_of(ink)
    if count <= 1:
        return np.zeros(ink.shape, bool)
    x, y, w, h, area = (stats[:, i] for i in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH,
                                               cv2.CC_STAT_HEIGHT, cv2.CC_STAT_AREA))
    crossing = ((x == 0) & (x + w == cols)) | ((y == 0) & (y + h == rows))
    shape = (area >= SOLID_SHARE * w * h) | (np.minimum(w, h) <= THIN_LINE)
    found = crossing & shape
    found[0] = False
    return found[labels] if found.any() else np.zeros(ink.shape, bool)


def may_cross(ink: np.ndarray) -> bool:
    """Whether a component of `ink` could cross the box from border to opposite border: ink on both its first
    and last columns, or on both its first and last rows. False settles `structures` without labelling (a line
    of print inside its box's margin touches no border: most boxes)."""
    return bool((ink[:, 0].any() and ink[:, -1].any()) or (ink[0].any() and ink[-1].any()))


def rule_lines(ink: np.ndarray) -> np.ndarray:
    """The rule lines in `ink`: rows and columns inked from border to border, at most THIN_LINE + 1 thick with at
    most half as much ink on each side (`_thin`), taken out of the ink before its components are judged: a grid
    or a table line the print touches, which then joins them into one component that is neither solid nor thin.

    Why: pydicom-data's SMPTE pattern (vlut_04, mlut_18) prints "SMPTE TEST PATTERN" across its grid; the grid
    lines and the glyphs were one component that crossed the box, so the mask kept its whole detector margin,
    grid included, and was blacked out (0.4-0.5 % of the picture). A line of print never inks a whole row or
    column of its box (the box holds a rim of field); a row of lossy noise under a glyph (examples_ybr_color's
    `B O"` on black) has glyph ink beside it and is no rule. Runs shorter than the box were tried as rules (a
    toolbar's top edge): they took strokes of print on JPGLosslessP14SV1 and OBXXXX1A, and were dropped."""
    rows, cols = ink.shape
    lines = np.zeros(ink.shape, bool)
    full_columns = ink.all(axis=0)
    if full_columns.any():
        lines[:, _thin(full_columns, ink.sum(axis=0), np.full(cols, rows))] = True
    full_rows = ink.all(axis=1)
    if full_rows.any():
        lines[_thin(full_rows, ink.sum(axis=1), np.full(rows, cols))] = True
    return lines


def _thin(full: np.ndarray, beside: np.ndarray, length: np.ndarray) -> np.ndarray:
    """Which lines (rows, or columns) marked `full` belong to a group of consecutive full lines at most
    THIN_LINE + 1 thick whose neighbouring lines hold at most half the group's `length` of ink (`beside`: each
    line's ink): a rule, not a row of noise under glyphs, nor a band whose rows hold the print. Vectorised:
    a plate has a long run on every row (one call per run cost 1 ms a box)."""
    if not full.any():
        return full
    n = full.size
    starts = full & ~np.r_[False, full[:-1]]
    group = np.cumsum(starts) * full
    count = int(group.max())
    sizes = np.bincount(group, minlength=count + 1)[1:]
    first = np.flatnonzero(starts)
    last = first + sizes - 1
    above = np.where(first > 0, beside[np.maximum(first - 1, 0)], 0)
    below = np.where(last < n - 1, beside[np.minimum(last + 1, n - 1)], 0)
    span = np.zeros(count + 1, np.int64)
    np.maximum.at(span, group[full], length[full])
    ok = np.zeros(count + 1, bool)
    ok[1:] = (sizes <= THIN_LINE + 1) & (above * 2 <= span[1:]) & (below * 2 <= span[1:])
    return ok[group] & full


#: A component whose commonest value holds less than this share of its pixels is texture (speckle, tissue),
#: not print: print is drawn at one level (antialiased or lossy print still has a dominant level).
DRAWN_LEVEL_SHARE = 0.3


#: Ink components of at most SPECK_AREA pixels that differ from the field by under SPECK_CONTRAST of the box's
#: strongest difference are noise (lossy ringing), not print.
SPECK_AREA = 12
SPECK_CONTRAST = 0.25


def without_specks(ink: np.ndarray, deviation: np.ndarray, components: Components | None = None) -> np.ndarray:
    """`ink` less its specks: tiny, faint components (see SPECK_AREA). A glyph's dot or a colon is small but
    drawn at the print's contrast, so it stays.

    Why: on a lossy field (JPEG ringing of a few levels around print and the image's edge) the field's
    tolerance is one level, and single pixels of ringing anywhere in the box held it at full size
    (US1_UNCI's "IM#2": 10 rows of the image under it). `components`: `components_of(ink)`, when known."""
    import cv2

    count, labels, stats = components or components_of(ink)
    small = stats[:, cv2.CC_STAT_AREA] <= SPECK_AREA
    small[0] = False
    if count <= 1 or not small.any():  # no component small enough to be a speck
        return ink
    # A component's peak is under the threshold exactly when none of its pixels is not under it (NaN counts as
    # not under, as it makes the peak NaN): one scatter of flags, not a maximum per label (`np.maximum.at` over
    # every ink pixel of a noisy mammogram box, thousands of components).
    threshold = SPECK_CONTRAST * float(deviation[ink].max())
    strong = np.zeros(count, bool)
    strong[labels[ink & ~(deviation < threshold)]] = True
    specks = small & ~strong
    return ink & ~specks[labels] if specks.any() else ink


#: Share of a box's height that a textured component entering it must span to lose all but its pixels at the
#: print's level (a sector's edge across ALOKA's "127/128" box: 97 %; a cut line of antialiased print, generated
#: ct128_tiny's date: 69 %; boxes carry a margin of a third of the text height on each side).
TISSUE_SPAN = 0.9


def without_texture(ink: np.ndarray, crop: np.ndarray, components: Components | None = None) -> np.ndarray:
    """`ink` less the textured components that enter the rectangle from its border (tissue beside the print).

    Where the box has a print level (`print_level_ink`), such a component keeps its pixels at that level (a
    glyph drawn over the tissue's edge); without one, it is dropped when it lies mostly off the rows of the
    print inside the box (the ink that does not touch the border): a glyph the box cut short lies on those
    rows and stays (with a print level, the rows of that level). Textured: its commonest value holds under
    DRAWN_LEVEL_SHARE of its pixels. With a print level, on the print's rows only components spanning
    TISSUE_SPAN of the box's height are tissue: antialiased print is textured too, and a word the box cut short enters from its border (generated ct128_tiny's "12/02/1967": its "12"
    kept only the pixels at the frame's top value, and the "1" was left legible).

    Why: a box over print beside an ultrasound sector has the black chrome as its field and the sector as
    "ink" reaching its core; fitted to both, the mask kept a wedge of near field (gdcm-US-ALOKA-16's
    "127/128" box: 105x38 px, the "1" drawn over the sector edge; US1_UNCI's "IM#2" and "78DR78", lossy
    print with no single level, 8-10 rows of the image's top edge under them). Returns `ink` itself when nothing
    is dropped. `components`: `components_of(ink)`, when known."""
    import cv2

    rows, cols = ink.shape
    count, labels, stats = components or components_of(ink)
    if count <= 1:
        return ink
    x, y, w, h = (stats[:, i] for i in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
    entering = touching_border(stats, ink.shape)
    entering[0] = False
    if not entering.any():
        return ink
    flat_labels = labels.ravel()
    chosen = entering[flat_labels]
    textured = entering & (commonest_counts(flat_labels[chosen], crop.reshape(rows * cols, -1)[chosen], count)
                           < DRAWN_LEVEL_SHARE * stats[:, cv2.CC_STAT_AREA])
    if not textured.any():
        return ink
    level = print_level_ink(crop[..., 0] if crop.shape[2] == 1 else crop)
    interior = ~entering
    interior[0] = False
    if level is not None and level.any():
        print_rows = np.flatnonzero(level.any(axis=1))
        top, bottom = int(print_rows[0]), int(print_rows[-1]) + 1
    elif interior.any():
        top, bottom = int(y[interior].min()), int((y + h)[interior].max())
    else:
        return ink
    on_rows = np.zeros(rows, bool)
    on_rows[top:bottom] = True
    off_share = np.bincount(flat_labels, weights=~np.repeat(on_rows, cols), minlength=count) / np.maximum(
        stats[:, cv2.CC_STAT_AREA], 1)
    dropped = textured & (off_share > 0.5)
    if level is None:
        # A glyph touching the tissue joins it into one dropped component: its pixels at the level of the print
        # inside the box stay (red team 4's ct_vertical: the `ZHANG` of a vertical `ZHANG WEI` touched the edge of
        # a CT's field of view and was left legible beside a mask fitted to `WEI`).
        drawn = interior_level(crop, labels, interior)
        kept = ink & ~dropped[labels]
        return kept if drawn is None else kept | (ink & drawn & dropped[labels])
    # Tissue crossing the box from top to bottom (the picture's edge) keeps only its pixels at the print's level:
    # a word is at most the box's height less the scanner's margins, and antialiased print is textured too.
    # A glyph touching the picture's edge joins it into one component that lies mostly off the print's rows
    # and is dropped: its pixels at the print's level on those rows stay (GREYSCALE_IMAGE's "4.0cm": the "4"
    # touched the sector's lower edge and was left legible beside a mask fitted to ".0cm -").
    tissue = textured & (h >= TISSUE_SPAN * rows)
    glyph_rows = level & on_rows[:, None]
    return (ink & ~(tissue | dropped)[labels]) | (ink & level & ~dropped[labels]) | (ink & glyph_rows & dropped[labels])


#: The print's full colour, as this percentile of its pixels (per sample): the rest are its antialiased edges.
PRINT_PERCENTILE = 90
#: A structure whose pixels on the print's rows are at the print's colour for more than this share is at its level
#: (bright speckle under white print), and none of it is taken for the print going on.
COMMON_SHARE = 0.5
#: The print off the structure (its components inside the box) is a line going on when it is this many times as
#: long as it is tall (three glyphs or more; touching glyphs of antialiased print come as one component).
LINE_ASPECT = 3.0


def touching_border(stats: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Which components (cv2 stats rows) touch a border of a box of `shape` (rows, columns): the ink that enters
    the box (tissue, a neighbour, a structure) rather than lying inside it (`glyph_ink`, `without_texture`,
    `print_going_on`)."""
    import cv2

    x, y, w, h = (stats[:, i] for i in (cv2.CC_STAT_LEFT, cv2.CC_STAT_TOP, cv2.CC_STAT_WIDTH, cv2.CC_STAT_HEIGHT))
    return (x == 0) | (y == 0) | (x + w == shape[1]) | (y + h == shape[0])


def print_going_on(crop: np.ndarray, print_ink: np.ndarray, over: np.ndarray) -> np.ndarray:
    """The pixels of `over` (tissue or a structure the box's print runs onto) at the colour of the print found off it
    (the components of `print_ink` inside the box, a line: LINE_ASPECT; within WHITE_TOLERANCE of its contrast
    from the PRINT_PERCENTILE of their pixels, its full colour; antialiased 13 px print has no commonest value), on
    the rows of that print: the same line going on over it.
    Nothing where that colour is common there (over COMMON_SHARE of `over`'s pixels on those rows: the structure is
    at the print's level, and its pixels would be taken for print). Only the print's own rows: a band beside a line
    of print (a toolbar's edge, a header plate, a sector beside a label) lies off them.

    Why: a vertical ID half over an ultrasound's picture and half on the black below it (fitted lying down, as a
    line along the rows) kept its mask only on the black: `OYELARAN GRETA`, pale blue, lost `GRETA` over the tissue
    (bench/redteam/us_vertical.py, seed 101: the picture's edge crossed the turned box as a solid block, a wall)."""
    nothing = np.zeros(over.shape, bool)
    if not print_ink.any() or not over.any():
        return nothing
    count, labels, stats = components_of(print_ink)
    inside = ~touching_border(stats, print_ink.shape)
    inside[0] = False
    print_ink = inside[labels]
    rows_of, cols_of = np.flatnonzero(print_ink.any(axis=1)), np.flatnonzero(print_ink.any(axis=0))
    if not rows_of.size or cols_of[-1] - cols_of[0] + 1 < LINE_ASPECT * (rows_of[-1] - rows_of[0] + 1):
        return nothing  # no line of print off the structure: a speck, a glyph, a block
    level = np.percentile(crop[print_ink], PRINT_PERCENTILE, axis=0)
    contrast = float(np.abs(level - np.median(crop.reshape(-1, crop.shape[2]), axis=0)).max())
    on_rows = np.zeros((over.shape[0], 1), bool)
    on_rows[int(rows_of[0]) : int(rows_of[-1]) + 1] = True
    there = over & on_rows
    going_on = there & (np.abs(crop - level).max(axis=2) <= WHITE_TOLERANCE * contrast)
    return going_on if np.count_nonzero(going_on) <= COMMON_SHARE * np.count_nonzero(there) else nothing


#: Share of the print inside a box at its commonest value for `interior_level` to take that value as the print's.
INTERIOR_LEVEL_SHARE = 0.2


def interior_level(crop: np.ndarray, labels: np.ndarray, interior: np.ndarray) -> np.ndarray | None:
    """The pixels of the crop near the commonest value of the components lying wholly inside the box (the print
    the box was made for: within WHITE_TOLERANCE of its contrast to the box's median), when that value holds
    INTERIOR_LEVEL_SHARE of their pixels (print drawn at one level; 12 px antialiased print: 27 %); None
    otherwise. `crop` is rows x cols x samples, `labels` the components, `interior` a flag per label."""
    inside = interior[labels]
    if not inside.any():
        return None
    values = crop[inside]
    level, count = commonest_row(values)
    if count < INTERIOR_LEVEL_SHARE * values.shape[0]:
        return None
    distance = np.abs(crop - level).max(axis=2)
    contrast = float(np.abs(level - np.median(crop.reshape(-1, crop.shape[2]), axis=0)).max())
    return distance <= WHITE_TOLERANCE * contrast


def commonest_counts(owners: np.ndarray, values: np.ndarray, count: int) -> np.ndarray:
    """For each of `count` labels, how many of its pixels hold its commonest value; 0 for a label with no
    pixel. `owners` is each pixel's label, `values` its value (pixels,) or sample tuple (pixels x samples).

    One sort over the pixels given: a np.unique per component over the whole crop cost 0.6 s of CPU per
    3328x2560 mammogram (boxes on textured tissue have dozens of components entering them). Serves the fit's
    texture test and `ocr.layout.colour_text_marks` (one exact colour per glyph)."""
    best = np.zeros(count, np.int64)
    if owners.size == 0:
        return best
    values = values.reshape(owners.size, -1)
    order = np.lexsort(tuple(values[:, c] for c in range(values.shape[1] - 1, -1, -1)) + (owners,))
    owners, values = owners[order], values[order]
    starts = np.ones(owners.size, bool)
    starts[1:] = (owners[1:] != owners[:-1]) | (values[1:] != values[:-1]).any(axis=1)
    first = np.flatnonzero(starts)
    np.maximum.at(best, owners[first], np.diff(np.append(first, owners.size)))
    return best


def print_level_ink(crop: np.ndarray) -> np.ndarray | None:
    """On a textured (tissue) background: the pixels at the print's own level, or None when there is none.

    Burned-in print is drawn at one stored value, usually the extreme of the frame (white, or black):
    when the core of the box holds PRINT_LEVEL_SHARE of its pixels at exactly its highest (or lowest)
    value, those pixels are the glyphs. Texture seldom repeats one value that often; lossy print does
    not either, and then nothing is trimmed (None). `crop` is 2-D (gray, palette indices) or rows x cols
    x samples: colour print is looked for as white only (`crop.min(axis=2)`: every sample high), since
    coloured print can mix colours and black is the field: at the core's whitest value, else within
    WHITE_TOLERANCE of the contrast below it (print resampled or compressed has no single level).
    Ink found within the tolerance must reach both ends of the box's core (`spans_core`): print at two
    levels (a white word beside a coloured one) is not trimmed to one of them.
    Why: a 40 px name over MR tissue kept its whole detector margin (3.9 % of generated mr1024_sizes'
    text-free pixels changed); ultrasound's white "PWR" over the speckle beside a colour bar kept a
    box of speckle and bar four times the word (US1_UNCR, and the 320x240 examples_rgb_color, whose
    print was resampled: 215-234 where the word is white)."""
    levels = crop.min(axis=2) if crop.ndim == 3 else crop
    rows, cols = levels.shape
    edge = max(1, round(CORE_SHARE * min(rows, cols)))
    core = levels[edge : rows - edge, edge : cols - edge]
    if core.size == 0:
        return None
    if crop.ndim == 3:
        top = float(core.max())
        near_top = levels >= top - WHITE_TOLERANCE * (top - float(np.median(core)))
        inks = [(levels == top, False), (near_top, True)]
    else:
        # Exact levels first (print drawn as stored); then near them, guarded like colour print: print drawn
        # antialiased over tissue holds its extreme value only at a few stroke centres (generated mr_multiframe:
        # 35 of 2760 pixels at the top, the rest of each stroke 75-99 % of it; the box stayed whole).
        top, bottom, middle = float(core.max()), float(core.min()), float(np.median(core))
        inks = [(levels == top, False), (levels == bottom, False),
                (levels >= top - WHITE_TOLERANCE * (top - middle), True),
                (levels <= bottom + WHITE_TOLERANCE * (middle - bottom), True)]
    for number, (ink, guarded) in enumerate(inks):
        if number == 2 and crop.ndim == 2:
            # Print drawn at a level inside the tissue's range (a date 30 levels above an MR's tissue: neither
            # extreme), before the near-extreme levels, which would take the tissue's brightest grains for it.
            drawn = drawn_level_ink(levels, levels[rim_of(levels.shape)])
            if drawn is not None:
                return drawn
        if PRINT_LEVEL_SHARE <= ink[edge : rows - edge, edge : cols - edge].mean() <= FIELD_LEVEL_SHARE:
            return None if guarded and not spans_core(ink, edge) else ink
    return None


#: Share of a box's core at one level from which that level, when it is not the rim's field, is print drawn over
#: the field (`drawn_level_ink`); at most DRAWN_LEVEL_MAX_SHARE (bold print fills half its core).
DRAWN_LEVEL_MAX_SHARE = 0.9
#: Share of such a level's pixels that may survive an erosion a quarter of the box's height wide (stroke junctions).
STROKE_SOLID_SHARE = 0.05


def drawn_level_ink(levels: np.ndarray, rim: np.ndarray) -> np.ndarray | None:
    """The pixels at the box core's commonest value when that value fills more of the core than of the box's `rim`
    (the values of its rim pixels: print lies inside its box, the field around it) and under FIELD_RIM_SHARE of the
    rim (else it is the field: the black around a line of print), covers PRINT_LEVEL_SHARE to
    DRAWN_LEVEL_MAX_SHARE of the core and spans it (`spans_core`): print drawn at one level inside the field's own
    range. None otherwise.

    Why: a date drawn 30 HU above a CT's liver is fainter than the liver's own structures (the rim's noise tolerance
    was 66 levels), so ink measured against the rim is the tissue's edges, not the print, and the fit cut the
    masked date down to them (its first two digits left legible)."""
    rows, cols = levels.shape
    edge = max(1, round(CORE_SHARE * min(rows, cols)))
    core = levels[edge : rows - edge, edge : cols - edge]
    if core.size == 0 or rim.size == 0:
        return None
    level, count = commonest_row(core.reshape(-1, 1))
    on_rim = float((rim == level[0]).mean())
    if on_rim >= FIELD_RIM_SHARE:
        # The core's commonest value is the field itself (a flat plate the print fills less of than the field): the
        # print's level is the commonest of the rest. 693_UNCI: a date 20 levels above its flat plate, crossing the
        # plate's edge, was cut at the edge (its first two digits left), the edge being a wall to the other rules.
        rest = core[core != level[0]]
        if rest.size == 0:
            return None
        level, count = commonest_row(rest.reshape(-1, 1))
        on_rim = float((rim == level[0]).mean())
    share = count / core.size
    if not PRINT_LEVEL_SHARE <= share <= DRAWN_LEVEL_MAX_SHARE or share <= on_rim or on_rim >= FIELD_RIM_SHARE:
        return None
    ink = levels == level[0]
    ink &= ~structures(ink)  # a band or plate at that level crossing the box is the field beside the print
    if not ink.any() or not spans_core(ink, edge):
        return None
    # Strokes, not a field: print's strokes are under a quarter of its line's height thick, so an erosion that wide
    # leaves (almost) nothing of them; the black beyond a CT's field of view under a name survives it (the fit
    # kept a corner box of it whole).
    import cv2

    size = max(3, min(rows, cols) // 4) | 1
    solid = cv2.erode(ink.astype(np.uint8), np.ones((size, size), np.uint8))
    return ink if solid.sum() <= STROKE_SOLID_SHARE * ink.sum() else None


def on_rim(ink: np.ndarray, edge: int) -> bool:
    """Whether `ink` holds as large a share of the box's RIM as of its core: the level may be the field's texture
    (dark gaps of tissue around the box), not the print, which the scanner's margin keeps off the rim; `fit_to_ink`
    then prefers a faint level off the rim (`faint_print_ink`) when there is one.

    Why: red team 4's mr_multiframe_last: a thin white italic name on MR tissue, in a box 3x its height; the
    dark gaps of the tissue (9 % of the core, 14 % of the rim) were taken for dark print and the fitted mask
    kept the whole box, 3.6 % of the frame's text-free pixels blacked out."""
    return bool(ink[rim_of(ink.shape)].mean() >= ink[edge:-edge, edge:-edge].mean())


#: Least share of a box's core that print found by `faint_print_ink` fills: a thin line of print in a box
#: padded to three times its height fills 2-5 % of the core (less at the band near its extreme value).
FAINT_PRINT_SHARE = 0.01


def faint_print_ink(crop: np.ndarray, edge: int) -> np.ndarray | None:
    """The print over tissue where `print_level_ink` found no level: the pixels near the core's value farthest
    from its median (bright or dark print; colour print over a grey or colour-flow picture), when they fill FAINT_PRINT_SHARE to FIELD_LEVEL_SHARE of the core, touch none of the rim and reach
    both ends of the core (`spans_core`); returned with the whole core (the detector's box): a level seen at
    the centres of strokes does not say where antialiased glyphs end (mr_multiframe_last's last "E" has a
    column at 212 of 487 beyond them), so only the scanner's margin around the detector's box is trimmed, and
    only where no pixel of the print's level lies. None when there is no such level: the box stays whole.

    Why: thin or small print over tissue fills under PRINT_LEVEL_SHARE of a box padded around it (red team 4's
    mr_multiframe_last, ct128_digits: 3-5 %), and a yellow name over speckle is not white (us_colour_text): the
    boxes stayed whole, three times the words' height of anatomy blacked out."""
    rows, cols = crop.shape[:2]
    core = crop[edge : rows - edge, edge : cols - edge].reshape(-1, crop.shape[2])
    if core.size == 0:
        return None
    levels = np.abs(crop - np.median(core, axis=0)).max(axis=2)  # bright or dark, white or coloured
    inner = levels[edge : rows - edge, edge : cols - edge]
    top, middle = float(inner.max()), float(np.median(inner))
    ink = levels >= top - WHITE_TOLERANCE * (top - middle)
    share = float(ink[edge : rows - edge, edge : cols - edge].mean())
    rim = rim_of(ink.shape)
    if not FAINT_PRINT_SHARE <= share <= FIELD_LEVEL_SHARE or ink[rim].any() or not spans_core(ink, edge):
        return None
    ink[edge : rows - edge, edge : cols - edge] = True
    return ink


def spans_core(ink: np.ndarray, edge: int) -> bool:
    """Whether the ink reaches within one line height of both ends of the box's core along its long side
    (the detector's box: a line of print runs its length)."""
    along = ink.any(axis=0) if ink.shape[1] >= ink.shape[0] else ink.any(axis=1)
    where = np.flatnonzero(along)
    if where.size == 0:
        return False
    reach = max(2, min(ink.shape) - 2 * edge)
    return bool(where[0] <= edge + reach and where[-1] >= along.size - 1 - edge - reach)


def value_span(frame: np.ndarray) -> float:
    """The frame's range of stored values (what FLAT_SHARE_OF_RANGE is a share of)."""
    return float(frame.max()) - float(frame.min()) if frame.size else 0.0  # np.ptp wraps around in int16


#: A rectangle at least this many times taller than wide holds a standing line of print (turned 90 degrees).
#: Fitted upright, the rules that follow a line along its rows took the glyphs of a vertical name joined to the
#: tissue beside them for tissue "off the print's rows" (red team 4 ct_vertical: "ZHANG" left legible, only
#: "WEI" masked).
VERTICAL_ASPECT = 2.0


def fit_to_ink(frame: np.ndarray, rect: Rect, span: float | None = None) -> Rect:
    """`rect` shrunk to the bounding box of the ink inside it plus a margin (never grown).

    `frame` holds stored values (2-D gray or palette indices, or rows x cols x samples). The field is
    the commonest value of the rectangle's rim (a rim half on tissue still has the field as its mode);
    the noise is a low percentile of the rim's deviations from it (at least one level for integers). A side of the rim may cross tissue or more print: those pixels count as ink,
    so that side is not shrunk. The rectangle is returned whole when less than FIELD_RIM_SHARE of the
    rim sits on one field (no field to measure against), when the field is textured (its noise tolerance
    over FLAT_SHARE_OF_RANGE of `span`, the frame's value range) or when nothing inside differs from it.
    """
    rows, cols = frame.shape[:2]
    span = value_span(frame) if span is None else span
    rect = rect.clip(cols, rows)
    if rect.width <= 2 * RIM + 2 or rect.height <= 2 * RIM + 2:
        return rect
    if rect.height >= VERTICAL_ASPECT * rect.width:
        # A standing line (print turned 90 degrees): fitted lying down, since the rules below follow a line
        # along the rows (`glyph_ink`'s and `without_texture`'s print rows).
        fitted = fit_to_ink(frame.swapaxes(0, 1), Rect(rect.y0, rect.x0, rect.y1, rect.x1), span)
        return Rect(fitted.y0, fitted.x0, fitted.y1, fitted.x1)
    crop = frame[rect.y0 : rect.y1, rect.x0 : rect.x1].astype(np.float64)
    if crop.ndim == 2:
        crop = crop[..., None]
    rim = rim_of(crop.shape[:2])
    floor = 1.0 if frame.dtype.kind in "ui" else 1e-6
    field, deviation, tolerance = field_of(crop[rim], floor)
    distance = _distance(crop, field)
    differs = distance > tolerance
    differing = components_of(differs)
    walls = structures(differs, differing)  # bands and plates the box lies across: the margin stops at them
    edge = max(1, round(CORE_SHARE * min(crop.shape[:2])))
    # The detector's box lies on a plate or band that crosses the rectangle: the plate is the print's field
    # (color3d_jpeg_baseline's toolbar labels: against the black around the toolbar, the labels were part
    # of the band and the mask shrank onto the band's top edge, leaving "Sector" and "MB Off" legible).
    under_core = walls[edge:-edge, edge:-edge].mean() >= PLATE_SHARE
    if not under_core:  # a label plate entering from one side only, the print on it
        plate = solid_plate(differs, edge)
        if plate is not None:
            walls, under_core = plate, True
    textured = tolerance > FLAT_SHARE_OF_RANGE * span or (deviation <= tolerance).mean() < FIELD_RIM_SHARE
    if under_core or textured:
        ink = print_level_ink(crop[..., 0] if crop.shape[2] == 1 else crop)
        if not under_core and (ink is None or on_rim(ink, edge)):
            # The print over tissue at a level that fills little of a wide box; else the level found, if any (a
            # line of print below, cut by the rim, holds the rim too: mg_monochrome1's name over its ID).
            faint = faint_print_ink(crop, edge)
            ink = ink if faint is None else faint
        if under_core:
            plate, walls = walls, np.zeros_like(walls)  # the plate under the print stops no margin
            if ink is None:
                found = on_plate(crop, plate, floor, span)
                if found is None:
                    return rect
                ink, distance = found
                walls = structures(ink)  # separators and edges crossing the plate
                ink = without_specks(without_texture(ink & ~walls, crop), distance)
            ink = ink | beside_plate(crop, plate, rim, floor, span)
        elif ink is None:
            return rect  # a textured field (tissue, speckle) and no print level: nothing is trimmed
    else:
        lines = rule_lines(differs)  # rule lines judged before the walls cut them where they cross each other
        if walls.any() or lines.any():
            ink = without_specks(without_texture(differs & ~walls & ~lines, crop), distance)
            if walls.any():
                ink = ink | print_going_on(crop, ink, walls)
        else:  # no wall, no rule: the components of `differs` serve the texture and speck tests as they are
            kept = without_texture(differs, crop, differing)
            ink = without_specks(kept, distance, differing if kept is differs else None)
        drawn = drawn_level_ink(crop[..., 0], crop[..., 0][rim]) if crop.shape[2] == 1 else None
        if drawn is not None:
            ink = ink | drawn
    ink = without_end_graphics(glyph_ink(ink & ~rule_lines(ink)), crop)
    ys = np.flatnonzero(ink.any(axis=1))
    if ys.size == 0:
        return rect
    xs = np.flatnonzero(ink.any(axis=0))
    height = int(ys[-1] - ys[0] + 1)
    margin = max(MIN_MARGIN, int(np.ceil(INK_MARGIN * height)))
    y0, y1 = _margin(walls[:, xs[0] : xs[-1] + 1], int(ys[0]), int(ys[-1]) + 1, margin)
    x0, x1 = _margin(walls[ys[0] : ys[-1] + 1].T, int(xs[0]), int(xs[-1]) + 1, margin)
    return Rect(rect.x0 + x0, rect.y0 + y0, rect.x0 + x1, rect.y0 + y1)


#: A line's marks are grouped into clusters of columns apart by at least this share of the marks' median height
#: (letters of a word, and often words of a line, are closer: one cluster).
CLUSTER_GAP_SHARE = 0.5
#: An end cluster is a graphic (an icon beside a toolbar word), not print, when it is this many times as tall as
#: the rest of the line: a word with capitals and descenders is ~1.35 times a word of digits ("Page" beside "1/3").
GRAPHIC_HEIGHT_RATIO = 1.6
#: ... or this many times as tall as the line's rows (`_line_rows`) and more coloured than the rest (its mean
#: colour's spread over the samples TINT_LEVELS above theirs: neutral print is never dropped this way): color3d_jpeg_baseline's toolbar icons are blue (89, 110, 148) and 15-17 px beside grey
#: print (113, 117, 123) 8-11 px tall.
TINTED_HEIGHT_RATIO = 1.15
TINT_LEVELS = 20
#: A mark lies off the line when under this share of its height is on the line's rows (a separator's stub above
#: a toolbar word; a word with ascenders and descenders has about half its height on the rows of its x-height).
OFF_LINE_SHARE = 0.25
#: A graphic is at most this many times as wide as it is tall (an icon; a word in a larger font is wider).
GRAPHIC_MAX_ASPECT = 1.2
#: An end cluster of at most this many pixels is a speck (lossy ringing), not print.
SPECK_PIXELS = 2


def without_end_graphics(ink: np.ndarray, crop: np.ndarray) -> np.ndarray:
    """`ink` less what stands apart at either end of its line of print and is not print: a cluster of columns
    (see CLUSTER_GAP_SHARE) that lies mostly off the rows of the rest of the line (a separator's stub above a
    toolbar word), is much taller than the rest (GRAPHIC_HEIGHT_RATIO), taller and tinted apart (TINTED_HEIGHT_RATIO,
    TINT_LEVELS, more coloured than the print), or a speck; never a cluster holding more ink than the rest of
    the line, nor one wider than GRAPHIC_MAX_ASPECT times its height (a word) for the height tests. At most two
    clusters per end, and never the last one.

    Why: a detector's box takes the icon drawn beside a toolbar word with the word (color3d_jpeg_baseline's cone
    and pyramid before "Sector" and "MB Off"), and the mask took the icon. A mark touching a glyph is one cluster
    with it (a name glued to an icon is masked whole); what could hide as an end graphic is a short, separate,
    oversized or off-line mark, never a word of the line's own print."""
    cols = np.flatnonzero(ink.any(axis=0))
    if cols.size == 0:
        return ink
    row_counts = np.count_nonzero(ink, axis=1)
    top, bottom = _line_rows(row_counts)
    gap = max(2, int(np.ceil(CLUSTER_GAP_SHARE * (bottom - top))))
    breaks = np.flatnonzero(np.diff(cols) > gap)
    spans = [(int(a), int(b) + 1) for a, b in zip(np.r_[cols[0], cols[breaks + 1]], np.r_[cols[breaks], cols[-1]],
                                                  strict=True)]
    if len(spans) < 2:
        return ink
    out = ink.copy()
    colour = crop.reshape(crop.shape[0], crop.shape[1], -1)
    for _ in range(2):
        for end in (0, -1):
            if len(spans) < 2:
                return out
            x0, x1 = spans[end]
            # The rest of the line is judged by its ink per row (the line's counts less the cluster's): no copy of
            # the box per test; the rest's pixels are gathered only for the tint test.
            cluster = out[:, x0:x1]
            rest_counts = row_counts - np.count_nonzero(cluster, axis=1)
            if _end_graphic(cluster, rest_counts, lambda x0=x0, x1=x1: _without_columns(out, x0, x1),
                            colour[:, x0:x1], colour):
                out[:, x0:x1] = False
                row_counts = rest_counts
                spans.pop(end)
    return out


def _without_columns(ink: np.ndarray, x0: int, x1: int) -> np.ndarray:
    """A copy of `ink` without its columns [x0, x1)."""
    rest = ink.copy()
    rest[:, x0:x1] = False
    return rest


#: The rows of a line of print: those holding at least this share of the inkiest row's pixels (a stub of a
#: separator or a dot above the line holds one or two a row; glyphs, several).
LINE_ROW_SHARE = 0.25


def _line_rows(counts: np.ndarray) -> tuple[int, int]:
    """[top, bottom) of the rows of the line of print whose ink holds `counts` pixels per row (see LINE_ROW_SHARE)."""
    rows = np.flatnonzero(counts >= LINE_ROW_SHARE * counts.max())
    return int(rows[0]), int(rows[-1]) + 1


def _end_graphic(cluster: np.ndarray, rest_counts: np.ndarray, rest_of: Callable[[], np.ndarray],
                 colour: np.ndarray, whole: np.ndarray) -> bool:
    """Whether an end cluster of ink (its columns) is no print of the rest of the line (see `without_end_graphics`):
    the rest given by its ink per row (`rest_counts`), and `rest_of()` making its mask when the tint test needs it."""
    own_rows = np.flatnonzero(cluster.any(axis=1))
    if own_rows.size == 0 or not rest_counts.any():
        return False
    pixels = int(np.count_nonzero(cluster))
    if pixels <= SPECK_PIXELS:
        return True
    if pixels > int(rest_counts.sum()):  # the line keeps the most of its ink: a graphic is the lesser part
        return False
    rest_rows = np.flatnonzero(rest_counts)  # the whole extent: ascenders and descenders are print
    top, bottom = int(rest_rows[0]), int(rest_rows[-1]) + 1
    height, rest_height = own_rows[-1] - own_rows[0] + 1, bottom - top
    line_top, line_bottom = _line_rows(rest_counts)  # the rows most of the print is on (a stub holds a pixel a row)
    if min(own_rows[-1] + 1, line_bottom) - max(own_rows[0], line_top) < OFF_LINE_SHARE * height:
        return True
    own_cols = np.flatnonzero(cluster.any(axis=0))
    if own_cols[-1] - own_cols[0] + 1 > GRAPHIC_MAX_ASPECT * height:  # wider than an icon: a word, print
        return False
    if height >= GRAPHIC_HEIGHT_RATIO * rest_height:
        return True
    if height < TINTED_HEIGHT_RATIO * (line_bottom - line_top) or colour.shape[2] < 3:
        return False
    own, other = colour[cluster].mean(axis=0), whole[rest_of()].mean(axis=0)
    return float(np.ptp(own)) - float(np.ptp(other)) >= TINT_LEVELS  # the graphic is the coloured one


def solid_plate(ink: np.ndarray, edge: int) -> np.ndarray | None:
    """The solid block (8-connected ink filling SOLID_SHARE of its bounding box) that covers PLATE_SHARE of the
    box's core, entering from its border but not crossing it: a label plate the print stands on, which the box
    reaches past on the other sides (`structures` finds only plates crossing the box); None when there is none.
    A line of print never fills nine tenths of its bounding box: with its plate, it does.

    Why: red team 4's us_label_boxes: a name on a blue plate on the black chrome; the box held black on three
    sides and the plate on the fourth, no field held the rim, and the whole box (plate and black) was filled
    black: the plate lost its left part and the black around it changed (0.8 % of the frame)."""
    import cv2

    # The plate's pixels in the core are ink (the opening only takes pixels away): with under PLATE_SHARE of the
    # core inked there is none, and the opening and labelling are skipped (a line of print: most boxes).
    if np.count_nonzero(ink[edge:-edge, edge:-edge]) < PLATE_SHARE * ink[edge:-edge, edge:-edge].size:
        return None
    # Opened first: a field's noise one level off (the tolerance of a near-black chrome) joins specks to the plate.
    opened = cv2.morphologyEx(ink.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    count, labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
    if count <= 1:
        return None
    core = labels[edge:-edge, edge:-edge]
    if core.size == 0:
        return None
    covered = np.bincount(core.ravel(), minlength=count)
    covered[0] = 0
    best = int(np.argmax(covered))
    x, y, w, h, area = (int(v) for v in stats[best, :5])
    if covered[best] < PLATE_SHARE * core.size or area < SOLID_SHARE * w * h:
        return None
    return labels == best


def on_plate(crop: np.ndarray, plate: np.ndarray, floor: float, span: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The pixels of `plate` (a mask of the crop) that differ from its commonest value beyond its noise (the
    tolerance of `fit_to_ink`, measured on the plate), and every pixel's distance from that value; None when
    the plate is textured (nothing to measure print against)."""
    field, _, tolerance = field_of(crop[plate], floor)
    if tolerance > FLAT_SHARE_OF_RANGE * span:
        return None
    distance = _distance(crop, field)
    return plate & (distance > tolerance), distance


#: Share of a box's strongest difference from the field beside its plate that print there must reach: JPEG
#: ringing a few levels above the black around a toolbar (color3d_jpeg_baseline) is not print.
BESIDE_CONTRAST = 0.5


def beside_plate(crop: np.ndarray, plate: np.ndarray, rim: np.ndarray, floor: float, span: float) -> np.ndarray:
    """The print off the plate: pixels beside it that differ from the field of the rim's pixels off it (a flat
    one), less the structures crossing the box (the plate's own edge). Empty when the rim has no flat field off
    the plate (tissue beside it: nothing to measure print against there, and the plate's print decides).
    Beside, not inside: what the plate encloses (an icon on a toolbar, the print on it) is the plate's.

    Why: a line of print that crosses from one field onto another (a CT's black padding onto the grey disc of
    its field of view) lies on the plate only in part; fitted to the ink on the plate, the mask dropped the
    words on the padding (red team 4's planted ct_letterspaced: `C I A R A N` left legible beside a mask over
    the surname)."""
    import cv2

    off = rim & ~plate
    if not off.any():
        return np.zeros(plate.shape, bool)
    field, deviation, tolerance = field_of(crop[off], floor)
    if tolerance > FLAT_SHARE_OF_RANGE * span or (deviation <= tolerance).mean() < FIELD_RIM_SHARE:
        return np.zeros(plate.shape, bool)
    _, labels = cv2.connectedComponents((~plate).astype(np.uint8), connectivity=4)
    outside = np.isin(labels, np.unique(labels[off]))  # off the plate and reaching the box's rim: not enclosed
    distance = np.abs(crop - field).max(axis=2)
    strong = max(tolerance, BESIDE_CONTRAST * float(distance.max()))  # print, not a lossy field's ringing
    ink = outside & (distance > strong)
    return ink & ~structures(ink)


def field_of(values: np.ndarray, floor: float) -> tuple[np.ndarray, np.ndarray, float]:
    """(the commonest sample tuple of `values` (pixels x samples), each pixel's largest sample distance from
    it, the noise tolerance: NOISE_LEVELS times the NOISE_PERCENTILE of those distances, at least `floor`):
    a field measured on a box's rim (`fit_to_ink`) or on the plate under its print (`on_plate`)."""
    field, _ = commonest_row(values)
    deviation = _distance(values, field)
    return field, deviation, max(NOISE_LEVELS * float(np.percentile(deviation, NOISE_PERCENTILE)), floor)


def commonest_row(values: np.ndarray) -> tuple[np.ndarray, int]:
    """The commonest row of `values` (pixels x samples; the lowest of those tied) and how many pixels hold it,
    as `np.unique(values, axis=0, return_counts=True)` and the first largest count give them (no row: ValueError).
    One place for the mode of a field's pixels: a box's rim (`field_of`), the print inside a box
    (`interior_level`, `drawn_level_ink`), a mask's border (`deidcli.pixels.mask.field_fill`) and a line's drawn
    level (`deidcli.ocr.scan.level_extent`).

    Why not that: np.unique along an axis sorts rows as structured records, 60x slower than a plain sort
    (4.7 ms for the 6800-pixel rim of a mammogram's 1500x190 box, called twice per box). One sample is
    sorted as a flat array; several are ordered by `np.lexsort` (the same lexicographic order)."""
    if values.shape[1] == 1:
        found, counts = np.unique(values[:, 0], return_counts=True)
        best = int(np.argmax(counts))
        return found[best : best + 1], int(counts[best])
    order = np.lexsort(values.T[::-1])
    ordered = values[order]
    starts = np.ones(len(ordered), bool)
    starts[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    first = np.flatnonzero(starts)
    runs = np.diff(np.append(first, len(ordered)))
    best = int(np.argmax(runs))
    return ordered[first[best]], int(runs[best])


def _distance(values: np.ndarray, field: np.ndarray) -> np.ndarray:
    """Each pixel's largest sample distance from `field` (`values`: ... x samples): one sample needs no
    reduction over a last axis of length 1 (numpy's slow path)."""
    if values.shape[-1] == 1:
        return np.abs(values[..., 0] - field[0])
    # Sample planes reduced pairwise, not a reduction over a last axis of 3 (8x slower on an ultrasound box);
    # the same maximum, NaN included.
    distance = np.abs(values[..., 0] - field[0])
    for sample in range(1, values.shape[-1]):
        np.maximum(distance, np.abs(values[..., sample] - field[sample]), out=distance)
    return distance


def _margin(walls: np.ndarray, start: int, stop: int, margin: int) -> tuple[int, int]:
    """The ink's extent [start, stop) along the first axis of `walls` grown by `margin` each way, within the
    rectangle and short of any wall line (a row of `walls` over half the ink's width): the margin is for
    antialiasing and ringing, not for the band or plate edge the print stands next to (ALOKA's header
    print ends one field row above the black under its band: 4 rows of black were filled grey)."""
    across = walls.sum(axis=1) * 2 > walls.shape[1]
    low = max(0, start - margin)
    blocked = np.flatnonzero(across[low:start])
    low = low + int(blocked[-1]) + 1 if blocked.size else low
    high = min(walls.shape[0], stop + margin)
    blocked = np.flatnonzero(across[stop:high])
    high = stop + int(blocked[0]) if blocked.size else high
    return low, high
