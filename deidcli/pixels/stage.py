"""The pixel stage: known regions, burned-in text, overlays and palettes, for one file.

The pipeline calls `PixelStage.clean(source, target, result, private, run_ocr)` and gets back
the output transfer syntax; everything about pixels is decided here:

- Objects that carry no image text (segmentations, 1-bit masks, RT dose grids) are never OCR'd:
  their pixels are labels or doses, and a detector reads shapes in them as "text".
- Ultrasound data regions (SequenceOfUltrasoundRegions) are handed to the scanner: outside them
  is device chrome, where every text-like mark is blanked.
- Palette colour is scanned through its LUT, MONOCHROME1 inverted (deidcli.ocr.views).
- FloatPixelData / DoubleFloatPixelData are scanned like PixelData: masked and written back as
  little-endian floats, never passed through unchecked.
- BurnedInAnnotation NO and code 113101 (Clean Pixel Data) are written only after every frame
  passed the scanner's residual check; a frame whose text stays readable quarantines the file
  (`ocr_residual_text`, raised by the scanner).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np
from pydicom.dataset import Dataset

from deidcli.audit import FileResult, PrivateRecord
from deidcli.datasets import new_file_meta
from deidcli.errors import FileRejected, PixelError
from deidcli.geometry import Rect
from deidcli.pixels.fit import fit_to_ink, value_span
from deidcli.pixels.frames import check_pixels_cleanable, frame_count
from deidcli.pixels.overlays import mask_overlays, overlay_images
from deidcli.pixels.regions import RegionRule, RuleIndex, rects_of
from deidcli.pixels.rewrite import copy_pixels_untouched, rewrite_pixels
from deidcli.pixels.voi import stored_windows
from deidcli.write import add_method_code, output_transfer_syntax

#: SOP classes whose pixels are labels, masks or physical quantities, never a picture with print.
NO_IMAGE_TEXT_SOP_CLASSES: frozenset[str] = frozenset({
    "1.2.840.10008.5.1.4.1.1.66.4",  # Segmentation Storage
    "1.2.840.10008.5.1.4.1.1.66.7",  # Label Map Segmentation Storage
    "1.2.840.10008.5.1.4.1.1.481.2",  # RT Dose Storage
})

_FLOAT_KEYWORDS = ("FloatPixelData", "DoubleFloatPixelData")


def carries_image_text(source: Dataset) -> bool:
    """Whether OCR makes sense for this object (see NO_IMAGE_TEXT_SOP_CLASSES; 1-bit data is a mask)."""
    if str(source.get("SOPClassUID", "")) in NO_IMAGE_TEXT_SOP_CLASSES:
        return False
    return str(source.get("BitsAllocated", "")) != "1"


def ultrasound_data_regions(source: Dataset) -> list[Rect] | None:
    """The data regions of SequenceOfUltrasoundRegions in frame pixels (None: no usable sequence).

    Values are hostile: a region with missing or inverted corners is ignored, and so is one reaching
    well past the frame (OBXXXX1A's ends one column past its 800: clipped; pydicom's examples_ybr_color, 320x240, carries the regions of its 640x480
    original: they describe another pixel matrix); if none is usable the frame has no known regions
    (the scanner then relies on its own anatomy split alone).
    """
    sequence = source.get("SequenceOfUltrasoundRegions")
    if not sequence:
        return None
    try:
        rows, cols = int(source.Rows), int(source.Columns)
    except (AttributeError, TypeError, ValueError):
        return None
    regions = []
    for item in sequence:
        try:
            x0, y0 = int(item.RegionLocationMinX0), int(item.RegionLocationMinY0)
            x1, y1 = int(item.RegionLocationMaxX1) + 1, int(item.RegionLocationMaxY1) + 1
        except (AttributeError, TypeError, ValueError):
            continue
        if 0 <= x0 < x1 <= cols + 1 + cols // 100 and 0 <= y0 < y1 <= rows + 1 + rows // 100:
            regions.append(Rect(x0, y0, x1, y1).clip(cols, rows))  # a pixel or so past the edge is common
    return regions or None


class PixelStage:
    """Cleans the pixels of one file at a time; the OCR scanner is built on first use."""

    def __init__(self, scanner_factory: Callable[[], object], region_rules: list[RegionRule],
                 accept_burned_in_risk: bool, ocr_engine: str) -> None:
        self._scanner_factory = scanner_factory
        self._scanner = None
        self.region_rules = region_rules
        self.region_index = RuleIndex(region_rules)  # each file tests only the rules that can match it
        self.accept_burned_in_risk = accept_burned_in_risk
        self.ocr_engine = ocr_engine

    @property
    def scanner(self):
        if self._scanner is None:
            self._scanner = self._scanner_factory()
        return self._scanner

    def clean(self, source: Dataset, target: Dataset, result: FileResult, private: PrivateRecord,
              run_ocr: bool) -> str:
        """Mask known regions and burned-in text in `target`; return the output transfer syntax."""
        source_syntax = str(source.file_meta.get("TransferSyntaxUID", "")) or None
        target.file_meta = new_file_meta()  # the pixel rewriter records the output syntax here
        if any(keyword in source for keyword in _FLOAT_KEYWORDS) and "PixelData" not in source:
            self._clean_float(source, target, result, private, run_ocr)
            return output_transfer_syntax(source_syntax)
        if "PixelData" not in source or "PixelData" not in target:
            return output_transfer_syntax(source_syntax)
        check_pixels_cleanable(source)
        matched = self.region_index.matching(source)
        result.region_rules_matched = "|".join(rule.name for rule in matched)
        regions = rects_of(matched)
        run_ocr = run_ocr and carries_image_text(source)
        # Built-in device regions add masks; they never stand in for OCR or for the user's own rules.
        if not run_ocr and not any(not rule.builtin for rule in matched):
            burned_in = str(source.get("BurnedInAnnotation", "")).upper()
            if burned_in == "YES" and not self.accept_burned_in_risk:
                raise FileRejected("burned_in_unchecked", "BurnedInAnnotation YES, OCR off, no region rule")
        if not run_ocr and not regions:
            report = copy_pixels_untouched(source, target, cleanable_checked=True)  # checked above
        else:
            frame_scan = FrameScanner(self, source, matched, run_ocr, result, private)
            report = rewrite_pixels(source, target, frame_scan)
            self._overlays(target, frame_scan, run_ocr)
            if run_ocr:
                target.BurnedInAnnotation = "NO"
                add_method_code(target, "113101")
        result.frames = report.frames
        result.pixels_changed = report.pixels_changed
        result.rects_masked = report.rects_masked
        result.transfer_syntax_in = report.transfer_syntax_in
        result.transfer_syntax_out = report.transfer_syntax_out
        result.decode_seconds = round(report.decode_seconds, 4)
        result.encode_seconds = round(report.encode_seconds, 4)
        return report.transfer_syntax_out

    def _overlays(self, target: Dataset, frame_scan: FrameScanner, run_ocr: bool) -> None:
        """Overlay planes a recipe kept can carry text too: blank what was blanked in the image, and
        what OCR reads in the overlay bitmaps themselves."""
        if not any(0x6000 <= tag.group <= 0x601E and tag.element == 0x3000 for tag in target.keys()):  # noqa: SIM118
            return
        rects = list(frame_scan.all_rects)
        if run_ocr:
            for _, image in overlay_images(target):
                rects.extend(self.scanner.scan(image, "MONOCHROME2", 8).masked)
        if rects:
            mask_overlays(target, rects)

    def _clean_float(self, source: Dataset, target: Dataset, result: FileResult, private: PrivateRecord,
                     run_ocr: bool) -> None:
        """Float/double pixel data: scanned frame by frame, masked with the frame's lowest value."""
        keyword = next(k for k in _FLOAT_KEYWORDS if k in source)
        if not run_ocr:
            if str(source.get("BurnedInAnnotation", "")).upper() == "YES" and not self.accept_burned_in_risk:
                raise FileRejected("burned_in_unchecked", "BurnedInAnnotation YES, OCR off, float pixels")
            target[keyword] = source[keyword]
            return
        try:
            pixels = np.array(source.pixel_array, dtype=np.float64 if keyword.startswith("Double") else np.float32)
        except Exception as exc:  # noqa: BLE001 - any decoder failure is a reason code
            raise PixelError("pixel_decode_failed", f"{type(exc).__name__} reading {keyword}") from exc
        frames = pixels.reshape((frame_count(source), int(source.Rows), int(source.Columns)))
        frames = np.where(np.isfinite(frames), frames, 0)
        frame_scan = FrameScanner(self, source, [], True, result, private, photometric="MONOCHROME2")
        changed = 0
        for index, frame in enumerate(frames):
            rects = [r.clip(frame.shape[1], frame.shape[0]) for r in frame_scan(index, frame)]
            for rect in rects:
                if rect.area:
                    frame[rect.y0 : rect.y1, rect.x0 : rect.x1] = frame.min()
                    changed += 1
        result.frames = len(frames)
        result.rects_masked = changed
        result.pixels_changed = changed > 0
        dtype = "<f8" if keyword.startswith("Double") else "<f4"
        target.add_new(keyword, "OD" if dtype == "<f8" else "OF", frames.astype(dtype).tobytes())
        target.BurnedInAnnotation = "NO"
        add_method_code(target, "113101")


