"""Medians and percentiles of 8-bit pictures (optionally under a mask), from their histogram.

Why: the scan takes medians and percentiles of whole 1024 px stroke pictures several times per frame (the noise
floor of each mark layer, the stroke floor of each side of the anatomy, the foreground threshold). numpy gathers
the masked pixels and partitions them: ~25 ms for the median and the 90th percentile of half a 1024x788 picture,
measured (a partition of 8-bit values, all duplicates, is slow even when they are sorted). An 8-bit picture has
256 levels: its histogram gives the same order statistics in well under a millisecond.

Exact, not an approximation: `median` and `percentile` take the order statistics numpy would pick from the
cumulative counts and combine them with numpy's own arithmetic (the float64 mean of the two middle values; the
"linear" method's interpolation between the neighbours of (n - 1) q, with its two-sided form), so the floats
are numpy's to the bit (tests/test_ocr_levels.py compares them on random pictures, masks and quantiles).
"""

from __future__ import annotations

import cv2
import numpy as np


def histogram(image8: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Pixel counts (int64) of each of the 256 levels of a 2-D uint8 picture, under `mask` (bool, same shape).

    Masked-out pixels are set to level 0 and taken off its count afterwards: OpenCV's histogram with a mask
    argument is 8x slower than without (5.8 against 0.7 ms at 1024x788, measured). OpenCV counts in float32,
    exact up to 2**24 pixels; larger pictures are counted by numpy."""
    picture = np.ascontiguousarray(image8)
    if mask is not None:
        picture = np.multiply(picture, mask, dtype=np.uint8)
    if picture.size >= 1 << 24:
        counts = np.bincount(picture.ravel(), minlength=256).astype(np.int64)
    else:
        counts = cv2.calcHist([picture], [0], None, [256], [0, 256]).ravel().astype(np.int64)
    if mask is not None:
        counts[0] -= mask.size - int(np.count_nonzero(mask))
    return counts


def _values_at(counts: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """The uint8 values at `indices` of the sorted pixels a histogram counts."""
    return np.searchsorted(np.cumsum(counts), indices, side="right").astype(np.uint8)


def median(counts: np.ndarray) -> float:
    """`float(np.median(pixels))` of the uint8 pixels a histogram counts (none: ValueError): the middle value
    of an odd count, else the mean of the two middle values (numpy averages 8-bit values in float64)."""
    total = int(counts.sum())
    if total == 0:
        raise ValueError("median of no pixels")
    if total % 2:
        return float(_values_at(counts, np.array(total // 2)))
    low, high = _values_at(counts, np.array([total // 2 - 1, total // 2]))
    return (int(low) + int(high)) / 2


def percentile(counts: np.ndarray, q: float | list[float]) -> np.ndarray | np.float64:
    """`np.percentile(pixels, q)` (method "linear") of the uint8 pixels a histogram counts (none: ValueError)."""
    total = int(counts.sum())
    if total == 0:
        raise ValueError("percentile of no pixels")
    virtual = (total - 1) * np.true_divide(np.asanyarray(q), 100)
    previous = np.floor(virtual)
    above = virtual >= total - 1  # numpy takes the largest value there
    low_index = np.where(above, total - 1, previous).astype(np.intp)
    high_index = np.where(above, total - 1, previous + 1).astype(np.intp)
    gamma = virtual - np.where(above, -1, previous)
    low, high = _values_at(counts, low_index), _values_at(counts, high_index)
    step = high - low  # uint8, never negative: the values are sorted
    result = np.add(low, step * gamma)
    result = np.where(gamma >= 0.5, high - step * (1 - gamma), result)
    return result if result.ndim else np.float64(result)


#: Largest bit pattern of a non-negative float32 that is a number (+inf): above it, NaN; with the sign bit, < 0.
_FLOAT32_INF_BITS = 0x7F800000
#: Fewer values than this are left to numpy's partition, faster there (the counts cost ~0.2 ms whatever the size).
FLOAT_MEDIAN_MIN_SIZE = 1 << 16


def float_median(values: np.ndarray) -> float:
    """`float(np.median(values))` of a 1-D float32 array, found by radix selection when every value is a number
    at least 0 (a stroke response's magnitude) and there are FLOAT_MEDIAN_MIN_SIZE of them, else by numpy itself.

    Why: numpy partitions the values (8 ms for the 400 000 stroke responses of one side of a 1024 px mammogram
    view, taken twice per scan). The bit patterns of non-negative float32 numbers sort as the numbers do, so the
    bin of the high 16 bits holding each middle value is found from one count, and the value among the few in
    that bin by a partition; they are combined as numpy does: the float32 mean of the two middle values, or the
    middle one."""
    if values.dtype != np.float32 or values.ndim != 1 or values.size < FLOAT_MEDIAN_MIN_SIZE:
        return float(np.median(values))
    bits = values.view(np.uint32)
    if int(bits.max()) > _FLOAT32_INF_BITS:
        return float(np.median(values))  # a negative value or NaN: numpy's own rules
    size = values.size
    ranks = [size // 2] if size % 2 else [size // 2 - 1, size // 2]
    high = bits >> 16
    cumulative = np.cumsum(np.bincount(high))
    middle = []
    for rank in ranks:
        top = int(np.searchsorted(cumulative, rank, side="right"))
        below = int(cumulative[top - 1]) if top else 0
        in_bin = bits[high == top]
        middle.append(np.partition(in_bin, rank - below)[rank - below])  # the same bits: the same number
    return float(np.mean(np.array(middle, np.uint32).view(np.float32)))


def median_of(values: np.ndarray) -> float | np.ndarray:
    """`np.median(values, axis=0)` as numpy gives it, from counts for 1-D uint8 values (`median`) and by radix
    selection for 1-D float32 ones (`float_median`); other arrays by numpy. The same number either way (a
    float; an array for samples x channels)."""
    if values.ndim == 1 and values.size:
        if values.dtype == np.uint8:
            return median(np.bincount(values, minlength=256))
        if values.dtype == np.float32:
            return float_median(values)
    return np.median(values, axis=0)
