"""Cutting a line of print between an authorised label and the rest (deidcli.ocr.label_split), on drawn lines."""

from __future__ import annotations

import cv2
import numpy as np

from deidcli.geometry import Rect
from deidcli.ocr.label_split import covers_ink, cuts


def _line(parts: list[tuple[str, int]], height: int = 20) -> tuple[np.ndarray, list[Rect]]:
    """Gray picture with the texts drawn left to right, each after its gap (pixels); their ink boxes."""
    picture = np.random.default_rng(1).normal(60, 3, (3 * height, 60 * height)).clip(0, 255).astype(np.uint8)
    x, boxes = 10, []
    for text, gap in parts:
        x += gap
        ink = np.zeros(picture.shape, np.uint8)
        cv2.putText(ink, text, (x, 2 * height), cv2.FONT_HERSHEY_DUPLEX, height / 22, 255, 2)
        ys, xs = np.nonzero(ink)
        boxes.append(Rect(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1))
        picture[ink > 0] = 240
        x = boxes[-1].x1
    return picture, boxes


def test_a_label_set_apart_gives_a_cut_at_the_middle_of_its_gap() -> None:
    picture, (label, name) = _line([("L CC", 0), ("DUBOIS, AMELIE", 30)])
    line = Rect(label.x0 - 4, label.y0 - 6, name.x1 + 4, name.y1 + 6)
    found = cuts(picture, line, 6.0)
    heads = [c for c in found if c.label.x0 == label.x0]
    assert heads, found
    cut = heads[0]  # the longest part first: the whole label, not its `L`
    assert cut.label.x1 == label.x1 and label.x1 < cut.rest.x0 < name.x0
    assert cut.window.x1 <= cut.rest.x0  # the label's picture never holds the name's ink
    assert cut.rest.x1 == line.x1


def test_word_spaces_give_no_cut() -> None:
    """Every line of demographics has word spaces (a third to half of its height): no label is looked for there."""
    picture, (first, second) = _line([("DOB:", 0), ("1941-05-16", 8)])
    line = Rect(first.x0 - 4, first.y0 - 6, second.x1 + 4, second.y1 + 6)
    assert cuts(picture, line, 6.0) == []


def test_a_label_after_the_name_is_cut_before_it() -> None:
    picture, (name, label) = _line([("ZHANG WEI", 0), ("R MLO", 30)])
    line = Rect(name.x0 - 4, name.y0 - 6, label.x1 + 4, label.y1 + 6)
    tails = [c for c in cuts(picture, line, 6.0) if c.label.x1 == label.x1]
    assert tails and tails[0].label.x0 == label.x0 and name.x1 < tails[0].rest.x1 < label.x0
    assert tails[0].window.x0 >= tails[0].rest.x1


def test_a_box_read_short_of_the_ink_does_not_cover_it() -> None:
    picture, (label,) = _line([("L CC", 0)])
    window = label.pad(6, 6)
    assert covers_ink(picture, window, label.pad(1, 1))
    assert not covers_ink(picture, window, Rect(label.x0 + label.width // 2, label.y0, label.x1, label.y1))
