"""Pixel benchmark: does burned-in text get out, and how much anatomy is lost? deidcli beside peers.

    .venv/bin/python bench/pixel_eval.py                 # everything: ~190 files, 3 tools
    .venv/bin/python bench/pixel_eval.py --quick         # one file per family + hard cases
    .venv/bin/python bench/pixel_eval.py --only OBXXXX1A --tools deidcli

Evaluation set: every image of pydicom's test files, pydicom-data and deid-data with boxes drawn by
looking (bench/pixel_eval/annotations.json) plus seeded hard cases (bench/pixel_eval/make_hard_cases.py,
regenerated into bench/work/pixel_eval/generated). Each tool runs once as a whole process over the set:
  deidcli        the installed `deid run` with default options (`--recipe mammography` for MG files)
  presidio       Presidio's DicomImageRedactorEngine (bench/adapters/presidio_adapter.py, own venv)
  easyocr-naive  EasyOCR readtext at full resolution, every box masked (bench/pixel_eval/naive_easyocr.py)
Measures (bench/pixel_eval/metrics.py): PHI boxes left (legible to an independent EasyOCR pass, or
< 90 % of their text pixels changed), authorised labels kept, share of non-text pixels changed, seconds
per frame of the whole process. Writes bench/pixel_results.md and, for deidcli, before/after thumbnails
of the real files in bench/pixels/. Peer outputs and OCR readings are cached in bench/work/pixel_eval.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import pydicom

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench" / "pixel_eval"))

from dataset import Case, load_generated, load_real  # noqa: E402
from imaging import raw_frames, sample_indices, to_display  # noqa: E402
from make_hard_cases import DEFAULT_SEED, generate  # noqa: E402
from metrics import (  # noqa: E402
    DILATE_PX,
    HIDDEN_SHARE,
    LABEL_KEPT_SHARE,
    Reader,
    box_mask,
    changed_mask,
    text_changed_share,
)

WORK = ROOT / "bench" / "work" / "pixel_eval"  # --work changes it (two runs at once must not share it)
PY = ROOT / ".venv" / "bin" / "python"
DEID = ROOT / ".venv" / "bin" / "deid"
PRESIDIO_PY = ROOT / "bench" / ".venvs" / "presidio" / "bin" / "python"
TOOLS = ["deidcli", "presidio", "easyocr-naive"]
IDENTIFYING = {"name", "id", "date", "time", "institution"}
DAMAGE_LIMIT = 0.005
#: real files in --quick besides one file per annotated family: the no-text files that lost anatomy before
QUICK_NO_TEXT = ["MR-SIEMENS-DICOM-WithOverlays", "ctbrain1", "eCT_Supplemental", "explicit_VR-UN", "JPEG-LL",
                 "JPGExtended", "image1.dcm", "image5.dcm", "CT_small", "MR2_UNCR", "RG1_UNCR", "liver.dcm",
                 "rtdose.dcm", "SC_rgb.dcm", "OT-PAL-8-face", "cat.dcm"]


@dataclass
class ToolRun:
    tool: str
    wall_s: float | None = None
    outputs: dict[str, Path | None] = field(default_factory=dict)  # case name -> output file
    status: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    note: str = ""
    cases: set[str] = field(default_factory=set)  # the case names this tool was run on


@dataclass
class Result:
    status: str
    phi: int = 0
    phi_left: int = 0
    ocr_legible: int = 0
    unmasked: int = 0
    identifying_left: int = 0
    labels: int = 0
    labels_kept: int = 0
    damage_worst: float | None = None
    damage_mean: float | None = None
    left_texts: list[str] = field(default_factory=list)
    worst_frame: int = 0


# ---------------------------------------------------------------------------------------------- set


def select(cases: list[Case], only: str, quick: bool) -> list[Case]:
    if only:
        return [c for c in cases if only in c.name]
    if not quick:
        return cases
    seen_families: set[str] = set()
    chosen = []
    families = family_of()
    for c in cases:
        fam = families.get(c.source)
        if c.source.startswith("generated/") or any(k in c.name for k in QUICK_NO_TEXT):
            chosen.append(c)
        elif fam and fam not in seen_families:
            seen_families.add(fam)
            chosen.append(c)
    return chosen


def family_of() -> dict[str, str]:
    doc = json.loads((ROOT / "bench" / "pixel_eval" / "annotations.json").read_text())
    return {f"{e['package']}/{e['path']}": e["family"] for e in doc["files"] if e.get("family")}


def file_name(case: Case) -> str:
    return case.name if case.name.endswith(".dcm") else f"{case.name}.dcm"


def prepare_inputs(cases: list[Case]) -> dict[str, Path]:
    """WORK/in/all/<case>.dcm (copies) and, for deid, WORK/in/<recipe>-<wave>/ (hard links).

    Several packages ship the same instance in several encodings (same SOPInstanceUID); deid rightly
    quarantines the second copy in one batch (duplicate_instance), so such copies go to separate
    waves, each one `deid run`."""
    base = WORK / "in"
    shutil.rmtree(base, ignore_errors=True)
    dirs = {"all": base / "all"}
    dirs["all"].mkdir(parents=True)
    seen: dict[str, set[str]] = {}
    for c in cases:
        dst = dirs["all"] / file_name(c)
        shutil.copyfile(c.path, dst)
        try:
            sop = str(pydicom.dcmread(dst, stop_before_pixels=True, force=True).get("SOPInstanceUID", ""))
        except Exception:
            sop = ""
        wave = 0
        while sop and sop in seen.setdefault(f"{c.recipe}-{wave}", set()):
            wave += 1
        seen.setdefault(f"{c.recipe}-{wave}", set()).add(sop)
        key = f"{c.recipe}-{wave}"
        if key not in dirs:
            dirs[key] = base / key
            dirs[key].mkdir()
        os.link(dst, dirs[key] / dst.name)
    return dirs


def link_subset(all_dir: Path, cases: list[Case]) -> Path:
    sub = all_dir.parent / "peers"
    shutil.rmtree(sub, ignore_errors=True)
    sub.mkdir()
    for c in cases:
        os.link(all_dir / file_name(c), sub / file_name(c))
    return sub


def inputs_digest(cases: list[Case]) -> str:
    h = hashlib.sha256()
    for c in sorted(cases, key=lambda c: c.name):
        h.update(c.name.encode())
        h.update(hashlib.sha256(c.path.read_bytes()).digest())
    return h.hexdigest()


# -------------------------------------------------------------------------------------------- tools


def run_deidcli(dirs: dict[str, Path], cases: list[Case], timeout: int, reuse: bool = False) -> ToolRun:
    run = ToolRun("deidcli")
    out_base = WORK / "out" / "deidcli"
    stamp = out_base / ".done.json"
    if reuse:
        done = json.loads(stamp.read_text()) if stamp.exists() else {}
        names = {c.name for c in cases}
        if done.get("deid") != str(DEID.resolve()) or not names <= set(done.get("cases", [])):
            raise SystemExit(f"--reuse-deid: {out_base} holds no run of {DEID} over these files")
        run.note = done["note"] + " (outputs of an earlier run, --reuse-deid)"
        for out in sorted(p for p in out_base.iterdir() if (p / "audit.csv").exists()):
            read_deid_outputs(out, run)
        share = sum(c.frames or 1 for c in cases) / max(1, done["frames"])  # wall time pro rata of frames
        return by_case(run, cases, done["wall_s"] * share)
    shutil.rmtree(out_base, ignore_errors=True)
    out_base.mkdir(parents=True)
    wall = 0.0
    for key in sorted(k for k in dirs if k != "all"):
        recipe = key.rsplit("-", 1)[0]
        out = out_base / key
        cmd = [str(DEID), "run", str(dirs[key]), str(out), "--no-progress", "--force"]
        if recipe != "default":
            cmd += ["--recipe", recipe]
        t0 = time.perf_counter()
        with open(out_base / f"{key}.log", "w") as log:
            proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=timeout)
        wall += time.perf_counter() - t0
        run.note += f"{key}: rc {proc.returncode}; "
        read_deid_outputs(out, run)
    stamp.write_text(json.dumps({"deid": str(DEID.resolve()), "cases": sorted(c.name for c in cases), "wall_s": wall,
                                 "frames": sum(c.frames or 1 for c in cases), "note": run.note}))
    return by_case(run, cases, wall)


def by_case(run: ToolRun, cases: list[Case], wall: float) -> ToolRun:
    """Re-key what read_deid_outputs found (input file names) by case name."""
    run.wall_s = wall
    by_file = ToolRun("deidcli", wall, dict(run.outputs), dict(run.status), dict(run.seconds), run.note)
    run.cases = {c.name for c in cases}
    for c in cases:
        fn = file_name(c)
        run.outputs[c.name] = by_file.outputs.get(fn)
        run.status[c.name] = by_file.status.get(fn, "missing (not in the audit)")
        if fn in by_file.seconds:
            run.seconds[c.name] = by_file.seconds[fn]
    return run


def read_deid_outputs(out: Path, run: ToolRun) -> None:
    private = out.with_name(out.name + ".private")
    audit = {}
    if (out / "audit.csv").exists():
        with open(out / "audit.csv", newline="") as f:
            audit = {r["input_id"]: r for r in csv.DictReader(f)}
    files = private / "files.csv"
    if not files.exists():
        return
    with open(files, newline="") as f:
        for row in csv.DictReader(f):
            name = Path(row["input_path"]).name  # the input file name; run_deidcli maps it to the case
            a = audit.get(row["input_id"], {})
            run.status[name] = row["status"] if row["status"] == "written" else f"{row['status']}: {row['reason']}"
            run.outputs[name] = out / row["output_path"] if row["output_path"] else None
            with contextlib.suppress(ValueError):
                run.seconds[name] = float(a.get("seconds", "nan"))


def run_peer(tool: str, dirs: dict[str, Path], cases: list[Case], timeout: int) -> ToolRun:
    """Presidio / naive EasyOCR over in/all; reused while the inputs and the tool are unchanged."""
    run = ToolRun(tool, cases={c.name for c in cases})
    if tool == "presidio":
        if not PRESIDIO_PY.exists():
            run.note = "not installed (bash bench/setup_peers.sh presidio)"
            return run
        cmd = [str(PRESIDIO_PY), str(ROOT / "bench" / "adapters" / "presidio_adapter.py")]
    else:
        cmd = [str(PY), str(ROOT / "bench" / "pixel_eval" / "naive_easyocr.py")]
    out = WORK / "out" / tool
    stamp = out / ".done.json"
    digest = inputs_digest(cases) + hashlib.sha256(Path(cmd[-1]).read_bytes()).hexdigest()
    cached = json.loads(stamp.read_text()) if stamp.exists() else {}
    if cached.get("digest") != digest:
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd + [str(dirs["all"]), str(out)], capture_output=True, text=True, timeout=timeout)
            wall = time.perf_counter() - t0
            summary = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else {}
            if not summary:
                (out / "stderr.txt").write_text(proc.stderr[-5000:])
        except subprocess.TimeoutExpired:
            wall, summary = float(timeout), {"errors": [f"timed out after {timeout} s"]}
        cached = {"digest": digest, "wall_s": wall, "summary": summary}
        stamp.write_text(json.dumps(cached))
    run.wall_s = cached["wall_s"]
    summary = cached["summary"]
    run.note = f"{summary.get('tool', tool)} {summary.get('version', '')}: ok {summary.get('ok')}, failed {summary.get('failed')}"
    failed = {e.split(":")[0]: e for e in summary.get("errors", [])}
    for c in cases:
        fn = file_name(c)
        p = out / fn
        run.outputs[c.name] = p if p.exists() else None
        run.status[c.name] = "written" if p.exists() else ("failed: " + failed.get(fn, "no output")[:80])
        run.seconds[c.name] = summary.get("per_file_s", {}).get(fn, float("nan"))
    return run


# ------------------------------------------------------------------------------------------ measure


def frames_of(path: Path) -> tuple[pydicom.Dataset, np.ndarray]:
    ds = pydicom.dcmread(path, force=True)
    return ds, raw_frames(ds)


def evaluate(case: Case, out_path: Path | None, status: str, reader: Reader, before_cache: dict) -> Result:
    phi, labels = case.phi, case.labels
    res = Result(status=status, phi=len(phi), labels=len(labels))
    if out_path is None:
        return res
    if not case.decodable:
        res.status = "written (input not decodable: unchecked)"
        return res
    if case.name not in before_cache:
        before_cache.clear()
        before_cache[case.name] = frames_of(case.path)
    ds_in, fin = before_cache[case.name]
    try:
        ds_out, fout = frames_of(out_path)
    except Exception as e:  # an unreadable output is a failure of the tool, not of the benchmark
        res.status = f"output not decodable: {type(e).__name__}"
        return res
    n = fin.shape[0]
    if fout.shape[0] != n:
        res.status = f"written ({fout.shape[0]} frames out of {n})"
    damages = []
    worst = (-1.0, 0)
    changed_cache: dict[int, np.ndarray] = {}
    for i in range(min(n, fout.shape[0])):
        ch = changed_mask(fin[i], fout[i])
        boxes = [b.box for b in case.boxes if b.on_frame(i)]
        nontext = ~box_mask(ch.shape, boxes, DILATE_PX)
        d = float(ch[nontext].mean()) if nontext.any() else 0.0
        damages.append(d)
        if d > worst[0]:
            worst = (d, i)
        if i in check_frames(case, n):
            changed_cache[i] = ch
    res.damage_worst = max(damages) if damages else None
    res.damage_mean = statistics.fmean(damages) if damages else None
    res.worst_frame = worst[1]
    left_on: dict[int, int] = {}
    for b in case.boxes:
        frames = [i for i in check_frames(case, n) if b.on_frame(i) and i in changed_cache]
        left = legible = unmasked = False
        for i in frames:
            share = text_changed_share(glyph_picture(fin[i], ds_in, b.box), changed_cache[i], b.box, fout[i])
            if b.cls == "label":
                left = left or share > LABEL_KEPT_SHARE
                continue
            um = share < HIDDEN_SHARE
            lg = False
            if share < 0.995:  # a box whose every glyph pixel changed cannot be read: skip the OCR
                lg, _ = reader.legible(b.text, to_display(fout[i], ds_out), fout[i], b.box)
            unmasked, legible = unmasked or um, legible or lg
            left_on[i] = left_on.get(i, 0) + (um or lg)
        if b.cls == "label":
            res.labels_kept += 0 if left else 1
            continue
        if legible or unmasked:
            res.phi_left += 1
            res.ocr_legible += legible
            res.unmasked += unmasked
            res.identifying_left += b.kind in IDENTIFYING
            res.left_texts.append(b.text)
    if left_on and max(left_on.values()):
        res.worst_frame = max(left_on, key=lambda i: left_on[i])  # the thumbnail shows what was left
    return res


def glyph_picture(frame: np.ndarray, ds: pydicom.Dataset, box: tuple[int, int, int, int]) -> np.ndarray:
    """What the glyph split of the box check looks at: the stored values, except for palette colour, whose
    indices say nothing about brightness (OBXXXX1A draws white glyphs as index 233 in a box of index 255
    framed by index 0: split on indices, the frame was taken for the glyphs and fully masked text counted
    as unmasked). Palette frames are split on their displayed colours, unless the box shows one colour
    (OBXXXX1A_2frame's second frame writes PHILIPS in two indices of the same colour): then on indices."""
    if str(ds.get("PhotometricInterpretation", "")).strip() == "PALETTE COLOR":
        shown = to_display(frame, ds)
        x0, y0, x1, y1 = box
        crop = shown[y0:y1, x0:x1]
        if crop.size and (crop != crop.reshape(-1, crop.shape[-1])[0]).any():
            return shown
    return frame


def check_frames(case: Case, n: int) -> set[int]:
    frames = set(sample_indices(n))
    for b in case.boxes:
        if b.frames != "all":
            frames.update(i for i in b.frames if i < n)
    return frames


def readable_before(case: Case, reader: Reader, before_cache: dict) -> int:
    """How many PHI boxes the checker's OCR reads on the INPUT (its sensitivity on this file)."""
    if not case.decodable or not case.phi:
        return 0
    if case.name not in before_cache:
        before_cache.clear()
        before_cache[case.name] = frames_of(case.path)
    ds, fin = before_cache[case.name]
    count = 0
    for b in case.phi:
        fr = [i for i in check_frames(case, fin.shape[0]) if b.on_frame(i)][:1]
        if fr and reader.legible(b.text, to_display(fin[fr[0]], ds), fin[fr[0]], b.box)[0]:
            count += 1
    return count


# ------------------------------------------------------------------------------------------- report


def thumbnail(case: Case, out_path: Path, res: Result, dest: Path) -> None:
    ds_in, fin = frames_of(case.path)
    ds_out, fout = frames_of(out_path)
    i = res.worst_frame if res.worst_frame < min(fin.shape[0], fout.shape[0]) else 0
    before = to_display(fin[i], ds_in)[..., ::-1].copy()
    after = to_display(fout[i], ds_out)[..., ::-1].copy()
    if before.shape != after.shape:
        after = cv2.resize(after, (before.shape[1], before.shape[0]))
    scale = min(1.0, 400 / max(before.shape[:2]))
    size = (max(1, round(before.shape[1] * scale)), max(1, round(before.shape[0] * scale)))
    line = max(1, round(1.5 / scale))
    for b in case.boxes:
        if b.on_frame(i):
            colour = (255, 0, 255) if b.cls == "phi" else (0, 255, 0)
            cv2.rectangle(before, (b.box[0], b.box[1]), (b.box[2] - 1, b.box[3] - 1), colour, line)
    ch = changed_mask(fin[i], fout[i]).astype(np.uint8)
    grow = max(3, round(2 / scale))
    ch = cv2.dilate(ch, np.ones((grow, grow), np.uint8))
    contours, _ = cv2.findContours(ch, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    for cnt in contours:  # changed regions outlined by their bounding boxes: what is left stays readable
        x, y, w, h = cv2.boundingRect(cnt)
        cv2.rectangle(after, (x, y), (x + w - 1, y + h - 1), (0, 0, 255), line)
    a = cv2.resize(before, size, interpolation=cv2.INTER_AREA)
    b = cv2.resize(after, size, interpolation=cv2.INTER_AREA)
    gap = np.full((size[1], 4, 3), 255, np.uint8)
    dest.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(dest), np.hstack([a, gap, b]), [cv2.IMWRITE_PNG_COMPRESSION, 9])


def pct(x: float | None) -> str:
    return "-" if x is None else (f"{100 * x:.1f}%" if x >= 0.001 or x == 0 else "<0.1%")


def totals(cases: list[Case], results: dict[str, Result], run: ToolRun) -> dict:
    cases = [c for c in cases if c.name in run.cases]
    written = [c for c in cases if run.outputs.get(c.name) is not None]
    r = [results[c.name] for c in cases]
    dmg = [x.damage_worst for x in r if x.damage_worst is not None]
    no_text = [c for c in cases if c.no_text and results[c.name].damage_worst is not None]
    return {
        "written": len(written), "files": len(cases),
        "phi": sum(x.phi for x in r), "phi_left": sum(x.phi_left for x in r),
        "legible": sum(x.ocr_legible for x in r), "unmasked": sum(x.unmasked for x in r),
        "identifying_left": sum(x.identifying_left for x in r),
        "files_with_phi_left": sum(1 for x in r if x.phi_left),
        "labels": sum(x.labels for x in r), "labels_kept": sum(x.labels_kept for x in r),
        "no_text": len(no_text), "no_text_damaged": sum(1 for c in no_text if results[c.name].damage_worst > DAMAGE_LIMIT),
        "damaged": sum(1 for d in dmg if d > DAMAGE_LIMIT), "damage_median": statistics.median(dmg) if dmg else None,
        "damage_max": max(dmg) if dmg else None, "wall_s": run.wall_s,
        "s_per_frame": run.wall_s / sum(c.frames or 1 for c in cases if c.name in run.cases) if run.wall_s else None,
    }


def write_report(path: Path, cases: list[Case], runs: list[ToolRun], results: dict[str, dict[str, Result]],
                 before: dict[str, int], args: argparse.Namespace, elapsed: float) -> None:
    real = [c for c in cases if not c.source.startswith("generated/")]
    gen = [c for c in cases if c.source.startswith("generated/")]
    lines = [
        "# Pixel benchmark: burned-in text left, anatomy lost, speed",
        "",
        f"Generated by `bench/pixel_eval.py{' --quick' if args.quick else ''}{' --only ' + args.only if args.only else ''}` "
        f"on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit `{git_head()}`, {os.cpu_count()} CPUs; "
        f"harness {elapsed:.0f} s, load average {' / '.join(f'{x:.1f}' for x in os.getloadavg())} at the end. "
        f"deidcli = `{deid_label()}` run with default options (`--recipe mammography` for MG).",
        "",
        f"Evaluation set: {len(real)} real files (pydicom test files, pydicom-data, deid-data; boxes drawn by looking, "
        f"`bench/pixel_eval/annotations.json`) and {len(gen)} generated hard cases (seed {args.seed}). "
        f"PHI boxes: {sum(len(c.phi) for c in cases)} ({sum(before.values())} of them readable by the checker's OCR on the input); "
        f"authorised labels: {sum(len(c.labels) for c in cases)}; images without burned-in text: {sum(1 for c in cases if c.no_text)}.",
        "",
        "*PHI left*: boxes legible to an independent EasyOCR pass on the output **or** with < 90 % of their text pixels "
        "changed (box check); *identifying*: names, IDs, dates, times, institutions among them. *damage*: share of "
        "non-text pixels changed (outside every annotated box + 3 px), worst frame; input and output are decoded "
        "with the plugin deid itself uses (pylibjpeg for JPEG: pydicom's first plugin, gdcm, differs by up to 5 "
        "levels on lossy frames, which counted as damage). *s/frame*: wall time of the whole "
        "process (start-up included) / frames in the set.",
        "",
    ]
    for title, subset in (("All files", cases), ("Real files", real), ("Generated hard cases", gen)):
        if not subset:
            continue
        lines += [f"## {title}", "",
                  "| tool | written | PHI left (legible / unmasked) | identifying left | files with PHI left | labels kept | "
                  "no-text images > 0.5 % changed | files > 0.5 % damage | damage median / max | wall s | s/frame |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        rows = list(runs)
        deid = next((r for r in runs if r.tool == "deidcli"), None)
        peer_sets = {frozenset(r.cases) for r in runs if r.tool != "deidcli" and r.cases}
        if deid and peer_sets and all(ps != frozenset(deid.cases) for ps in peer_sets):
            same = next(iter(peer_sets))
            rows.append(ToolRun("deidcli (peers' files)", None, deid.outputs, deid.status, deid.seconds, "", set(same)))
        for run in rows:
            if run.wall_s is None and not run.tool.startswith("deidcli"):
                lines.append(f"| {run.tool} | {run.note} |||||||||")
                continue
            t = totals(subset, results["deidcli" if run.tool.startswith("deidcli") else run.tool], run)
            if not t["files"]:
                continue
            lines.append(
                f"| {run.tool} | {t['written']}/{t['files']} | **{t['phi_left']}**/{t['phi']} ({t['legible']} / {t['unmasked']}) | "
                f"{t['identifying_left']} | {t['files_with_phi_left']} | {t['labels_kept']}/{t['labels']} | "
                f"{t['no_text_damaged']}/{t['no_text']} | {t['damaged']} | {pct(t['damage_median'])} / {pct(t['damage_max'])} | "
                f"{t['wall_s']:.0f} | {t['s_per_frame']:.3f} |" if title == "All files" and t["wall_s"] else
                f"| {run.tool} | {t['written']}/{t['files']} | **{t['phi_left']}**/{t['phi']} ({t['legible']} / {t['unmasked']}) | "
                f"{t['identifying_left']} | {t['files_with_phi_left']} | {t['labels_kept']}/{t['labels']} | "
                f"{t['no_text_damaged']}/{t['no_text']} | {t['damaged']} | {pct(t['damage_median'])} / {pct(t['damage_max'])} | - | - |")
        lines.append("")
    lines += ["Tool notes: " + "; ".join(f"{r.tool}: {r.note.strip()}" for r in runs), "",
              "## Per file", "",
              "PHI left / PHI boxes (labels kept / labels), worst-frame damage, and what happened; *left* lists the "
              "texts still legible or unmasked (deidcli).", "",
              "| file | mod | frames | " + " | ".join(r.tool for r in runs) + " | deidcli s | deidcli left |",
              "|---|---|---|" + "---|" * len(runs) + "---|---|"]
    for c in cases:
        cells = []
        for run in runs:
            r = results[run.tool][c.name]
            if run.wall_s is None or c.name not in run.cases:
                cells.append("-")
                continue
            if run.outputs.get(c.name) is None or r.damage_worst is None:
                cells.append(f"{r.status[:40]}")
                continue
            lab = f" ({r.labels_kept}/{r.labels})" if r.labels else ""
            flag = " ⚠" if (r.phi_left or (r.damage_worst or 0) > DAMAGE_LIMIT) else ""
            cells.append(f"{r.phi_left}/{r.phi}{lab}, {pct(r.damage_worst)}{flag}")
        d = results["deidcli"].get(c.name) if "deidcli" in results else None
        secs = next((r.seconds.get(c.name) for r in runs if r.tool == "deidcli"), None)
        left = ", ".join(f"`{t[:24]}`" for t in (d.left_texts if d else [])[:6])
        lines.append(f"| {c.source} | {c.modality} | {c.frames or '?'} | " + " | ".join(cells) +
                     f" | {'-' if secs is None or secs != secs else f'{secs:.2f}'} | {left} |")
    lines.append("")
    path.write_text("\n".join(lines))


def deid_label() -> str:
    """Which deid was measured: its checkout and commit (a baseline may use another checkout's venv)."""
    checkout = DEID.resolve().parents[2] if DEID.name == "deid" else DEID
    try:
        head = subprocess.run(["git", "-C", str(checkout), "log", "-1", "--format=%h %s"], capture_output=True,
                              text=True).stdout.strip()[:70]
    except OSError:
        head = "?"
    return f"{DEID} ({head})"


def git_head() -> str:
    try:
        return subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip()
    except OSError:
        return "?"


# --------------------------------------------------------------------------------------------- main


def main() -> int:
    global WORK, DEID
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="only cases whose name contains this")
    ap.add_argument("--quick", action="store_true", help="one file per annotated family + hard cases")
    ap.add_argument("--tools", nargs="+", default=TOOLS, choices=TOOLS)
    ap.add_argument("--seed", type=int, default=DEFAULT_SEED)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "pixel_results.md")
    ap.add_argument("--thumbs", type=Path, default=ROOT / "bench" / "pixels")
    ap.add_argument("--no-thumbs", action="store_true")
    ap.add_argument("--timeout", type=int, default=900, help="seconds allowed per tool run")
    ap.add_argument("--deid", type=Path, default=DEID,
                    help="the deid executable to measure (e.g. another checkout's .venv/bin/deid for a baseline)")
    ap.add_argument("--reuse-deid", action="store_true",
                    help="re-measure the deid outputs of the last run in --work (same inputs, same deid) instead of rerunning")
    ap.add_argument("--work", type=Path, default=ROOT / "bench" / "work" / "pixel_eval",
                    help="scratch folder (inputs, outputs, caches)")
    ap.add_argument("--peers-all", action="store_true",
                    help="run the peers on every file (default: on the --quick subset: EasyOCR/Tesseract on ~190 "
                         "files would take hours on 2 cores)")
    args = ap.parse_args()
    WORK = args.work.resolve()
    DEID = args.deid
    t_start = time.perf_counter()

    gen_dir = WORK / "generated"
    truth = gen_dir / "truth.json"
    if not truth.exists() or json.loads(truth.read_text()).get("seed") != args.seed:
        print(f"generating hard cases (seed {args.seed}) ...", flush=True)
        generate(gen_dir, args.seed)
    cases = select(load_real(WORK / "cache") + load_generated(gen_dir), args.only, args.quick)
    if not cases:
        print("no case matches", file=sys.stderr)
        return 2
    print(f"{len(cases)} files, {sum(c.frames or 1 for c in cases)} frames", flush=True)
    dirs = prepare_inputs(cases)

    peer_cases = cases if args.peers_all or args.quick or args.only else select(cases, "", True)
    peer_dirs = dirs if peer_cases is cases else {"all": link_subset(dirs["all"], peer_cases)}
    runs = []
    for tool in args.tools:
        print(f"running {tool} ...", flush=True)
        if tool == "deidcli":
            run = run_deidcli(dirs, cases, args.timeout, args.reuse_deid)
        else:
            run = run_peer(tool, peer_dirs, peer_cases, args.timeout)
        print(f"  {tool}: {run.wall_s if run.wall_s is None else round(run.wall_s, 1)} s  {run.note}", flush=True)
        runs.append(run)

    reader = Reader(WORK / "ocr_cache.json")
    results: dict[str, dict[str, Result]] = {r.tool: {} for r in runs}
    before: dict[str, int] = {}
    frame_cache: dict = {}
    try:
        for c in cases:
            before[c.name] = readable_before(c, reader, frame_cache)
            for run in runs:
                results[run.tool][c.name] = evaluate(c, run.outputs.get(c.name), run.status.get(c.name, "not run"),
                                                     reader, frame_cache)
            d = results.get("deidcli", {}).get(c.name)
            if d:
                print(f"  {c.name[:60]:60s} deidcli {d.phi_left}/{d.phi} left, damage {pct(d.damage_worst)} "
                      f"[{d.status[:30]}]", flush=True)
    finally:
        reader.save()

    if not args.no_thumbs and "deidcli" in results:
        run = next(r for r in runs if r.tool == "deidcli")
        if not args.only and not args.quick:
            shutil.rmtree(args.thumbs, ignore_errors=True)
        for c in cases:
            r = results["deidcli"][c.name]
            out = run.outputs.get(c.name)
            if c.source.startswith("generated/") or out is None or r.damage_worst is None:
                continue
            if c.boxes or r.damage_worst > DAMAGE_LIMIT:
                thumbnail(c, out, r, args.thumbs / f"{c.name}.png")
    write_report(args.out, cases, runs, results, before, args, time.perf_counter() - t_start)
    print(f"wrote {args.out} ({time.perf_counter() - t_start:.0f} s; {reader.calls} new OCR readings)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
