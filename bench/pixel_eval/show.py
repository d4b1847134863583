"""Draw the annotated boxes over the evaluation images, to check the annotations by eye.

    .venv/bin/python bench/pixel_eval/show.py OUT_DIR [--only SUBSTRING] [--generated DIR]

One PNG per annotated frame (first/middle/last for multi-frame): PHI boxes magenta, labels green.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import pydicom

sys.path.insert(0, str(Path(__file__).resolve().parent))
from dataset import load_generated, load_real  # noqa: E402
from imaging import raw_frames, sample_indices, to_display  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--only", default="")
    ap.add_argument("--with-boxes-only", action="store_true")
    ap.add_argument("--generated", type=Path, help="show the hard cases in this folder (truth.json) instead")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cases = load_generated(args.generated) if args.generated else load_real(args.out / "cache")
    for case in cases:
        if args.only not in case.name or not case.decodable or (args.with_boxes_only and not case.boxes):
            continue
        ds = pydicom.dcmread(case.path, force=True)
        frames = raw_frames(ds)
        for i in sample_indices(frames.shape[0]):
            img = to_display(frames[i], ds)[..., ::-1].copy()
            for b in case.boxes:
                if b.on_frame(i):
                    x0, y0, x1, y1 = b.box
                    cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), (255, 0, 255) if b.cls == "phi" else (0, 255, 0), 1)
            cv2.imwrite(str(args.out / f"{case.name}_f{i}.png"), img)
    return 0


if __name__ == "__main__":
    sys.exit(main())
