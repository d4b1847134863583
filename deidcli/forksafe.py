"""Forking a process that has used OpenCV's thread pool: the child starts with an empty pool, never a dead one.

Why: OpenCV (the pip wheels' "pthreads" parallel framework) keeps one process-wide pool of worker threads,
made on the first parallel call (a resize, a blur, a labelling). `fork` copies that pool's bookkeeping into
the child but not its threads, so the child's pool lists workers that do not exist, each "waiting" on a
condition variable. The first `cv2.setNumThreads(n)` in the child that changes the count tears those workers
down: `pthread_cond_destroy` on a condition variable with a recorded waiter blocks forever (glibc). A batch
worker sets its share of the cores (`deidcli.ocr.engines.make_detector`), so a `--workers 2` run hung, with
no error, whenever its parent process had run OCR or any OpenCV pass before (the Python API called twice, a
test suite): measured, the workers stood in `pthread_cond_destroy` under `cv2.setNumThreads` until killed.

What: just before any `os.fork` (multiprocessing's fork start method included) the parent sets OpenCV to one
thread, which joins and frees its workers while they exist; the child and, after the fork, the parent get
their count back, and each makes fresh workers on its next parallel call. OpenCV is only touched when it is
already imported. One fork costs the parent its idle workers (respawned in microseconds when next needed).
"""

from __future__ import annotations

import os
import sys

_held: list[int] = []  # the thread count set aside for the fork now in progress (at most one entry)
_registered = False


def _before_fork() -> None:
    cv2 = sys.modules.get("cv2")
    if cv2 is None:
        return
    threads = cv2.getNumThreads()
    if threads != 1:  # one thread already means no worker in the pool: nothing to release
        cv2.setNumThreads(1)  # joins the pool's workers (OpenCV: one thread stops them at once)
        _held.append(threads)


def _after_fork() -> None:
    cv2 = sys.modules.get("cv2")
    if cv2 is not None and _held:
        cv2.setNumThreads(_held.pop())  # a count only: the pool is empty, workers come with the next call


def guard_opencv_pool() -> None:
    """Register the fork hooks once per process (idempotent; `os.register_at_fork` keeps them for good)."""
    global _registered
    if not _registered and hasattr(os, "register_at_fork"):
        os.register_at_fork(before=_before_fork, after_in_parent=_after_fork, after_in_child=_after_fork)
        _registered = True
