"""What the pixel benchmark measures on one (input, output) pair of frames.

* changed  : a pixel whose stored value moved by more than 1 % of the input frame's range (any channel);
             lossless round trips change nothing, masking changes a lot, so the threshold only absorbs
             decoder rounding of lossy inputs.
* damage   : share of NON-text pixels changed: every pixel outside all annotated boxes (PHI and labels,
             dilated by 3 px). This is what a redactor destroyed without a reason.
* box check: share of a box's TEXT pixels changed. Text pixels are the minority side of an Otsu split
             of the box in stored values (what the glyphs are made of, whatever the display).
* legible  : an independent EasyOCR reading (its CRNN recogniser, on the known box) of the output crop (two views: full-range display and the
             crop stretched to its own 1-99 % percentiles, which shows low-contrast text and text above
             the VOI window) that matches the annotated text (similarity >= 0.6 or >= 5 common characters).
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from pathlib import Path

import cv2
import numpy as np

CHANGED_FRACTION = 0.01
DILATE_PX = 3
HIDDEN_SHARE = 0.9  # a PHI box counts as masked by the box check when >= 90 % of its text pixels changed
LABEL_KEPT_SHARE = 0.1  # a label counts as kept when <= 10 % of its text pixels changed


def gray(frame: np.ndarray) -> np.ndarray:
    f = frame.astype(np.float64)
    return f.mean(axis=-1) if f.ndim == 3 else f


def changed_mask(before: np.ndarray, after: np.ndarray) -> np.ndarray:
    if before.shape != after.shape:
        return np.ones(before.shape[:2], bool)
    b = before.astype(np.float64)
    a = after.astype(np.float64)
    finite = np.isfinite(b).all() and np.isfinite(a).all()
    rng = float(np.ptp(b)) if finite else 1.0
    tol = max(CHANGED_FRACTION * rng, 0.0 if b.dtype.kind == "f" else 0.5)
    diff = np.abs(a - b) > tol
    if not finite:
        diff |= np.isnan(a) != np.isnan(b)
    return diff.any(axis=-1) if diff.ndim == 3 else diff


def box_mask(shape: tuple[int, int], boxes: list[tuple[int, int, int, int]], grow: int = 0) -> np.ndarray:
    m = np.zeros(shape, bool)
    for x0, y0, x1, y1 in boxes:
        m[max(0, y0 - grow):max(0, y1 + grow), max(0, x0 - grow):max(0, x1 + grow)] = True
    return m


def text_pixels(frame: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Boolean mask (crop-sized) of the glyph pixels inside box: the minority Otsu class."""
    x0, y0, x1, y1 = box
    crop = gray(frame)[y0:y1, x0:x1]
    if crop.size == 0:
        return np.zeros((0, 0), bool)
    lo, hi = float(np.nanmin(crop)), float(np.nanmax(crop))
    if hi - lo <= 0:
        return np.ones(crop.shape, bool)
    u8 = np.nan_to_num((crop - lo) / (hi - lo) * 255).astype(np.uint8)
    _, th = cv2.threshold(u8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    fg = th > 0
    return fg if fg.sum() <= fg.size / 2 else ~fg


def text_changed_share(before: np.ndarray, changed: np.ndarray, box: tuple[int, int, int, int],
                       after: np.ndarray | None = None) -> float:
    """Share of the box's text pixels that can no longer be told from their surroundings: changed, or (with
    `after`, the output frame in stored values) left at the value the mask filled around them (`buried`)."""
    x0, y0, x1, y1 = box
    tp = text_pixels(before, box)
    if tp.size == 0 or not tp.any():
        return 1.0
    hidden = changed[y0:y1, x0:x1]
    if after is not None:
        hidden = hidden | buried(after[y0:y1, x0:x1], hidden)
    return float(hidden[tp].mean())


#: Share of a box's output pixels at the fill value from which the box shows nothing (`buried`).
BURIED_SHARE = 0.98


def buried(after: np.ndarray, changed: np.ndarray) -> np.ndarray:
    """The pixels of an output crop (a PHI box) at the fill value (the commonest output value of its changed
    pixels) when the box holds almost nothing else (BURIED_SHARE): a box filled whole shows nothing, though a
    glyph drawn at the very value the mask fills with is unchanged (redteam4's palette_face: a date in the
    palette's darkest entry, filled with that entry; mr12_above_window, cr_m1_label: Otsu's minority was the
    field, already at the fill value). A box where anything else is left keeps the plain changed count (a
    line masked in part: what is left is print, whatever the field's value)."""
    if not changed.any():
        return np.zeros(changed.shape, bool)
    samples = after.reshape(after.shape[0], after.shape[1], -1)
    values, counts = np.unique(samples[changed], axis=0, return_counts=True)
    at_fill = (samples == values[int(np.argmax(counts))]).all(axis=2)
    return at_fill if at_fill.mean() >= BURIED_SHARE else np.zeros(changed.shape, bool)


def normalise(text: str) -> str:
    return re.sub(r"[^A-Z0-9]", "", text.upper())


def matches(truth: str, read: str) -> bool:
    t, r = normalise(truth), normalise(read)
    if not t or not r:
        return False
    if difflib.SequenceMatcher(None, t, r).ratio() >= 0.6:
        return True
    m = difflib.SequenceMatcher(None, t, r).find_longest_match(0, len(t), 0, len(r))
    return m.size >= min(5, len(t))


def crop_views(display: np.ndarray, raw: np.ndarray, box: tuple[int, int, int, int]) -> list[np.ndarray]:
    """The crops the legibility check reads: full-range display and a locally stretched grey crop."""
    x0, y0, x1, y1 = box
    h = max(1, y1 - y0)
    pad = max(3, int(0.2 * h))
    rows, cols = display.shape[:2]
    ya, yb, xa, xb = max(0, y0 - pad), min(rows, y1 + pad), max(0, x0 - pad), min(cols, x1 + pad)
    views = [display[ya:yb, xa:xb]]
    g = gray(raw)[ya:yb, xa:xb]
    if g.size and np.isfinite(g).any():
        lo, hi = np.nanpercentile(g, 1), np.nanpercentile(g, 99)
        if hi > lo:
            s = np.clip((np.nan_to_num(g) - lo) / (hi - lo), 0, 1) * 255
            views.append(np.stack([s.astype(np.uint8)] * 3, axis=-1))
    scale = max(1.0, 40.0 / h)
    out = []
    for v in views:
        if scale > 1:
            v = cv2.resize(v, None, fx=min(scale, 2000 / max(1, v.shape[1])), fy=scale, interpolation=cv2.INTER_CUBIC)
        out.append(np.ascontiguousarray(v))
    return out


class Reader:
    """EasyOCR recognition of crops, cached on disk by the crop's bytes (reruns cost nothing)."""

    def __init__(self, cache_file: Path, threads: int = 2) -> None:
        self.cache_file = cache_file
        self.cache: dict[str, str] = json.loads(cache_file.read_text()) if cache_file.exists() else {}
        self._reader = None
        self.threads = threads
        self.calls = 0

    def _load(self):
        if self._reader is None:
            import easyocr
            import easyocr_en_models
            import torch

            torch.set_num_threads(self.threads)
            self._reader = easyocr.Reader(["en"], gpu=False, model_storage_directory=easyocr_en_models.model_dir(),
                                          download_enabled=False, verbose=False)
        return self._reader

    def read(self, crop: np.ndarray) -> str:
        key = hashlib.sha256(crop.tobytes() + str(crop.shape).encode()).hexdigest()
        if key not in self.cache:
            self.calls += 1
            grey = crop if crop.ndim == 2 else cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY)
            h, w = grey.shape
            # recognition only, on the whole crop (the box is known): no detector to miss small text
            res = self._load().recognize(grey, horizontal_list=[[0, w, 0, h]], free_list=[], detail=1,
                                         reformat=False)
            self.cache[key] = " ".join(str(t) for _, t, c in res if c >= 0.1)
        return self.cache[key]

    def legible(self, truth: str, display: np.ndarray, raw: np.ndarray, box: tuple[int, int, int, int]) -> tuple[bool, str]:
        read = ""
        for view in crop_views(display, raw, box):
            read = self.read(view)
            if matches(truth, read):
                return True, read
        return False, read

    def save(self) -> None:
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.cache))
        tmp.replace(self.cache_file)
