"""How many threads an OCR engine gets: the cores its process may use, shared by the batch's workers.

Kept apart from deidcli.ocr.engines so that the batch's parent can size its workers without importing
OpenCV or ONNX Runtime (the parent never loads a model).
"""

from __future__ import annotations

import os

#: The environment variable that fixes every engine's thread count (a positive whole number).
THREADS_VARIABLE = "DEID_OCR_THREADS"


def told_threads() -> int | None:
    """DEID_OCR_THREADS when it is a positive whole number, else None: a typo there must not crash the
    import of the OCR engines (it used to raise ValueError at import) nor mean something else per caller."""
    told = os.environ.get(THREADS_VARIABLE, "").strip()
    return int(told) if told.isdigit() and int(told) > 0 else None


#: Threads per engine when nobody says otherwise (the Python API, one process per core). A batch asks
#: `engine_threads(workers)` instead; DEID_OCR_THREADS overrides both.
DEFAULT_THREADS = told_threads() or 1


def usable_cores() -> int:
    """The cores this process may run on (its affinity, not the machine's count)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def engine_threads(workers: int) -> int:
    """Engine threads for each of `workers` processes: the cores they share, split evenly (one worker on
    two cores gets two threads). DEID_OCR_THREADS, when set to a number, wins."""
    return told_threads() or max(1, usable_cores() // max(1, workers))
