"""Rectangles in pixel coordinates: the vocabulary shared by region rules, OCR and masking."""

from __future__ import annotations

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


#: frame index -> rectangles to blank on that frame; key None means "every frame".
MaskPlan = dict[int | None, list[Rect]]
