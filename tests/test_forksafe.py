"""A forked child of a process whose OpenCV pool has live workers can change its own thread count and run
OpenCV (deidcli.forksafe): without the fork hooks it blocked for good in `pthread_cond_destroy` (a batch
worker, measured) or died of SIGSEGV joining a worker thread that the fork did not copy (this test)."""

from __future__ import annotations

import os
import signal
import time

import cv2
import numpy as np

import deidcli  # noqa: F401 - importing the package registers the fork hooks

#: Seconds the child has; it needs well under one, a hung child never ends.
CHILD_LIMIT_S = 30


def _wait_or_kill(pid: int) -> int | None:
    """The child's exit code, or None when it was still running after CHILD_LIMIT_S (then killed)."""
    deadline = time.monotonic() + CHILD_LIMIT_S
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def test_a_child_forked_after_opencv_ran_threaded_sets_its_own_threads_and_runs() -> None:
    previous = cv2.getNumThreads()
    picture = np.random.default_rng(5).integers(0, 255, (2048, 2048), np.uint8)
    try:
        cv2.setNumThreads(4)
        cv2.GaussianBlur(picture, (0, 0), 3)  # a parallel call: the pool now has 3 live workers
        pid = os.fork()
        if pid == 0:  # the child: what a batch worker does first (make_detector), then a parallel call
            inherited = cv2.getNumThreads()
            cv2.setNumThreads(1)
            cv2.setNumThreads(2)
            cv2.GaussianBlur(picture, (0, 0), 3)
            os._exit(inherited)
        code = _wait_or_kill(pid)
        assert code is not None, "the forked child hung in OpenCV"
        assert code >= 0, f"the forked child died of signal {-code}"
        assert code == 4  # the child had the parent's count back (its pool empty, workers made afresh)
        assert cv2.getNumThreads() == 4  # and so has the parent
        assert np.array_equal(cv2.GaussianBlur(picture, (0, 0), 3), cv2.GaussianBlur(picture, (0, 0), 3))
    finally:
        cv2.setNumThreads(previous)
