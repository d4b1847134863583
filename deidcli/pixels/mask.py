"""Filling rectangles of a decoded frame with a constant that hides burned-in text.

Fill value policy (the lead copies this to the README):

* MONOCHROME2: the lowest value present in the frame (air in CT, -1024 rather than the type's -32768), which
  renders black in any window and keeps the image's value range (a -32768 patch ruins auto-windowing and
  every statistic computed on the image).
* MONOCHROME1: the highest value present in the frame, black in MONOCHROME1 ("1 is white at the minimum").
* RGB (including YBR sources, which are decoded to RGB before masking): 0 on every sample, black.
* YBR_FULL / YBR_FULL_422 kept as such: luma 0 and chroma at mid-scale, black.
* PALETTE COLOR: the palette index whose colour is darkest (lowest Rec. 601 luma), so the mask looks black
  in the palette rather than whatever colour index 0 happens to map to.

A mask that stands on a flat field (air, a label plate, device chrome: FIELD_SHARE of its own one-pixel
border at one value) takes that field's value instead (`field_fill`): the print goes, the field it
stood on stays as it was. Why: a black patch on the 40-level grey chrome of an ultrasound, or on the grey
plate of a test pattern, replaced the field around every word with a block that was never in the image
(pydicom-data mlut_18: 2.9 % of its text-free pixels changed, most of them field). The patch is still one
constant, so nothing of the glyphs survives.

A constant (not a blur) is used because it cannot leak glyph shapes and compresses to almost nothing.
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels.processing import apply_color_lut

from deidcli.errors import PixelError
from deidcli.geometry import Rect
from deidcli.pixels.fit import commonest_row


def fill_value(
    photometric: str, bits_stored: int, pixel_representation: int, palette_source: Dataset | None = None,
    little_endian: bool = True,
) -> tuple[int, ...]:
    """The per-sample constant for the frame's photometric interpretation (see the module docstring)."""
    signed = pixel_representation == 1
    low = -(2 ** (bits_stored - 1)) if signed else 0
    high = 2 ** (bits_stored - 1) - 1 if signed else 2**bits_stored - 1
    if photometric == "MONOCHROME2":
        return (low,)
    if photometric == "MONOCHROME1":
        return (high,)
    if photometric == "RGB":
        return (0, 0, 0)
    if photometric in ("YBR_FULL", "YBR_FULL_422"):
        middle = 2 ** (bits_stored - 1)
        return (0, middle, middle)
    if photometric == "PALETTE COLOR":
        if palette_source is None:
            raise PixelError("no_pixel_module", "PALETTE COLOR without a palette")
        return (darkest_palette_index(palette_source, little_endian),)
    raise PixelError("unsupported_pixel_format", f"cannot mask photometric interpretation {photometric}")


def darkest_palette_index(source: Dataset, little_endian: bool = True) -> int:
    """The stored value whose palette colour has the lowest luma."""
    try:
        descriptor = [int(v) for v in source.RedPaletteColorLookupTableDescriptor]
    except (AttributeError, TypeError, ValueError) as exc:
        raise PixelError("no_pixel_module", "PALETTE COLOR without a usable LUT descriptor") from exc
    entries = descriptor[0] or 2**16
    first = descriptor[1]
    try:
        rgb = _palette_rgb(source, entries, first, little_endian)
    except (AttributeError, ValueError, KeyError) as exc:
        raise PixelError("no_pixel_module", "PALETTE COLOR LUT data missing or malformed") from exc
    luma = rgb[..., :3].astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    return int(first + int(np.argmin(luma)))


