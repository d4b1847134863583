"""Rectangles in pixel coordinates: the vocabulary shared by region rules, OCR and masking."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Rect:
    """A half-open rectangle [x0, x1) x [y0, y1) in pixel columns/rows of one frame."""

    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def width(self) -> int:
        return max(0, self.x1 - self.x0)

    @property
    def height(self) -> int:
        return max(0, self.y1 - self.y0)

    @property
    def area(self) -> int:
        return self.width * self.height

    def clip(self, columns: int, rows: int) -> Rect:
        """The part of this rectangle inside a `columns` x `rows` frame (possibly empty)."""
        return Rect(
            min(max(self.x0, 0), columns),
            min(max(self.y0, 0), rows),
            min(max(self.x1, 0), columns),
            min(max(self.y1, 0), rows),
        )

    def pad(self, margin_x: int, margin_y: int) -> Rect:
        """Grown by a margin on every side (OCR boxes under-cover the glyphs; see the OCR issue)."""
        return Rect(self.x0 - margin_x, self.y0 - margin_y, self.x1 + margin_x, self.y1 + margin_y)

    def scale(self, factor_x: float, factor_y: float) -> Rect:
        """Mapped from a resized view back to full resolution, rounding outwards (never shrink a mask)."""
        import math

        return Rect(
            math.floor(self.x0 * factor_x),
            math.floor(self.y0 * factor_y),
            math.ceil(self.x1 * factor_x),
            math.ceil(self.y1 * factor_y),
        )

    def to_list(self) -> list[int]:
        return [self.x0, self.y0, self.x1, self.y1]


def outside(extent: Rect, cols: int, rows: int, overlap: int, full_bands: bool = False) -> list[Rect]:
    """The parts of a (rows, cols) picture around `extent`, each reaching `overlap` pixels into it so that
    a line of print crossing its edge is seen whole from one side or the other: left and right strips
    of full height, top and bottom bands between them (`full_bands`: across the whole width, so that a
    toolbar word crossing from a band into a strip is whole in the band); a side where `extent` touches
    the picture's edge has no part. An extent too thin to reach into gives the whole picture."""
    if min(extent.width, extent.height) <= 2 * overlap:
        return [Rect(0, 0, cols, rows)]
    inner = extent.pad(-overlap, -overlap)
    band_x0, band_x1 = (0, cols) if full_bands else (inner.x0, inner.x1)
    parts = [
        (extent.x0 > 0, Rect(0, 0, inner.x0, rows)),
        (extent.x1 < cols, Rect(inner.x1, 0, cols, rows)),
        (extent.y0 > 0, Rect(band_x0, 0, band_x1, inner.y0)),
        (extent.y1 < rows, Rect(band_x0, inner.y1, band_x1, rows)),
    ]
    return [part for wanted, part in parts if wanted]


#: frame index -> rectangles to blank on that frame; key None means "every frame".
MaskPlan = dict[int | None, list[Rect]]


def chained(boxes: list[Rect], vertical: bool, reach: float, linked: Callable[[Rect, Rect], bool]) -> list[list[Rect]]:
    """`boxes` joined into chains, neighbours of neighbours: a row of glyphs (`vertical` False) or a column of
    turned ones (True). Boxes are swept in order of their start along that axis; a box starting more than
    `reach` past another's end is not compared with it (nor are the ones after it), so a line costs its
    neighbours, not all pairs. Chains come in the order of their first box in `boxes`, members in `boxes`' order."""
    parent = list(range(len(boxes)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def start(box: Rect) -> int:
        return box.y0 if vertical else box.x0

    def end(box: Rect) -> int:
        return box.y1 if vertical else box.x1

    order = sorted(range(len(boxes)), key=lambda i: start(boxes[i]))
    for n, i in enumerate(order):
        for j in order[n + 1 :]:
            if start(boxes[j]) - end(boxes[i]) > reach:
                break
            if linked(boxes[i], boxes[j]):
                parent[root(j)] = root(i)
    groups: dict[int, list[Rect]] = {}
    for i, box in enumerate(boxes):
        groups.setdefault(root(i), []).append(box)
    return list(groups.values())


def enclosing(rects: Iterable[Rect]) -> Rect:
    """The smallest rectangle holding every one of `rects` (at least one)."""
    rects = list(rects)
    return Rect(min(r.x0 for r in rects), min(r.y0 for r in rects), max(r.x1 for r in rects), max(r.y1 for r in rects))


def overlaps(a: Rect, b: Rect) -> bool:
    """Whether two rectangles share at least one pixel."""
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def line_neighbours(a: Rect, b: Rect, vertical: bool, size_ratio: float, overlap_share: float, gap_share: float) -> bool:
    """Whether two glyph boxes are neighbours in one line of print: a row (`vertical` False) or a column of turned
    glyphs (True). Across the line their sizes differ by at most `size_ratio`, and they share `overlap_share` of
    the smaller; along it they are at most `gap_share` of the larger apart."""
    small, large = sorted((a.width, b.width) if vertical else (a.height, b.height))
    if large > size_ratio * small:
        return False
    if vertical:
        shared, gap = min(a.x1, b.x1) - max(a.x0, b.x0), max(a.y0 - b.y1, b.y0 - a.y1, 0)
    else:
        shared, gap = min(a.y1, b.y1) - max(a.y0, b.y0), max(a.x0 - b.x1, b.x0 - a.x1, 0)
    return shared >= overlap_share * small and gap <= gap_share * large
