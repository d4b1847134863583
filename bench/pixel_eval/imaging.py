"""Decode a DICOM file's frames into 8-bit RGB pictures a person (or OCR) can read.

Shared by the annotation tool, the hard-case generator's self-check and the benchmark, so that every
box in annotations.json is in the coordinates of the frames this module yields: (row, column) of the
stored image, frame index as stored.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pydicom
from pydicom.pixels import apply_color_lut, apply_modality_lut, pixel_array

PIXEL_TAGS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def frame_count(ds: pydicom.Dataset) -> int:
    try:
        return max(int(ds.get("NumberOfFrames", 1) or 1), 1)
    except (TypeError, ValueError):
        return 1


def tool_plugin(ds: pydicom.Dataset) -> str:
    """The decoding plugin deid uses for this file's transfer syntax ("" where deidcli is not importable or
    the syntax is native: pydicom's own choice).

    Why: lossy JPEG decoders differ by a few levels (another IDCT): color3d_jpeg_baseline decoded with
    pydicom's first plugin (gdcm) differs from deid's pylibjpeg decode by up to 5 levels on ~74 pixels a
    frame, which the damage measure counted as pixels deid changed inside the sector."""
    try:
        from pydicom.pixels import get_decoder

        from deidcli.pixels.frames import preferred_plugin

        syntax = ds.file_meta.TransferSyntaxUID
        return preferred_plugin(get_decoder(syntax)) if syntax.is_compressed else ""
    except Exception:  # noqa: BLE001 - peers' venvs have no deidcli; an unknown syntax has no decoder
        return ""


def raw_frames(ds: pydicom.Dataset) -> np.ndarray:
    """All frames as (frames, rows, cols[, samples]) in stored values (colour converted to RGB), decoded
    with the plugin deid itself uses (`tool_plugin`), or pydicom's default where that one fails."""
    plugin = tool_plugin(ds)
    try:
        arr = ds.pixel_array if not plugin else pixel_array(ds, decoding_plugin=plugin)
    except Exception:  # noqa: BLE001 - the tool quarantines what its plugin cannot decode; the check still looks
        arr = ds.pixel_array
    n = frame_count(ds)
    spp = int(ds.get("SamplesPerPixel", 1) or 1)
    if n == 1 and arr.ndim == (3 if spp > 1 else 2):
        arr = arr[None]
    return arr


def to_display(frame: np.ndarray, ds: pydicom.Dataset, full_range: bool = True) -> np.ndarray:
    """One stored frame -> uint8 RGB. full_range: stretch min..max (shows text outside the VOI window)."""
    pi = str(ds.get("PhotometricInterpretation", "")).strip()
    if pi == "PALETTE COLOR":
        rgb = apply_color_lut(frame, ds)
        if rgb.dtype != np.uint8:
            rgb = (rgb.astype(np.float64) / max(float(rgb.max()), 1.0) * 255).astype(np.uint8)
        return rgb
    if frame.ndim == 3:
        f = frame.astype(np.float64)
        if frame.dtype != np.uint8:
            f = f / max(float(f.max()), 1.0) * 255
        return np.clip(f, 0, 255).astype(np.uint8)
    f = frame.astype(np.float64)
    if not full_range and "WindowCenter" in ds and "WindowWidth" in ds:
        try:
            f = apply_modality_lut(frame, ds).astype(np.float64)
            wc = ds.WindowCenter
            ww = ds.WindowWidth
            wc = float(wc[0] if isinstance(wc, pydicom.multival.MultiValue) else wc)
            ww = float(ww[0] if isinstance(ww, pydicom.multival.MultiValue) else ww)
            lo, hi = wc - ww / 2, wc + ww / 2
        except Exception:
            lo, hi = float(f.min()), float(f.max())
    else:
        lo, hi = float(np.nanmin(f)), float(np.nanmax(f))
    g = np.clip((f - lo) / max(hi - lo, 1e-9), 0, 1) * 255
    if pi == "MONOCHROME1":
        g = 255 - g
    g = g.astype(np.uint8)
    return np.stack([g, g, g], axis=-1)


def display_frames(path: Path, indices: list[int] | None = None, full_range: bool = True) -> Iterator[tuple[int, np.ndarray]]:
    ds = pydicom.dcmread(path, force=True)
    frames = raw_frames(ds)
    for i in range(frames.shape[0]) if indices is None else indices:
        yield i, to_display(frames[i], ds, full_range)


def sample_indices(n: int) -> list[int]:
    """First, middle and last frame (the frames annotated by eye)."""
    return sorted({0, n // 2, n - 1})
