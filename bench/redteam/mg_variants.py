"""Variants of the print red team 4 left on mammograms, drawn by a generator of their own (issue 12).

    .venv/bin/python bench/redteam/mg_variants.py [--seed 5] [--lines 48] [--labels 12] [--out FILE]

Two kinds, each scored by the scanner's own rectangles (deidcli.ocr.TextScanner with the mammography list,
as `deid run --recipe mammography` scans; the masks are fitted to the ink afterwards, not scored here):

- *small print on the air*: one line per corner on the air side of a 3328x2560 mammogram, 14-24 px capitals,
  40-100 % of the way from the air to the top of the range, bold (strokes a sixth to a ninth of the height) or
  plain (1-2 px), Hershey simplex/duplex/complex/triplex, top or bottom, 12, 14 or 16 bits, MONOCHROME2 or 1.
  *Left* = under 95 % of its glyph pixels (coverage >= 0.25) inside a masked rectangle.
- *a label, then a name on the same line*: an authorised label (`L CC`, `R MLO`, `LCC`, `RMLO`) 30-60 px,
  one to three glyph widths before a name in the same face. The name must be masked (95 %), the label kept
  (under 10 % of its glyph pixels masked); where the scanner cannot tell them apart it masks both (fail closed).

Deterministic (seed); no network; nothing written but the report. CPU: ~1-3 s per scan, one scan a picture.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent.parent))
from make_planted import PEOPLE, Style, glyph_mask, mammogram  # noqa: E402

from deidcli.geometry import Rect  # noqa: E402
from deidcli.ocr import BUILTIN_MAMMOGRAPHY_WORDS, TextScanner, make_detector  # noqa: E402

ROWS, COLS = 3328, 2560
FACES = ("simplex", "duplex", "complex", "triplex")
LABELS = ("L CC", "R MLO", "LCC", "RMLO")


@dataclass
class Planted:
    text: str
    what: str  # "phi" or "label"
    ink: np.ndarray  # bool, frame-sized: the glyph pixels
    note: str


def coverage(ink: np.ndarray, masked: list[Rect]) -> float:
    """Share of the glyph pixels lying inside a masked rectangle."""
    under = np.zeros(ink.shape, bool)
    for r in masked:
        under[max(0, r.y0) : r.y1, max(0, r.x0) : r.x1] = True
    total = int(np.count_nonzero(ink))
    return float(np.count_nonzero(ink & under)) / max(total, 1)


def draw(image: np.ndarray, text: str, x: int, y: int, height: int, value: float, style: Style) -> np.ndarray:
    """Burn `text` (capitals `height` px) with its top-left at (x, y); returns its glyph pixels."""
    m = glyph_mask(text, height, style)
    h, w = m.shape
    h, w = min(h, ROWS - y), min(w, COLS - x)
    m = m[:h, :w]
    region = image[y : y + h, x : x + w]
    image[y : y + h, x : x + w] = region * (1 - m) + value * m
    ink = np.zeros(image.shape, bool)
    ink[y : y + h, x : x + w] = m > 0.25
    return ink


def person(rng: np.random.Generator) -> str:
    family, given = PEOPLE[int(rng.integers(len(PEOPLE)))]
    return f"{family} {given}" if rng.random() < 0.5 else f"{family}, {given}"


def bases(rng: np.random.Generator) -> dict[tuple[bool, int], tuple[np.ndarray, np.ndarray]]:
    """One breast per side and bit depth (drawing a new one per picture costs more than its scan)."""
    return {(right, top): mammogram(rng, right=right, top=top)
            for right in (False, True) for top in (4095, 16383, 65535)}


def small_print(rng: np.random.Generator, base: dict, count: int) -> list[tuple[np.ndarray, int, str, list[Planted]]]:
    """`count` lines, two per picture (top and bottom corner of the air side)."""
    pictures = []
    for _ in range(count // 2):
        right = bool(rng.random() < 0.5)
        top = int(rng.choice([4095, 16383, 65535]))
        image = base[(right, top)][0].copy()
        air = float(np.median(image[:200, -200:] if not right else image[:200, :200]))
        planted = []
        for corner in ("top", "bottom"):
            height = int(rng.integers(14, 25))
            contrast = float(rng.uniform(0.4, 1.0))
            bold = bool(rng.random() < 0.6)
            face = FACES[int(rng.integers(len(FACES)))]
            thick = max(2, round(height / rng.uniform(6, 9))) if bold else int(rng.integers(1, 3))
            text = person(rng) if rng.random() < 0.6 else f"{rng.integers(10**8, 10**9)} 19{rng.integers(40, 99)}-0{rng.integers(1, 9)}-1{rng.integers(0, 9)}"
            style = Style(face, thick=thick)
            width = glyph_mask(text, height, style).shape[1]
            x = int(rng.integers(20, 120)) if right else COLS - width - int(rng.integers(20, 500))
            y = int(rng.integers(20, 90)) if corner == "top" else ROWS - height - int(rng.integers(20, 90))
            value = air + contrast * (top - air)
            ink = draw(image, text, x, y, height, value, style)
            planted.append(Planted(text, "phi", ink, f"{height}px {face} t{thick} {contrast:.0%} {corner}"))
        photometric = "MONOCHROME1" if rng.random() < 0.25 else "MONOCHROME2"
        stored = image if photometric == "MONOCHROME2" else top - image
        bits = {4095: 12, 16383: 14, 65535: 16}[top]
        pictures.append((stored.round().clip(0, top).astype(np.uint16), bits, photometric, planted))
    return pictures


def label_and_name(rng: np.random.Generator, base: dict, count: int) -> list[tuple[np.ndarray, int, str, list[Planted]]]:
    """`count` pictures, each an authorised label followed on its line by a name in the same face."""
    pictures = []
    for _ in range(count):
        right = bool(rng.random() < 0.5)
        top = 16383 if rng.random() < 0.7 else 4095
        image = base[(right, top)][0].copy()
        height = int(rng.integers(30, 61))
        face = FACES[1 + int(rng.integers(len(FACES) - 1))]
        style = Style(face, thick=max(2, round(height / rng.uniform(7, 12))))
        label = LABELS[int(rng.integers(len(LABELS)))]
        name = person(rng)
        gap = int(rng.uniform(1.0, 3.0) * height * 0.6)
        lw = glyph_mask(label, height, style).shape[1]
        x = int(rng.integers(20, 80)) if right else COLS - lw - gap - 500 - int(rng.integers(0, 150))
        y = int(rng.integers(30, 200)) if rng.random() < 0.5 else ROWS - height - int(rng.integers(30, 200))
        planted = [Planted(label, "label", draw(image, label, x, y, height, top, style), f"{height}px {face}"),
                   Planted(name, "phi", draw(image, name, x + lw + gap, y, height, top, style),
                           f"{height}px {face} gap {gap}px")]
        bits = 12 if top == 4095 else 14
        pictures.append((image.round().clip(0, top).astype(np.uint16), bits, "MONOCHROME2", planted))
    return pictures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--lines", type=int, default=48)
    parser.add_argument("--labels", type=int, default=12)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    base = bases(rng)
    scanner = TextScanner(make_detector("rapidocr"), BUILTIN_MAMMOGRAPHY_WORDS)
    report = ["| kind | planted | coverage | verdict |", "|---|---|---|---|"]
    left = lines = names_left = labels_kept = pairs = 0
    cpu = []
    for kind, pictures in (("small print", small_print(rng, base, args.lines)),
                           ("label + name", label_and_name(rng, base, args.labels))):
        for frame, bits, photometric, planted in pictures:
            start = time.process_time()
            result = scanner.scan(frame, photometric, bits)
            cpu.append(time.process_time() - start)
            for item in planted:
                share = coverage(item.ink, result.masked)
                if item.what == "phi":
                    ok = share >= 0.95
                    if kind == "small print":
                        lines += 1
                        left += not ok
                    else:
                        pairs += 1
                        names_left += not ok
                else:
                    ok = share < 0.1
                    labels_kept += ok
                verdict = ("masked" if ok else "LEFT") if item.what == "phi" else ("kept" if ok else "lost")
                report.append(f"| {kind} | `{item.text}` {item.note} {bits} bit {photometric} | {share:.0%} | {verdict} |")
    summary = (f"small print left {left}/{lines}; label+name: names left {names_left}/{pairs}, labels kept "
               f"{labels_kept}/{pairs}; scan CPU median {np.median(cpu):.2f} s")
    text = "\n".join([summary, ""] + report)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
