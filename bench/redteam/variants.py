"""Variants of the red team's last two leaks (issue 12), to measure a fix on more than the one planted case.

    .venv/bin/python bench/redteam/variants.py DIR [--only NAME]
    .venv/bin/python bench/redteam/evaluate.py --cases DIR --work W --out OUT.md   # scored like the red team

Two families, drawn with make_planted's own Canvas and faces (so evaluate.py scores them unchanged):
- `tissue_*`: a date or an ID 20-40 stored levels above or below the tissue of real MR/CT files (MR2_UNCI,
  MR-SIEMENS-DICOM-WithOverlays, 693_UNCI, explicit_VR-UN, eCT_Supplemental, CT_small), 10-30 px, placed where a
  window of the frame is tissue only; plus `clean_*`, the same bases untouched (damage only).
- `usbar_*`: a vertical ID (read top to bottom or bottom to top) in several colours and sizes beside, over and
  left of US1_UNCR's colour bar and along its sector's edge.
Deterministic (seed 4207 + index); truth.json carries make_planted's seed so evaluate.py does not regenerate.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_planted import (  # noqa: E402
    DEFAULT_SEED,
    SOP,
    Canvas,
    Style,
    colour_dataset,
    mono,
    original_boxes,
    read,
    write_cases,
)

#: (package, path, modality, frame) of the gray bases.
TISSUE_BASES = [
    ("pydicom-data", "MR2_UNCI.dcm", "MR", 0),
    ("pydicom-data", "MR-SIEMENS-DICOM-WithOverlays.dcm", "MR", 0),
    ("pydicom-data", "693_UNCI.dcm", "CT", 0),
    ("pydicom-data", "explicit_VR-UN.dcm", "CT", 0),
    ("pydicom-data", "eCT_Supplemental.dcm", "CT", 0),
    ("pydicom", "CT_small.dcm", "CT", 0),
]
#: (text height px, levels from the tissue, face, stroke) per variant of a base.
TISSUE_STYLES = [(24, 30, "duplex", 3), (16, -30, "complex", 2), (30, 20, "triplex", 3), (12, 40, "simplex", 1),
                 (10, 40, "duplex", 1)]
#: (x, y, height, colour, quarter turns) of the vertical IDs on US1_UNCR (640x480; colour bar at x 600-622,
#: its grey scale at 623-635, rows 130-260; the sector's right edge near x 545).
US_PLACES = [(620, 100, 12, (0, 255, 255), 3), (624, 120, 11, (255, 255, 255), 1), (586, 90, 12, (255, 255, 0), 3),
             (612, 150, 10, (0, 255, 0), 1), (548, 60, 14, (0, 255, 255), 1), (626, 180, 12, (255, 128, 0), 3)]


def tissue_spot(img: np.ndarray, width: int, height: int, taken: list[tuple[int, int, int, int]]
                ) -> tuple[int, int] | None:
    """Top-left of a width x height window lying on tissue only (every pixel above the frame's 60th
    percentile), nearest the middle, not overlapping `taken`."""
    rows, cols = img.shape
    if width + 8 > cols or height + 8 > rows:
        return None
    tissue = img > np.percentile(img, 60)
    step = max(4, min(width, height) // 2)
    best = None
    for y in range(4, rows - height - 4, step):
        for x in range(4, cols - width - 4, step):
            if any(x < t[2] and t[0] < x + width and y < t[3] and t[1] < y + height for t in taken):
                continue
            if tissue[y : y + height, x : x + width].mean() < 0.999:
                continue
            d = (y + height / 2 - rows / 2) ** 2 + (x + width / 2 - cols / 2) ** 2
            if best is None or d < best[0]:
                best = (d, x, y)
    return None if best is None else (best[1], best[2])


def tissue_cases(seed: int) -> list[tuple[str, object, list[dict], str]]:
    from make_planted import glyph_mask

    out = []
    for b, (package, path, modality, frame) in enumerate(TISSUE_BASES):
        src = read(package, path)
        px = src.pixel_array.astype(np.float64)
        px = px[frame] if px.ndim == 3 else px
        stem = Path(path).stem.replace("-", "_").lower()[:18]
        extra = {k: src[k].value for k in ("RescaleIntercept", "RescaleSlope", "WindowCenter", "WindowWidth") if k in src}
        signed = int(src.get("PixelRepresentation", 0)) == 1
        bits = int(src.BitsStored)
        top = float(2 ** (bits - 1) - 1 if signed else 2**bits - 1)
        low = float(-(2 ** (bits - 1)) if signed else 0)
        out.append((f"clean_{stem}", mono(seed, f"clean_{stem}", modality, np.clip(px, low, top)[None],
                                           ("CLEAN^BASE", "0"), bits_stored=bits, signed=signed, extra=extra), [],
                    f"{path} untouched"))
        for s, (height, levels, face, thick) in enumerate(TISSUE_STYLES):
            rng = np.random.default_rng(seed + 100 * b + s)
            date = f"{rng.integers(1935, 2010)}-{rng.integers(1, 13):02d}-{rng.integers(1, 29):02d}"
            text = date if s % 2 == 0 else "".join(str(d) for d in rng.integers(0, 10, 8))
            style = Style(face, thick=thick)
            h, w = glyph_mask(text, height, style).shape
            spot = tissue_spot(px, w + 8, h + 8, [])
            if spot is None:
                continue
            x, y = spot[0] + 4, spot[1] + 4
            c = Canvas(px[None].copy())
            level = float(np.median(px[y : y + h, x : x + w])) + levels
            c.draw(text, "date" if s % 2 == 0 else "id", x, y, height, level, style)
            c.pixels = np.clip(c.pixels, low, top)
            name = f"tissue_{stem}_{height}px_{levels:+d}"
            ds = mono(seed, name, modality, c.pixels, ("TISSUE^CASE", text), bits_stored=bits, signed=signed, extra=extra)
            out.append((name, ds, c.boxes, f"{path}: {text!r} {height} px {face}, {levels:+d} levels from the tissue"))
    return out


def us_cases(seed: int) -> list[tuple[str, object, list[dict], str]]:
    src = read("pydicom-data", "US1_UNCR.dcm")
    out = []
    for i, (x, y, height, colour, turns) in enumerate(US_PLACES):
        rng = np.random.default_rng(seed + 1000 + i)
        pid = "".join(str(d) for d in rng.integers(0, 10, 9))
        c = Canvas(src.pixel_array.astype(np.float64)[None].copy())
        c.draw(pid, "id", x, y, height, colour, Style("duplex", turns=turns))
        name = f"usbar_{i}_{x}x{y}_t{turns}"
        ds = colour_dataset(seed, name, "US", c.pixels, SOP["US"], ("BAR^CASE", pid))
        boxes = original_boxes("US1_UNCR.dcm", frames_override="all") + c.boxes
        out.append((name, ds, boxes, f"US1_UNCR + vertical {pid} at {x},{y} {height} px {colour} turns {turns}"))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--only", default="")
    args = ap.parse_args()
    write_cases(args.out, args.seed, "bench/redteam/variants.py", tissue_cases(args.seed) + us_cases(args.seed),
                args.only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
