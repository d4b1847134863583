"""Frame -> 8-bit pictures an OCR engine can read, so text at ANY stored value shows up.

A DICOM viewer shows a frame through a VOI window; burned-in text can be drawn at a value
outside it (or the window may be absent), and a 12-16 bit value range must be squeezed into the
engine's 8 bits. Each view is a different squeeze:

- ``minmax``: full stored range -> 0..255 (what a viewer with no window shows). Keeps any text
  that differs strongly from its background, whatever its absolute value.
- ``equalised``: histogram equalisation over the full range: every occupied value band gets its
  share of the 8 bits, so faint text on a nearly constant background (e.g. value 1000 on air at
  150 in a 14-bit image, only ~15 gray levels in ``minmax``) becomes high-contrast.
- ``inverted``: 255 - ``minmax``, for engines that read dark-on-light better than light-on-dark.
- ``log``: log(1 + value - min) over the full range, the default for >8-bit gray: the only
  single view with 100 % recall in bench/ocr_bench.py (minmax 80 %, equalised 83 %).

MONOCHROME1 is inverted first so views look like what a radiologist sees. Colour frames are
handed over as RGB (``rgb``), optionally with ``maxchannel`` (brightest channel as gray), which
makes saturated blue/red overlay text as bright as white text.

Views are computed at scan resolution (after the scanner's resize) because they are cheaper
there and the result is the same for text the engine can read.
"""

from __future__ import annotations

import numpy as np

GRAY_VIEWS = ("minmax", "equalised", "inverted", "log")
COLOUR_VIEWS = ("rgb", "maxchannel")

#: Bins for histogram equalisation of >8-bit data: fine enough for 16-bit text/background
#: separation once the range is known, small enough to stay cheap.
EQUALISE_BINS = 4096


def display_gray(frame: np.ndarray, photometric: str) -> np.ndarray:
    """A float32 gray frame oriented like the display (MONOCHROME1 inverted: low = bright)."""
    gray = frame.astype(np.float32, copy=False)
    if photometric.upper() == "MONOCHROME1":
        gray = gray.max() + gray.min() - gray
    return gray


def minmax(gray: np.ndarray) -> np.ndarray:
    """Full value range -> 0..255 (a flat frame becomes all zeros)."""
    lo, hi = float(gray.min()), float(gray.max())
    if hi <= lo:
        return np.zeros(gray.shape, np.uint8)
    return ((gray - lo) * (255.0 / (hi - lo)) + 0.5).astype(np.uint8)


def equalised(gray: np.ndarray) -> np.ndarray:
    """Histogram equalisation over EQUALISE_BINS bins of the full range (rank-like stretch)."""
    lo, hi = float(gray.min()), float(gray.max())
    if hi <= lo:
        return np.zeros(gray.shape, np.uint8)
    q = ((gray - lo) * ((EQUALISE_BINS - 1) / (hi - lo))).astype(np.int32)
    hist = np.bincount(q.ravel(), minlength=EQUALISE_BINS)
    cdf = np.cumsum(hist).astype(np.float64)
    span = cdf[-1] - cdf[0]
    lut = ((cdf - cdf[0]) * (255.0 / span) if span > 0 else np.zeros_like(cdf)).round().astype(np.uint8)
    return lut[q]


def log_stretch(gray: np.ndarray) -> np.ndarray:
    """log(1 + value - min) over the full range: lifts dim text on a dark background out of the
    bottom few gray levels while keeping bright text bright (no saturation, no noise boost)."""
    lo, hi = float(gray.min()), float(gray.max())
    if hi <= lo:
        return np.zeros(gray.shape, np.uint8)
    return (np.log1p(gray - lo) * (255.0 / np.log1p(hi - lo)) + 0.5).astype(np.uint8)


def gray_views(gray: np.ndarray, names: tuple[str, ...]) -> list[tuple[str, np.ndarray]]:
    """The requested 8-bit views of a display-oriented float gray frame. `minmax` is made only when a view
    asks for it: the default for >8-bit gray is ``log`` alone (a 1024x788 minmax made and dropped cost 8 ms
    per mammogram)."""
    base = minmax(gray) if {"minmax", "inverted"} & set(names) else None
    out: list[tuple[str, np.ndarray]] = []
    for name in names:
        if name == "minmax":
            out.append((name, base))
        elif name == "equalised":
            out.append((name, equalised(gray)))
        elif name == "log":
            out.append((name, log_stretch(gray)))
        elif name == "inverted":
            out.append((name, 255 - base))
        else:
            raise ValueError(f"unknown gray view {name!r}")
    return out


def brightest_channel(image: np.ndarray) -> np.ndarray:
    """The brightest sample of each pixel of an (H, W, C) picture (a 2-D picture as it is): what
    `image.max(axis=2)` gives, as a new array.

    Why not that: numpy reduces a last axis of 3 samples pixel by pixel; the maxima of the channel planes give
    the same values 7x faster for 8-bit RGB 800x600 (30 -> 4 ms) and 50x for 16-bit (73 -> 1.3 ms), and the
    scan of an ultrasound frame took it four times (a fifth of its time)."""
    if image.ndim == 2:
        return image
    out = image[..., 0].copy()
    for channel in range(1, image.shape[2]):
        np.maximum(out, image[..., channel], out=out)
    return out


def colour_views(rgb: np.ndarray, names: tuple[str, ...]) -> list[tuple[str, np.ndarray]]:
    """The requested 8-bit views of an RGB frame (values scaled to 8 bits if stored wider)."""
    rgb8 = rgb if rgb.dtype == np.uint8 else minmax(rgb.astype(np.float32))
    out: list[tuple[str, np.ndarray]] = []
    for name in names:
        if name == "rgb":
            out.append((name, rgb8))
        elif name == "maxchannel":
            out.append((name, brightest_channel(rgb8)))
        else:
            raise ValueError(f"unknown colour view {name!r}")
    return out
