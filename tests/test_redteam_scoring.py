"""The red team's box check on faint print (bench/redteam/evaluate.py): a mask that sets print 30 levels from its
tissue back to the tissue counts as masked; print left as it was counts as left.

Why: the harness counts a pixel changed from 1 % of the frame's range (58 levels on 693_UNCI), so four perfectly
masked dates and IDs of `variants.py`'s tissue_693_unci_* were scored "0 % changed, left"."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import cv2
import numpy as np
import pydicom
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from conftest import pydicom_file  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def scoring():
    spec = importlib.util.spec_from_file_location("redteam_evaluate", ROOT / "bench" / "redteam" / "evaluate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def faint_date():
    """693_UNCI's frame with a date drawn 30 stored levels above its flat tissue, and the date's box."""
    path = pydicom_file("693_UNCI.dcm")
    if path is None or not Path(path).exists():
        pytest.skip("pydicom-data's 693_UNCI.dcm is not installed")
    frame = pydicom.dcmread(path).pixel_array.astype(np.int16)
    box = (216, 250, 306, 264)
    x0, y0, x1, y1 = box
    field = int(np.median(frame[y0:y1, x0:x1]))
    ink = np.zeros(frame.shape, np.uint8)
    cv2.putText(ink, "1984-03-21", (x0, y1 - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.45, 255, 1, cv2.LINE_8)
    drawn = frame.copy()
    drawn[ink > 0] = field + 30
    return frame, drawn, box, ink > 0


def test_faint_print_masked_by_its_field_counts_as_masked(scoring, faint_date):
    frame, drawn, box, ink = faint_date
    assert 0.01 * float(np.ptp(drawn.astype(np.float64))) > 30  # the harness's tolerance is larger than the print
    masked = drawn.copy()
    masked[ink] = frame[ink]
    changed = scoring.changed_mask(drawn, masked)
    assert not changed.any()  # what the harness alone saw
    assert scoring.glyph_share(drawn, changed, box, masked) > 0.9


def test_faint_print_left_as_it_was_counts_as_left(scoring, faint_date):
    _, drawn, box, _ = faint_date
    same = drawn.copy()
    assert scoring.glyph_share(drawn, scoring.changed_mask(drawn, same), box, same) == 0.0
