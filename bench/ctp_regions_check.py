"""Damage check of the built-in device regions (recipes/regions/ctp-devices.json) on the real files.

    .venv/bin/python bench/ctp_regions_check.py        # ~3 min on 2 cores

For every real file of the pixel evaluation set (bench/pixel_eval/annotations.json: pydicom's test files,
pydicom-data, deid-data) whose header matches a built-in rule, `deid run` is run twice, as a whole process,
with the defaults and with `--no-builtin-regions`. What the built-in rules add is the pixels changed
with them and not without them; the part of that outside every annotated text box (+3 px) is what they
take from the picture. Writes bench/ctp_regions.md and, per file, bench/ctp_regions/<file>.png: the input
with the rule's rectangles in red and the annotated PHI boxes in magenta | output without the built-in
rules | output with them, the pixels they added boxed in red. Look at every picture.
"""

from __future__ import annotations

import argparse
import csv
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pydicom

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench" / "pixel_eval"))
sys.path.insert(0, str(ROOT))

from dataset import Case, load_real  # noqa: E402
from imaging import raw_frames, to_display  # noqa: E402
from metrics import DILATE_PX, box_mask, changed_mask  # noqa: E402

from deidcli.pixels.regions import builtin_region_rules, matching_rules  # noqa: E402

DEID = ROOT / ".venv" / "bin" / "deid"


