"""Fresh vertical IDs, names and dates on colour ultrasound screens without data regions (issue 12).

    .venv/bin/python bench/redteam/us_vertical.py DIR [--seed 101] [--per-base 6] [--only NAME]
    .venv/bin/python bench/redteam/evaluate.py --cases DIR --seed 101 --work W --out OUT.md   # the same --seed

Drawn after the vertical-print pass (deidcli.ocr.chrome_columns) was written against variants.py's six
`usbar_*` places, to see whether it holds where it was not tuned: every placement, size, colour, face and text
here comes from the seed. Bases (each saved as one 8-bit RGB frame without SequenceOfUltrasoundRegions, as a
device or sender that omits them would): US1_UNCR (640x480, colour bars left and right), examples_rgb_color
(the same screen at 320x240: print a third smaller), deid-data's ultrasound-multiframe frame 0 (800x600 echo,
colour bar on the right) and RGB_IMAGE (1024x768, grey bar on the left; its regions dropped).

A case is one line turned a quarter either way (reads top to bottom or bottom to top): a 9-digit ID, a name or a
date, 9-16 px (6-10 px on the small base), in one of nine colours (white, light grey, cyan, yellow, green,
orange, magenta, pale blue, red), in one of four faces, with its near end anywhere in the outer 30 % of the width
on either side (the scanner's side bands are the outer 20 %, and it looks on the chrome between them too: a tenth
of the draws fall beyond the bands, on purpose) and
anywhere down the frame where it fits. The bases' own print is scored as in the evaluation set (annotations.json).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_planted import (  # noqa: E402
    SOP,
    Canvas,
    Style,
    colour_dataset,
    glyph_mask,
    original_boxes,
    read,
    write_cases,
)

#: (package, path in the package, annotation path, frame, text heights).
BASES = [
    ("pydicom-data", "US1_UNCR.dcm", "US1_UNCR.dcm", None, (9, 16)),
    ("pydicom", "examples_rgb_color.dcm", "examples_rgb_color.dcm", None, (6, 10)),
    ("deid-data", "ultrasounds/ultrasound-multiframe.dcm", "ultrasounds/ultrasound-multiframe.dcm", 0, (9, 16)),
    ("deid-data", "ultrasounds/RGB_IMAGE.dcm", "ultrasounds/RGB_IMAGE.dcm", None, (9, 16)),
]
COLOURS = {"white": (255, 255, 255), "lightgrey": (200, 200, 200), "cyan": (0, 255, 255), "yellow": (255, 255, 0),
           "green": (0, 255, 0), "orange": (255, 128, 0), "magenta": (255, 0, 255), "paleblue": (120, 200, 255),
           "red": (255, 60, 60)}
FACES = ("duplex", "simplex", "plain", "complex")
SURNAMES = ("OKAFOR", "LINDQVIST", "MORENO", "HASHIMOTO", "KOWALSKI", "DUBOIS", "OYELARAN", "FITZGERALD")
GIVEN = ("ADA", "BRUNO", "CHIOMA", "DMITRI", "ELIF", "FARID", "GRETA", "HUGO")
#: The outer share of the width where a line's near end may fall.
OUTER = 0.3


def base_frame(package: str, path: str, frame: int | None) -> np.ndarray:
    """The base as one 8-bit RGB frame."""
    if package == "pydicom":
        import pydicom
        from pydicom.data import get_testdata_file

        ds = pydicom.dcmread(get_testdata_file(path))
    else:
        ds = read(package, path)
    pixels = ds.pixel_array
    return np.asarray(pixels[frame] if frame is not None else pixels, dtype=np.float64)


def text_of(rng: np.random.Generator) -> tuple[str, str]:
    kind = ("id", "name", "date")[int(rng.integers(0, 3))]
    if kind == "id":
        return kind, "".join(str(d) for d in rng.integers(0, 10, 9))
    if kind == "name":
        return kind, f"{SURNAMES[int(rng.integers(0, len(SURNAMES)))]} {GIVEN[int(rng.integers(0, len(GIVEN)))]}"
    return kind, f"{rng.integers(1935, 2010)}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}"


def cases(seed: int, per_base: int) -> list[tuple[str, object, list[dict], str]]:
    out = []
    for b, (package, path, annotated, frame, (low, high)) in enumerate(BASES):
        base = base_frame(package, path, frame)
        rows, cols = base.shape[:2]
        stem = Path(path).stem.replace("-", "_").lower()[:14]
        for i in range(per_base):
            rng = np.random.default_rng(seed * 1000 + 100 * b + i)
            kind, text = text_of(rng)
            height = int(rng.integers(low, high + 1))
            colour_name = list(COLOURS)[int(rng.integers(0, len(COLOURS)))]
            style = Style(FACES[int(rng.integers(0, len(FACES)))], turns=int(rng.choice([1, 3])))
            h, w = glyph_mask(text, height, style).shape
            if h + 8 > rows:
                continue
            right = bool(rng.integers(0, 2))
            reach = int(OUTER * cols) - w
            offset = int(rng.integers(0, max(1, reach)))
            x = cols - w - offset if right else offset
            y = int(rng.integers(0, rows - h))
            c = Canvas(base[None].copy())
            c.draw(text, kind, x, y, height, COLOURS[colour_name], style)
            name = f"usv_{stem}_{i}_{x}x{y}_t{style.turns}"
            ds = colour_dataset(seed, name, "US", np.clip(c.pixels, 0, 255), SOP["US"], ("VERTICAL^CASE", text))
            boxes = original_boxes(annotated, frames_override="all") + c.boxes
            out.append((name, ds, boxes, f"{path}: {kind} {text!r} {height} px {style.font} {colour_name} at {x},{y} "
                                         f"turns {style.turns}"))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=101)
    ap.add_argument("--per-base", type=int, default=6)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    write_cases(args.out, args.seed, "bench/redteam/us_vertical.py", cases(args.seed, args.per_base), args.only,
                width=40)
    return 0


if __name__ == "__main__":
    sys.exit(main())
