"""Where a file's damage is: the changed regions outside every annotated box, listed and drawn.

    .venv/bin/python bench/pixel_eval/damage_regions.py OUT_DIR --only NAME [--generated DIR] [--deid PATH]

Runs `deid run` (default options; `--recipe mammography` for MG) on each matching case, then for its worst frame
(the benchmark's damage measure: pixels outside the boxes + 3 px that changed) lists every connected region of
changed non-text pixels (bounding box, pixel count) and writes OUT_DIR/<case>.png: before | after | diff, the diff
showing changed non-text pixels red, changed pixels inside the boxes grey, box outlines magenta (PHI) / green
(label). Enlarged x2 for frames under 512 px. For classifying damage by eye (issue 12: no mask on anatomy).
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pydicom

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
from dataset import load_generated, load_real  # noqa: E402
from imaging import raw_frames, to_display  # noqa: E402
from metrics import DILATE_PX, box_mask, changed_mask  # noqa: E402


def run_deid(deid: Path, src: Path, recipe: str) -> tuple[Path, Path]:
    """(a temporary folder, deid's output for one input file in it); the folder is the caller's to remove."""
    work = Path(tempfile.mkdtemp(prefix="damage_"))
    (work / "in").mkdir()
    shutil.copyfile(src, work / "in" / src.name)
    cmd = [str(deid), "run", str(work / "in"), str(work / "out"), "--no-progress", "--force"]
    if recipe != "default":
        cmd += ["--recipe", recipe]
    subprocess.run(cmd, check=False, capture_output=True)
    with open(work / "out.private" / "files.csv", newline="") as f:
        row = next(csv.DictReader(f))
    if not row["output_path"]:
        raise SystemExit(f"{src.name}: {row['status']} {row['reason']}")
    return work, work / "out" / row["output_path"]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("out", type=Path)
    ap.add_argument("--only", required=True)
    ap.add_argument("--generated", type=Path, help="cases of this folder (truth.json) instead of the real files")
    ap.add_argument("--deid", type=Path, default=ROOT / ".venv" / "bin" / "deid")
    ap.add_argument("--min-px", type=int, default=1, help="list regions of at least this many pixels")
    ap.add_argument("--crops", type=int, default=6, help="also draw the largest N regions enlarged (with 12 px around)")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cache = ROOT / "bench" / "work" / "pixel_eval" / "cache"
    cases = load_generated(args.generated) if args.generated else load_real(cache)
    for case in (c for c in cases if args.only in c.name):
        work, out_path = run_deid(args.deid, case.path, case.recipe)
        ds_in, ds_out = pydicom.dcmread(case.path, force=True), pydicom.dcmread(out_path, force=True)
        fin, fout = raw_frames(ds_in), raw_frames(ds_out)
        worst, frame = -1.0, 0
        for i in range(min(fin.shape[0], fout.shape[0])):
            ch = changed_mask(fin[i], fout[i])
            boxes = [b.box for b in case.boxes if b.on_frame(i)]
            nontext = ~box_mask(ch.shape, boxes, DILATE_PX)
            d = float(ch[nontext].mean()) if nontext.any() else 0.0
            if d > worst:
                worst, frame = d, i
        ch = changed_mask(fin[frame], fout[frame])
        boxes = [b for b in case.boxes if b.on_frame(frame)]
        nontext = ~box_mask(ch.shape, [b.box for b in boxes], DILATE_PX)
        damage = ch & nontext
        count, labels, stats, _ = cv2.connectedComponentsWithStats(
            cv2.dilate(damage.astype(np.uint8), np.ones((3, 3), np.uint8)), connectivity=8)
        print(f"{case.name}: frame {frame}, damage {100 * worst:.2f} % ({int(damage.sum())} px of {int(nontext.sum())})")
        regions = []
        for k in sorted(range(1, count), key=lambda k: -int(damage[labels == k].sum())):
            px = int(damage[labels == k].sum())
            if px >= args.min_px:
                x, y, w, h = (int(v) for v in stats[k, :4])
                regions.append((x, y, x + w, y + h))
                print(f"  region {len(regions)}: x {x}-{x + w} y {y}-{y + h}: {px} px")
        before = to_display(fin[frame], ds_in)[..., ::-1]
        after = to_display(fout[frame], ds_out)[..., ::-1]
        diff = (before // 3).copy()
        diff[ch & ~nontext] = (160, 160, 160)
        diff[damage] = (0, 0, 255)
        for b in boxes:
            x0, y0, x1, y1 = b.box
            cv2.rectangle(diff, (x0, y0), (x1 - 1, y1 - 1), (255, 0, 255) if b.cls == "phi" else (0, 255, 0), 1)
        for n, (x0, y0, x1, y1) in enumerate(regions[: args.crops], 1):
            ys = slice(max(0, y0 - 12), y1 + 12)
            xs = slice(max(0, x0 - 12), x1 + 12)
            part = np.concatenate([before[ys, xs], after[ys, xs], diff[ys, xs]], axis=1)
            scale = max(1, min(8, 900 // part.shape[1]))
            part = cv2.resize(np.ascontiguousarray(part), None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
            cv2.imwrite(str(args.out / f"{case.name}_r{n}.png"), part)
        picture = np.concatenate([before, after, diff], axis=1)
        if max(fin.shape[1:3]) < 512:
            picture = cv2.resize(picture, None, fx=2, fy=2, interpolation=cv2.INTER_NEAREST)
        cv2.imwrite(str(args.out / f"{case.name}.png"), np.ascontiguousarray(picture))
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