class FrameScanner:
    """The `rects_for_frame` callback: regions plus OCR boxes, OCR skipped only for identical frames."""

    def __init__(self, stage: PixelStage, source: Dataset, rules: list[RegionRule], run_ocr: bool,
                 result: FileResult, private: PrivateRecord, photometric: str | None = None) -> None:
        self.stage = stage
        self.source = source
        self.rules = rules  # the region rules that matched this file (matched once, in PixelStage.clean)
        self.run_ocr = run_ocr
        self.result = result
        self.private = private
        self.photometric = photometric or str(source.get("PhotometricInterpretation", "MONOCHROME2")).strip()
        self.data_regions = ultrasound_data_regions(source)
        self.voi_windows = stored_windows(source)  # read once per file, checked (deidcli.pixels.voi)
        self.cache: dict[bytes, list[Rect]] = {}
        #: Identical frames (a cine loop's repeats) are scanned once; a one-frame file has none to find, so its
        #: frame is not hashed (blake2b of a 3328x2560 16-bit mammogram: 30-80 ms, 5-10 % of its scan).
        self.frames_may_repeat = _frames_may_repeat(source)
        self.chrome = None  # the scanner's ChromeMemory for this file (a cine's static chrome), made on first scan
        self.all_rects: set[Rect] = set()  # every rectangle blanked on any frame (for overlay planes)
        self.spared: set[str] = set()
        if run_ocr:
            result.ocr_engine = stage.ocr_engine

    def __call__(self, index: int, frame: np.ndarray) -> list[Rect]:
        regions = self._regions_for(index)
        if not self.run_ocr:
            self.all_rects.update(regions)
            return regions
        digest = (hashlib.blake2b(np.ascontiguousarray(frame).data, digest_size=16).digest()
                  if self.frames_may_repeat else None)
        cached = self.cache.get(digest) if digest is not None else None
        if cached is None:
            rects = self._scan(index, frame)
            span = value_span(frame) if rects else 0.0
            cached = [fit_to_ink(frame, rect, span) for rect in rects]
            if digest is not None:
                self.cache[digest] = cached
        self.all_rects.update(regions)
        self.all_rects.update(cached)
        return regions + cached

    def _regions_for(self, index: int) -> list[Rect]:
        """The region rules' rectangles for this frame: a rule with `frames` applies to those frames only."""
        return rects_of(self.rules, index)

    def _scan(self, index: int, frame: np.ndarray) -> list[Rect]:
        source = self.source
        photometric = self.photometric
        hidden: list[Rect] = []
        if photometric == "PALETTE COLOR":
            hidden = index_marks(frame, self.data_regions)
            frame = palette_rgb8(frame, source)
            photometric = "RGB"
        elif frame.ndim == 3:
            photometric = "RGB"
        frame = scannable(frame)
        if frame.ndim == 3:
            hidden += colour_marks(frame)
        if self.chrome is None:
            from deidcli.ocr.chrome import ChromeMemory  # OpenCV: loaded only when a frame is scanned

            self.chrome = ChromeMemory()
        scan = self.stage.scanner.scan(
            frame, photometric, int(source.get("BitsStored", 8) or 8), bool(source.get("PixelRepresentation", 0)),
            data_regions=self.data_regions, chrome=self.chrome, voi_windows=self.voi_windows,
        )
        result = self.result
        result.ocr_boxes_found += scan.boxes_found
        result.ocr_boxes_masked += len(scan.masked)
        result.ocr_boxes_spared += len(scan.spared)
        result.ocr_seconds = round(result.ocr_seconds + scan.seconds, 4)
        if scan.lowest_confidence is not None:
            lowest = result.ocr_lowest_confidence
            result.ocr_lowest_confidence = round(
                scan.lowest_confidence if lowest is None else min(lowest, scan.lowest_confidence), 4
            )
        for _, text in scan.spared:
            self.spared.add(text)
        result.ocr_spared_text = "|".join(sorted(self.spared))
        self.private.masked_text.extend((index, text) for text in scan.recognised_masked_text if text.strip())
        return list(scan.masked) + hidden


