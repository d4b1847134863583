"""How many threads an OCR engine gets: the cores its process may use, shared by the batch's workers.

Kept apart from deidcli.ocr.engines so that the batch's parent can size its workers without importing
OpenCV or ONNX Runtime (the parent never loads a model).
"""

from __future__ import annotations

import os

#: Threads per engine when nobody says otherwise (the Python API, one process per core). A batch asks
#: `engine_threads(workers)` instead; DEID_OCR_THREADS overrides both.
DEFAULT_THREADS = int(os.environ.get("DEID_OCR_THREADS", "1"))


def usable_cores() -> int:
    """The cores this process may run on (its affinity, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def engine_threads(workers: int) -> int:
    """Engine threads for each of `workers` processes: the cores they share, split evenly (one worker on
    two cores gets two threads). DEID_OCR_THREADS, when set to a number, wins."""
    told = os.environ.get("DEID_OCR_THREADS", "").strip()
    if told.isdigit():
        return max(1, int(told))
    return max(1, usable_cores() // max(1, workers))
