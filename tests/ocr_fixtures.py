"""Synthetic images with burned-in text at known boxes, for OCR tests and the OCR benchmark.

Every generator returns a `Synthetic`: the stored pixel array exactly as a DICOM decoder would
hand it over (16-bit, MONOCHROME1 already inverted, RGB as RGB) plus the planted texts with the
tight bounding box of their ink. Boxes come from the drawn pixels, not from cv2.getTextSize, so
the ground truth is what a viewer would actually see. Everything is seeded: same seed, same image.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from deidcli.geometry import Rect

FONTS = (
    cv2.FONT_HERSHEY_SIMPLEX,
    cv2.FONT_HERSHEY_DUPLEX,
    cv2.FONT_HERSHEY_COMPLEX,
    cv2.FONT_HERSHEY_TRIPLEX,
    cv2.FONT_HERSHEY_PLAIN,
)

#: Fake identifiers: shaped like PHI, obviously synthetic.
PHI_TEXTS = (
    "DOE^JANE",
    "ID 4417-2291",
    "1962-03-04",
    "ST MARY HOSPITAL",
    "ACC 88123",
    "SMITH JOHN",
    "DOB 12/07/1955",
    "KV 28 MAS 63",
)


@dataclass(frozen=True)
class Planted:
    """One planted text: its tight ink box in stored-pixel coordinates and whether it is authorised."""

    rect: Rect
    text: str
    authorised: bool
    gray: float  # value the text was drawn with (stored units before any MONOCHROME1 inversion)
    rotation: int  # 0, 90 or 270 degrees


@dataclass
class Synthetic:
    """A stored frame plus its ground truth and the facts the scanner needs."""

    pixels: np.ndarray
    photometric: str
    bits_stored: int
    planted: list[Planted] = field(default_factory=list)
    kind: str = ""


def _font_scale_for(font: int, height_px: int, thickness: int) -> float:
    """The cv2 fontScale whose capital letters are about `height_px` tall."""
    (_, h), _ = cv2.getTextSize("HX", font, 1.0, thickness)
    return height_px / max(h, 1)


def _ink(text: str, font: int, height_px: int, thickness: int) -> np.ndarray:
    """A tight boolean mask of `text` drawn with `font` at capital height `height_px`."""
    scale = _font_scale_for(font, height_px, thickness)
    (w, h), base = cv2.getTextSize(text, font, scale, thickness)
    pad = thickness + 4
    canvas = np.zeros((h + base + 2 * pad, w + 2 * pad), np.uint8)
    cv2.putText(canvas, text, (pad, pad + h), font, scale, 255, thickness, cv2.LINE_AA)
    ys, xs = np.nonzero(canvas > 96)
    return canvas[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1] > 96


def _rotate(mask: np.ndarray, rotation: int) -> np.ndarray:
    """The ink mask turned by 0/90/270 degrees counter-clockwise (as np.rot90)."""
    return np.rot90(mask, k=rotation // 90).copy() if rotation else mask


def plant(
    image: np.ndarray,
    taken: np.ndarray,
    rng: np.random.Generator,
    text: str,
    *,
    gray: float | tuple[int, int, int],
    height_px: int,
    font: int,
    thickness: int,
    rotation: int = 0,
    region: Rect | None = None,
    authorised: bool = False,
) -> Planted | None:
    """Draw `text` into `image` at a free random place inside `region`; None if it does not fit.

    `taken` marks pixels already used by other texts (plus a gap) so planted boxes never touch:
    the scanner legitimately merges touching texts, which would blur the ground truth.
    """
    mask = _rotate(_ink(text, font, height_px, thickness), rotation)
    mh, mw = mask.shape
    rows, cols = image.shape[:2]
    region = region or Rect(0, 0, cols, rows)
    gap = max(12, height_px)
    for _ in range(200):
        if region.width - mw <= 2 * gap or region.height - mh <= 2 * gap:
            return None
        x = int(rng.integers(region.x0 + gap, region.x1 - mw - gap))
        y = int(rng.integers(region.y0 + gap, region.y1 - mh - gap))
        if taken[y - gap : y + mh + gap, x - gap : x + mw + gap].any():
            continue
        target = image[y : y + mh, x : x + mw]
        target[mask] = gray
        taken[y - gap : y + mh + gap, x - gap : x + mw + gap] = True
        value = float(gray) if np.isscalar(gray) else float(np.mean(gray))
        return Planted(Rect(x, y, x + mw, y + mh), text, authorised, value, rotation)
    return None


def _breast(rows: int, cols: int, rng: np.random.Generator, max_value: int, left: bool) -> np.ndarray:
    """A MONOCHROME2 mammogram-like background: dark air, a textured half-ellipse of tissue."""
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    cx = 0 if left else cols - 1
    inside = ((xx - cx) / (0.62 * cols)) ** 2 + ((yy - rows / 2) / (0.46 * rows)) ** 2 <= 1.0
    small = rng.normal(0.0, 1.0, (rows // 16 + 1, cols // 16 + 1)).astype(np.float32)
    texture = cv2.resize(cv2.GaussianBlur(small, (0, 0), 2.0), (cols, rows))
    tissue = 0.45 * max_value + 0.12 * max_value * texture
    air = rng.normal(0.01 * max_value, 0.004 * max_value, (rows, cols)).astype(np.float32)
    return np.where(inside, tissue, air).clip(0, max_value)


def mammogram(
    rows: int = 3328,
    cols: int = 2560,
    photometric: str = "MONOCHROME2",
    bits_stored: int = 14,
    seed: int = 0,
    n_phi: int = 5,
) -> Synthetic:
    """A 16-bit mammogram with a view label (authorised) and PHI at several gray levels and fonts.

    Gray levels include full white, mid-gray, a value below a typical tissue window (dim text on
    air) and a near-window-top value; one PHI line is rotated 90 or 270 degrees. Text sits in the
    air region, as scanners burn it, and is 40-120 px tall at full resolution.
    """
    rng = np.random.default_rng(seed)
    max_value = (1 << bits_stored) - 1
    left = bool(seed % 2)
    image = _breast(rows, cols, rng, max_value, left)
    taken = image > 0.1 * max_value  # tissue: scanners burn text into the air around the breast
    air = Rect(cols // 2, 0, cols, rows) if left else Rect(0, 0, cols // 2, rows)
    planted: list[Planted] = []
    label = ["L CC", "R MLO", "LCC", "RMLO", "L MLO", "R CC"][seed % 6]
    p = plant(
        image,
        taken,
        rng,
        label,
        gray=max_value,
        height_px=int(rng.integers(90, 130)),
        font=FONTS[seed % 4],
        thickness=6,
        region=air,
        authorised=True,
    )
    planted += [p] if p else []
    grays = [max_value, 0.55 * max_value, 0.06 * max_value, 0.95 * max_value, 0.3 * max_value]
    for i in range(n_phi):
        rotation = (90, 270)[seed % 2] if i == 1 else 0
        text = PHI_TEXTS[(seed + i) % len(PHI_TEXTS)]
        font = FONTS[(seed + i) % len(FONTS)]
        height = int(rng.integers(40, 90))
        p = plant(
            image,
            taken,
            rng,
            text,
            gray=round(grays[i % len(grays)]),
            height_px=height,
            font=font,
            thickness=max(2, height // 14),
            rotation=rotation,
            region=air,
        )
        planted += [p] if p else []
    stored = image.round().astype(np.uint16)
    if photometric == "MONOCHROME1":
        stored = (max_value - stored.astype(np.int32)).astype(np.uint16)
    return Synthetic(stored, photometric, bits_stored, planted, f"mammo{rows}x{cols}/{photometric}")


def ultrasound(
    seed: int = 0,
    text_height: int = 8,
    color: bool = False,
    rows: int = 600,
    cols: int = 800,
    n_phi: int = 6,
) -> Synthetic:
    """An 800x600 8-bit ultrasound frame: speckled fan, a header band, small annotation text.

    `text_height` is the capital height in pixels (8 and 13 are the sizes seen on real scanners).
    Colour frames get yellow/green/cyan text, as many scanners draw overlays in colour.
    """
    rng = np.random.default_rng(1000 + seed)
    gray = np.zeros((rows, cols), np.float32)
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float32)
    r = np.hypot(xx - cols / 2, yy + 40)
    angle = np.abs(np.arctan2(xx - cols / 2, yy + 40))
    fan = (r > 120) & (r < rows - 20) & (angle < 0.7)
    speckle = rng.rayleigh(40.0, (rows, cols)).astype(np.float32)
    gray[fan] = np.clip(speckle[fan], 0, 200)
    image = np.repeat(gray[..., None], 3, axis=2) if color else gray
    taken = np.zeros((rows, cols), bool)
    taken[fan] = True  # text goes on the black surround and header, like real scanners
    colours = [(255, 255, 0), (0, 255, 0), (0, 255, 255), (255, 255, 255), (200, 200, 200)]
    planted: list[Planted] = []
    for i in range(n_phi):
        text = PHI_TEXTS[(seed + i) % len(PHI_TEXTS)]
        font = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_PLAIN, cv2.FONT_HERSHEY_DUPLEX)[(seed + i) % 3]
        value: float | tuple[int, int, int] = colours[i % 5] if color else (255, 200, 150, 230)[i % 4]
        p = plant(
            image, taken, rng, text, gray=value, height_px=text_height, font=font, thickness=1, rotation=0
        )
        planted += [p] if p else []
    stored = image.round().clip(0, 255).astype(np.uint8)
    return Synthetic(
        stored,
        "RGB" if color else "MONOCHROME2",
        8,
        planted,
        f"us{cols}x{rows}/{text_height}px/{'rgb' if color else 'gray'}",
    )


def coverage(rect: Rect, masked: list[Rect], rows: int, cols: int) -> float:
    """Fraction of `rect`'s area inside the union of `masked` (1.0 = fully hidden)."""
    if rect.area == 0:
        return 1.0
    canvas = np.zeros((rows, cols), bool)
    for m in masked:
        c = m.clip(cols, rows)
        canvas[c.y0 : c.y1, c.x0 : c.x1] = True
    r = rect.clip(cols, rows)
    return float(canvas[r.y0 : r.y1, r.x0 : r.x1].mean())


