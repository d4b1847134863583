"""Score the default `deid run` on the red-team planted cases with the pixel benchmark's own checker.

    .venv/bin/python bench/redteam/evaluate.py                      # generate (if needed), run deid, score
    .venv/bin/python bench/redteam/evaluate.py --reuse-deid         # re-score the last run's outputs
    .venv/bin/python bench/redteam/evaluate.py --only mg_ --crops /tmp/rt4/crops

Reuses bench/pixel_eval.py unchanged (prepare_inputs, run_deidcli, evaluate, readable_before): a PHI box
is left when an independent EasyOCR pass reads it on the output or when < 90 % of its glyph pixels
changed; a label is kept when <= 10 % of its glyph pixels changed; damage is the share of pixels outside
every box (+3 px) that changed, worst frame. Writes bench/redteam/results.md and, with --crops, a
before|after PNG of every PHI box left (and every lost label) for looking at.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT / "bench" / "pixel_eval"))
sys.path.insert(0, str(HERE))

from dataset import load_generated  # noqa: E402
from imaging import to_display  # noqa: E402
from make_planted import DEFAULT_SEED, generate  # noqa: E402
from metrics import HIDDEN_SHARE, LABEL_KEPT_SHARE, Reader, changed_mask, gray, text_changed_share  # noqa: E402


def glyph_share(before: np.ndarray, changed: np.ndarray, box: tuple[int, int, int, int],
                after: np.ndarray | None = None) -> float:
    """Share of a box's glyph pixels changed: the larger of the harness's rule (the minority Otsu class is the
    glyphs) and the rim rule (the class less present on the box's 1-px rim is the glyphs).

    Why: the minority rule takes the field for the glyphs where bold print fills more than half of its tight
    box, and a fully masked word whose field kept its value (the fill is the field's own value) counted as
    unmasked (red team 4: QUIGLEY ROSE, KOVACS^ILONA: 17-20 % "changed" under a mask of one value); the rim
    rule errs the same way on loose hand-drawn boxes whose rim crosses brighter print. A wrong pick can only
    lower the share of a masked box; an unmasked box has both shares near 0, so the larger one is kept."""
    changed = faint_changes(before, after, changed, box)
    harness = text_changed_share(before, changed, box, after)
    x0, y0, x1, y1 = box
    crop = gray(before)[y0:y1, x0:x1]
    if crop.size == 0 or min(crop.shape) < 3:
        return harness
    lo, hi = float(np.nanmin(crop)), float(np.nanmax(crop))
    if hi <= lo:
        return 1.0
    u8 = np.nan_to_num((crop - lo) / (hi - lo) * 255).astype(np.uint8)
    _, th = cv2.threshold(u8, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    fg = th > 0
    rim = np.ones(fg.shape, bool)
    rim[1:-1, 1:-1] = False
    glyphs = fg if fg[rim].mean() <= fg[~rim].mean() else ~fg
    if not glyphs.any():
        return harness
    return max(harness, float(changed[y0:y1, x0:x1][glyphs].mean()))


#: Inside a box, a pixel counts as changed from this share of the box's own contrast (5th-95th percentile), when
#: that is less than the harness's 1 % of the frame's range.
FAINT_CHANGE_SHARE = 0.25


def faint_changes(before: np.ndarray, after: np.ndarray | None, changed: np.ndarray,
                  box: tuple[int, int, int, int]) -> np.ndarray:
    """`changed` with the box's pixels judged against the box's own contrast (gray frames only).

    Why: the harness counts a pixel changed when it moved by 1 % of the frame's range; print drawn 30 levels from
    tissue on a CT of 5807 levels (variants.py's tissue_693_unci_*) was masked perfectly (every glyph pixel set to
    the field, 30 levels away) and counted "0 % changed", so "left". A box left as it was still counts 0 (its pixels
    did not move at all); one masked by a fill of its own field now counts as masked."""
    if after is None or before.ndim != 2 or after.shape != before.shape:
        return changed
    x0, y0, x1, y1 = box
    b = before[y0:y1, x0:x1].astype(np.float64)
    a = after[y0:y1, x0:x1].astype(np.float64)
    if b.size == 0 or not (np.isfinite(b).all() and np.isfinite(a).all()):
        return changed
    low, high = np.percentile(b, (5, 95))
    floor = 0.0 if before.dtype.kind == "f" else 0.5
    tolerance = max(floor, FAINT_CHANGE_SHARE * float(high - low))
    out = changed.copy()
    out[y0:y1, x0:x1] |= np.abs(a - b) > tolerance
    return out


def load_harness():
    spec = importlib.util.spec_from_file_location("pixel_eval_harness", ROOT / "bench" / "pixel_eval.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def box_verdicts(pe, case, out_path, reader) -> list[dict]:
    """Per box: share of glyph pixels changed and what the checker read on the output (frames it checks)."""
    ds_in, fin = pe.frames_of(case.path)
    ds_out, fout = pe.frames_of(out_path)
    n = min(fin.shape[0], fout.shape[0])
    rows = []
    for b in case.boxes:
        for i in sorted(i for i in pe.check_frames(case, n) if b.on_frame(i)):
            ch = changed_mask(fin[i], fout[i])
            picture = pe.glyph_picture(fin[i], ds_in, b.box)
            share = glyph_share(picture, ch, b.box, fout[i])
            harness_share = text_changed_share(picture, ch, b.box, fout[i])
            legible, read = (False, "")
            if b.cls == "phi" and share < 0.995:
                legible, read = reader.legible(b.text, to_display(fout[i], ds_out), fout[i], b.box)
            left = (share > LABEL_KEPT_SHARE) if b.cls == "label" else (legible or share < HIDDEN_SHARE)
            harness_left = legible or harness_share < HIDDEN_SHARE if b.cls == "phi" else harness_share > LABEL_KEPT_SHARE
            rows.append({"box": b, "frame": i, "share": share, "legible": legible, "read": read, "left": left,
                         "harness_left": harness_left,
                         "before": to_display(fin[i], ds_in), "after": to_display(fout[i], ds_out)})
    return rows


def save_crop(v: dict, dest: Path) -> None:
    x0, y0, x1, y1 = v["box"].box
    h = max(y1 - y0, x1 - x0 if y1 - y0 > x1 - x0 else 0)
    pad = max(12, (y1 - y0) // 2)
    rows, cols = v["before"].shape[:2]
    ya, yb, xa, xb = max(0, y0 - pad), min(rows, y1 + pad), max(0, x0 - pad), min(cols, x1 + pad)
    a = v["before"][ya:yb, xa:xb, ::-1]
    b = v["after"][ya:yb, xa:xb, ::-1]
    scale = max(1.0, 48 / max(1, min(y1 - y0, x1 - x0)))
    scale = min(scale, 1600 / max(1, xb - xa), 8.0) if h else scale
    gap = np.full((a.shape[0], 6, 3), (255, 0, 255), np.uint8)
    pic = np.hstack([a, gap, b])
    pic = cv2.resize(pic, None, fx=scale, fy=scale, interpolation=cv2.INTER_NEAREST)
    dest.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(dest), pic)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=Path, default=ROOT / "bench" / "work" / "redteam" / "planted")
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--work", type=Path, default=ROOT / "bench" / "work" / "redteam")
    ap.add_argument("--only", default="")
    ap.add_argument("--reuse-deid", action="store_true")
    ap.add_argument("--out", type=Path, default=HERE / "results.md")
    ap.add_argument("--crops", type=Path, default=None, help="write before|after PNGs of what was left here")
    ap.add_argument("--timeout", type=int, default=1800)
    args = ap.parse_args()

    pe = load_harness()
    pe.text_changed_share = glyph_share  # evaluate() scores with the rim rule too (see glyph_share)
    pe.WORK = args.work.resolve()
    truth = args.cases / "truth.json"
    if not truth.exists() or json.loads(truth.read_text()).get("seed") != args.seed:
        generate(args.cases, args.seed)
    cases = [c for c in load_generated(args.cases) if args.only in c.name]
    t0 = time.perf_counter()
    dirs = pe.prepare_inputs(cases)
    run = pe.run_deidcli(dirs, cases, args.timeout, args.reuse_deid)
    reader = Reader(pe.WORK / "ocr_cache.json")
    lines_by_case = []
    total = {"phi": 0, "left": 0, "legible": 0, "unmasked": 0, "labels": 0, "kept": 0, "readable": 0, "damaged": 0,
             "harness_left": 0}
    try:
        for c in cases:
            out = run.outputs.get(c.name)
            status = run.status.get(c.name, "not run")
            readable = pe.readable_before(c, reader, {})
            res = pe.evaluate(c, out, status, reader, {})
            verdicts = box_verdicts(pe, c, out, reader) if out is not None else []
            left = [v for v in verdicts if v["left"]]
            harness_left = len({id(v["box"]) for v in verdicts if v["box"].cls == "phi" and v["harness_left"]})
            total["harness_left"] += harness_left
            for v in left:
                if args.crops:
                    tag = "label" if v["box"].cls == "label" else "phi"
                    save_crop(v, args.crops / f"{c.name}__{tag}__{v['box'].text[:20].replace(' ', '_').replace('/', '-')}"
                                              f"__f{v['frame']}.png")
            total["phi"] += res.phi
            total["left"] += res.phi_left
            total["legible"] += res.ocr_legible
            total["unmasked"] += res.unmasked
            total["labels"] += res.labels
            total["kept"] += res.labels_kept
            total["readable"] += readable
            total["damaged"] += (res.damage_worst or 0) > pe.DAMAGE_LIMIT
            secs = run.seconds.get(c.name)
            what = "; ".join(
                f"`{v['box'].text[:28]}` f{v['frame']} {100 * v['share']:.0f}% changed"
                + (f", read `{v['read'][:24]}`" if v["legible"] else "")
                for v in left if v["box"].cls == "phi")
            lost = "; ".join(f"label `{v['box'].text}` lost ({100 * v['share']:.0f}%)" for v in left
                             if v["box"].cls == "label")
            lines_by_case.append(
                f"| {c.name.removeprefix('gen__')} | {c.modality} {c.frames} | {status[:40]} | "
                f"**{res.phi_left}**/{res.phi} ({res.ocr_legible}/{res.unmasked}) | {harness_left} | {readable} | "
                f"{res.labels_kept}/{res.labels} | {pe.pct(res.damage_worst)} | "
                f"{'-' if secs is None else f'{secs:.2f}'} | {'; '.join(x for x in (what, lost) if x)} |")
            print(lines_by_case[-1], flush=True)
    finally:
        reader.save()
    wall = time.perf_counter() - t0
    frames = sum(c.frames or 1 for c in cases)
    doc = [
        "# Red team 4: planted burned-in text the team has not seen (issue 12)",
        "",
        f"Generated by `bench/redteam/evaluate.py{' --only ' + args.only if args.only else ''}` on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit `{pe.git_head()}`; cases from "
        f"`bench/redteam/make_planted.py` (seed {args.seed}); deid = `{pe.deid_label()}`, default options "
        f"(`--recipe mammography` for MG). {len(cases)} files, {frames} frames; deid wall {run.wall_s:.0f} s "
        f"({run.wall_s / max(1, frames):.2f} s/frame, 2 shared cores), harness {wall:.0f} s.",
        "",
        f"**PHI boxes left: {total['left']}/{total['phi']}** (legible to the checker's EasyOCR: {total['legible']}; "
        f"< 90 % of glyph pixels changed: {total['unmasked']}); {total['readable']} of the {total['phi']} are "
        f"readable by the checker on the input. Labels kept: {total['kept']}/{total['labels']}. "
        f"Files with > 0.5 % of non-text pixels changed: {total['damaged']}. The harness's own glyph rule (minority "
        f"Otsu class) would count {total['harness_left']} PHI boxes left: bold print fills more than half its box.",
        "",
        "Scoring is bench/pixel_eval.py's own (`evaluate`), except which Otsu class of a box is its glyphs: the share "
        "changed is the larger of the minority class's and the class less present on the box's rim (`glyph_share`). "
        "*left* = legible to the checker's EasyOCR "
        "or < 90 % of glyph pixels changed; *readable before* = PHI boxes the checker reads on the input; damage = "
        "worst frame's share of pixels outside every box (+3 px) changed.",
        "",
        "| case | mod, frames | deid status | PHI left (legible/unmasked) | left by minority rule | readable before | "
        "labels kept | damage | deid s | what was left |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *lines_by_case,
        "",
    ]
    args.out.write_text("\n".join(doc))
    print(f"wrote {args.out}: {total['left']}/{total['phi']} PHI left, labels {total['kept']}/{total['labels']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
