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
from dataclasses import dataclass, field

import cv2
import numpy as np

from deidcli.errors import OcrError
from deidcli.geometry import Rect
from deidcli.ocr.authorised import AuthorisedWords
from deidcli.ocr.engines import ENGINE_MAX_SIDE, DetectedText, TextDetector
from deidcli.ocr.views import COLOUR_VIEWS, GRAY_VIEWS, colour_views, display_gray, gray_views

DEFAULT_SCAN_MAX_SIDE = 1024
DEFAULT_SMALL_SIDE = 1024
DEFAULT_SMALL_SCALE = 1.0
DEFAULT_PAD_RATIO = 0.35
DEFAULT_MIN_CONFIDENCE = 0.8
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_GRAY_VIEWS = ("log",)
DEFAULT_GRAY8_VIEWS = ("minmax",)
DEFAULT_COLOUR_VIEWS = ("rgb",)
DEFAULT_ROTATIONS = (0, 90)


@dataclass
class ScanResult:
    """What the scan found in one frame.

    `masked` is what the pipeline must blank (full-resolution, padded, clipped). `spared` are
    authorised labels left visible, with their text (not PHI by construction). The last field
    holds the recognised text of every masked detection ("" for boxes too long to be an
    authorised word, which are not read; not aligned with `masked`, which is de-duplicated):
    PHI, for the private folder only.
    """

    masked: list[Rect]
    spared: list[tuple[Rect, str]]
    boxes_found: int
    lowest_confidence: float | None
    seconds: float
    recognised_masked_text: list[str] = field(default_factory=list)


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
        return min(small_scale, ENGINE_MAX_SIDE / longest)
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
        fill = np.median(patch[ring], axis=0) if ring.any() else 0
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
        self._detect_kwargs = self._reading_limit(detector, authorised, read_all)

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
        return {"read_max_aspect": 0.6 * longest + 0.6 if longest else 0.0}

    def views(
        self, frame: np.ndarray, photometric: str, scale: float, bits_stored: int
    ) -> list[tuple[str, np.ndarray]]:
        """The 8-bit pictures to scan, at scan resolution.

        8-bit gray frames (ultrasound, secondary capture) already are what a viewer shows, so
        they get `gray8_view_names`; wider ones need the squeezes in `gray_view_names`.
        """
        if frame.ndim == 3:
            return colour_views(resize(frame, scale), self.colour_view_names)
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

    def _detect(self, image8: np.ndarray) -> list[DetectedText]:
        """The engine call, with any engine error turned into a PHI-free OcrError."""
        try:
            return list(self.detector.detect(image8, **self._detect_kwargs))
        except OcrError:
            raise
        except Exception as exc:
            raise OcrError("ocr_failed", f"{self.detector.name} raised {type(exc).__name__}") from exc

    def scan(self, frame: np.ndarray, photometric: str, bits_stored: int, signed: bool = False) -> ScanResult:
        """Scan one frame (stored values, any bit depth; RGB for colour) and decide what to mask.

        `bits_stored` and `signed` describe the stored values; the views use the actual value
        range, which covers text drawn outside any window, so they serve as sanity checks only.
        """
        start = time.perf_counter()
        frame = check_frame(frame)
        if not 1 <= int(bits_stored) <= 64:
            raise OcrError("ocr_bad_input", f"bits stored {bits_stored} out of range")
        rows, cols = frame.shape[:2]
        scale = choose_scale(rows, cols, self.scan_max_side, self.small_side, self.small_scale)
        masked: list[Rect] = []
        spared: list[tuple[Rect, str]] = []
        texts: list[str] = []
        lowest: float | None = None
        boxes = 0
        for _name, view in self.views(frame, photometric, scale, int(bits_stored)):
            vrows, vcols = view.shape[:2]
            current = view
            for rotation in self.rotations:
                turns = (rotation // 90) % 4
                found = self._detect(np.ascontiguousarray(np.rot90(current, turns)) if turns else current)
                if time.perf_counter() - start > self.timeout_s:
                    raise OcrError("ocr_timeout", f"scan exceeded {self.timeout_s:g} s")
                seen: list[Rect] = []
                for item in found:
                    boxes += 1
                    if item.text:  # unread boxes (too long to be authorised) carry no score
                        lowest = item.confidence if lowest is None else min(lowest, item.confidence)
                    in_view = unrotate(item.rect, turns, vrows, vcols).clip(vcols, vrows)
                    seen.append(in_view)
                    across = item.rect.height > 1.5 * item.rect.width
                    rect = to_full_resolution(in_view, scale, self.pad_ratio, rows, cols, across)
                    if rect.area == 0:
                        continue
                    if self.spares(item):
                        spared.append((rect, item.text))
                    else:
                        masked.append(rect)
                        texts.append(item.text)
                current = (
                    blank(current, seen, self.pad_ratio) if seen and len(self.rotations) > 1 else current
                )
        return ScanResult(
            masked=prune_contained(masked),
            spared=spared,
            boxes_found=boxes,
            lowest_confidence=lowest,
            seconds=time.perf_counter() - start,
            recognised_masked_text=texts,
        )