def _palette_rgb(source: Dataset, entries: int, first: int, little_endian: bool) -> np.ndarray:
    """RGB of every palette entry; plain LUT data is read with the file's byte order (pydicom assumes LE)."""
    if "RedPaletteColorLookupTableData" not in source:
        return apply_color_lut(np.arange(first, first + entries), source)
    channels = []
    for keyword in ("Red", "Green", "Blue"):
        data = source[f"{keyword}PaletteColorLookupTableData"].value
        itemsize = max(1, len(data) // entries)
        dtype = np.dtype(f"{'<' if little_endian else '>'}u{itemsize}")
        channels.append(np.frombuffer(data, dtype=dtype, count=entries))
    return np.stack(channels, axis=-1)


def background_fill(frame: np.ndarray, fmt: object, default: tuple[int, ...]) -> tuple[int, ...]:
    """The fill for one monochrome frame: its own darkest displayed value (see the module docstring);
    other photometric interpretations keep their fixed `default`."""
    photometric = getattr(fmt, "photometric_interpretation", "")
    if frame.ndim != 2 or frame.size == 0 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        return default
    value = frame.max() if photometric == "MONOCHROME1" else frame.min()
    return (int(value),)


#: Share of a mask's one-pixel border that must hold one value for the mask to take that value.
FIELD_SHARE = 0.6
#: Or, in 8-bit colour, lie within this many levels of the border's median on every sample (a lossy field's
#: noise: JPEG keeps a grey toolbar or header band within 2-4 levels, never at one value).
LOSSY_FIELD_LEVELS = 4


def field_fill(frame: np.ndarray, rect: Rect) -> tuple[int, ...] | np.ndarray | None:
    """The value of the flat field `rect` stands on: the value of FIELD_SHARE of its own one-pixel border
    (exactly one value), or None when the border is textured or mixed.

    Its own border, not the pixels around it: a region rule's header band lies on the band's colour and
    ends where the (black) picture begins; masks fitted to the print keep a margin of field inside.
    A lossy field has no single value: in 8-bit colour (ultrasound screens; palette indices and grey values
    are left exact), when FIELD_SHARE of the border lies within LOSSY_FIELD_LEVELS of its median, the mask
    takes that median (still one constant, so nothing of the glyphs survives). A rectangle across two bands takes
    each row's field (`band_field`, an array). Why: deid-data's RGB_CINE header band and color3d_jpeg_baseline's toolbar are
    JPEG grey; their masks were black blocks on the band (most of those files' remaining damage)."""
    rows, cols = frame.shape[:2]
    rect = rect.clip(cols, rows)
    patch = frame[rect.y0 : rect.y1, rect.x0 : rect.x1]
    border = np.ones(patch.shape[:2], bool)
    border[1:-1, 1:-1] = False
    values = patch[border].reshape(int(border.sum()), -1)
    if values.shape[0] == 0:
        return None
    found, count = commonest_row(values)
    if count >= FIELD_SHARE * values.shape[0]:
        return tuple(int(v) for v in found)
    bands = band_field(patch)
    if bands is not None:
        return bands
    if frame.ndim != 3 or frame.dtype != np.uint8:
        return None
    # A lossy colour field: no single value, but FIELD_SHARE of the border within a few levels of its median.
    middle = np.median(values, axis=0)
    near = (np.abs(values - middle).max(axis=1) <= LOSSY_FIELD_LEVELS).mean()
    return tuple(int(round(float(v))) for v in middle) if near >= FIELD_SHARE else None


def band_field(patch: np.ndarray) -> np.ndarray | None:
    """The fields of a rectangle lying across two flat bands (a header band and the black under it): one value
    per row, its commonest, at most two values in two runs of rows (one edge), holding FIELD_SHARE of the
    rectangle's pixels together; as an array of rows x samples (as `graded_fill`), or None. (Dense print covers up to half
    of a text row of GREYSCALE_IMAGE's header: the share is the rectangle's, not each row's.)

    Why: a region rule blanks a header band whole and reaches past it (CTP's EPIQ rule takes rows 0-49 of a grey
    band drawn on rows 0-22, black below): no value holds FIELD_SHARE of the border, and the band was filled
    black (deid-data's GREYSCALE_IMAGE and GREYSCALE_CINE: 0.7 % of their text-free pixels, the band's field
    between the words). Each row is one constant and the rows change value at most once, at the band's edge:
    nothing of a glyph's shape survives (a narrow box on one glyph whose rows alternate ink and field gets None)."""
    rows, cols = patch.shape[:2]
    if rows == 0 or cols == 0:
        return None
    flat = patch.reshape(rows, cols, -1).astype(np.int64)
    key = flat[..., 0] - int(flat.min())
    width = int(key.max()) + 1
    for sample in range(1, flat.shape[2]):  # one sortable key per sample tuple
        key = key * width + (flat[..., sample] - int(flat.min()))
    ordered = np.sort(key, axis=1)
    index = np.broadcast_to(np.arange(cols), ordered.shape)
    starts = np.maximum.accumulate(np.where(np.diff(ordered, axis=1, prepend=-1) != 0, index, 0), axis=1)
    lengths = index - starts + 1
    best = lengths.argmax(axis=1)
    if lengths[np.arange(rows), best].sum() < FIELD_SHARE * rows * cols:
        return None
    modes = ordered[np.arange(rows), best]
    if np.count_nonzero(np.diff(modes)) > 1:
        return None
    where = (key == modes[:, None]).argmax(axis=1)  # a pixel of each row holding its commonest value
    return patch[np.arange(rows), where].reshape(rows, -1)  # rows x samples, as `graded_fill`


#: Columns of each side of a mask that give a graded field's value row by row (`graded_fill`).
GRADED_SIDE = 2


def graded_fill(frame: np.ndarray, rect: Rect) -> np.ndarray | None:
    """Row by row, the value of the 8-bit field `rect` stands on when that field is graded from top to bottom
    (a toolbar's shaded buttons, a header band with a gradient): (rows x samples), or None.

    Each row takes the median of GRADED_SIDE columns on each side of the rectangle, inside its own border: values
    from outside the print (the fit keeps a margin of field), so nothing of the glyphs survives, and each row of
    the mask is one value. A graded field: every row has its side values within 2 x LOSSY_FIELD_LEVELS of each
    other and of the row above (a glyph crossing a side makes a step: such a row would take the glyphs' own
    value, and the mask would keep the print's rows), and FIELD_SHARE of the top and of the bottom border row
    lie within LOSSY_FIELD_LEVELS of their row's value (flat along the rows). Why: pydicom's examples_ybr_color and
    color3d_jpeg_baseline draw their toolbar words on buttons shaded over 30 levels: no constant matched them,
    and each word's mask was a black block on the toolbar (most of those files' damage)."""
    if frame.dtype != np.uint8:
        return None
    rows, cols = frame.shape[:2]
    rect = rect.clip(cols, rows)
    if rect.width < 2 * GRADED_SIDE + 1 or rect.height < 3:
        return None
    patch = frame[rect.y0 : rect.y1, rect.x0 : rect.x1].astype(np.int16)
    if patch.ndim == 2:
        patch = patch[..., None]
    sides = np.concatenate([patch[:, :GRADED_SIDE], patch[:, -GRADED_SIDE:]], axis=1)
    fill = np.round(np.median(sides, axis=1)).astype(np.int16)
    spread = (sides.max(axis=1) - sides.min(axis=1)).max(axis=1)
    steps = np.abs(np.diff(fill, axis=0)).max(axis=1, initial=0)
    if spread.max() > 2 * LOSSY_FIELD_LEVELS or steps.max(initial=0) > 2 * LOSSY_FIELD_LEVELS:
        return None
    for row in (0, -1):
        near = (np.abs(patch[row] - fill[row]).max(axis=1) <= LOSSY_FIELD_LEVELS).mean()
        if near < FIELD_SHARE:
            return None
    return fill.astype(np.uint8)


def apply_rects(frame: np.ndarray, rects: list[Rect], value: tuple[int, ...], on_field: bool = True,
                graded: bool = True) -> int:
    """Fill the (already clipped) rectangles in place; returns how many were non-empty.

    Each rectangle takes the value of the flat field around it where there is one (`field_fill`), else the rows
    of a graded field (`graded_fill`; `graded=False` for palette indices, whose median is no colour between
    two others), both judged on the frame as it was before any rectangle was filled, else `value`;
    `on_field=False`: `value` always."""
    fills: list[tuple[int, ...] | np.ndarray] = []
    for rect in rects:
        found = field_fill(frame, rect) if on_field else None
        graded_rows = graded_fill(frame, rect) if on_field and graded and found is None else None
        fills.append(graded_rows if graded_rows is not None else (found if found is not None else value))
    count = 0
    for rect, fill in zip(rects, fills, strict=True):
        if rect.area == 0:
            continue
        if isinstance(fill, np.ndarray):  # one value per row: (rows x samples) standing for every column
            rows = fill[: rect.height, None, :] if frame.ndim == 3 else fill[: rect.height, None, 0]
            frame[rect.y0 : rect.y1, rect.x0 : rect.x1] = rows
        else:
            frame[rect.y0 : rect.y1, rect.x0 : rect.x1] = np.asarray(fill if frame.ndim == 3 else fill[0], dtype=frame.dtype)
        count += 1
    return count


def clip_rects(rects: list[Rect], columns: int, rows: int) -> list[Rect]:
    """Rectangles clipped to the frame, empty ones dropped (a rect fully outside masks nothing)."""
    clipped = (rect.clip(columns, rows) for rect in rects)
    return [rect for rect in clipped if rect.area > 0]
