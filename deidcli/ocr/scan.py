"""One frame in, rectangles to mask out: scaling, views, rotation, box mapping and the decision.

Why the steps (measured with bench/ocr_bench.py on tests/ocr_fixtures.py; bench/ocr_results.md):
- Frames whose longest side exceeds `scan_max_side` (1024) are shrunk to it: mammogram text is
  30-130 px tall, so 1024 keeps the smallest planted line (32 px on 4096 rows -> 8 px) readable.
  800 lost that line (97 % recall); 1280 costs 2x for no gain.
- Frames under `small_side` may be enlarged by `small_scale`; the default is 1.0 because
  RapidOCR already finds 8 px ultrasound text at native size (x1.5 costs ~3x for no gain).
- One view, not several, for >8-bit gray: ``log`` (deidcli.ocr.views) alone reached 100 %;
  ``minmax`` (80 %) and ``equalised`` (83 %) miss text drawn far below the tissue window, and
  minmax+log doubled the time for nothing. 8-bit gray is scanned as is, colour as RGB.
- A second pass on the view turned by 90 degrees, with the text found so far painted over:
  it reads 90/270-degree text horizontally and gives text hidden by its neighbours a second
  chance (deid-data's GREYSCALE_IMAGE has an "x3" found only that way). It costs about one
  more detection (~+60-80 %); turn it off with rotations=(0,) if the budget matters more.
- Engine boxes cover only ~60-85 % of the glyphs' real extent, so each is widened by
  `pad_ratio` x its text height (the box's short side) before mapping to full resolution.

Fail closed: every box is masked unless its whole text is an authorised word read with at least
`min_confidence` (and the AuthorisedWords list's own threshold). Low confidence never means
"ignore". Boxes too long to be any authorised word are not even read (masked unread). Engine
errors, time over budget and unusable frames raise OcrError with a reason code and a detail
that never contains recognised text. The time budget is checked after each engine call (an
engine call itself cannot be interrupted in-process; the pipeline's per-file timeout covers
a hung engine).
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from deidcli.errors import OcrError
from deidcli.geometry import Rect, enclosing, overlaps
from deidcli.ocr import levels
from deidcli.ocr.authorised import AuthorisedWords, normalise
from deidcli.ocr.band_print import MAX_INK_SHARE, band_extent, band_lines, band_picture
from deidcli.ocr.chrome import CHROME_SCALE, ChromeMemory, chrome_bands, chrome_pixels
from deidcli.ocr.chrome_columns import (
    COLUMN_GROWTH,
    COLUMN_SCALE,
    column_window,
    print_columns,
    screen_zones,
    upright_lines,
)
from deidcli.ocr.chrome_print import print_rows
from deidcli.ocr.engines import ENGINE_MAX_SIDE, DetectedText, TextDetector, too_long
from deidcli.ocr.fine_print import bars as fine_bars
from deidcli.ocr.fine_print import confirmed as confirmed_print
from deidcli.ocr.label_split import covers_ink, cuts
from deidcli.ocr.layout import (
    MAX_MARK_HEIGHT,
    MIN_MARK_HEIGHT,
    anatomy_mask,
    cell_counts,
    cell_windows,
    dim_text_marks,
    local_contrast,
    stroke_response,
    stroke_values,
    text_marks,
)
from deidcli.ocr.views import (
    COLOUR_VIEWS,
    GRAY_VIEWS,
    brightest_channel,
    colour_views,
    display_gray,
    gray_views,
    minmax,
)
from deidcli.pixels.fit import commonest_row

DEFAULT_SCAN_MAX_SIDE = 1024
DEFAULT_SMALL_SIDE = 512
DEFAULT_SMALL_SCALE = 4.0
DEFAULT_PAD_RATIO = 0.35
DEFAULT_MIN_CONFIDENCE = 0.8
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_GRAY_VIEWS = ("log",)
DEFAULT_GRAY8_VIEWS = ("minmax",)
DEFAULT_COLOUR_VIEWS = ("rgb",)
DEFAULT_ROTATIONS = (0,)
#: When the second, local-contrast detection runs: "wide" = frames of more than 8 bits (text above
#: or faint inside the VOI window, text over tissue); 8-bit frames are scanned as displayed.
DEFAULT_CONTRAST_PASS = "wide"
#: A box counts as "on anatomy" (read before masking) from this share of anatomy pixels: boxes at the
#: edge of a body are half on it (0.48 measured on a small CT) and must not be masked unread.
ON_ANATOMY_SHARE = 0.2
#: Over-large boxes on anatomy are detected again inside at this enlargement.
INSIDE_SCALE = 2.0
#: How far (text heights, each way) a masked line on the background may grow along its strokes.
LINE_GROWTH = 1.5
#: Pixels (stored) masked around a row of chrome print found as components (deidcli.ocr.chrome_print).
PRINT_MARGIN = 1
#: Top-hat size for finding print on the display view (strokes up to this thick).
WINDOW_STROKE = 31
#: Blur (Gaussian sigma, scan pixels) before looking for strokes: it takes noise, which the top-hats
#: turn into strokes at every pixel, and leaves print 2-3 px thick.
WINDOW_BLUR = 1.0


@dataclass
class ScanResult:
    """What the scan found in one frame.

    `masked` is what the pipeline must blank (full-resolution, padded, clipped). `spared` are
    authorised labels left visible, with their text (not PHI by construction). `rejected` counts
    detector boxes on anatomy that did not read as text (left visible: clean, not destroyed);
    `marks` counts text-like background marks masked without the detector. The last field
    holds the recognised text of every masked detection (not aligned with `masked`, which is
    de-duplicated): PHI, for the private folder only.
    """

    masked: list[Rect]
    spared: list[tuple[Rect, str]]
    boxes_found: int
    lowest_confidence: float | None
    seconds: float
    recognised_masked_text: list[str] = field(default_factory=list)
    rejected: int = 0
    marks: int = 0


def check_frame(frame: object) -> np.ndarray:
    """The frame as an array the scanner can take, or OcrError('ocr_bad_input') saying why."""
    if not isinstance(frame, np.ndarray):
        raise OcrError("ocr_bad_input", f"frame is {type(frame).__name__}, not a numpy array")
    if frame.size == 0 or min(frame.shape[:2], default=0) < 1:
        raise OcrError("ocr_bad_input", f"empty frame of shape {frame.shape}")
    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[..., 0]
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] != 3):
        raise OcrError("ocr_bad_input", f"frame shape {frame.shape} is not (rows, cols) or (rows, cols, 3)")
    if frame.dtype.kind not in "uif" or frame.dtype.itemsize > 8:
        raise OcrError("ocr_bad_input", f"frame dtype {frame.dtype} is not numeric")
    if frame.dtype.kind == "f" and not np.isfinite(frame).all():
        raise OcrError("ocr_bad_input", "frame holds NaN or infinite values")
    return frame


def choose_scale(rows: int, cols: int, scan_max_side: int, small_side: int, small_scale: float) -> float:
    """Resize factor for scanning: shrink big frames to scan_max_side, enlarge small ones."""
    longest = max(rows, cols)
    if longest > scan_max_side:
        return scan_max_side / longest
    if longest < small_side:
        return min(small_scale, small_side / longest)
    return 1.0


def resize(image: np.ndarray, scale: float) -> np.ndarray:
    """Area averaging to shrink (keeps thin strokes), bicubic to enlarge."""
    if scale == 1.0:
        return image
    rows, cols = image.shape[:2]
    size = (max(1, round(cols * scale)), max(1, round(rows * scale)))
    interpolation = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_CUBIC
    return cv2.resize(image, size, interpolation=interpolation)


def unrotate(rect: Rect, quarter_turns: int, rows: int, cols: int) -> Rect:
    """A box found in np.rot90(view, quarter_turns) mapped back into the (rows, cols) view."""
    k = quarter_turns % 4
    if k == 0:
        return rect
    if k == 1:  # B[r, c] = A[c, cols-1-r]
        return Rect(cols - rect.y1, rect.x0, cols - rect.y0, rect.x1)
    if k == 2:  # B[r, c] = A[rows-1-r, cols-1-c]
        return Rect(cols - rect.x1, rows - rect.y1, cols - rect.x0, rows - rect.y0)
    # k == 3: B[r, c] = A[rows-1-c, r]
    return Rect(rect.y0, rows - rect.x1, rect.y1, rows - rect.x0)


def to_full_resolution(
    rect: Rect, scale: float, pad_ratio: float, rows: int, cols: int, across: bool = False
) -> Rect:
    """Scan-resolution box -> padded, clipped full-resolution box.

    The pad is proportional to text height (the box's short side) plus one scan pixel for
    resampling, because engines' boxes fall short of the glyphs by a fraction of their height.
    `across` marks a box standing across the pass's reading direction (vertical text found by
    an upright pass): detectors cut such lines short by up to a character at the ends
    (measured: "1962-03-04" turned 270 degrees lost its last "4"), so the long axis gets one
    more text height at each end.
    """
    full = rect.scale(1.0 / scale, 1.0 / scale)
    text_height = min(full.width, full.height)
    margin = math.ceil(pad_ratio * text_height + 1.0 / scale) + 1
    extra_x = text_height if across and full.width > full.height else 0
    extra_y = text_height if across and full.height >= full.width else 0
    return full.pad(margin + extra_x, margin + extra_y).clip(cols, rows)


def blank(view: np.ndarray, rects: list[Rect], pad_ratio: float) -> np.ndarray:
    """A copy of `view` with already-found text (masked or spared) painted over with the
    median of a thin ring around it, so the patch blends into its background.

    The next, turned pass then sees only what is left: remnants of vertical text the upright
    pass caught in pieces, and text the detector overlooked next to other text (measured on
    deid-data's GREYSCALE_IMAGE: a small label is only found once its neighbours are gone).
    Authorised labels are blanked too, so a turned re-read cannot mask them. Black patches
    were tried first: on a gray background the detector took rows of them for text blocks.
    """
    out = view.copy()
    rows, cols = view.shape[:2]
    for r in rects:
        margin = math.ceil(pad_ratio * min(r.width, r.height)) + 1
        inner = r.pad(margin, margin).clip(cols, rows)
        outer = inner.pad(3, 3).clip(cols, rows)
        patch = view[outer.y0 : outer.y1, outer.x0 : outer.x1]
        ring = np.ones(patch.shape[:2], bool)
        ring[inner.y0 - outer.y0 : inner.y1 - outer.y0, inner.x0 - outer.x0 : inner.x1 - outer.x0] = False
        fill = levels.median_of(patch[ring]) if ring.any() else 0  # np.median's value, without a partition
        out[inner.y0 : inner.y1, inner.x0 : inner.x1] = np.asarray(fill).astype(view.dtype)
    return out


def prune_contained(rects: list[Rect]) -> list[Rect]:
    """Drops boxes lying wholly inside another (duplicates from several views/rotations)."""
    unique = sorted(set(rects), key=lambda r: -r.area)
    kept: list[Rect] = []
    for r in unique:
        if not any(k.x0 <= r.x0 and k.y0 <= r.y0 and k.x1 >= r.x1 and k.y1 >= r.y1 for k in kept):
            kept.append(r)
    return kept


class TextScanner:
    """Finds burned-in text in one frame and decides, fail-closed, what to mask."""

    def __init__(
        self,
        detector: TextDetector,
        authorised: AuthorisedWords | None,
        *,
        min_confidence: float = DEFAULT_MIN_CONFIDENCE,
        scan_max_side: int = DEFAULT_SCAN_MAX_SIDE,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        small_side: int = DEFAULT_SMALL_SIDE,
        small_scale: float = DEFAULT_SMALL_SCALE,
        pad_ratio: float = DEFAULT_PAD_RATIO,
        gray_view_names: tuple[str, ...] = DEFAULT_GRAY_VIEWS,
        gray8_view_names: tuple[str, ...] = DEFAULT_GRAY8_VIEWS,
        colour_view_names: tuple[str, ...] = DEFAULT_COLOUR_VIEWS,
        rotations: tuple[int, ...] = DEFAULT_ROTATIONS,
        read_all: bool = False,
        contrast_pass: str = DEFAULT_CONTRAST_PASS,
        windows: bool = True,
        chrome_scale: float = CHROME_SCALE,
    ) -> None:
        if not 32 <= scan_max_side <= ENGINE_MAX_SIDE:
            raise ValueError(f"scan_max_side must be within 32..{ENGINE_MAX_SIDE}")
        if any(v not in GRAY_VIEWS for v in gray_view_names) or not gray_view_names:
            raise ValueError(f"gray views must be among {GRAY_VIEWS}")
        if any(v not in GRAY_VIEWS for v in gray8_view_names) or not gray8_view_names:
            raise ValueError(f"8-bit gray views must be among {GRAY_VIEWS}")
        if any(v not in COLOUR_VIEWS for v in colour_view_names) or not colour_view_names:
            raise ValueError(f"colour views must be among {COLOUR_VIEWS}")
        if any(r % 90 for r in rotations) or 0 not in rotations:
            raise ValueError("rotations must be multiples of 90 and include 0")
        self.detector = detector
        self.authorised = authorised
        self.min_confidence = min_confidence
        self.scan_max_side = scan_max_side
        self.timeout_s = timeout_s
        self.small_side = small_side
        self.small_scale = small_scale
        self.pad_ratio = pad_ratio
        self.gray_view_names = gray_view_names
        self.gray8_view_names = gray8_view_names
        self.colour_view_names = colour_view_names
        self.rotations = rotations
        self.read_all = read_all
        if contrast_pass not in ("always", "wide", "never"):
            raise ValueError("contrast_pass must be always, wide or never")
        self.contrast_pass = contrast_pass
        #: Detect only in windows around strokes (`stroke_windows`); False: whole pictures, as a scripted
        #: engine that answers in whole-frame coordinates needs.
        self.windows = windows
        #: 8-bit and colour frames (screens: ultrasound, secondary capture) under `small_side` scanned at less
        #: than this enlargement get their chrome (the bands around the anatomy) detected again at it
        #: (deidcli.ocr.chrome); 0 turns the chrome pass off. Wider frames (CT, MR) get the contrast pass.
        self.chrome_scale = chrome_scale
        self._detect_kwargs = self._reading_limit(detector, authorised, read_all)
        self._accepts_read = not read_all and "read" in inspect.signature(detector.detect).parameters

    @staticmethod
    def _reading_limit(detector: TextDetector, authorised: AuthorisedWords | None, read_all: bool) -> dict:
        """Skip recognising boxes too long to be any authorised word (they are masked anyway).

        Measured on RapidOCR boxes (bench fixtures): a printed label of n characters gives a box
        of width/height ~0.5 n (the detector's unclip makes boxes tall), e.g. "L CC" 2.0-2.2,
        "R MLO" 2.7-2.9, so 0.6 n + 0.6 for the longest entry leaves a 20-40 % margin. Without a
        list nothing can be spared, so nothing needs reading (limit 0).
        """
        if read_all or "read_max_aspect" not in inspect.signature(detector.detect).parameters:
            return {}
        longest = authorised.longest if authorised else 0
        return {"read_max_aspect": 0.6 * longest + 0.6 if longest else None}

    def views(
        self, frame: np.ndarray, photometric: str, scale: float, bits_stored: int,
        values: np.ndarray | None = None,
    ) -> list[tuple[str, np.ndarray]]:
        """The 8-bit pictures to scan, at scan resolution.

        8-bit gray frames (ultrasound, secondary capture) already are what a viewer shows, so
        they get `gray8_view_names`; wider ones need the squeezes in `gray_view_names`. `values`, when
        given, is the gray frame's `_display_values` (the scan has them already: not resized twice).
        """
        if frame.ndim == 3:
            return colour_views(resize(frame, scale), self.colour_view_names)
        if values is not None:
            gray = values
        else:
            raw = frame if frame.dtype in (np.uint8, np.uint16, np.int16) else frame.astype(np.float32)
            gray = display_gray(resize(raw, scale), photometric)
        names = (
            self.gray8_view_names if bits_stored <= 8 and frame.dtype.itemsize == 1 else self.gray_view_names
        )
        return gray_views(gray, names)

    def spares(self, found: DetectedText) -> bool:
        """Only an authorised word, read confidently enough, is left visible."""
        if self.authorised is None or found.confidence < self.min_confidence:
            return False
        return self.authorised.spares(found.text, found.confidence)

    def _detect(self, image8: np.ndarray, read: Callable[[Rect], bool] | None = None) -> list[DetectedText]:
        """The engine call, with any engine error turned into a PHI-free OcrError.

        `read` picks the boxes to recognise (engines that accept it); the others come back unread.
        """
        kwargs = {"read": read} if read is not None and self._accepts_read else dict(self._detect_kwargs)
        try:
            return list(self.detector.detect(image8, **kwargs))
        except OcrError:
            raise
        except Exception as exc:
            raise OcrError("ocr_failed", f"{self.detector.name} raised {type(exc).__name__}") from exc

    def scan(
        self,
        frame: np.ndarray,
        photometric: str,
        bits_stored: int,
        signed: bool = False,
        data_regions: list[Rect] | None = None,
        chrome: ChromeMemory | None = None,
        voi_windows: tuple[tuple[float, float], ...] = (),
    ) -> ScanResult:
        """Scan one frame (stored values, any bit depth; RGB for colour) and decide what to mask.

        Geometry first (deidcli.ocr.layout): the frame is split into anatomy and background
        (`data_regions`, the ultrasound data regions in frame pixels, bound the anatomy). Then:
        1. the detector runs on the display view (upright, then turned with found text painted over);
        2. a residual pass runs the detector on the local-contrast view of the cleaned frame, which
           shows text over tissue, above the VOI window or faint inside it;
        3. text-like marks left on the background are masked without reading;
        4. the neighbourhood of every masked box is detected once more on the cleaned frame: text
           still readable there raises OcrError('ocr_residual_text') (the file is quarantined).
        Frames of more than 8 bits are also detected through each of the file's own narrow VOI windows
        (`voi_windows`, (low, high) stored values: deidcli.pixels.voi), as a viewer shows them.
        Small 8-bit and colour frames (under `small_side`) also get their chrome bands detected enlarged to
        `chrome_scale`; `chrome` (one ChromeMemory per file) lets later frames of a cine detect only
        the chrome pixels that changed since the first (deidcli.ocr.chrome).
        A box on the background is masked unless authorised; a box on anatomy only when it reads
        as text; a box on anatomy taller than a few text lines that does not read as text (a
        detector outlining a Doppler box or an abdomen) is detected again inside, never blanked whole.
        """
        start = time.perf_counter()
        frame = check_frame(frame)
        if not 1 <= int(bits_stored) <= 64:
            raise OcrError("ocr_bad_input", f"bits stored {bits_stored} out of range")
        rows, cols = frame.shape[:2]
        scale = choose_scale(rows, cols, self.scan_max_side, self.small_side, self.small_scale)
        # The stored values at scan resolution, resized once: a gray frame's display view is made from them
        # (a 3328x2560 resize costs 25-55 ms, measured), the contrast pass and the residual check read them.
        values = _display_values(frame, photometric, scale)
        view = self.views(frame, photometric, scale, int(bits_stored), values if frame.ndim == 2 else None)[0][1]
        vrows, vcols = view.shape[:2]
        gray8 = brightest_channel(view)
        regions = None if data_regions is None else [r.scale(scale, scale) for r in data_regions]
        anatomy = anatomy_mask(gray8, regions)
        state = _ScanState(anatomy, scale, rows, cols)

        wanted = self.contrast_pass == "always" or (self.contrast_pass == "wide" and _wide(frame, bits_stored))
        extent = _extent(anatomy, pad=MAX_MARK_HEIGHT)
        windows = [Rect(0, 0, vcols, vrows)]
        inked = stroke_mask(stroke_response(cv2.GaussianBlur(gray8, (0, 0), WINDOW_BLUR), WINDOW_STROKE),
                            anatomy, STROKE_MIN_DEVIATION)
        if self.windows and self.rotations == (0,):
            # The display view is only detected around its strokes (a mammogram's input shrinks from
            # 1024x788 to its text corners); where strokes are everywhere (textured tissue, test
            # patterns) or nowhere, it is detected whole, as before. Frames of more than 8 bits get
            # the contrast pass below as well.
            windows = stroke_windows(inked) or windows
        for window in windows:
            crop = view[window.y0 : window.y1, window.x0 : window.x1]
            found = [(item, _shift(item.rect, window).clip(vcols, vrows), False)
                     for item in self._detect(np.ascontiguousarray(crop), self._reader(state, window))]
            self._check_time(start)
            self._decide(found, view, state)
        if windows != [Rect(0, 0, vcols, vrows)]:
            self._columns(view, inked & ~anatomy, state, start)
        self._upright_pieces(view, state, start)
        if data_regions is None and self.windows and not _wide(frame, bits_stored):
            self._vertical_print(frame, view, state, start)
        current = view
        for rotation in self.rotations[1:] if windows == [Rect(0, 0, vcols, vrows)] else ():
            current = blank(current, state.view_rects + state.spared_view, self.pad_ratio)
            turns = (rotation // 90) % 4
            image = np.ascontiguousarray(np.rot90(current, turns))
            found = [(item, unrotate(item.rect, turns, vrows, vcols).clip(vcols, vrows), True)
                     for item in self._detect(image)]
            self._check_time(start)
            self._decide(found, view, state)
        if self.windows and scale < self.chrome_scale and max(rows, cols) < self.small_side and not _wide(frame, bits_stored):
            self._decide(self._chrome(frame, photometric, int(bits_stored), scale, state, chrome, start),
                         view, state)

        if wanted and extent is not None:
            # The whole frame, not only the anatomy's extent: print on a plate beside the breast can be
            # too faint for the display view (mg_window: 150 levels of 4096). The detector runs where
            # the strokes are (stroke_windows), or on the anatomy's extent where they are everywhere.
            # Authorised labels are painted over too: read once, they need no window here.
            cleaned = blank(values, state.view_rects + state.spared_view, self.pad_ratio)
            strokes = np.abs(stroke_values(cv2.GaussianBlur(cleaned, (0, 0), WINDOW_BLUR)))
            span = float(cleaned.max()) - float(cleaned.min())
            windows = stroke_windows(stroke_mask(strokes, anatomy, STROKE_MIN_SHARE * span)) if self.windows else None
            if windows != []:  # no window, no detection: the contrast view (~15 ms at 1024 px) is not made
                contrast = local_contrast(cleaned)
                found = []
                for window in [extent] if windows is None else windows:
                    crop = np.ascontiguousarray(contrast[window.y0 : window.y1, window.x0 : window.x1])
                    found += [(item, _shift(item.rect, window).clip(vcols, vrows), False)
                              for item in self._detect(crop, self._reader(state, window))]
                    self._check_time(start)
                self._decide(found, contrast, state, residual=True)
            for low, high in voi_windows:
                self._window_pass(values, photometric, (low, high), extent, state, start)

        if wanted and scale < 1.0:
            self._tissue_print(frame, photometric, values, state, start)
        for in_view, rect in state.doubtful:
            if any(same_block(in_view, other) for other in state.view_rects):
                state.masked.append(rect)
                state.view_rects.append(in_view)
                state.rejected -= 1
        if wanted and scale >= 1.0:  # after the block rule: a box beside print on tissue is not promoted by it
            self._level_print(frame, state, start)
            self._band_print(frame, state, start)
        if wanted:  # where the display view was detected in windows, whose edges can end a line early
            self._complete_lines(state, inked & ~anatomy)
        cleaned = blank(gray8, state.view_rects, self.pad_ratio)
        marks = text_marks(cleaned, anatomy, drawn_only=scale >= 1.0 and not _wide(frame, bits_stored))
        marks += dim_text_marks(blank(cleaned, marks, self.pad_ratio), anatomy)
        for mark in marks:
            if moved_inside_anatomy(mark, frame, state, chrome):
                continue
            if any(overlaps(mark, spared) for spared in state.spared_view):
                continue
            state.add_mark(to_full_resolution(mark, scale, self.pad_ratio, rows, cols), mark)
        if not _wide(frame, bits_stored):
            self._chrome_print(frame, state, chrome)
        elif scale < 1.0:
            self._fine_print(frame, photometric, blank(gray8, state.view_rects, self.pad_ratio), state)
            _bridge_pieces(state)

        self._residual_check(values, state)
        self._check_time(start)
        return ScanResult(
            masked=prune_contained([r for r in state.masked if r.area]),
            spared=state.spared,
            boxes_found=state.boxes,
            lowest_confidence=state.lowest,
            seconds=time.perf_counter() - start,
            recognised_masked_text=state.texts,
            rejected=state.rejected,
            marks=state.marks,
        )

    def _window_pass(self, values: np.ndarray, photometric: str, window: tuple[float, float], extent: Rect,
                     state: _ScanState, start: float) -> None:
        """The anatomy's extent detected as a viewer shows it through one of the file's VOI windows.

        Print a few tens of levels above brain or tissue is plain in the file's own window and a few gray
        levels high in the full-range views, where bone and air set the scale. Only narrow windows get a
        pass (at most VOI_WINDOW_MAX_SHARE of the frame's values): a wide one shows what the display view
        showed. Boxes are judged like the contrast pass's: on anatomy, masked only when they read as text."""
        low, high = window
        lowest, highest = float(values.min()), float(values.max())
        if high - low > VOI_WINDOW_MAX_SHARE * (highest - lowest) or high <= lowest or low >= highest:
            return
        inverted = photometric.upper() == "MONOCHROME1"
        stored = (lowest + highest) - values if inverted else values  # `values` are display-oriented
        view = ((np.clip(stored, low, high) - low) * (255.0 / (high - low)) + 0.5).astype(np.uint8)
        if inverted:
            view = 255 - view
        cleaned = blank(view, state.view_rects + state.spared_view, self.pad_ratio)
        vrows, vcols = cleaned.shape
        crop = np.ascontiguousarray(cleaned[extent.y0 : extent.y1, extent.x0 : extent.x1])
        found = [(item, _shift(item.rect, extent).clip(vcols, vrows), False)
                 for item in self._detect(crop, self._reader(state, extent))]
        self._check_time(start)
        self._decide(found, cleaned, state, residual=True)

    def _chrome(self, frame: np.ndarray, photometric: str, bits_stored: int, scale: float, state: _ScanState,
                memory: ChromeMemory | None, start: float) -> list[tuple[DetectedText, Rect, bool]]:
        """Detection on the chrome bands enlarged to `chrome_scale` (boxes in view coordinates): all bands
        on a file's first frame, then only the windows `memory` says changed (see deidcli.ocr.chrome).

        Only boxes on the background count here, read only when they could be an authorised word: boxes
        on anatomy were judged (read) by the frame's own pass, and reading them again enlarged cost more
        than the rest of the scan (measured: 1.9 s for one band of examples_rgb_color's Doppler frame).
        A box over an authorised label spared by that pass is not masked here either."""
        rows, cols = frame.shape[:2]
        vrows, vcols = state.anatomy.shape
        enlarge = self.chrome_scale
        bands = chrome_bands(state.anatomy, scale, rows, cols)
        reuse = memory is not None and memory.matches(frame)
        if reuse:
            live = state.frame_anatomy()
            kept, windows = memory.plan(frame, bands, live)
        else:
            kept, windows = [], bands
        big_cols, big_rows = round(cols * enlarge), round(rows * enlarge)
        windows = [fit_engine_grid(w.scale(enlarge, enlarge), big_cols, big_rows).scale(1 / enlarge, 1 / enlarge)
                   .clip(cols, rows) for w in windows]
        # Change windows that overlap are merged; bands are not: around an L-shaped sector their bounding
        # box is the whole frame (measured: one 960x720 detection instead of four strips).
        windows = merge_overlapping(windows) if reuse else sorted(set(windows))
        found = list(kept)
        limit = self._detect_kwargs.get("read_max_aspect")
        def read(rect: Rect) -> bool:
            return self.authorised is not None and (limit is None or not too_long(rect, limit))
        for window in windows:
            crop = frame[window.y0 : window.y1, window.x0 : window.x1]
            picture = np.ascontiguousarray(self.views(crop, photometric, enlarge, bits_stored)[0][1])
            for item in self._detect(picture, read):
                where = _shift(item.rect.scale(1 / enlarge, 1 / enlarge), window).clip(cols, rows)
                found.append(DetectedText(where, item.text, item.confidence))
            self._check_time(start)
        if memory is not None and not reuse:
            memory.remember(frame, bands, found)
        in_view = [(item, item.rect.scale(scale, scale).clip(vcols, vrows), False) for item in found]
        return [(item, rect, turned) for item, rect, turned in in_view
                if state.anatomy_share(rect) < ON_ANATOMY_SHARE and not any(overlaps(rect, s) for s in state.spared_view)]

    def _chrome_print(self, frame: np.ndarray, state: _ScanState, memory: ChromeMemory | None) -> None:
        """Rows of small print in the chrome of a screen (8-bit gray or colour) that nothing found so far,
        looked for as glyph components in the stored frame (deidcli.ocr.chrome_print) and masked unread.

        Stored pixels, not the scan's view: enlarged for the detector, 4-5 px letters blur into blobs
        (examples_ybr_color's `A` and `B`, which no detector view found). On a cine's later frames a row
        counts only where it was on the frame before (`memory`): print stays, speckle moves (measured on
        deid-data's ultrasound-multiframe: rows of speckle blobs near its sector's apex on 4 of 30 frames,
        never at the same place twice)."""
        gray = brightest_channel(frame)
        if gray.dtype != np.uint8:
            return
        rows, cols = gray.shape
        chrome = chrome_pixels(state.anatomy, state.scale, rows, cols)
        found_rows = print_rows(blank(gray, state.masked, 0.0), chrome)
        if memory is not None:
            found_rows = [row for row in found_rows if memory.static(frame, row.pad(1, 1).clip(cols, rows))]
            memory.previous = frame.copy()
        for found in found_rows:
            # The rows are the glyphs' own extent (components, not a detector's short box): one pixel more
            # takes their edges; the detector's padding took GREYSCALE_CINE's depth marker and ruler with `x3`.
            in_view = found.scale(state.scale, state.scale).clip(state.anatomy.shape[1], state.anatomy.shape[0])
            if any(overlaps(in_view, spared) for spared in state.spared_view):
                continue
            state.add_mark(found.pad(PRINT_MARGIN, PRINT_MARGIN).clip(cols, rows), in_view)

    def _tissue_print(self, frame: np.ndarray, photometric: str, values: np.ndarray, state: _ScanState,
                      start: float) -> None:
        """Print drawn over tissue, looked for where fine strokes crowd (`tissue_windows`) and detected there on
        the stored frame at TISSUE_SCALE, in its fine local contrast (TISSUE_STROKE): only boxes that read as
        text are masked (`_decide`: they lie on anatomy).

        Why: 40 px print 120 stored levels from dense tissue (30 at 12 bits) was left legible on a 3328x2560
        mammogram. At the scan's 1024 px its 4 px strokes are 1.2 px and the tissue's texture is as fine, so
        the contrast pass outlines blocks of texture; at half size, with a 7 px top-hat, the strokes stand out
        and the detector reads both lines (0.95-0.99) and nothing else. Half size over the whole breast would
        cost more than the scan itself; the windows keep it to the few places strokes crowd (none on the
        bench mammograms)."""
        rows, cols = state.rows, state.cols
        body = _extent(state.anatomy, pad=0)
        if body is None:
            return
        cleaned = blank(values, state.view_rects + state.spared_view, self.pad_ratio)
        span = float(cleaned.max()) - float(cleaned.min())
        strokes = np.abs(stroke_values(cleaned[body.y0 : body.y1, body.x0 : body.x1], TISSUE_FIND_STROKE))
        windows = [_shift(window, body) for window in tissue_windows(
            strokes, state.anatomy[body.y0 : body.y1, body.x0 : body.x1], STROKE_MIN_SHARE * span)]
        found: list[tuple[DetectedText, Rect, bool]] = []
        # The detector wants some field around a line (MIN_WINDOW, a multiple of its grid), at its own scale;
        # windows grown into each other are detected once.
        to_detector = TISSUE_SCALE / state.scale
        grids = merge_overlapping([fit_engine_grid(window.scale(to_detector, to_detector), round(cols * TISSUE_SCALE),
                                                   round(rows * TISSUE_SCALE)) for window in windows])
        for grid in grids:
            full = grid.scale(1 / TISSUE_SCALE, 1 / TISSUE_SCALE).clip(cols, rows)
            core = [window.scale(1 / state.scale, 1 / state.scale) for window in windows]
            for item, where in self._tissue_detect(frame, photometric, full, core, TISSUE_SCALE, TISSUE_STROKE):
                if not reads_as_text(item) and where.width >= 2 * where.height:
                    # A line the recogniser garbled (print whose tissue is brighter than it in places): read
                    # once more, larger, in a wider top-hat; what reads there replaces it.
                    around = where.pad(where.height, where.height).clip(cols, rows)
                    again = self._tissue_detect(frame, photometric, around, [where], TISSUE_RETRY_SCALE,
                                                TISSUE_RETRY_STROKE)
                    if any(reads_as_text(other) for other, _ in again):
                        item, where = next((other, at) for other, at in again if reads_as_text(other))
                in_view = where.scale(state.scale, state.scale).clip(state.anatomy.shape[1], state.anatomy.shape[0])
                # Text found before is masked (or spared) already: the frame here is not painted over, and
                # this pass's boxes, mapped twice, would add a larger box around the same line.
                if not any(overlaps(in_view, done) for done in state.view_rects + state.spared_view):
                    found.append((item, in_view, False))
            self._check_time(start)
        self._decide(found, values, state, residual=True)

    def _level_print(self, frame: np.ndarray, state: _ScanState, start: float) -> None:
        """Print drawn at one stored level over tissue, looked for in a picture of the pixels that share their level
        with their neighbours (`level_ink`) where such pixels crowd (`level_windows`), at the scan's scale: only boxes
        that read as text are masked (`_decide`: they lie on anatomy).

        Why: a date drawn 30 levels above an MR's tissue (of 600) was left legible, 0 % changed: in every contrast
        view its strokes are as strong as the tissue's own texture. But print is drawn, one value for every pixel of
        a stroke, while tissue noise seldom repeats a value between neighbours: in the level picture the date stands
        black on white and the detector reads it (measured on MR2_UNCI, explicit_VR-UN, MR-SIEMENS: 16-30 px print
        20-30 levels from tissue read at 0.93-1.0). Frames shown at or above their stored size only (CT, MR): the
        mammograms' fine print over tissue is `_tissue_print`'s, and a resampled frame has no single level."""
        if frame.ndim != 2:
            return
        rows, cols = state.rows, state.cols
        anatomy = state.frame_anatomy()
        ink = level_ink(frame) & anatomy
        picture = np.where(ink, 0, 255).astype(np.uint8)
        found: list[tuple[DetectedText, Rect, bool]] = []
        vcols, vrows = state.anatomy.shape[1], state.anatomy.shape[0]
        for window in level_windows(ink):
            grid = fit_engine_grid(window.scale(state.scale, state.scale), vcols, vrows)
            full = grid.scale(1 / state.scale, 1 / state.scale).clip(cols, rows)
            crop = resize(picture[full.y0 : full.y1, full.x0 : full.x1], state.scale)
            for item in self._detect(np.ascontiguousarray(crop), lambda _rect: True):
                # Half a text height longer at each end: the detector ends a line a glyph early on this picture too.
                line = item.rect.pad(min(item.rect.width, item.rect.height) // 2, 0)
                in_view = _shift(line, grid).clip(vcols, vrows)
                if not any(overlaps(in_view, done) for done in state.view_rects + state.spared_view):
                    found.append((item, in_view))
            self._check_time(start)
        for item, in_view in found:
            state.boxes += 1
            if (state.anatomy_share(in_view) >= ON_ANATOMY_SHARE and not reads_as_text(item)) or self.spares(item):
                state.rejected += 1
                continue
            # The print's own extent, not the padded box: its level is not the box's extreme, so the mask's fit
            # (deidcli.pixels.fit) cannot find its glyphs, and a padded box filled whole takes tissue with it.
            full = in_view.scale(1 / state.scale, 1 / state.scale)
            height = min(full.width, full.height)
            tight = level_extent(frame, ink, full.pad(height, 0).clip(cols, rows))  # the line's ends the box missed
            state.add_tissue_print(tight if tight is not None else
                                   to_full_resolution(in_view, state.scale, self.pad_ratio, rows, cols),
                                   in_view, item.text)

    def _band_print(self, frame: np.ndarray, state: _ScanState, start: float) -> None:
        """Faint print drawn at one stored level over textured or quantised tissue (deidcli.ocr.band_print): the
        windows where cells side by side agree on one outstanding level, detected in their band picture at
        BAND_SCALES; a box is masked only when it reads as text strictly (`reads_as_text(strict=True)`: three
        characters or more at 0.7), and then only the print's own extent in the band picture.

        Why: 10-12 px hairline print 40 levels from MR/CT tissue was left legible, 0 % changed: no other view reads
        it and `_level_print` gets no window there (see the module). Measured on the red team's variants: MR2_UNCI's
        and eCT_Supplemental's lines read and masked whole on three seeds, nothing added on the six clean bases.
        Frames shown at or above their stored size only (CT, MR; never mammograms or screens). Strict reading: on
        tissue the detector reads the band picture's texture as a stray "1" or "L" (0.5-0.9, measured on the
        clean bases), never as three characters."""
        if frame.ndim != 2 or frame.dtype.kind not in "iu":
            return
        rows, cols = state.rows, state.cols
        vcols, vrows = state.anatomy.shape[1], state.anatomy.shape[0]
        for band in band_lines(frame, state.frame_anatomy()):
            full = fit_engine_grid(band.window, cols, rows)
            crop = frame[full.y0 : full.y1, full.x0 : full.x1]
            picture = band_picture(crop, band)
            if (picture == 0).mean() > MAX_INK_SHARE:
                continue
            for enlarge in BAND_SCALES:
                for item in self._detect(np.ascontiguousarray(resize(picture, enlarge)), _line_shaped):
                    state.boxes += 1
                    if not reads_as_text(item, strict=True) or self.spares(item):
                        state.rejected += 1
                        continue
                    box = item.rect.scale(1 / enlarge, 1 / enlarge)
                    # BAND_LINE_REACH text heights longer at each end: the detector ends a line of this picture a few
                    # glyphs early or starts it late (read `8361` of `30758361`); the strokes' gaps end the print.
                    reach = BAND_LINE_REACH * min(box.width, box.height)
                    line = box.pad(reach, 0).clip(crop.shape[1], crop.shape[0])
                    tight = _shift(band_extent(crop, band, line, box) or box, full)
                    in_view = tight.scale(state.scale, state.scale).clip(vcols, vrows)
                    if any(overlaps(in_view, done) for done in state.view_rects + state.spared_view):
                        continue
                    state.add_tissue_print(tight, in_view, item.text)
                self._check_time(start)

    def _tissue_detect(self, frame: np.ndarray, photometric: str, full: Rect, core: list[Rect], scale: float,
                       stroke: int) -> list[tuple[DetectedText, Rect]]:
        """Detection (every box read) on `full` (frame pixels) at `scale`, in a local contrast of `stroke` pixels
        stretched by the strokes inside `core` (frame pixels); boxes in frame pixels, half a text height longer
        at each end (the detector ends lines early: the "1" of a date, 7 px, was left)."""
        rows, cols = frame.shape[:2]
        crop = resize(display_gray(frame[full.y0 : full.y1, full.x0 : full.x1], photometric), scale)
        strokes = stroke_values(crop, stroke)
        # Stretched by the strokes of the crowded cells only: the crop reaches the skin line, whose edge would set
        # the stretch (as in `local_contrast`) and leave the print faint.
        inside = np.zeros(crop.shape[:2], bool)
        for rect in core:
            r = _shift(rect, Rect(-full.x0, -full.y0, 0, 0)).scale(scale, scale).clip(crop.shape[1], crop.shape[0])
            inside[r.y0 : r.y1, r.x0 : r.x1] = True
        top = float(np.percentile(np.abs(strokes[inside] if inside.any() else strokes), TISSUE_PERCENTILE))
        picture = np.clip(128.0 + strokes * (127.0 / max(top, 1e-6)), 0, 255).astype(np.uint8)
        out = []
        for item in self._detect(np.ascontiguousarray(picture), lambda _rect: True):
            line = item.rect.pad(min(item.rect.width, item.rect.height) // 2, 0)
            out.append((item, _shift(line.scale(1 / scale, 1 / scale), full).clip(cols, rows)))
        return out

    def _columns(self, view: np.ndarray, strokes: np.ndarray, state: _ScanState, start: float) -> None:
        """Vertical lines of print on the background, detected on their window turned a quarter: the upright
        detection (windows, no turned pass) finds no box there, and text turned 90 degrees is too dense for
        `text_marks` once shrunk (its glyphs' blobs fail the flatness test).

        Why: a name and date written bottom to top along a mammogram's edge (36 px type, 11 px at 1024) kept
        64 % of its glyph pixels. A column is strokes joined down the line (`column_boxes`); nothing turned is
        looked for elsewhere, so upright frames pay one connected-components pass. A box is stretched to the
        column's own ends (`along`): the detector ended that line a glyph short (the first "M", 10 px left)."""
        vrows, vcols = view.shape[:2]
        for column in column_boxes(strokes):
            window = fit_engine_grid(column.pad(MAX_MARK_HEIGHT // 2, MAX_MARK_HEIGHT // 2), vcols, vrows)
            crop = view[window.y0 : window.y1, window.x0 : window.x1]
            crows, ccols = crop.shape[:2]
            found = []
            for turns in (3, 1):  # clockwise first: a line reading bottom to top comes out upright
                image = np.ascontiguousarray(np.rot90(crop, turns))
                # Only lines standing up in the view (lying in the turned picture): a block of upright lines
                # beside the column (a label plate's left edge) is the upright detection's, and turned back
                # with a turned pass's margins its boxes reached over the plate's edge into the air.
                found = [(item, along(_shift(unrotate(item.rect, turns, crows, ccols), window).clip(vcols, vrows),
                                      column), True)
                         for item in self._detect(image) if item.rect.width > item.rect.height]
                self._check_time(start)
                if found:
                    break
            self._decide(found, view, state)

    def _upright_pieces(self, view: np.ndarray, state: _ScanState, start: float) -> None:
        """Vertical lines the upright detection found a piece of, detected again along their column turned a quarter.

        Why: an upright detector reads a few glyphs of a vertical line as a short, tall box (`across`) and misses
        the rest: a cyan ID written top to bottom beside an ultrasound's colour bar was found as `706` of
        `670699058`, and its last digits, over the bar's grey scale, were left (35 % of its glyph pixels). Turned,
        the whole line lies along the detector's reading direction. Only boxes in the piece's own column count
        (`in_column`): the turned window holds upright print beside it too, which the upright detection judged.
        At most PIECE_WINDOWS windows a frame, so a frame full of tall boxes costs a bounded number of detections."""
        vrows, vcols = view.shape[:2]
        pieces, state.pieces = state.pieces, []
        windows = []
        for piece in pieces:
            reach = max(piece.height, PIECE_REACH * piece.width)
            windows.append(fit_engine_grid(piece.pad(piece.width, reach).clip(vcols, vrows), vcols, vrows))
        for window in merge_overlapping(windows)[:PIECE_WINDOWS]:
            inside = [piece for piece in pieces if overlaps(piece, window)]
            crop = view[window.y0 : window.y1, window.x0 : window.x1]
            crows, ccols = crop.shape[:2]
            found: list[tuple[DetectedText, Rect, bool]] = []
            for turns in (3, 1):  # clockwise first: a line reading bottom to top comes out upright
                image = np.ascontiguousarray(np.rot90(crop, turns))
                found = [(item, where, True) for item in self._detect(image, self._turned_reader(state, window, turns, crows, ccols))
                         if item.rect.width > item.rect.height
                         for where in [_shift(unrotate(item.rect, turns, crows, ccols), window).clip(vcols, vrows)]
                         if any(in_column(where, piece) for piece in inside)]
                self._check_time(start)
                if found:
                    break
            self._decide(found, view, state)

    def _vertical_print(self, frame: np.ndarray, view: np.ndarray, state: _ScanState, start: float) -> None:
        """Vertical lines of small print beside a screen's picture (no data regions), found as columns of glyph
        components in the frame's side bands and on the chrome between them (deidcli.ocr.chrome_columns.screen_zones)
        and detected there enlarged and turned a quarter; a box along a column is stretched to the column's ends
        and judged like any other (`_decide`: on anatomy only when it reads as text). Nothing is detected where no
        such column is."""
        rows, cols = state.rows, state.cols
        vrows, vcols = view.shape[:2]
        bands, chrome = screen_zones(state.frame_anatomy())
        for column in print_columns(frame, bands, chrome) + upright_lines(state.view_rects, state.scale, bands):
            found: list[tuple[DetectedText, Rect, bool]] = []
            for _ in range(1 + COLUMN_GROWTH):
                window = column_window(column, rows, cols)
                found = self._turned_column(frame, window, column, start)
                lines = [where for item, where in found if reads_as_text(item)]
                # A line read to the window's end may go on beyond it (its glyphs there did not stand out as a column).
                grown = Rect(column.x0, min([column.y0, *(w.y0 for w in lines)]), column.x1,
                             max([column.y1, *(w.y1 for w in lines)]))
                if not lines or not ((grown.y0 <= window.y0 + column.width and window.y0 > 0)
                                     or (grown.y1 >= window.y1 - column.width and window.y1 < rows)):
                    break
                column = grown
            self._decide([(item, along(where, column).scale(state.scale, state.scale).clip(vcols, vrows), True)
                          for item, where in found], view, state)

    def _turned_column(self, frame: np.ndarray, window: Rect, column: Rect, start: float) -> list[tuple[DetectedText, Rect]]:
        """Boxes (frame pixels) lying along `column`, detected in `window` of the frame enlarged to COLUMN_SCALE and
        turned a quarter, clockwise first (a line reading bottom to top comes out upright), then the other way
        when nothing read as text."""
        crop = resize(np.ascontiguousarray(frame[window.y0 : window.y1, window.x0 : window.x1]), COLUMN_SCALE)
        crows, ccols = crop.shape[:2]
        found: list[tuple[DetectedText, Rect]] = []
        for turns in (3, 1):
            found = []
            for item in self._detect(np.ascontiguousarray(np.rot90(crop, turns)), lambda _rect: True):
                where = _shift(unrotate(item.rect, turns, crows, ccols).scale(1 / COLUMN_SCALE, 1 / COLUMN_SCALE), window)
                if item.rect.width > item.rect.height and in_column(where, column):
                    # Across the line, the glyphs' own extent: the detector's box is a text height wider.
                    found.append((item, Rect(max(where.x0, column.x0), where.y0, min(where.x1, column.x1), where.y1)))
            self._check_time(start)
            if any(reads_as_text(item) for item, _ in found):
                break
        return found

    def _turned_reader(self, state: _ScanState, window: Rect, turns: int, rows: int, cols: int
                       ) -> Callable[[Rect], bool]:
        """`_reader` for a picture of `window` (rows x cols in the view) turned `turns` quarters."""
        read = self._reader(state, window)
        return lambda rect: read(unrotate(rect, turns, rows, cols))

    def _fine_print(self, frame: np.ndarray, photometric: str, cleaned: np.ndarray, state: _ScanState) -> None:
        """Print shrunk to thin bars by the scan's downscale, confirmed in the stored frame and masked unread
        (deidcli.ocr.fine_print). `cleaned` is the display view with what was found so far painted over.

        Why: 10-14 px hairline print on a 3328x2560 mammogram (3-4 px at 1024) was left legible, 0 % changed:
        too small for the detector and too solid for `text_marks` at scan resolution."""
        rows, cols = state.rows, state.cols
        monochrome1 = photometric.upper() == "MONOCHROME1"

        def picture(rect: Rect) -> np.ndarray:
            # The crop's own value range, linearly: a log or window over the frame's range lifts the quantum
            # noise of air, at full resolution, into strokes everywhere (no field is flat any more).
            shown = minmax(frame[rect.y0 : rect.y1, rect.x0 : rect.x1].astype(np.float32))
            return 255 - shown if monochrome1 else shown

        for bar in fine_bars(cleaned, state.anatomy):
            if _covered(bar, state.view_rects) or any(overlaps(bar, spared) for spared in state.spared_view):
                continue
            found = confirmed_print(picture, bar, state.scale, rows, cols)
            if found is None:
                continue
            in_view = found.scale(state.scale, state.scale).clip(state.anatomy.shape[1], state.anatomy.shape[0])
            state.add_mark(found.pad(PRINT_MARGIN, PRINT_MARGIN).clip(cols, rows), in_view)

    def _complete_lines(self, state: _ScanState, strokes: np.ndarray) -> None:
        """Masked boxes on the background grown along their line while strokes go on (gaps under a
        text height), by at most LINE_GROWTH text heights each way: detectors end lines early, and
        the end of a line of small print is too small for a mark of its own (measured: the last "50"
        of a 17 px date on a 4096-row mammogram). Bounded, because chrome beside print (scale bars,
        plate edges) is strokes too: unbounded, it grew an ultrasound cine's masks from 16 to 23 %."""
        rows, cols = strokes.shape
        for rect in list(state.view_rects):
            if rect in state.mark_rects or state.anatomy_share(rect) >= ON_ANATOMY_SHARE:
                continue
            height = max(3, min(rect.width, rect.height))
            band = strokes[max(0, rect.y0) : min(rows, rect.y1)]
            if band.size == 0 or rect.height > 2 * rect.width:
                continue
            inked = band.any(axis=0)
            reach = int(LINE_GROWTH * height)
            x0, x1 = rect.x0, rect.x1
            while x1 < min(cols, rect.x1 + reach) and inked[x1 : min(cols, x1 + height)].any():
                x1 = x1 + int(np.flatnonzero(inked[x1 : x1 + height])[-1]) + 1
            while x0 > max(0, rect.x0 - reach) and inked[max(0, x0 - height) : x0].any():
                x0 = max(0, x0 - height) + int(np.flatnonzero(inked[max(0, x0 - height) : x0])[0])
            x0, x1 = max(x0, rect.x0 - reach), min(x1, rect.x1 + reach)
            # A label spared beside the line (deidcli.ocr.label_split) stays: no growth, nor padding, towards it.
            beside = [s for s in state.spared_view if s.y0 < rect.y1 and rect.y0 < s.y1]
            left = any(rect.x0 - reach <= s.x1 <= rect.x0 for s in beside)
            right = any(rect.x1 <= s.x0 <= rect.x1 + reach for s in beside)
            x0, x1 = rect.x0 if left else x0, rect.x1 if right else x1
            if (x0, x1) != (rect.x0, rect.x1):
                grown = Rect(x0, rect.y0, x1, rect.y1)
                full = to_full_resolution(grown, state.scale, self.pad_ratio, state.rows, state.cols)
                state.masked.append(_padding_stops(full, grown, state.scale, left=left, right=right))
                state.view_rects.append(grown)

    def _check_time(self, start: float) -> None:
        if time.perf_counter() - start > self.timeout_s:
            raise OcrError("ocr_timeout", f"scan exceeded {self.timeout_s:g} s")

    def _decide(
        self, found: list[tuple[DetectedText, Rect, bool]], view: np.ndarray, state: _ScanState,
        residual: bool = False, depth: int = 0,
    ) -> list[Rect]:
        """`view` is the picture the boxes were found in (view coordinates; for the residual pass,
        the local-contrast picture), used to look inside over-large boxes."""
        """Apply the geometry rules to detector boxes (view coordinates); returns the boxes handled."""
        seen: list[Rect] = []
        for item, in_view, _turned in found:
            state.boxes += 1
            if item.text:
                state.lowest = item.confidence if state.lowest is None else min(state.lowest, item.confidence)
            if in_view.area == 0 or (residual and (_covered(in_view, state.view_rects)
                                                  or _covered(in_view, state.spared_view))):
                continue  # handled by the first pass: masked, or spared as an authorised word read there
            on_anatomy = state.anatomy_share(in_view) >= ON_ANATOMY_SHARE
            if min(in_view.width, in_view.height) > MAX_MARK_HEIGHT and on_anatomy and not reads_as_text(item):
                if depth == 0:
                    inside = self._inside(view, in_view, state, contrast_view=residual)
                    seen.extend(self._decide(inside, view, state, residual, depth + 1))
                state.rejected += 1
                continue
            across = item.rect.height > 1.5 * item.rect.width
            rect = to_full_resolution(in_view, state.scale, self.pad_ratio, state.rows, state.cols, across)
            if rect.area == 0:
                continue
            if self.spares(item):
                state.spared.append((rect, item.text))
                state.spared_view.append(in_view)
                seen.append(in_view)
            elif not on_anatomy and (parts := self._split_at_label(item, in_view, view, state)):
                seen.extend(parts)
            elif not on_anatomy or reads_as_text(item):
                state.masked.append(rect)
                state.view_rects.append(in_view)
                state.texts.append(item.text)
                seen.append(in_view)
                if across and not _turned and in_view.height <= PIECE_MAX_ASPECT * in_view.width:
                    state.pieces.append(in_view)
            else:
                state.rejected += 1
                state.doubtful.append((in_view, rect))
        return seen

    def _split_at_label(self, item: DetectedText, line: Rect, view: np.ndarray, state: _ScanState) -> list[Rect]:
        """A background line that starts or ends with an authorised label, cut at the wide gap beside it
        (deidcli.ocr.label_split): the label spared, the rest of the line masked up to the gap's middle.
        Returns the two boxes (view pixels), or [] when no cut is certain (the caller masks the whole line).

        Why: `L CC` followed by a name on one line was masked with the name (the detector's one box is too
        long to be an authorised word). The label's part is detected and read on its own; it is spared only
        when it reads as one authorised word of two characters or more (a lone letter before a name is more
        likely an initial) and the box read holds all the part's ink. Lines only (wider than tall)."""
        if self.authorised is None or not len(self.authorised) or line.height >= line.width or self.spares(item):
            return []
        gray = brightest_channel(view)
        for cut in cuts(gray, line, LABEL_INK_ASPECT * self.authorised.longest):
            window = cut.window
            crop = np.ascontiguousarray(gray[window.y0 : window.y1, window.x0 : window.x1])
            read = self._detect(crop, lambda _rect: True)
            if len(read) != 1 or not self.spares(read[0]) or len(normalise(read[0].text)) < 2:
                continue
            if not covers_ink(gray, window, _shift(read[0].rect, window)):
                continue
            rest = to_full_resolution(cut.rest, state.scale, self.pad_ratio, state.rows, state.cols)
            # The rest's padding stops at the gap's middle: past it lies the label.
            label_left = cut.rest.x0 > line.x0
            state.masked.append(_padding_stops(rest, cut.rest, state.scale, left=label_left, right=not label_left))
            state.view_rects.append(cut.rest)
            state.texts.append(item.text)
            label = to_full_resolution(cut.label, state.scale, self.pad_ratio, state.rows, state.cols)
            state.spared.append((label, read[0].text))
            state.spared_view.append(cut.label)
            return [cut.rest, cut.label]
        return []

    def _reader(self, state: _ScanState, origin: Rect, scale: float = 1.0) -> Callable[[Rect], bool]:
        """Which boxes to recognise (coordinates relative to `origin` in the view): those on anatomy,
        where only what reads as text is masked, and, when an allow-list exists, every box that
        could be an authorised word. Background boxes are masked unread: reading costs more
        than detecting."""
        def read(rect: Rect) -> bool:
            shifted = _shift(rect.scale(1 / scale, 1 / scale) if scale != 1.0 else rect, origin)
            if state.anatomy_share(shifted) >= ON_ANATOMY_SHARE:
                return True
            limit = self._detect_kwargs.get("read_max_aspect")
            return self.authorised is not None and (limit is None or not too_long(rect, limit))
        return read

    def _inside(self, view: np.ndarray, box: Rect, state: _ScanState, contrast_view: bool = False,
                ) -> list[tuple[DetectedText, Rect, bool]]:
        """Detection again inside an over-large box, on its local-contrast view enlarged x2 (the
        lines it holds are small at scan resolution): the text lines, never the box itself."""
        crop = view[box.y0 : box.y1, box.x0 : box.x1]
        gray = brightest_channel(crop)
        picture = resize(gray if contrast_view else local_contrast(gray), INSIDE_SCALE)
        read = self._reader(state, box, INSIDE_SCALE)
        out = []
        for item in self._detect(picture, read):
            shifted = _shift(item.rect.scale(1 / INSIDE_SCALE, 1 / INSIDE_SCALE), box).clip(box.x1, box.y1)
            out.append((item, shifted, False))
        return out

    def _residual_check(self, values: np.ndarray, state: _ScanState) -> None:
        """Detect again around the masked boxes on the cleaned frame (local-contrast view). Text read
        there is masked; text read again after that means the frame cannot be trusted clean
        (OcrError 'ocr_residual_text': the file is quarantined)."""
        vrows, vcols = values.shape[:2]
        around_these = [r for r in state.view_rects if r not in state.mark_rects]  # marks are masked unread
        for round_ in range(2):
            if not around_these:
                return
            cleaned = blank(values, state.view_rects, self.pad_ratio)
            left: list[tuple[Rect, DetectedText]] = []
            for around in neighbourhoods(around_these, vcols, vrows):
                crop = local_contrast(cleaned[around.y0 : around.y1, around.x0 : around.x1])
                for item in self._detect(crop):
                    where = _shift(item.rect, around).clip(vcols, vrows)
                    if _covered(where, state.view_rects) or any(overlaps(where, s) for s in state.spared_view):
                        continue
                    if reads_as_text(item, strict=True):
                        left.append((where, item))
            if left and round_ == 1:
                raise OcrError("ocr_residual_text", "text still readable next to masked text after two passes")
            around_these = []
            for where, item in left:
                state.masked.append(to_full_resolution(where, state.scale, self.pad_ratio, state.rows, state.cols))
                state.view_rects.append(where)
                state.texts.append(item.text)
                around_these.append(where)


#: Pieces of one line: masks on the background whose rows overlap by this share of the lower one's height and
#: whose heights differ by at most BRIDGE_HEIGHT_RATIO, at most one height apart (a word space is half of one).
BRIDGE_OVERLAP = 0.6
BRIDGE_HEIGHT_RATIO = 1.6


def _bridge_pieces(state: _ScanState) -> None:
    """The gap between two masked pieces of one line of print on the background masked too (large frames shrunk
    for the scan: mammograms).

    Why: small print is often found in pieces (the detector's box, marks, a confirmed bar), each fitted to what it
    saw; a glyph between two pieces that none of them took was left (`1` of `1981` between an ID and a date, a
    planted variant of red team 4's mammograms: 91 % of the line masked, the rest legible). The gap lies on the
    background between masks of the same rows, so masking it costs air, never anatomy; not over a spared label."""
    pieces = [(view, full) for view, full in zip(state.view_rects, state.masked, strict=False)
              if view.width > view.height and state.anatomy_share(view) < ON_ANATOMY_SHARE]
    for a_view, a in pieces:
        for b_view, b in pieces:
            if not a.x1 < b.x0:
                continue
            low, high = sorted((a.height, b.height))
            overlap = min(a.y1, b.y1) - max(a.y0, b.y0)
            if high > BRIDGE_HEIGHT_RATIO * low or overlap < BRIDGE_OVERLAP * low or b.x0 - a.x1 > low:
                continue
            bridge_view = Rect(a_view.x1, min(a_view.y0, b_view.y0), max(a_view.x1, b_view.x0), max(a_view.y1, b_view.y1))
            if any(overlaps(bridge_view.pad(1, 0), spared) for spared in state.spared_view):
                continue
            if state.anatomy_share(bridge_view) >= ON_ANATOMY_SHARE:
                continue
            state.add_mark(Rect(a.x1, min(a.y0, b.y0), b.x0, max(a.y1, b.y1)), bridge_view)


def _padding_stops(full: Rect, view: Rect, scale: float, *, left: bool, right: bool) -> Rect:
    """`full` (frame pixels: `view` at full resolution, padded) with its padding stopped at `view`'s own left
    and/or right edge: a spared label lies beyond that edge, and the mask must not pad over it."""
    return Rect(max(full.x0, math.ceil(view.x0 / scale)) if left else full.x0, full.y0,
                min(full.x1, int(view.x1 / scale)) if right else full.x1, full.y1)


def enclosed(anatomy: np.ndarray, rect: Rect) -> bool:
    """Whether anatomy lies on all four sides of `rect` (view coordinates): a dark chamber or vessel inside
    the picture, not the chrome around it."""
    x0, y0, x1, y1 = rect.x0, rect.y0, rect.x1, rect.y1
    return bool(anatomy[:y0, x0:x1].any() and anatomy[y1:, x0:x1].any()
                and anatomy[y0:y1, :x0].any() and anatomy[y0:y1, x1:].any())


def moved_inside_anatomy(mark: Rect, frame: np.ndarray, state: _ScanState, memory: ChromeMemory | None) -> bool:
    """A text-like mark (view coordinates) enclosed by anatomy on a cine's later frame whose pixels changed
    since the frame before: speckle in a dark chamber, not print (masked unread, it must not cost anatomy).

    Why: on deid-data's ultrasound-multiframe the marks pass took blobs of speckle in the heart's dark
    chambers on 14 of 30 frames (12-800 px each, never at the same place twice), 0.8 % of the file's
    picture. Burned-in print stays put from frame to frame; the first frame of a cine and single frames
    have no frame before and keep every mark."""
    if memory is None or memory.previous is None or not enclosed(state.anatomy, mark):
        return False
    full = mark.scale(1 / state.scale, 1 / state.scale).clip(state.cols, state.rows)
    return full.area > 0 and not memory.static(frame, full)


#: A column of print: strokes joined down the line at least COLUMN_LENGTH times as tall as wide, and no wider
#: than a tall line of print.
COLUMN_LENGTH = 4
#: Strokes of one column are joined over gaps of this many scan pixels (the space between turned glyphs).
COLUMN_GAP = 7


def column_boxes(strokes: np.ndarray) -> list[Rect]:
    """Tall, thin clusters of strokes (view pixels): where a line of print may run vertically."""
    joined = cv2.morphologyEx(strokes.astype(np.uint8), cv2.MORPH_CLOSE, np.ones((COLUMN_GAP, 3), np.uint8))
    # Outer contours' boxes: on a sparse mask 30x cheaper than labelling every pixel (connected components).
    contours, _ = cv2.findContours(joined, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    boxes = (cv2.boundingRect(contour) for contour in contours)
    return [Rect(x, y, x + w, y + h) for x, y, w, h in boxes if MIN_MARK_HEIGHT < w <= MAX_MARK_HEIGHT and h >= COLUMN_LENGTH * w]


#: A vertical piece's column is detected this many of the piece's widths (its text height) above and below it.
PIECE_REACH = 6
#: A vertical box at most this many times taller than wide is a piece of a line (2-4 glyphs: `706` of a 9-digit ID
#: was 14x28); a longer one is a whole line the upright detection found (a label along a mammogram's edge, 36x190).
PIECE_MAX_ASPECT = 4.0
#: Turned detections of vertical pieces per frame at most (`TextScanner._upright_pieces`).
PIECE_WINDOWS = 4


def in_column(box: Rect, piece: Rect) -> bool:
    """Whether `box` stands in the column of the vertical `piece`: at least half of the narrower one's width shared."""
    shared = min(box.x1, piece.x1) - max(box.x0, piece.x0)
    return shared * 2 >= min(box.width, piece.width)


def along(box: Rect, column: Rect) -> Rect:
    """A box found in a column stretched to the column's top and bottom (the strokes' own extent, not more)."""
    if not overlaps(box, column):
        return box
    return Rect(box.x0, min(box.y0, column.y0), box.x1, max(box.y1, column.y1))


def neighbourhoods(rects: list[Rect], cols: int, rows: int) -> list[Rect]:
    """The surroundings of masked boxes (3 text heights sideways, 2 up and down), merged where they
    touch, so the residual check costs one small detection per cluster of text, not one per box. The canvas
    spans only the surroundings' bounding box (the same components, shifted): a mammogram's text sits in
    its corners, and labelling the whole 1024 px view cost ~3 ms for nothing."""
    arounds = []
    for rect in rects:
        height = max(4, min(rect.width, rect.height))
        arounds.append(rect.pad(3 * height, 2 * height).clip(cols, rows))
    if not arounds:
        return []
    x0, y0 = min(a.x0 for a in arounds), min(a.y0 for a in arounds)
    x1, y1 = max(a.x1 for a in arounds), max(a.y1 for a in arounds)
    canvas = np.zeros((max(0, y1 - y0), max(0, x1 - x0)), np.uint8)
    for around in arounds:
        canvas[around.y0 - y0 : around.y1 - y0, around.x0 - x0 : around.x1 - x0] = 1
    if canvas.size == 0:
        return []
    count, _, stats, _ = cv2.connectedComponentsWithStats(canvas, connectivity=4)
    return [Rect(int(x) + x0, int(y) + y0, int(x + w) + x0, int(y + h) + y0) for x, y, w, h, _ in stats[1:count]]


#: Ink width per character of the longest authorised word a line's end may be to be read as a label of its own
#: (deidcli.ocr.label_split): capitals with their spacing are 0.6-0.9 of their height wide.
LABEL_INK_ASPECT = 1.0

#: Where print can be: a pixel is a stroke from STROKE_NOISE_FACTOR x the median stroke response of
#: its side (anatomy or background: their textures differ; the median, not a higher percentile, since
#: print can fill a tenth of a mammogram's background) and at least STROKE_MIN_DEVIATION 8-bit levels
#: on the display view (fainter print is the contrast pass's), or STROKE_MIN_SHARE of the value span
#: in stored values (mg_window's faint line: 150 of 4096 levels, 3.7 %).
STROKE_NOISE_FACTOR = 5.0
STROKE_MIN_DEVIATION = 16
STROKE_MIN_SHARE = 0.01

#: A VOI window wider than this share of a frame's values gets no pass of its own (deidcli.pixels.voi):
#: it shows what the display view showed. A head CT's 400 of ~5800 stored levels is 0.07.
VOI_WINDOW_MAX_SHARE = 0.5
#: Strokes are counted in cells of this many pixels square; a cell with fewer than CELL_MIN_STROKE
#: stroke pixels holds noise, not print.
CELL = 8
CELL_MIN_STROKE = 6
#: Above this share of the picture, or this many windows, the whole picture is detected at once.
WINDOWS_MAX_SHARE = 0.4
WINDOWS_MAX_COUNT = 12


def stroke_mask(strokes: np.ndarray, anatomy: np.ndarray, minimum: float) -> np.ndarray:
    """Where a stroke response stands out like print: each pixel judged against the texture of its own
    side, anatomy or background (STROKE_NOISE_FACTOR x that side's median response, and `minimum`).
    8-bit responses take their medians from histograms (deidcli.ocr.levels: the same values, no partition)."""
    marks = np.zeros(strokes.shape, bool)
    counts = None
    if strokes.dtype == np.uint8 and strokes.ndim == 2:
        whole, on_anatomy = levels.histogram(strokes), levels.histogram(strokes, anatomy)
        counts = (on_anatomy, whole - on_anatomy)
    for index, side in enumerate((anatomy, ~anatomy)):
        if side.any():
            middle = levels.median(counts[index]) if counts is not None else levels.float_median(strokes[side])
            floor = max(minimum, STROKE_NOISE_FACTOR * middle)
            marks |= side & (strokes >= floor)
    return marks


def stroke_windows(strokes: np.ndarray) -> list[Rect] | None:
    """Where a stroke mask (True: a pixel standing out from its surroundings like print) has strokes,
    as windows to run the detector on.

    Why: the detector costs the same on tissue or air as on print (~0.4 s for a breast at 1024 px),
    while print is a cluster of strokes well above the picture's own texture. Cells holding strokes get
    a window reaching half a tall line above and below and a full one sideways (the detector needs the
    ends of a line and some field around it); windows that touch merge. When strokes are everywhere
    (textured tissue, vessels, speckle) the windows would cover most of the picture: then None, and the
    caller detects a larger part as before. No stroke, no window: a flat picture holds no print.
    """
    rows, cols = strokes.shape[:2]
    strong = cell_counts(strokes, CELL) >= CELL_MIN_STROKE
    if not strong.any():
        return []
    reach_y, reach_x = -(-MAX_MARK_HEIGHT // (2 * CELL)), -(-MAX_MARK_HEIGHT // CELL)
    windows = merge_overlapping([fit_engine_grid(window, cols, rows)
                                 for window in cell_windows(strong, CELL, reach_y, reach_x, 4)])
    if len(windows) > WINDOWS_MAX_COUNT or sum(w.area for w in windows) > WINDOWS_MAX_SHARE * rows * cols:
        return None
    return windows


#: Print over tissue (`TextScanner._tissue_print`): strokes found with a top-hat of TISSUE_FIND_STROKE scan
#: pixels (the scan's 15 takes the tissue's texture for strokes too); a cell needs TISSUE_CELL_STROKE stroke pixels
#: of its 64 (measured at 8 px cells: lines of 40 px print over tissue 20-40, the densest texture of a
#: synthetic breast 12-19); at most TISSUE_MAX_WINDOWS windows covering TISSUE_MAX_SHARE of the picture, or
#: none is detected (texture everywhere). Detected at TISSUE_SCALE of the stored frame with a top-hat of
#: TISSUE_STROKE pixels (bench: 0.5 and 7 read both planted lines; 0.31, the scan's own scale, read neither).
TISSUE_FIND_STROKE = 5
TISSUE_EDGE = 6
TISSUE_CELL_STROKE = 20
TISSUE_MAX_WINDOWS = 6
TISSUE_MAX_SHARE = 0.1
TISSUE_SCALE = 0.5
TISSUE_STROKE = 7
#: The percentile of the crowded cells' stroke response shown at full swing.
TISSUE_PERCENTILE = 99.5
#: A line found there that does not read as text is read again at this scale with this top-hat (measured on a
#: planted mammogram: "MAEAO" 0.32 at 0.5 and 7, "MBEKIHABC" 0.92 at 0.75 and 9).
TISSUE_RETRY_SCALE = 0.75
TISSUE_RETRY_STROKE = 9


def tissue_windows(strokes: np.ndarray, anatomy: np.ndarray, minimum: float) -> list[Rect]:
    """Windows (view pixels) around the cells of the anatomy where fine strokes (`strokes`: a stroke response)
    crowd like print; none when there are more than TISSUE_MAX_WINDOWS or they cover over TISSUE_MAX_SHARE.

    A stroke stands out like `stroke_mask`'s (STROKE_NOISE_FACTOR x the anatomy's median response, and `minimum`),
    the median taken on every fourth pixel each way: the full median cost 20 ms a mammogram, more than the rest."""
    rows, cols = strokes.shape[:2]
    # Not within TISSUE_EDGE pixels of the anatomy's outline: the skin line is a crowd of fine strokes too (a
    # window on it in one of the team's synthetic mammograms), and print there is the background passes'.
    inner = cv2.erode(anatomy.astype(np.uint8), np.ones((2 * TISSUE_EDGE + 1,) * 2, np.uint8)).astype(bool)
    sample = strokes[::4, ::4][inner[::4, ::4]]
    if sample.size == 0:
        return []
    floor = max(minimum, STROKE_NOISE_FACTOR * levels.float_median(sample))
    crowded = cell_counts((strokes >= floor) & inner, CELL) >= TISSUE_CELL_STROKE
    return crowded_windows(crowded, rows, cols, TISSUE_MAX_WINDOWS, TISSUE_MAX_SHARE)


def crowded_windows(crowded: np.ndarray, rows: int, cols: int, max_windows: int, max_share: float) -> list[Rect]:
    """Windows (pixels of a rows x cols picture) around the `crowded` cells (a CELL grid), merged where they overlap;
    none when there are more than `max_windows` or they cover over `max_share` of the picture: a crowd that
    large is the picture's own texture, which a bounded pass would detect whole."""
    if not crowded.any():
        return []
    windows = merge_overlapping([window.clip(cols, rows) for window in cell_windows(crowded, CELL, 2, 4, 8)])
    if len(windows) > max_windows or sum(w.area for w in windows) > max_share * rows * cols:
        return []
    return windows


#: Print drawn at one level (`level_ink`): a pixel is ink where at least LEVEL_NEIGHBOURS of its 4 neighbours hold its
#: exact value and it differs by LEVEL_CONTRAST or more from the mean of the LEVEL_FIELD square around it (a flat
#: field is not ink, print on it is). A cell of CELL pixels square with LEVEL_CELL_INK ink pixels holds print or a
#: drawn edge; at most LEVEL_MAX_WINDOWS windows covering LEVEL_MAX_SHARE of the frame, or none (quantised frames,
#: flat everywhere, would be detected whole).
LEVEL_NEIGHBOURS = 2
LEVEL_CONTRAST = 3
LEVEL_FIELD = 15
LEVEL_CELL_INK = 24
LEVEL_MAX_WINDOWS = 8
LEVEL_MAX_SHARE = 0.15


def level_ink(frame: np.ndarray) -> np.ndarray:
    """Pixels of a gray frame (stored values) drawn at one level: equal to LEVEL_NEIGHBOURS of their 4 neighbours,
    LEVEL_CONTRAST away from their field's mean, and not at the frame's lowest or highest value (clipped air or
    bone is flat by clipping, not drawn)."""
    values = frame.astype(np.float32, copy=False)
    padded = np.pad(values, 1, mode="edge")
    same = ((padded[1:-1, :-2] == values).astype(np.uint8) + (padded[1:-1, 2:] == values)
            + (padded[:-2, 1:-1] == values) + (padded[2:, 1:-1] == values))
    field = cv2.boxFilter(values, -1, (LEVEL_FIELD, LEVEL_FIELD))
    return ((same >= LEVEL_NEIGHBOURS) & (np.abs(values - field) >= LEVEL_CONTRAST)
            & (values > values.min()) & (values < values.max()))


def level_extent(frame: np.ndarray, ink: np.ndarray, rect: Rect) -> Rect | None:
    """The box (frame pixels, one pixel of antialiasing around) of the pixels inside `rect` at the commonest level of
    its `level_ink`: the print's own extent; None when `rect` holds no ink."""
    crop = frame[rect.y0 : rect.y1, rect.x0 : rect.x1]
    inked = ink[rect.y0 : rect.y1, rect.x0 : rect.x1]
    if not inked.any():
        return None
    level, _ = commonest_row(crop[inked].reshape(-1, 1))
    ys, xs = np.nonzero(inked & (crop == level[0]))
    return Rect(rect.x0 + int(xs.min()), rect.y0 + int(ys.min()), rect.x0 + int(xs.max()) + 1,
                rect.y0 + int(ys.max()) + 1).pad(1, 1).clip(frame.shape[1], frame.shape[0])


def level_windows(ink: np.ndarray) -> list[Rect]:
    """Windows (frame pixels) around the cells where `level_ink` crowds; none when there are more than
    LEVEL_MAX_WINDOWS or they cover over LEVEL_MAX_SHARE of the frame."""
    rows, cols = ink.shape
    return crowded_windows(cell_counts(ink, CELL) >= LEVEL_CELL_INK, rows, cols, LEVEL_MAX_WINDOWS, LEVEL_MAX_SHARE)


def _line_shaped(rect: Rect) -> bool:
    """Whether a box of a band picture may hold three characters (the strict reading `_band_print` asks for):
    lying, at least BAND_LINE_ASPECT times as wide as tall. The others, texture specks, are not read: a band
    picture over explicit_VR-UN's bowel gas gave 137 boxes, 6.8 s of reading (measured)."""
    return rect.width >= BAND_LINE_ASPECT * rect.height


#: Lying boxes of three characters or more are wider than this many heights (the detector's boxes are tall: "111"
#: at 12 px ~ 1.5).
BAND_LINE_ASPECT = 1.2
#: How far (text heights, each way) `_band_print` looks along a line read in part for the rest of its strokes.
BAND_LINE_REACH = 3
#: The band pictures of `_band_print` are detected at these enlargements (measured on eCT_Supplemental: some 1 px
#: strokes of 10-12 px print read only at 2x, some only at 1x).
BAND_SCALES = (1.0, 2.0)


#: The DB detector rounds each side of its input to a multiple of this, stretching what it is given.
ENGINE_GRID = 32
#: Smallest window side: the detector's deepest features are 1/32 of its input, and on a few of them
#: it loses print it finds in a larger picture (measured: a vertical date on a 4096-row mammogram,
#: found in the whole frame, was lost in a 160x128 window and found again in 256x320).
MIN_WINDOW = 256


def fit_engine_grid(rect: Rect, cols: int, rows: int) -> Rect:
    """`rect` grown to sides that are multiples of ENGINE_GRID and at least MIN_WINDOW, inside the picture
    where it allows: the detector would otherwise stretch a 48-row window to 64 rows, and print a few
    pixels tall is found or missed by such a stretch (measured: the second 17 px line of mg_4096)."""
    def span(lo: int, hi: int, size: int) -> tuple[int, int]:
        want = max(MIN_WINDOW, -(-(hi - lo) // ENGINE_GRID) * ENGINE_GRID)
        if want >= size:
            return 0, size
        lo = max(0, min(lo - (want - (hi - lo)) // 2, size - want))  # centred where the picture allows
        return lo, lo + want
    x0, x1 = span(rect.x0, rect.x1, cols)
    y0, y1 = span(rect.y0, rect.y1, rows)
    return Rect(x0, y0, x1, y1)


def merge_overlapping(rects: list[Rect]) -> list[Rect]:
    """Rectangles that overlap replaced by their bounding box, until none overlaps (so no part of the
    picture is detected twice)."""
    merged = list(rects)
    changed = True
    while changed:
        changed = False
        for i, a in enumerate(merged):
            for j in range(i + 1, len(merged)):
                b = merged[j]
                if overlaps(a, b):
                    merged[i] = enclosing((a, b))
                    del merged[j]
                    changed = True
                    break
            if changed:
                break
    return merged


def _extent(mask: np.ndarray, pad: int) -> Rect | None:
    """The bounding box of a mask's True pixels, padded and clipped (None when the mask is empty)."""
    ys = np.flatnonzero(mask.any(axis=1))
    if ys.size == 0:
        return None
    xs = np.flatnonzero(mask.any(axis=0))
    box = Rect(int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1)
    return box.pad(pad, pad).clip(mask.shape[1], mask.shape[0])


def _shift(rect: Rect, origin: Rect) -> Rect:
    """A rectangle found in a crop, in the coordinates of the picture the crop was cut from."""
    return Rect(rect.x0 + origin.x0, rect.y0 + origin.y0, rect.x1 + origin.x0, rect.y1 + origin.y0)


def _wide(frame: np.ndarray, bits_stored: int) -> bool:
    """More than 8 bits of gray: text can hide above or inside the VOI window (the contrast pass's job)."""
    return frame.ndim == 2 and (int(bits_stored) > 8 or frame.dtype.itemsize > 1)


def same_block(box: Rect, text: Rect) -> bool:
    """Whether `box` is another line of the text block `text` belongs to: a similar height, the
    same column (overlapping, or less than one height apart) and at most two lines above or below.
    A line the recogniser garbled (text over tissue) is still masked when its neighbours read."""
    height, other = min(box.width, box.height), min(text.width, text.height)
    if not 0.6 * other <= height <= 1.6 * other:
        return False
    gap_x = max(text.x0 - box.x1, box.x0 - text.x1, 0)
    centre_gap = abs((box.y0 + box.y1) - (text.y0 + text.y1)) / 2
    return gap_x <= other and centre_gap <= 2.2 * other


#: Symbols that count as characters of print: no tissue reads as a per cent sign, and the grey-scale
#: labels of a test pattern ("0%", "5%": one digit each) were left on it.
TEXT_SYMBOLS = frozenset("%")


def reads_as_text(found: DetectedText, strict: bool = False) -> bool:
    """Whether a detection on anatomy reads as text: two or more letters/digits (or per cent signs) read
    with fair confidence (three with less, four with less still: mlut_18's "70%" read as "2.04" at
    0.58 was left on the image). One character is not enough: a ventricle reads as "1"
    with 0.96 (eCT_Supplemental), and a lone letter carries no identity. `strict` (residual check)
    asks for three characters, so a stray mark beside a masked line does not quarantine the file."""
    characters = sum(ch.isalnum() or ch in TEXT_SYMBOLS for ch in found.text)
    if strict:
        return characters >= 3 and found.confidence >= 0.7
    return ((characters >= 4 and found.confidence >= 0.4) or (characters >= 3 and found.confidence >= 0.5)
            or (characters >= 2 and found.confidence >= 0.6))


def _display_values(frame: np.ndarray, photometric: str, scale: float) -> np.ndarray:
    """Stored values at scan resolution, oriented for display (float32; colour as brightest channel)."""
    gray = brightest_channel(frame)
    raw = gray if gray.dtype in (np.uint8, np.uint16, np.int16) else gray.astype(np.float32)
    return display_gray(resize(raw, scale), photometric if frame.ndim == 2 else "MONOCHROME2")


def _covered(rect: Rect, rects: list[Rect]) -> bool:
    """Whether at least 60 % of `rect` lies under the given boxes (already handled)."""
    if rect.area == 0:
        return True
    covered = 0
    for other in rects:
        w = min(rect.x1, other.x1) - max(rect.x0, other.x0)
        h = min(rect.y1, other.y1) - max(rect.y0, other.y0)
        if w > 0 and h > 0:
            covered += w * h
    return covered >= 0.6 * rect.area


class _ScanState:
    """What one frame's scan has decided so far (full-resolution masks, view-resolution boxes)."""

    def __init__(self, anatomy: np.ndarray, scale: float, rows: int, cols: int) -> None:
        self.anatomy = anatomy
        self.integral = cv2.integral(anatomy.astype(np.uint8))
        self.scale, self.rows, self.cols = scale, rows, cols
        self.masked: list[Rect] = []
        self.view_rects: list[Rect] = []
        self.spared: list[tuple[Rect, str]] = []
        self.spared_view: list[Rect] = []
        self.mark_rects: set[Rect] = set()
        self.doubtful: list[tuple[Rect, Rect]] = []  # boxes on anatomy that did not read as text
        self.pieces: list[Rect] = []  # vertical boxes an upright detection masked (`TextScanner._upright_pieces`)
        self.texts: list[str] = []
        self.boxes = 0
        self.rejected = 0
        self.marks = 0
        self.lowest: float | None = None
        self._frame_anatomy: np.ndarray | None = None

    def add_mark(self, full: Rect, in_view: Rect) -> None:
        """A mark masked unread: `full` in frame pixels, `in_view` its box at scan resolution (the residual
        check does not look around marks: `mark_rects`)."""
        self.masked.append(full)
        self.view_rects.append(in_view)
        self.mark_rects.add(in_view)
        self.marks += 1

    def add_tissue_print(self, full: Rect, in_view: Rect, text: str) -> None:
        """Print read on tissue (`_level_print`, `_band_print`), masked to its own extent `full` (frame pixels);
        `in_view` its box at scan resolution. Not looked around by the residual check (`mark_rects`): its
        local-contrast view of the tissue beside the print read as text there (a 137x85 box of abdomen masked beside
        a date on explicit_VR-UN)."""
        self.masked.append(full)
        self.view_rects.append(in_view)
        self.mark_rects.add(in_view)
        self.texts.append(text)

    def frame_anatomy(self) -> np.ndarray:
        """The anatomy mask at frame resolution (nearest neighbour), made once per frame for the passes that
        work on stored pixels."""
        if self._frame_anatomy is None:
            self._frame_anatomy = cv2.resize(self.anatomy.astype(np.uint8), (self.cols, self.rows),
                                             interpolation=cv2.INTER_NEAREST) > 0
        return self._frame_anatomy

    def anatomy_share(self, rect: Rect) -> float:
        """Share of the box (view pixels) lying on anatomy."""
        r = rect.clip(self.anatomy.shape[1], self.anatomy.shape[0])
        if r.area == 0:
            return 0.0
        s = self.integral
        inside = int(s[r.y1, r.x1]) - int(s[r.y0, r.x1]) - int(s[r.y1, r.x0]) + int(s[r.y0, r.x0])
        return inside / r.area
