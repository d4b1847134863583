"""The file's own VOI windows, in stored-value units, for the scanner's window pass.

A viewer shows a CT through its WindowCenter/WindowWidth (40/400 for a head): print drawn 90 HU above
brain is plain there, yet only a few gray levels high in any full-range view, where bone and air set
the scale (red team 4's `ct_touching_skull`: RapidOCR reads the ID at confidence 1.00 in the file's
window and finds nothing in the scanner's other views). Issue 12 asks for every VOI window in the file.

Every value here comes from the file, so each is checked before it shapes a picture: numbers only,
finite, a width of at least 1, a non-zero rescale slope, at most MAX_WINDOWS distinct windows (a file
listing thousands would otherwise buy thousands of detections). Anything unreadable gives no window:
the scanner's other views still run, so a broken window costs recall in that view only, never a mask.
VOI LUT sequences are not windows and are not read here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydicom.dataset import Dataset

#: Distinct windows looked at per file (viewers offer 1-3; CT presets rarely exceed 4).
MAX_WINDOWS = 4

#: Values read from a multi-valued WindowCenter/WindowWidth before giving up on the rest.
MAX_VALUES = 16


def _numbers(value: object) -> list[float]:
    """A DS value (one or several) as floats; anything else raises ValueError/TypeError."""
    if value is None or value == "":
        return []
    items: Sequence[object] = value if isinstance(value, Sequence) and not isinstance(value, (str, bytes)) else [value]
    out = []
    for item in list(items)[:MAX_VALUES]:
        number = float(item)  # type: ignore[arg-type]
        if not math.isfinite(number):
            raise ValueError("not a finite number")
        out.append(number)
    return out


def _single(value: object, default: float) -> float:
    numbers = _numbers(value)
    return numbers[0] if numbers else default


def stored_windows(source: Dataset) -> tuple[tuple[float, float], ...]:
    """(low, high) stored values of each VOI window the file names, in the order it names them."""
    try:
        centres = _numbers(source.get("WindowCenter"))
        widths = _numbers(source.get("WindowWidth"))
        slope = _single(source.get("RescaleSlope"), 1.0)
        intercept = _single(source.get("RescaleIntercept"), 0.0)
    except (TypeError, ValueError, OverflowError, AttributeError):
        return ()
    if slope == 0:
        return ()
    windows: list[tuple[float, float]] = []
    for centre, width in zip(centres, widths, strict=False):  # unequal counts: the pairs there are
        if width < 1:
            continue
        ends = sorted(((centre - width / 2 - intercept) / slope, (centre + width / 2 - intercept) / slope))
        window = (ends[0], ends[1])
        if window not in windows:
            windows.append(window)
        if len(windows) == MAX_WINDOWS:
            break
    return tuple(windows)