def recall(synthetic: Synthetic, masked: list[Rect], threshold: float = 0.95) -> tuple[int, int]:
    """(hidden, total) over non-authorised planted texts: hidden means >= `threshold` covered."""
    rows, cols = synthetic.pixels.shape[:2]
    targets = [p for p in synthetic.planted if not p.authorised]
    hidden = sum(coverage(p.rect, masked, rows, cols) >= threshold for p in targets)
    return hidden, len(targets)


def authorised_kept(synthetic: Synthetic, masked: list[Rect], tolerance: float = 0.05) -> tuple[int, int]:
    """(kept, total) over authorised labels: kept means at most `tolerance` of it is masked."""
    rows, cols = synthetic.pixels.shape[:2]
    labels = [p for p in synthetic.planted if p.authorised]
    kept = sum(coverage(p.rect, masked, rows, cols) <= tolerance for p in labels)
    return kept, len(labels)


def burn_text(image: np.ndarray, text: str, x: int, y: int, height: int, value, thick: int, turns: int = 0,
              face: int = cv2.FONT_HERSHEY_DUPLEX) -> np.ndarray:
    """Burn `text` (capitals `height` px tall in `face`, antialiased, turned `turns` quarters counter-clockwise) with
    its top left at (x, y), at `value` (a level, or a colour); returns the glyph pixels (coverage over a half)."""
    (_, cap), _ = cv2.getTextSize("H", face, 1.0, 1)
    (w, h), base = cv2.getTextSize(text, face, height / cap, thick)
    ink = np.zeros((h + base + 2 * thick + 8, w + 2 * thick + 8), np.uint8)
    cv2.putText(ink, text, (thick + 4, thick + 4 + h), face, height / cap, 255, thick, cv2.LINE_AA)
    ys, xs = np.nonzero(ink)
    ink = np.ascontiguousarray(np.rot90(ink[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1], turns))
    cover = ink.astype(np.float64) / 255.0
    rows, cols = ink.shape
    region = image[y : y + rows, x : x + cols].astype(np.float64)
    weight = cover[..., None] if region.ndim == 3 else cover
    image[y : y + rows, x : x + cols] = np.rint(region * (1 - weight) + np.asarray(value, np.float64) * weight)
    glyphs = np.zeros(image.shape[:2], bool)
    glyphs[y : y + rows, x : x + cols] = cover > 0.5
    return glyphs


def hidden_share(glyphs: np.ndarray, masked: list[Rect]) -> float:
    """Share of the glyph pixels under the masks."""
    under = np.zeros(glyphs.shape, bool)
    for rect in masked:
        under[rect.y0 : rect.y1, rect.x0 : rect.x1] = True
    return float(under[glyphs].mean())