def run_deid(case: Case, work: Path, builtin: bool) -> tuple[Path | None, str]:
    """One whole `deid run` over a folder holding only this file; returns the output and the audit's rule names."""
    mode = "on" if builtin else "off"
    src = work / case.name / "in"
    src.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(case.path, src / "input.dcm")
    out = work / case.name / f"out-{mode}"
    key = work / "key"
    if not key.exists():
        subprocess.run([str(DEID), "keygen", str(key)], check=True, capture_output=True)
    cmd = [str(DEID), "run", str(src), str(out), "--key-file", str(key), "--workers", "1", "--no-progress",
           "--recipe", case.recipe]
    if not builtin:
        cmd.append("--no-builtin-regions")
    subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    with open(out / "audit.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    row = rows[0] if rows else {}
    path = out / row["output_path"] if row.get("output_path") else None
    return path, row.get("region_rules_matched", "") if row.get("status") == "written" else row.get("reason", "?")


def frames(path: Path) -> tuple[pydicom.Dataset, np.ndarray]:
    ds = pydicom.dcmread(path, force=True)
    return ds, raw_frames(ds)


def panel(image: np.ndarray, width: int) -> np.ndarray:
    scale = width / image.shape[1]
    return cv2.resize(image, (width, max(1, round(image.shape[0] * scale))), interpolation=cv2.INTER_AREA)


def outline_components(picture: np.ndarray, mask: np.ndarray, line: int) -> None:
    """A red box around each connected part of `mask` (boxes per part: a band is not merged with a box below)."""
    count, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    for x, y, w, h, _area in stats[1:count]:
        cv2.rectangle(picture, (int(x), int(y)), (int(x + w - 1), int(y + h - 1)), (0, 0, 255), line)


def check(case: Case, rules: list, work: Path, pictures: Path) -> dict:
    rects = [r for rule in rules for r in rule.rects]
    out_on, audit_on = run_deid(case, work, True)
    out_off, _ = run_deid(case, work, False)
    row = {"file": case.name, "device": "", "rules": ", ".join(rule.name for rule in rules), "audit": audit_on}
    ds_in, fin = frames(case.path)
    row["device"] = (f"{ds_in.get('Manufacturer', '')} {ds_in.get('ManufacturerModelName', '')} "
                     f"{ds_in.get('Columns', '')}x{ds_in.get('Rows', '')}").strip()
    if out_on is None or out_off is None:
        row["result"] = "not written"
        return row
    _, fon = frames(out_on)
    _, foff = frames(out_off)
    worst, extra_share, extra_nontext, frame_px = 0, 0.0, 0.0, fin.shape[1] * fin.shape[2]
    for i in range(fin.shape[0]):
        extra = changed_mask(fin[i], fon[i]) & ~changed_mask(fin[i], foff[i])
        text = box_mask(extra.shape, [b.box for b in case.boxes if b.on_frame(i)], DILATE_PX)
        share, nontext = extra.sum() / frame_px, (extra & ~text).sum() / frame_px
        if share >= extra_share:
            worst, extra_share, extra_nontext = i, share, nontext
    row.update(frame=worst, extra=extra_share, extra_nontext=extra_nontext,
               off_changed=changed_mask(fin[worst], foff[worst]).mean(), on_changed=changed_mask(fin[worst], fon[worst]).mean())
    before = to_display(fin[worst], ds_in)[..., ::-1].copy()
    line = max(1, round(fin.shape[2] / 400))
    for rect in rects:
        cv2.rectangle(before, (rect.x0, rect.y0), (min(rect.x1, fin.shape[2]) - 1, min(rect.y1, fin.shape[1]) - 1),
                      (0, 0, 255), line)
    for box in case.phi:
        if box.on_frame(worst):
            cv2.rectangle(before, (box.box[0], box.box[1]), (box.box[2] - 1, box.box[3] - 1), (255, 0, 255), line)
    without = to_display(foff[worst], ds_in)[..., ::-1].copy()
    with_builtin = to_display(fon[worst], ds_in)[..., ::-1].copy()
    added = changed_mask(fin[worst], fon[worst]) & ~changed_mask(fin[worst], foff[worst])
    outline_components(with_builtin, added, line)
    pictures_row = [before, without, with_builtin]
    width = 400
    gap = np.full((panel(before, width).shape[0], 4, 3), 255, np.uint8)
    image = np.hstack([np.hstack([panel(p, width), gap]) for p in pictures_row])
    pictures.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(pictures / f"{case.name.removesuffix('.dcm')}.png"), image, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    row["result"] = "written"
    return row


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=ROOT / "bench" / "work" / "ctp_regions")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "ctp_regions.md")
    parser.add_argument("--pictures", type=Path, default=ROOT / "bench" / "ctp_regions")
    args = parser.parse_args()
    started = time.perf_counter()
    rules = builtin_region_rules()
    cases = load_real(ROOT / "bench" / "work" / "pixel_eval" / "cache")
    shutil.rmtree(args.work, ignore_errors=True)
    shutil.rmtree(args.pictures, ignore_errors=True)
    rows = []
    for case in cases:
        try:
            header = pydicom.dcmread(case.path, stop_before_pixels=True, force=True)
        except Exception:  # noqa: BLE001 - an unreadable file matches nothing
            continue
        matched = matching_rules(header, rules)
        if matched:
            print(f"{case.name}: {[rule.name for rule in matched]}", flush=True)
            rows.append(check(case, matched, args.work, args.pictures))
    lines = [
        "# Built-in device regions (CTP library) on the real files",
        "",
        f"Generated by `bench/ctp_regions_check.py` in {time.perf_counter() - started:.0f} s: {len(cases)} real files "
        f"of the pixel evaluation set, {len(rules)} built-in rules, **{len(rows)} files match a rule**. "
        "*added*: share of the worst frame's pixels changed with the built-in rules and not without them; "
        "*added outside text*: the part of it outside every annotated text box (+3 px). "
        "Pictures: `bench/ctp_regions/` (input with the rule's rectangles in red | output without | output with, what the rules added boxed in red).",
        "",
        "| file | device | rule (audit) | changed without / with | added | added outside text |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        if row["result"] != "written":
            lines.append(f"| {row['file']} | {row['device']} | {row['rules']} ({row['audit']}) | not written | - | - |")
            continue
        lines.append(f"| {row['file']} | {row['device']} | {row['rules']} ({row['audit']}) | "
                     f"{pct(row['off_changed'])} / {pct(row['on_changed'])} | {pct(row['extra'])} | "
                     f"{pct(row['extra_nontext'])} |")
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
