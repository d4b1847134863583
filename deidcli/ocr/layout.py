"""Where text can be, before deciding what is text: anatomy vs background, and text-like marks.

Burned-in annotations live on the background (air around a CT, the dark field beside a breast,
the device chrome around an ultrasound sector); anatomy almost never carries text, and text
detectors fire on anatomy (a DB detector outlines a whole abdomen or Doppler box as one "text"
region). So the scanner first splits each frame:

- `anatomy_mask`: threshold + connected components + hole filling on the 8-bit view. The
  object(s) larger than `MIN_ANATOMY_SHARE` of the frame, holes filled (text drawn over tissue
  stays "anatomy": it is only masked when it reads as text). For ultrasound the data regions
  of SequenceOfUltrasoundRegions are intersected with it: outside them is device chrome.
- `text_marks`: text-like connected components on the background (top-hat strokes grouped into
  lines), masked even when the detector saw nothing. This catches text too small for the
  detector at scan resolution (17 px glyphs on a 4096-row mammogram are ~4 px at 1024) and
  device chrome the detector merges or skips.
- `local_contrast`: a view where strokes stand out wherever they are (over tissue, above the
  VOI window, at low contrast inside it), used by the scanner's second, residual pass.

All functions are pure: 8-bit arrays in, masks or rectangles out, no DICOM.
"""

from __future__ import annotations

import cv2
import numpy as np

from deidcli.geometry import Rect
from deidcli.ocr import levels
from deidcli.ocr.views import brightest_channel
from deidcli.pixels.fit import commonest_counts

#: A component smaller than this share of the frame is not anatomy (text, markers, noise).
MIN_ANATOMY_SHARE = 0.01
#: Tallest text line (scan pixels) a mark may be; taller components are structures, not glyphs.
MAX_MARK_HEIGHT = 48
#: Smallest stroke extent (scan pixels) a mark may have: smaller is noise.
MIN_MARK_HEIGHT = 3
#: Top-hat response (8-bit levels) a stroke needs over its surroundings to count as a mark.
MARK_CONTRAST = 40
#: Standard deviation (8-bit levels) over FLAT_WINDOW pixels under which a background is flat.
FLAT_STD = 4.0
#: The local-contrast view maps this percentile of the stroke response to white: high enough that print
#: (often the brightest strokes in the frame) keeps its glyph shapes instead of saturating into blocks.
CONTRAST_PERCENTILE = 99.9
FLAT_WINDOW = 15
#: Strokes thinner than this (scan pixels) are removed before flatness is measured.
FLAT_STROKE = 5


