"""The residual check's neighbourhoods (deidcli.ocr.scan.neighbourhoods) are labelled on a canvas the size of their
bounding box: the same clusters, in the same order, as labelling the whole view."""

from __future__ import annotations

import cv2
import numpy as np

from deidcli.geometry import Rect
from deidcli.ocr.scan import neighbourhoods


def _on_the_whole_view(rects: list[Rect], cols: int, rows: int) -> list[Rect]:
    canvas = np.zeros((rows, cols), np.uint8)
    for rect in rects:
        height = max(4, min(rect.width, rect.height))
        around = rect.pad(3 * height, 2 * height).clip(cols, rows)
        canvas[around.y0 : around.y1, around.x0 : around.x1] = 1
    count, _, stats, _ = cv2.connectedComponentsWithStats(canvas, connectivity=4)
    return [Rect(int(x), int(y), int(x + w), int(y + h)) for x, y, w, h, _ in stats[1:count]]


def test_neighbourhoods_are_the_clusters_of_the_whole_view_in_its_order() -> None:
    rng = np.random.default_rng(20261201)
    seen_merged = False
    for _ in range(500):
        cols, rows = int(rng.integers(20, 400)), int(rng.integers(20, 400))
        rects = []
        for _ in range(int(rng.integers(0, 8))):  # boxes partly or wholly outside the view too
            x0, y0 = int(rng.integers(-10, cols + 10)), int(rng.integers(-10, rows + 10))
            rects.append(Rect(x0, y0, x0 + int(rng.integers(0, 60)), y0 + int(rng.integers(0, 30))))
        expected = _on_the_whole_view(rects, cols, rows)
        assert neighbourhoods(rects, cols, rows) == expected
        seen_merged |= 0 < len(expected) < len(rects)
    assert seen_merged  # the draw included boxes whose surroundings touch (one cluster for several boxes)


def test_two_lines_in_a_corner_are_one_neighbourhood_and_a_far_box_its_own() -> None:
    lines = [Rect(10, 10, 110, 22), Rect(10, 26, 90, 38)]
    far = Rect(900, 700, 960, 712)
    found = neighbourhoods([*lines, far], 1024, 788)
    assert found == [Rect(0, 0, 146, 62), Rect(864, 676, 996, 736)]