def _frames_may_repeat(source: Dataset) -> bool:
    """Whether the file may hold more than one frame (a malformed count says yes: every frame is scanned
    then, which is only slower)."""
    try:
        return frame_count(source) > 1
    except (PixelError, ValueError, TypeError):
        return True


def scannable(frame: np.ndarray) -> np.ndarray:
    """The frame in a sample type the scanner's image library takes: integer samples wider than
    16 bits (32-bit RGB secondary captures) become 8-bit over the frame's occupied range for colour
    (what a viewer shows), float32 for gray (the scanner squeezes wide gray itself).

    Why: OpenCV cannot resize 32-bit integer pictures; such frames used to crash the scan
    (`internal_error`) instead of being scanned like any other."""
    if frame.dtype.kind not in "ui" or frame.dtype.itemsize <= 2:
        return frame
    if frame.ndim == 2:
        return frame.astype(np.float32)
    low, high = float(frame.min()), float(frame.max())
    if high <= low:
        return np.zeros(frame.shape, np.uint8)
    return ((frame.astype(np.float64) - low) * (255.0 / (high - low)) + 0.5).astype(np.uint8)


def index_marks(indices: np.ndarray, data_regions: list[Rect] | None) -> list[Rect]:
    """Print drawn in palette indices that the palette shows as one colour, as padded rectangles.

    Why: the second frame of pydicom-data's OBXXXX1A_2frame writes "PHILIPS" as index 14 on index 11,
    two entries of its LUT with the same colour: invisible through the LUT (what the scanner reads),
    yet in the file for anyone who reads the indices or changes the palette. The indices of a
    grey-ramp palette are a picture too, so the dim-print pass looks at them (8-bit indices only)."""
    if indices.dtype != np.uint8 or indices.ndim != 2:
        return []
    from deidcli.ocr.layout import anatomy_mask, dim_text_marks

    rows, cols = indices.shape
    anatomy = anatomy_mask(indices, data_regions)
    return [mark.pad(2 + mark.height // 3, 2 + mark.height // 3).clip(cols, rows)
            for mark in dim_text_marks(indices, anatomy)]


def colour_marks(rgb: np.ndarray) -> list[Rect]:
    """The glyphs of print drawn in one colour over the grey picture (deidcli.ocr.layout.colour_text_marks),
    with a pixel around each (the colour is exact: no antialiasing to cover)."""
    from deidcli.ocr.layout import colour_text_marks

    rows, cols = rgb.shape[:2]
    return [mark.pad(1, 1).clip(cols, rows) for mark in colour_text_marks(rgb)]


def palette_rgb8(frame: np.ndarray, source: Dataset) -> np.ndarray:
    """A palette-colour frame as the 8-bit RGB a viewer shows (LUT entries of 16 bits cut to 8)."""
    from pydicom.pixels import apply_color_lut

    rgb = apply_color_lut(frame, source)
    if rgb.dtype == np.uint8:
        return rgb
    top = int(rgb.max()) if rgb.size else 0
    return (rgb >> 8).astype(np.uint8) if top > 255 else rgb.astype(np.uint8)