def foreground_threshold(view8: np.ndarray) -> int:
    """Otsu's threshold, bounded to the lower part of the value range.

    Background is the darkest large population; Otsu on a photo or a frame that is all tissue would
    split the tissue itself, so the threshold never rises above an eighth of the occupied range (dim ultrasound speckle is tissue).
    """
    low, high = (levels.percentile(levels.histogram(view8), [1, 99.5]) if view8.dtype == np.uint8 and view8.ndim == 2
                 else np.percentile(view8, [1, 99.5]))
    otsu, _ = cv2.threshold(view8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    cap = low + 0.12 * (high - low)
    return int(max(low + 8, min(otsu, cap)))


def fill_holes(mask: np.ndarray) -> np.ndarray:
    """Mask with every enclosed hole filled (flood from the border of a padded copy)."""
    padded = np.pad(mask.astype(np.uint8), 1)
    flood = padded.copy()
    cv2.floodFill(flood, None, (0, 0), 1)
    holes = flood == 0
    return (padded.astype(bool) | holes)[1:-1, 1:-1]


def anatomy_mask(view8: np.ndarray, data_regions: list[Rect] | None = None) -> np.ndarray:
    """Boolean mask of the frame's anatomy (True) vs background (False), at the view's resolution.

    `view8` is an 8-bit gray picture oriented for display (bright = dense). A frame that is all one
    value has no anatomy. The opening removes strokes up to MAX_MARK_HEIGHT // 2 thick before the
    components are measured, so text glued to the edge of tissue is not absorbed into it.
    """
    rows, cols = view8.shape[:2]
    gray = brightest_channel(view8)
    if int(gray.max()) == int(gray.min()):
        return np.zeros((rows, cols), bool)
    blurred = cv2.GaussianBlur(gray, (0, 0), 4.0)  # speckle and noise average out; tissue stays
    binary = (blurred > foreground_threshold(blurred)).astype(np.uint8)
    size = max(3, min(15, min(rows, cols) // 40) | 1)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (size, size))
    opened = cv2.morphologyEx(binary, cv2.MORPH_OPEN, kernel)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
    keep = np.zeros(count, bool)
    # Thicker than a line of print too: a long name line in large type, blurred, passes the area test
    # (measured: 440x31 px at scan resolution, 1.5 % of a mammogram), and as "anatomy" it was read and
    # kept unless it read as text, instead of being masked unread like the lines below it.
    thick = np.minimum(stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT]) > min(MAX_MARK_HEIGHT, min(rows, cols) // 4)
    keep[1:] = (stats[1:, cv2.CC_STAT_AREA] >= MIN_ANATOMY_SHARE * rows * cols) & thick
    kept = np.flatnonzero(keep)
    # One body (the common case) is one comparison, not a gather through a table (3 ms at 1024x788).
    anatomy = fill_holes(labels == kept[0] if kept.size == 1 else keep[labels])
    if data_regions is not None:
        inside = np.zeros((rows, cols), bool)
        for region in data_regions:
            r = region.clip(cols, rows)
            inside[r.y0 : r.y1, r.x0 : r.x1] = True
        anatomy &= inside
    return anatomy


def stroke_response(view8: np.ndarray, size: int = 15) -> np.ndarray:
    """Bright-on-dark and dark-on-bright strokes narrower than `size` (white and black top-hat)."""
    gray = brightest_channel(view8)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
    white = cv2.morphologyEx(gray, cv2.MORPH_TOPHAT, kernel)
    black = cv2.morphologyEx(gray, cv2.MORPH_BLACKHAT, kernel)
    return np.maximum(white, black)


def local_contrast(gray: np.ndarray, size: int = 15) -> np.ndarray:
    """An 8-bit view of print wherever it is: mid-gray field, bright strokes brighter, dark ones darker.

    `gray` may be any numeric dtype (stored values at scan resolution): white minus black top-hat
    of the values themselves, so text 300 levels above tissue in a 12-bit image shows as clearly as
    text on air, whatever the VOI window says. Signed, not max(white, black): the black top-hat of
    bright letters lights the gaps between them, and the maximum fills a word into a solid bar.
    The CONTRAST_PERCENTILE of the response maps to full swing.
    """
    return stretch_strokes(stroke_values(gray, size))


def stroke_values(gray: np.ndarray, size: int = 15) -> np.ndarray:
    """White minus black top-hat of the values themselves (float32, in stored units): `local_contrast`
    before its stretch, which the scanner also thresholds to find where print can be."""
    values = brightest_channel(gray).astype(np.float32)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
    return cv2.morphologyEx(values, cv2.MORPH_TOPHAT, kernel) - cv2.morphologyEx(values, cv2.MORPH_BLACKHAT, kernel)


def stretch_strokes(strokes: np.ndarray) -> np.ndarray:
    """`stroke_values` as the 8-bit local-contrast view: the CONTRAST_PERCENTILE of |strokes| to full swing."""
    top = float(np.percentile(np.abs(strokes), CONTRAST_PERCENTILE))
    if top <= 0:
        return np.full(strokes.shape, 128, np.uint8)
    return np.clip(128.0 + strokes * (127.0 / top), 0, 255).astype(np.uint8)


def flat_background(view8: np.ndarray, stroke: int = FLAT_STROKE) -> np.ndarray:
    """Where the picture, strokes removed (thinner than `stroke` pixels), is nearly uniform (a label field,
    air, a header band).

    Speckle, parenchyma and noise stay textured after the strokes are removed, so marks found
    there are structure, not print: measured on gdcm-US-ALOKA-16 (a dark bladder read as
    "background" by the threshold gave 271 marks before this test, 0 after).
    """
    gray = brightest_channel(view8)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (stroke, stroke))
    base = cv2.morphologyEx(cv2.morphologyEx(gray, cv2.MORPH_OPEN, kernel), cv2.MORPH_CLOSE, kernel)
    values = base.astype(np.float32)
    window = (FLAT_WINDOW, FLAT_WINDOW)
    mean = cv2.boxFilter(values, -1, window)
    square = cv2.boxFilter(np.multiply(values, values, out=values), -1, window)
    # sqrt(max(square - mean², 0)) in place: the same float32 operations, no new 1024x788 picture for each.
    np.multiply(mean, mean, out=mean)
    np.subtract(square, mean, out=square)
    np.maximum(square, 0, out=square)
    return np.sqrt(square, out=square) <= FLAT_STD


def noise_floor(strokes: np.ndarray, allowed: np.ndarray) -> float:
    """The stroke response a mark needs: MARK_CONTRAST, or three times the 90th percentile of the
    background's response when the background is noisy (a log view lifts the quantum noise of air
    in a mammogram into strokes: 977 "marks" on one generated mammogram before this floor)."""
    if strokes.dtype == np.uint8 and strokes.ndim == 2:  # the same percentile from a histogram (ocr.levels)
        counts = levels.histogram(strokes, allowed)
        return max(float(MARK_CONTRAST), 3.0 * float(levels.percentile(counts, 90))) if counts.any() else float(
            MARK_CONTRAST)
    values = strokes[allowed]
    if values.size == 0:
        return float(MARK_CONTRAST)
    return max(float(MARK_CONTRAST), 3.0 * float(np.percentile(values, 90)))


def text_marks(view8: np.ndarray, anatomy: np.ndarray, max_height: int = MAX_MARK_HEIGHT,
               bright_only: bool = False, drawn_only: bool = False, flat_stroke: int = FLAT_STROKE) -> list[Rect]:
    """Lines of text-like marks on the background, as rectangles in view pixels.

    A mark is a stroke component (top-hat >= MARK_CONTRAST) lying mostly outside the anatomy, at
    most `max_height` tall and not a long thin line (a ruler or table edge). Marks are grouped into
    lines by closing horizontally over about one glyph height; a line of at least two marks, or
    one mark shaped like a glyph, is returned, if its ink stands out from its own box (`stands_out`) or it is
    the field beside print of the other polarity (`beside_print`), and it is not a lone straight stroke
    (`straight_stroke`); its rows reach the whole glyphs (`whole_glyphs`). Nothing here reads text: on the background every
    mark is masked unless the scanner spares it as an authorised word. `drawn_only` keeps only lines
    whose ink is one level (see `drawn_ink`): for pictures shown as stored, not resampled down.
    `flat_stroke`: strokes up to this thick are taken out before the flatness test (`flat_background`); a
    caller that knows the print's height passes more for bold print (deidcli.ocr.fine_print).
    """
    size = min(31, max(9, 2 * (max_height // 3) + 1))
    gray = brightest_channel(view8)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
    free = ~cv2.dilate(anatomy.astype(np.uint8), np.ones((7, 7), np.uint8)).astype(bool)
    allowed = flat_background(gray, flat_stroke) & free
    layers: list[_Layer] = []
    heights_seen: list[np.ndarray] = []
    # Bright print (white top-hat) and dark print (black top-hat) are measured and grouped apart: on a dark
    # field the black top-hat lights the gaps between bright letters, and joined they make one block taller
    # than a line (deid-data's ultrasound-multiframe: "x2" beside a sector edge was lost that way).
    for operation in (cv2.MORPH_TOPHAT,) if bright_only else (cv2.MORPH_TOPHAT, cv2.MORPH_BLACKHAT):
        strokes = cv2.morphologyEx(gray, operation, kernel)
        floor = noise_floor(strokes, allowed)
        stroked = strokes >= floor
        glyph, labels, stats = _glyph_components((stroked & allowed).astype(np.uint8), max_height)
        if glyph is not None:
            strong = (strokes >= STRONG_STROKE * floor) & free
            layers.append(_Layer(glyph[labels].astype(np.uint8), operation == cv2.MORPH_TOPHAT, stroked, strong,
                                 max_height))
            heights_seen.append(stats[1:, cv2.CC_STAT_HEIGHT][glyph[1:]])
    if not heights_seen:
        return []
    typical = int(np.median(np.concatenate(heights_seen)))
    gap = max(3, typical)
    lines: list[Rect] = []
    for layer in layers:
        marks, bright = layer.marks, layer.bright
        joined = cv2.morphologyEx(marks, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (gap, 1)))
        count, labels, stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
        for x, y, w, h, _area in stats[1:]:
            if h > max_height or min(w, h) <= MIN_MARK_HEIGHT:  # ticks, dashes, rulers: not a line of print
                continue
            box = Rect(int(x), int(y), int(x + w), int(y + h))
            if border_sliver(marks[y : y + h, x : x + w], box, gray.shape):
                continue
            if not (stands_out(gray, marks, box, bright) or beside_print(layers, layer, box)):
                continue
            if straight_stroke(marks, box) or trace(marks[y : y + h, x : x + w]):
                continue
            # Half a line height (at most one typical glyph) more at each end: a glyph glued to a graphic
            # (deid-data GREYSCALE_IMAGE's "X3" touching the depth marker's triangle) fails the glyph test and
            # would be cut off the line; a tall "line" is often a graphic itself (ALOKA's "L0" and arrow).
            # The masks are fitted to the ink afterwards (deidcli.pixels.fit), so a flat field costs nothing.
            reach = min(int(h) // 2, typical)
            y0, y1 = whole_glyphs(gray, layer.stroked, marks, box, max_height)
            line = Rect(max(0, int(x) - reach), y0, min(gray.shape[1], int(x + w) + reach), y1)
            if not drawn_only or drawn_ink(gray, box):
                lines.append(line)
    return lines


def whole_glyphs(gray: np.ndarray, stroked: np.ndarray, marks: np.ndarray, line: Rect, max_height: int
                 ) -> tuple[int, int]:
    """The rows of a line grown to the whole strokes its marks belong to (`stroked`: the layer's strokes before
    the flatness test, joined within `max_height` rows of the line), as long as the line stays at most
    `max_height` tall and the strokes added are drawn at the marks' own level (UNIFORM_INK_SHARE of them within
    a tenth of the level: print; speckle joined to a mark spreads over many levels and adds nothing).

    Why: the flatness test cuts glyphs where a field ends (print on a header band one row above the black
    under it: the band's edge is not flat), and a line of the glyphs' upper halves left their lower halves
    legible (gdcm-US-ALOKA-16's time under the date: "11:24:20" read on the output)."""
    top, bottom = max(0, line.y0 - max_height), min(gray.shape[0], line.y1 + max_height)
    left, right = max(0, line.x0 - max_height), min(gray.shape[1], line.x1 + max_height)
    count, full_labels, stats, _ = cv2.connectedComponentsWithStats(
        np.ascontiguousarray(stroked[top:bottom, left:right]).astype(np.uint8), connectivity=8)
    labels = full_labels[:, line.x0 - left : line.x1 - left]
    inside = marks[line.y0 : line.y1, line.x0 : line.x1].astype(bool)
    crop = labels[line.y0 - top : line.y1 - top][inside]
    found = np.unique(crop[crop > 0])
    if found.size == 0:
        return line.y0, line.y1
    tops = top + stats[found, cv2.CC_STAT_TOP]
    bottoms = tops + stats[found, cv2.CC_STAT_HEIGHT]
    y0, y1 = min(line.y0, int(tops.min())), max(line.y1, int(bottoms.max()))
    if y1 - y0 > max_height or (y0, y1) == (line.y0, line.y1):
        return line.y0, line.y1
    band = np.ones((y1 - y0, line.width), bool)  # the grown rows beside the line's own
    band[line.y0 - y0 : line.y1 - y0] = False
    added = gray[y0:y1, line.x0 : line.x1][band & np.isin(labels[y0 - top : y1 - top], found)].astype(np.int32)
    ink = gray[line.y0 : line.y1, line.x0 : line.x1][inside].astype(np.int32)
    level = int(np.median(ink))
    tolerance = max(1, abs(level - int(np.median(gray[line.y0 : line.y1, line.x0 : line.x1]))) // 10)
    if added.size and (np.abs(added - level) <= tolerance).mean() >= UNIFORM_INK_SHARE:
        return y0, y1
    return line.y0, line.y1


#: A lone mark whose pixels lie within this many pixels (standard deviation) of one straight line is a stroke of
#: a graphic (the slanted edge of a colour-flow box), not a glyph.
STRAIGHT_SPREAD = 1.0


def straight_stroke(marks: np.ndarray, line: Rect) -> bool:
    """Whether a line is one mark that is a straight stroke at any angle: a piece of a slanted box edge or a
    caliper cut short by the flatness test, whose bounding box is square enough for the glyph test (deid-data's
    ultrasound-multiframe: pieces of its colour-flow box's edge masked inside the sector on several frames)."""
    crop = marks[line.y0 : line.y1, line.x0 : line.x1]
    count, labels = cv2.connectedComponents(crop.astype(np.uint8), connectivity=8)
    if count != 2:
        return False
    ys, xs = np.nonzero(labels)
    if ys.size < 3:
        return False
    spread = np.linalg.eigvalsh(np.cov(np.stack([xs, ys]).astype(np.float64)))
    return bool(np.sqrt(max(spread[0], 0.0)) <= STRAIGHT_SPREAD and spread[1] >= (3 * STRAIGHT_SPREAD) ** 2)


#: A trace fills under this share of its bounding box (a 1-2 px curve across a box 40 px or more; print, joined
#: cursive included, fills 0.3-0.7 of its glyphs' boxes: its strokes rise and fall over the line's height within
#: each glyph's width), holds one run of ink across TRACE_SINGLE_SHARE of the positions along its long side (it
#: never folds back over itself: no loop, bowl or bar above another as in a, e, o, s, z, 8, 0) and reaches
#: TRACE_MIN_EXTENT pixels along that side (measured on deid-data's ultrasound-multiframe: its ECG trace 153x45 px,
#: fill 0.064, single run 1.0; its caliper's arms with their end ticks 40x40 px, 0.07-0.08, 0.84-0.85).
TRACE_FILL = 0.15
TRACE_SINGLE_SHARE = 0.8
TRACE_MIN_EXTENT = 24
#: And it holds stems (positions crossed over half its extent across) at no more than this share of its long side:
#: print whose glyphs touch, without loops or bars (thin capitals M, N, I, L, U), stands on a stem every few
#: pixels (1 px strokes: 7 % of the positions), an ECG only at its spikes (a curve drifts, writing rises and falls).
TRACE_STEM_SHARE = 0.04


def trace(marks: np.ndarray) -> bool:
    """Whether a line's marks (its box's crop of the mark mask) are one thin open curve: a physiological trace
    (ECG, respiration) or a measurement caliper's arm, not print (see TRACE_FILL).

    Why: the ECG trace under ultrasound-multiframe's sector (a wavy green line, 153x45 px) and the white caliper
    with end ticks beside it passed every test for a line of print (one mark shaped like a glyph, standing out
    from a flat black field) and were blanked on every frame (0.5 % of the picture). A glyph-level check, not
    "long thin things are not text": a single component that folds back over itself anywhere is still print,
    and a line of two or more separate marks is never a trace."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(marks.astype(np.uint8), connectivity=8)
    return count == 2 and bool(traces(labels, stats, np.array([False, True]))[1])


def traces(labels: np.ndarray, stats: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Which labelled components (True among `candidates`, indexed by label; `stats` OpenCV's) are traces (see
    TRACE_FILL): the fill is read from the statistics, and only the few large thin ones are looked at run by run."""
    widths, heights = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    thin = candidates & (np.maximum(widths, heights) >= TRACE_MIN_EXTENT) & (
        stats[:, cv2.CC_STAT_AREA] < TRACE_FILL * widths * heights)
    found = np.zeros(candidates.shape, bool)
    for label in np.flatnonzero(thin):
        x, y, w, h = (int(v) for v in stats[label, :4])
        mine = labels[y : y + h, x : x + w] == label
        along = mine if w >= h else mine.T  # one position per column of the long side
        runs = along[0].astype(np.int32) + np.count_nonzero(along[1:] & ~along[:-1], axis=0)
        stems = np.count_nonzero(along.sum(axis=0) * 2 > along.shape[0])  # positions crossed over half the extent
        found[label] = bool((runs[runs > 0] == 1).mean() >= TRACE_SINGLE_SHARE
                            and stems <= TRACE_STEM_SHARE * along.shape[1])
    return found


#: Share of a line's box that strokes of the opposite polarity off the anatomy must cover for a line that is its
#: field's own level to count as the field between and around print (see `beside_print`).
GAPS_OF_PRINT_SHARE = 0.05


#: Stroke response, in noise floors, of the strokes that `beside_print` counts: print stands out at full contrast
#: (a white glyph on black: 150-255), speckle in a dark heart chamber at one or two floors.
STRONG_STROKE = 2.0


class _Layer:
    """One polarity of `text_marks`: its marks (glyph-like strokes on a flat background), whether it is bright
    print, its strokes before the flatness test, and (made on first use) its strong glyph-like strokes off the
    anatomy (`strong`: STRONG_STROKE floors or more, flat or not)."""

    def __init__(self, marks: np.ndarray, bright: bool, stroked: np.ndarray, strong: np.ndarray, max_height: int):
        self.marks, self.bright, self.stroked = marks, bright, stroked
        self._strong, self._max_height = strong, max_height
        self._loose: np.ndarray | None = None

    @property
    def loose_glyphs(self) -> np.ndarray:
        if self._loose is None:
            glyph, labels, stats = _glyph_components(self._strong.astype(np.uint8), self._max_height)
            if glyph is not None:
                glyph = glyph & ~traces(labels, stats, glyph)  # a trace is no print for dark lines to stand beside
            self._loose = np.zeros(self.stroked.shape, bool) if glyph is None else glyph[labels]
        return self._loose


def beside_print(layers: list[_Layer], layer: _Layer, line: Rect) -> bool:
    """Whether the glyph-like strokes of the other layer (bright ones for a dark line), off the anatomy, cover
    GAPS_OF_PRINT_SHARE of the line's box: the line is then the field between and around glyphs of the
    opposite polarity (the black top-hat of white print on black), which stands for that print where its own
    strokes failed a test: deid-data's ultrasound-multiframe "x2", lossy and turned 45 degrees, is not drawn at
    one level; dense dark print on a bright plate fails the flatness test and is found through the plate
    around it. A gap between large structures (a bar, a band, a sector's edge) holds no such strokes, nor
    does the dark side of a long thin line (the edge of a colour-flow box), and speckle strokes are too weak to
    count (STRONG_STROKE). Measured: gaps 0-0.7 % on gdcm-US-ALOKA-16, 2.3-3.6 % beside the colour-flow box of
    ultrasound-multiframe; print 6.4 % (JPGLosslessP14SV1_1s_1f_8b's antialiased "0") to 14 % ("x2")."""
    crop = (slice(line.y0, line.y1), slice(line.x0, line.x1))
    return any(np.count_nonzero(other.loose_glyphs[crop]) >= GAPS_OF_PRINT_SHARE * line.area
               for other in layers if other is not layer)


#: How far (8-bit levels) a line's ink must lie beyond the commonest level of its own box (the field it is
#: drawn on), on its side: brighter for bright print, darker for dark print.
FIELD_CONTRAST = MARK_CONTRAST // 2


def stands_out(gray: np.ndarray, marks: np.ndarray, line: Rect, bright: bool) -> bool:
    """Whether a line's marks are print on a field: their level lies FIELD_CONTRAST beyond the median of
    the line's box (a pixel around it) on the layer's side (brighter for the white top-hat, darker for the
    black one).

    Print covers 15-40 % of its line's box, so the box's median is the field it stands on. A "mark" that
    is itself the field of its box is a gap between brighter structures: the black top-hat lights every
    dark gap narrower than its kernel (gdcm-US-ALOKA-16: the black wedge between the grey bar, the header
    band and the sector edge, the black strip between the image's bottom edge and the line of print under
    it; both masked as lines of "dark print", 84x15 and 60x70 px of near field lost)."""
    box = line.pad(1, 1).clip(gray.shape[1], gray.shape[0])
    crop = gray[box.y0 : box.y1, box.x0 : box.x1].astype(np.int32)
    ink = crop[marks[box.y0 : box.y1, box.x0 : box.x1].astype(bool)]
    if ink.size == 0:
        return False
    field, level = float(np.median(crop)), float(np.median(ink))
    return (level - field if bright else field - level) >= FIELD_CONTRAST


#: Share of a side of the frame a lone mark must lie along to be a sliver of the frame's edge (see `border_sliver`).
SLIVER_SHARE = 0.5


def border_sliver(marks: np.ndarray, line: Rect, shape: tuple[int, ...]) -> bool:
    """Whether a line is one mark lying along the frame's edge: the strip between a round field of view (or
    an ultrasound sector) and the border, not print.

    `marks` is the line's crop of the mark mask. Why: where a CT's circular field of view or a sector's rim
    comes within a stroke's width of the border, the top-hat lights the sliver between them, and each
    sliver passed as a glyph (pydicom J2K_pixelrep_mismatch: eight slivers masked with the frame's padding
    value over air; pydicom-data color-pl: the grey strip beside its sector). Print is several marks,
    and a glyph cut by the border meets it with a stroke, not along SLIVER_SHARE of its side."""
    count, _ = cv2.connectedComponents(marks.astype(np.uint8), connectivity=8)
    if count != 2:  # exactly one mark (label 0 is the field)
        return False
    rows, cols = shape[:2]
    sides = ((line.x0 == 0, marks[:, 0]), (line.x1 == cols, marks[:, -1]),
             (line.y0 == 0, marks[0, :]), (line.y1 == rows, marks[-1, :]))
    return any(on_edge and np.count_nonzero(edge) >= SLIVER_SHARE * edge.size for on_edge, edge in sides)


#: Share of a line's ink within a tenth of its contrast of the ink's median level for `drawn_ink`.
#: Measured on ultrasound: print 0.69-1.0 (lossy JPEG print included), speckle and echo 0.12-0.67.
UNIFORM_INK_SHARE = 0.68


def drawn_ink(gray: np.ndarray, rect: Rect) -> bool:
    """Whether a mark's ink is drawn at one level (print) rather than spread over many (speckle, echo).

    Ink is what differs from the mark's field (median of the box and a pixel around it) by more than
    half the strongest difference; print keeps UNIFORM_INK_SHARE of it within a tenth of the contrast of
    one level. Why: in the dark parts of an ultrasound sector, blobs of speckle pass every shape test
    (pydicom-data color-pl, no text at all: 2.7 % of its pixels masked)."""
    box = rect.pad(1, 1).clip(gray.shape[1], gray.shape[0])
    crop = gray[box.y0 : box.y1, box.x0 : box.x1].astype(np.int32)
    field = int(np.median(crop))
    deviation = np.abs(crop - field)
    contrast = int(deviation.max())
    if contrast == 0:
        return False
    ink = crop[2 * deviation > contrast]
    level = int(np.median(ink))
    return bool((np.abs(ink - level) <= max(1, contrast // 10)).mean() >= UNIFORM_INK_SHARE)


#: Gain that lifts print drawn a few levels above a black field into view: 4 levels of contrast become 64,
#: over MARK_CONTRAST; one level of noise becomes 16, and noisy fields fail `flat_background` anyway.
DIM_GAIN = 16
_DIM_LIFT = np.clip(np.arange(256) * DIM_GAIN, 0, 255).astype(np.uint8)


def dim_text_marks(view8: np.ndarray, anatomy: np.ndarray, max_height: int = MAX_MARK_HEIGHT) -> list[Rect]:
    """Lines of print too dim for `text_marks`: looked for on a picture whose darkest levels are stretched
    DIM_GAIN times, kept only where the
    display picture stays below MARK_CONTRAST (so only what the plain pass could not see is added).

    Why: pydicom-data's OBXXXX1A_2frame draws the patient ID, date and time of its second frame 4 levels
    above the field (6 on 2) through its palette: legible on a screen in a dark room, invisible to a stroke
    threshold of 40. Lifting also lifts noise, but noise fails `flat_background`, so it is never a mark.
    """
    gray = brightest_channel(view8)
    if gray.dtype != np.uint8:
        return []
    # Only print brighter than its field: lifted, the dark gaps between two dim lines would join them
    # into one block taller than any line, which `text_marks` then rejects.
    found = text_marks(_DIM_LIFT[gray], anatomy, max_height, bright_only=True)
    return [rect for rect in found
            if rect.area and int(gray[rect.y0 : rect.y1, rect.x0 : rect.x1].max()) < MARK_CONTRAST
            and drawn_at_two_levels(gray, rect)]


#: Share of a dim mark's surroundings that its two most frequent values must cover to count as print.
DRAWN_LEVELS_SHARE = 0.95


def drawn_at_two_levels(gray: np.ndarray, rect: Rect) -> bool:
    """Whether the mark (with 2 pixels around it) is made of one ink level on one field level.

    Why: lifted 16 times, the speckle of a dark bladder or of the blood in a heart chamber also forms
    glyph-sized blobs on a "flat" field (gdcm-US-ALOKA-16: 10 boxes inside the bladder; deid-data's
    ultrasound-multiframe: 40 per frame in the heart). Print is drawn: its field is one value and its
    glyphs another (OBXXXX1A's dim header: exactly two values in every line), while speckle spreads
    over every level between (measured: the two commonest values cover 58-87 % of a speckle blob)."""
    box = rect.pad(2, 2).clip(gray.shape[1], gray.shape[0])
    counts = np.bincount(gray[box.y0 : box.y1, box.x0 : box.x1].ravel(), minlength=2)
    top_two = np.partition(counts, -2)[-2:].sum()
    return bool(top_two >= DRAWN_LEVELS_SHARE * box.area)


#: Chroma (max minus min sample, 8-bit) from which a pixel is coloured: ultrasound tissue is grey, and device
#: graphics and print over it are often drawn in a pure colour.
COLOUR_CHROMA = 64
#: Smallest extent (pixels) of a coloured mark: the ticks of a depth scale are 1x3 to 2x6.
MIN_COLOUR_GLYPH = 6
#: Share of the pixels around a coloured mark (a 2-pixel ring) that must be grey: a mark drawn over the
#: picture, not a speck of a colour-flow map (whose neighbours are more flow).
GREY_RING_SHARE = 0.85
#: Share of the frame's pixels at a mark's colour that must lie in glyph-like marks: a drawn colour is the
#: print's own (and its graphics'); a colour that the picture also holds elsewhere (a palette photo, whose
#: every pixel is one of its LUT's entries) says nothing about drawing.
OWN_COLOUR_SHARE = 0.5


def colour_text_marks(rgb: np.ndarray, max_height: int = MAX_MARK_HEIGHT) -> list[Rect]:
    """The glyphs of lines of print drawn in one exact colour over a grey picture, one rectangle per glyph (in
    `rgb`'s pixels): over tissue, a line's box would blank the picture between its glyphs.

    A mark is a glyph-like component of coloured pixels (COLOUR_CHROMA) of which UNIFORM_INK_SHARE hold one
    exact colour (drawn, not a colour-flow map, whose velocities spread over many colours, nor lossy) and
    whose ring is grey (GREY_RING_SHARE); two or more marks joined over a typical glyph height make a line
    (a lone tick, dot or triangle of the depth scale is not print). Found anywhere, over anatomy too: the
    anatomy split takes print drawn across a sector's edge for tissue.

    Why: gdcm-US-ALOKA-16 writes "L0" and an arrow in green across its sector's near edge: no detector
    reads it, and the anatomy split (it is bright) hides it from `text_marks`. 8-bit RGB only."""
    if rgb.ndim != 3 or rgb.dtype != np.uint8:
        return []
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    # Channel planes, not a reduction over the last axis (7x slower on 8-bit RGB; see views.brightest_channel).
    chroma = np.maximum(np.maximum(red, green), blue) - np.minimum(np.minimum(red, green), blue)
    coloured = (chroma >= COLOUR_CHROMA).astype(np.uint8)
    if not coloured.any():
        return []
    _, labels, stats, _ = cv2.connectedComponentsWithStats(coloured, connectivity=8)
    widths, heights = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    candidate = _glyph_flags(stats, max_height) & (np.maximum(widths, heights) >= MIN_COLOUR_GLYPH)
    if not candidate.any():
        return []
    count = len(candidate)
    # Everything below concerns the candidates, their 2-pixel rings and their lines: it is done on the box around
    # them (a sector's few coloured glyphs), not on the whole frame (that cost 25 ms an ultrasound frame).
    near_box = _box_of(stats, candidate, 2, 2, rgb.shape)
    area = (slice(near_box.y0, near_box.y1), slice(near_box.x0, near_box.x1))
    local_labels, local_rgb, local_chroma = labels[area], rgb[area], chroma[area]
    # Drawn in one exact colour: the commonest colour of each candidate holds UNIFORM_INK_SHARE of its pixels.
    chosen = candidate[local_labels]
    key = colour_keys(local_rgb[chosen])
    drawn = commonest_counts(local_labels[chosen], key, count) >= UNIFORM_INK_SHARE * np.maximum(
        stats[:, cv2.CC_STAT_AREA], 1)
    # Over grey: GREY_RING_SHARE of the 2-pixel ring around each candidate is grey (its nearest candidate owns it).
    owners = np.where(chosen, local_labels, 0).astype(np.float32)
    near = cv2.dilate(owners, np.ones((5, 5), np.uint8)).astype(np.int64)
    ring = (near > 0) & ~chosen
    ring_all = np.bincount(near[ring], minlength=count)
    ring_grey = np.bincount(near[ring & (local_chroma < COLOUR_CHROMA // 2)], minlength=count)
    grey_ring = ring_grey >= GREY_RING_SHARE * np.maximum(ring_all, 1)
    kept = candidate & drawn & grey_ring
    kept[0] = False
    if np.count_nonzero(kept) < 2:
        return []
    kept &= own_colour(local_labels[chosen], key, kept, colour_keys(rgb.reshape(-1, 3)[np.flatnonzero(coloured)]))
    if np.count_nonzero(kept) < 2:
        return []
    gap = max(3, int(np.median(heights[kept]))) | 1  # odd: the closing does not shift the marks
    # The lines are joined on the marks' box with twice the gap around it: the closing reaches half a gap from a
    # mark, and a box edge within a gap of one would act as the frame's border (where OpenCV closes onto it).
    line_box = _box_of(stats, kept, 2 * gap + 2, 1, rgb.shape)
    marks = kept[labels[line_box.y0 : line_box.y1, line_box.x0 : line_box.x1]].astype(np.uint8)
    joined = cv2.morphologyEx(marks, cv2.MORPH_CLOSE, cv2.getStructuringElement(cv2.MORPH_RECT, (gap, 1)))
    _, line_labels, line_stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    lines: dict[int, list[Rect]] = {}
    for index in np.flatnonzero(kept):
        x, y, w, h = (int(v) for v in stats[index, :4])
        lx, ly = x - line_box.x0, y - line_box.y0
        inside = line_labels[ly : ly + h, lx : lx + w][labels[y : y + h, x : x + w] == index]
        lines.setdefault(int(inside[0]), []).append(Rect(x, y, x + w, y + h))
    # Each glyph its own rectangle: the picture between and around them stays.
    return [rect for line, rects in lines.items()
            if line and len(rects) >= 2 and line_stats[line, cv2.CC_STAT_HEIGHT] <= max_height for rect in rects]


def colour_keys(pixels: np.ndarray) -> np.ndarray:
    """One int32 per 8-bit RGB pixel (N x 3): a colour's identity as one sortable key."""
    return pixels[:, 0].astype(np.int32) << 16 | pixels[:, 1].astype(np.int32) << 8 | pixels[:, 2]


def _box_of(stats: np.ndarray, flags: np.ndarray, pad_x: int, pad_y: int, shape: tuple[int, ...]) -> Rect:
    """The box around the flagged components (OpenCV stats rows), grown by `pad_x` / `pad_y`, within the frame."""
    chosen = stats[np.flatnonzero(flags)]
    x0, y0 = int(chosen[:, cv2.CC_STAT_LEFT].min()), int(chosen[:, cv2.CC_STAT_TOP].min())
    x1 = int((chosen[:, cv2.CC_STAT_LEFT] + chosen[:, cv2.CC_STAT_WIDTH]).max())
    y1 = int((chosen[:, cv2.CC_STAT_TOP] + chosen[:, cv2.CC_STAT_HEIGHT]).max())
    return Rect(x0, y0, x1, y1).pad(pad_x, pad_y).clip(shape[1], shape[0])


def own_colour(owners: np.ndarray, keys: np.ndarray, kept: np.ndarray, coloured_keys: np.ndarray) -> np.ndarray:
    """Per label: whether its commonest colour (`keys`: one int per pixel of `owners`, the candidates' pixels) is
    the marks' own, OWN_COLOUR_SHARE of the frame's coloured pixels at that colour (`coloured_keys`: the key of
    each) lying in `kept` marks.

    Why: a palette photo (red team 4's palette_face, a face in 256 LUT colours) is drawn in exact colours
    everywhere: the folds of a light blue shirt came apart into glyph-sized one-colour components, and eleven
    marks blanked the shirt, where no print was. The green of ALOKA's "L0" is drawn only in its marks."""
    count = kept.size
    ok = np.zeros(count, bool)
    pick = kept[owners]
    if not pick.any():
        return ok
    owners, keys = owners[pick], keys[pick]
    order = np.lexsort((keys, owners))
    owners, keys = owners[order], keys[order]
    starts = np.ones(owners.size, bool)
    starts[1:] = (owners[1:] != owners[:-1]) | (keys[1:] != keys[:-1])
    first = np.flatnonzero(starts)
    runs = np.diff(np.append(first, owners.size))
    # The commonest colour of each label: runs sorted by length, the last written per label wins.
    by_length = np.argsort(runs, kind="stable")
    colour = np.zeros(count, np.int64)
    colour[owners[first[by_length]]] = keys[first[by_length]]
    labels = np.flatnonzero(kept)
    wanted = np.unique(colour[labels])
    in_marks = np.isin(keys, wanted)
    inside = dict(zip(*np.unique(keys[in_marks], return_counts=True), strict=True))
    everywhere = dict(zip(*np.unique(coloured_keys[np.isin(coloured_keys, wanted)], return_counts=True),
                          strict=True))
    for label in labels:
        c = colour[label]
        ok[label] = inside.get(c, 0) >= OWN_COLOUR_SHARE * everywhere.get(c, 1)
    return ok


def _glyph_components(binary: np.ndarray, max_height: int) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """(which components are glyph-like, the label image, OpenCV's component statistics); None when there is none.

    Glyph-like: at least MIN_MARK_HEIGHT long, at most `max_height` across, not a long thin line
    (longer than 12x its width: rulers, table edges), not a solid block (masks, colour swatches)."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if count <= 1:
        return None, labels, stats
    glyph = _glyph_flags(stats, max_height)
    return (glyph if glyph.any() else None), labels, stats


def _glyph_flags(stats: np.ndarray, max_height: int) -> np.ndarray:
    """Which components (OpenCV stats rows; row 0 the field) are glyph-like (see `_glyph_components`)."""
    widths, heights = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    longest = np.maximum(widths, heights)
    shortest = np.minimum(widths, heights)
    solid = stats[:, cv2.CC_STAT_AREA] >= 0.9 * widths * heights
    glyph = (
        (longest >= MIN_MARK_HEIGHT) & (shortest <= max_height) & (longest <= 12 * np.maximum(shortest, 1))
        & ~(solid & (shortest > 2))
    )
    glyph[0] = False
    return glyph


def cell_counts(mask: np.ndarray, cell: int) -> np.ndarray:
    """How many True pixels of `mask` each `cell` x `cell` cell holds (the last row and column of cells
    padded with False)."""
    rows, cols = mask.shape[:2]
    grid_rows, grid_cols = -(-rows // cell), -(-cols // cell)
    padded = np.zeros((grid_rows * cell, grid_cols * cell), np.uint8)
    padded[:rows, :cols] = mask
    return padded.reshape(grid_rows, cell, grid_cols, cell).sum(axis=(1, 3))


def cell_windows(cells: np.ndarray, cell: int, reach_y: int, reach_x: int, connectivity: int) -> list[Rect]:
    """The selected cells (True) grown by `reach_y` / `reach_x` cells and joined where they touch, as
    rectangles in pixels (not clipped: the last cells may reach past the picture)."""
    grown = cv2.dilate(cells.astype(np.uint8), np.ones((2 * reach_y + 1, 2 * reach_x + 1), np.uint8))
    count, _, stats, _ = cv2.connectedComponentsWithStats(grown, connectivity=connectivity)
    return [Rect(int(x) * cell, int(y) * cell, int(x + w) * cell, int(y + h) * cell) for x, y, w, h, _ in stats[1:count]]
