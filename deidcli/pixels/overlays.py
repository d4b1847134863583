"""Overlay planes (60xx,3000): 1-bit graphics that viewers draw over the image, and that can carry text too.

`overlay_images` renders each plane in *image* coordinates (OverlayOrigin applied) so that rectangles found on
it by OCR can be passed unchanged to `mask_overlays` and to the pixel mask. Multi-frame overlay planes are
merged (any bit set in any frame) for OCR, and masking clears the rectangles on every overlay frame.
Overlay bytes are handled in the dataset's own byte order (OW words are swapped for big endian datasets).
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import pack_bits, unpack_bits

from deidcli.geometry import Rect


def overlay_groups(ds: Dataset) -> list[int]:
    """Groups 0x6000..0x601E that hold OverlayData."""
    return [group for group in range(0x6000, 0x6020, 2) if (group << 16 | 0x3000) in ds]


def overlay_images(target: Dataset) -> list[tuple[int, np.ndarray]]:
    """(group, uint8 image: 255 where the overlay bit is set) for each plane, in image coordinates."""
    images = []
    for group in overlay_groups(target):
        bits = _read_plane(target, group)
        if bits is None:
            continue
        rows, columns = _canvas_size(target, bits.shape[1:])
        origin_row, origin_col = _origin(target, group)
        canvas = np.zeros((rows, columns), dtype=np.uint8)
        merged = bits.max(axis=0) * np.uint8(255)
        _paste(canvas, merged, origin_row, origin_col)
        images.append((group, canvas))
    return images


def mask_overlays(target: Dataset, rects: list[Rect]) -> int:
    """Clear overlay bits inside the image-coordinate `rects` on every plane; returns how many bits were cleared."""
    cleared = 0
    for group in overlay_groups(target):
        bits = _read_plane(target, group)
        if bits is None:
            continue
        origin_row, origin_col = _origin(target, group)
        changed = 0
        for rect in rects:
            local = Rect(rect.x0 - origin_col, rect.y0 - origin_row, rect.x1 - origin_col, rect.y1 - origin_row)
            local = local.clip(bits.shape[2], bits.shape[1])
            if local.area == 0:
                continue
            window = bits[:, local.y0 : local.y1, local.x0 : local.x1]
            changed += int(window.sum())
            window[...] = 0
        if changed:
            _write_plane(target, group, bits)
            cleared += changed
    return cleared


def _read_plane(ds: Dataset, group: int) -> np.ndarray | None:
    """Overlay bits as a (frames, rows, columns) uint8 array of 0/1, or None when the plane is unusable."""
    rows = ds.get((group, 0x0010))
    columns = ds.get((group, 0x0011))
    if rows is None or columns is None or not rows.value or not columns.value:
        return None
    frames = _overlay_frames(ds, group)
    count = int(rows.value) * int(columns.value) * frames
    data = _little_endian_bytes(ds, group)
    if len(data) * 8 < count:
        return None
    bits = np.asarray(unpack_bits(data), dtype=np.uint8)[:count]
    return bits.reshape(frames, int(rows.value), int(columns.value)).copy()


def _write_plane(ds: Dataset, group: int, bits: np.ndarray) -> None:
    element = ds[group << 16 | 0x3000]
    data = pack_bits(bits.reshape(-1), pad=True)
    if _is_big_endian_ow(ds, element.VR):
        data = _swap16(data)
    element.value = data


def _little_endian_bytes(ds: Dataset, group: int) -> bytes:
    element = ds[group << 16 | 0x3000]
    data = bytes(element.value)
    return _swap16(data) if _is_big_endian_ow(ds, element.VR) else data


def _is_big_endian_ow(ds: Dataset, vr: str) -> bool:
    return ds.original_encoding[1] is False and vr == "OW"


def _swap16(data: bytes) -> bytes:
    whole = len(data) - len(data) % 2
    return np.frombuffer(data[:whole], dtype=">u2").astype("<u2").tobytes() + data[whole:]


def _overlay_frames(ds: Dataset, group: int) -> int:
    element = ds.get((group, 0x0015))
    try:
        return max(1, int(element.value)) if element is not None and element.value not in (None, "") else 1
    except (TypeError, ValueError):
        return 1


def _origin(ds: Dataset, group: int) -> tuple[int, int]:
    """Zero-based (row, column) of the overlay's first pixel in the image (OverlayOrigin is 1-based)."""
    element = ds.get((group, 0x0050))
    if element is None or element.value is None or len(element.value) < 2:
        return 0, 0
    return int(element.value[0]) - 1, int(element.value[1]) - 1


def _canvas_size(ds: Dataset, overlay_shape: tuple[int, ...]) -> tuple[int, int]:
    rows = int(ds.get("Rows") or overlay_shape[0])
    columns = int(ds.get("Columns") or overlay_shape[1])
    return rows, columns


def _paste(canvas: np.ndarray, plane: np.ndarray, top: int, left: int) -> None:
    """Copy `plane` onto `canvas` at (top, left), clipping what falls outside."""
    rows, columns = canvas.shape
    src_top, src_left = max(0, -top), max(0, -left)
    dst_top, dst_left = max(0, top), max(0, left)
    height = min(plane.shape[0] - src_top, rows - dst_top)
    width = min(plane.shape[1] - src_left, columns - dst_left)
    if height > 0 and width > 0:
        canvas[dst_top : dst_top + height, dst_left : dst_left + width] = plane[
            src_top : src_top + height, src_left : src_left + width
        ]
