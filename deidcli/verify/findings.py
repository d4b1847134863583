"""A verify finding: which file, which check, where in it, and what (the value itself is PHI: JSON only)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

#: The checks, in the order a reader meets them; each finding names one.
CHECKS = ("values", "structure", "pixels", "reconciliation", "sums")


@dataclass(frozen=True)
class Finding:
    file: str  # output path relative to OUT_DIR ("" for release-wide findings)
    check: str  # one of CHECKS
    place: str  # where in the file (element trail, byte offset, frame and box, path)
    message: str  # what is wrong, without PHI
    value: str = ""  # the original value found (PHI): written to the private JSON, never printed
    crop: str = ""  # pixels: path of the crop PNG in the private folder

    def line(self) -> str:
        return f"{self.check:15} {self.place}: {self.message}"

    def as_dict(self) -> dict:
        return asdict(self)
