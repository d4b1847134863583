#!/usr/bin/env python3
"""Issue 12's speed goal, measured the way it is stated: whole processes on this machine's cores.

    .venv/bin/python bench/pixel_speed.py [--mammos 12] [--us 16] [--runs 1] [--out bench/pixel_speed.md]

The goal is the throughput of a screening batch: <= 0.5 s per 3328x2560 mammogram and <= 0.3 s per 800x600
ultrasound frame on 2 cores, start-up included. One table, every row a whole `deid run` (or Presidio) process
timed from outside, so nothing is hidden:

* **start-up alone**: one tiny (64x64) frame with OCR on: imports, option and recipe checks, key, discovery,
  the OCR engine's load, the end of the run (audit, SHA256SUMS); and the same with `--ocr never` (no engine);
* **small set, 1 worker**: the OCR track of `bench/run_bench.py` (3 mammograms, 4 US frames), as before;
* **batch, 1 and 2 workers**: `--mammos` mammograms and `--us` US frames (the same generator, distinct
  patients, UIDs and text), `--workers 1` and `--workers 2`;
* **Presidio** (DicomImageRedactorEngine, Tesseract) on the small set and the batch, in the same run.

Columns: wall seconds and CPU seconds (user+sys of the whole process tree, `wait4` of the process and its
reaped workers), both per image *including* start-up, and the load average at the start of each row (the
machine may be shared). "after start-up" is derived: (wall - start-up wall of the same run) / images.
Recall uses run_bench's definition (a box is redacted when <= 10 % of its stroke contrast is left):
PHI boxes redacted, and labels kept (the non-PHI annotation: `R MLO` is authorised by the mammography
recipe, `5C1 ABD 15cm` is not authorised anywhere, so blanking it is expected).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import make_corpus  # noqa: E402
import run_bench  # noqa: E402  (re-executes under the project venv when needed)
from run_bench import ADAPTERS, OURS, VENVS, fresh, measure, pixel_recall  # noqa: E402

ORG_ROOT = run_bench.ORG_ROOT
KINDS = {"mammo": "mammogram 3328x2560 16-bit", "us": "US frame 800x600 RGB"}
GOALS = {"mammo": 0.5, "us": 0.3}
SMALL = {"mammo": 3, "us": 4}  # the OCR track of run_bench.py


def build_sets(work: Path, mammos: int, us: int, seed: int) -> tuple[Path, dict]:
    """The corpus (reused while its generator and sizes match) and the input folders of each set."""
    corpus = work / "corpus"
    gt = corpus / "ground_truth.json"
    want = {"seed": seed, "generator_sha256": make_corpus.generator_hash(), "mammos": mammos, "us": us}
    truth = json.loads(gt.read_text()) if gt.exists() else {}
    if {k: truth.get(k) for k in want} != want:
        print(f"== building {mammos} mammograms and {us} US frames (seed {seed})", flush=True)
        truth = make_corpus.build(0, corpus, seed, mammos, us)
        truth.update(want)
        gt.write_text(json.dumps(truth, indent=1, sort_keys=True))
    sets = work / "sets"
    if sets.exists():
        shutil.rmtree(sets)
    for kind, count in (("mammo", mammos), ("us", us)):
        files = sorted((corpus / "pixels" / kind).glob("*.dcm"))[:count]
        for name, chosen in ((f"small-{kind}", files[: SMALL[kind]]), (f"batch-{kind}", files)):
            (sets / name).mkdir(parents=True)
            for f in chosen:
                _link(f, sets / name / f.name)
    _tiny(sorted((corpus / "pixels" / "us").glob("*.dcm"))[0], sets / "tiny")
    return corpus, truth


def _link(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _tiny(template: Path, folder: Path) -> None:
    """One 64x64 black US frame: the run loads everything an OCR run loads, the scan itself costs ~nothing."""
    import numpy as np
    import pydicom

    ds = pydicom.dcmread(template)
    ds.Rows = ds.Columns = 64
    ds.PixelData = np.zeros((64, 64, 3), np.uint8).tobytes()
    ds.InstanceNumber = 1
    folder.mkdir(parents=True)
    ds.save_as(folder / "tiny.dcm", enforce_file_format=True)


def compile_bytecode(deid: Path) -> None:
    """Byte-compile the measured checkout's `deidcli/` and `recipes/`, as `pip install` does for a user.

    Why: an editable install writes its bytecode on first import, unless PYTHONDONTWRITEBYTECODE is set,
    as it is in this machine's sessions: then every `deid` process (and each worker's lazy imports)
    compiled deidcli from source, 0.2-0.4 s of CPU per batch, measured, that no installed copy pays.
    Stale files cannot mislead: Python checks each source's modification time before using its cache."""
    checkout = deid.parents[2]
    subprocess.run([str(deid.parent / "python"), "-m", "compileall", "-q", str(checkout / "deidcli"),
                    str(checkout / "recipes")], capture_output=True, check=True)


def deid_argv(deid: Path, in_dir: Path, out: Path, key: Path, workers: int, kind: str, ocr: str = "auto") -> list[str]:
    argv = [str(deid), "run", str(in_dir), str(out), "--org-root", ORG_ROOT, "--key-file", str(key),
            "--workers", str(workers), "--no-progress", "--ocr", ocr, "--ocr-engine", "rapidocr"]
    if ocr == "never":
        argv.append("--accept-burned-in-risk")
    if kind == "mammo":
        argv += ["--recipe", "mammography"]  # a breast-screening user: its view labels are authorised
    return argv


def subset_truth(truth: dict, in_dir: Path) -> dict:
    names = {f.name for f in in_dir.glob("*.dcm")}
    return {"pixel_files": {k: v for k, v in truth["pixel_files"].items() if Path(k).name in names}}


def one_run(work: Path, corpus: Path, truth: dict, key: Path, with_presidio: bool, batch_w1: bool,
            timeout: float, r: int, deid: Path = OURS) -> list[dict]:
    sets, out_root, logs, cwd = work / "sets", work / "out", work / "logs", work / "cwd"
    for d in (out_root, logs, cwd):
        d.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []

    def ours(label: str, in_dir: Path, workers: int, kind: str, ocr: str = "auto") -> dict:
        out = out_root / f"{label}-w{workers}-{ocr}"
        fresh(out)
        load = os.getloadavg()[0]
        m = measure(deid_argv(deid, in_dir, out, key, workers, kind, ocr), cwd, timeout, logs / f"{out.name}.run{r}")
        n = len(list(in_dir.glob("*.dcm")))
        row = {"set": label, "tool": "deidcli", "workers": workers, "kind": kind, "n": n, "ocr": ocr,
               "load": load, "wall_s": m["wall_s"], "cpu_s": m["cpu_s"], "rc": m["rc"]}
        if kind in KINDS:
            row["recall"] = pixel_recall(out, corpus, subset_truth(truth, in_dir), kind)
        print(f"   {label:14s} w{workers} {ocr:5s} n={n:2d} wall {m['wall_s']:6.2f} s  cpu {m['cpu_s']:6.2f} s"
              f"  load {load:4.1f}  rc={m['rc']}", flush=True)
        rows.append(row)
        return row

    def presidio(label: str, in_dir: Path, kind: str) -> None:
        venv = VENVS / "presidio"
        status = run_bench._peer_status(venv)
        n = len(list(in_dir.glob("*.dcm")))
        row = {"set": label, "tool": "Presidio", "workers": 1, "kind": kind, "n": n, "status": status}
        if status == "ok":
            out = out_root / f"presidio-{label}"
            fresh(out)
            row["load"] = os.getloadavg()[0]
            m = measure([str(venv / "bin" / "python"), str(ADAPTERS / "presidio_adapter.py"), str(in_dir), str(out),
                         str(work / "spacy_blank_en")], cwd, timeout, logs / f"{out.name}.run{r}")
            row.update({"wall_s": m["wall_s"], "cpu_s": m["cpu_s"], "rc": m["rc"],
                        "recall": pixel_recall(out, corpus, subset_truth(truth, in_dir), kind)})
            print(f"   {label:14s} Presidio n={n:2d} wall {m['wall_s']:6.2f} s  cpu {m['cpu_s']:6.2f} s", flush=True)
        rows.append(row)

    ours("start-up", sets / "tiny", 1, "tiny", "never")
    ours("start-up", sets / "tiny", 1, "tiny")
    for kind in KINDS:
        ours("small", sets / f"small-{kind}", 1, kind)
        if batch_w1:
            ours("batch", sets / f"batch-{kind}", 1, kind)
        ours("batch", sets / f"batch-{kind}", 2, kind)
    if with_presidio:
        for kind in KINDS:
            presidio("small", sets / f"small-{kind}", kind)
            presidio("batch", sets / f"batch-{kind}", kind)
    return rows


def summarise(runs: list[list[dict]]) -> list[dict]:
    """Median over runs of each row (same order); start-up subtracted within each run."""
    out = []
    for i, first in enumerate(runs[0]):
        same = [run[i] for run in runs]
        row = dict(first)
        for field in ("wall_s", "cpu_s", "load"):
            values = [x[field] for x in same if x.get(field) is not None]
            row[field] = statistics.median(values) if values else None
        if first["tool"] == "deidcli" and first["kind"] in KINDS:
            after = [(x["wall_s"] - _startup(run)) / x["n"] for x, run in zip(same, runs, strict=True)]
            row["after_startup_s"] = statistics.median(after)
        row["loads"] = [round(x["load"], 1) for x in same if x.get("load") is not None]
        out.append(row)
    return out


def _commit(checkout: Path) -> str:
    done = subprocess.run(["git", "-C", str(checkout), "log", "-1", "--format=%h"], capture_output=True, text=True,
                          check=False)
    return done.stdout.strip() or "commit unknown"


def _startup(run: list[dict]) -> float:
    return next(x["wall_s"] for x in run if x["set"] == "start-up" and x["ocr"] == "auto")


def _f(x: float | None, nd: int = 2) -> str:
    return "–" if x is None else f"{x:.{nd}f}"


def write_md(path: Path, rows: list[dict], meta: dict) -> None:
    lines = [
        "# Pixel stage speed: whole processes, start-up included (issue 12)\n",
        f"- date {meta['date']}, nproc {meta['nproc']}, CPU {meta['cpu']}, runs {meta['runs']} (medians)",
        f"- command: `{meta['command']}`; deid measured: `{meta['deid']}`",
        "- every row is one whole process; `deid run ... --ocr auto --ocr-engine rapidocr --no-progress`"
        " (`--recipe mammography` for mammograms); CPU = user+sys of the process and its workers",
        "- goal (issue 12): <= 0.5 s per mammogram, <= 0.3 s per US frame on 2 cores, whole process\n",
        "| row | tool | images | n | workers | wall s | **s/image incl. start-up** | CPU s | CPU s/image "
        "| s/image after start-up (derived) | goal | PHI boxes redacted | labels kept | load avg (1 min) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        kind = row["kind"]
        what = KINDS.get(kind, "one 64x64 frame")
        if row["set"] == "start-up":
            name = "start-up alone" + (" (no OCR engine: --ocr never)" if row["ocr"] == "never" else " (OCR engine loaded)")
        else:
            name = f"{row['set']} set" if row["set"] == "small" else "screening batch"
        if row.get("status", "ok") != "ok":
            lines.append(f"| {name} | {row['tool']} | {what} | {row['n']} | 1 | {row['status']} |" + " – |" * 8)
            continue
        n = row["n"]
        rec = row.get("recall") or {}
        per = row["wall_s"] / n if row.get("wall_s") is not None else None
        goal = GOALS.get(kind)
        verdict = "–" if goal is None or row["tool"] != "deidcli" else (
            f"{'PASS' if per is not None and per <= goal else 'FAIL'} (<= {goal})")
        phi = f"{rec['phi_redacted']}/{rec['phi_boxes']}" if rec else "–"
        kept = f"{rec['nonphi_boxes'] - rec['nonphi_blanked']}/{rec['nonphi_boxes']}" if rec else "–"
        lines.append(
            f"| {name} | {row['tool']} | {what} | {n} | {row['workers']} | {_f(row.get('wall_s'))} | "
            f"**{_f(per)}** | {_f(row.get('cpu_s'))} | {_f(row['cpu_s'] / n if row.get('cpu_s') else None)} | "
            f"{_f(row.get('after_startup_s'))} | {verdict} | {phi} | {kept} | "
            f"{', '.join(str(x) for x in row.get('loads', [])) or '–'} |")
    lines += [
        "",
        "Labels kept: the non-PHI annotation of each image left legible. `R MLO` is authorised by the mammography",
        "recipe (kept); `5C1 ABD 15cm` on the US frames is in no word list, so deidcli masks it (0/n kept is",
        "expected there). s/image after start-up = (wall - wall of the one-frame OCR start-up row) / images: an",
        "estimate of the scan cost per image, never a substitute for the column before it.",
    ]
    path.write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mammos", type=int, default=12, help="mammograms in the batch (12)")
    ap.add_argument("--us", type=int, default=16, help="US frames in the batch (16)")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=20261125)
    ap.add_argument("--work", type=Path, default=HERE / "work" / "pixel_speed")
    ap.add_argument("--out", type=Path, default=HERE / "pixel_speed.md")
    ap.add_argument("--no-presidio", action="store_true", help="skip Presidio (about 80 s on the batch)")
    ap.add_argument("--no-batch-w1", action="store_true", help="skip the batch with 1 worker")
    ap.add_argument("--timeout", type=float, default=900, help="seconds per process")
    ap.add_argument("--deid", type=Path, default=OURS, help="the deid executable to measure (another checkout's)")
    a = ap.parse_args(argv)
    if a.mammos < SMALL["mammo"] or a.us < SMALL["us"]:
        ap.error(f"the batch must hold the small set: --mammos >= {SMALL['mammo']}, --us >= {SMALL['us']}")
    work = a.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    corpus, truth = build_sets(work, a.mammos, a.us, a.seed)
    key = work / "deid.key"
    if not key.exists():
        subprocess.run([str(OURS), "keygen", str(key)], capture_output=True, check=True)
    compile_bytecode(a.deid.absolute())
    runs = []
    for r in range(a.runs):
        print(f"== run {r + 1}/{a.runs}", flush=True)
        runs.append(one_run(work, corpus, truth, key, not a.no_presidio, not a.no_batch_w1, a.timeout, r + 1,
                            a.deid.absolute()))
    rows = summarise(runs)
    info = run_bench.machine_info()
    meta = {"date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "nproc": info["nproc"],
            "cpu": info["cpu"], "runs": a.runs,
            "command": "bench/pixel_speed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            "deid": f"{a.deid} ({_commit(a.deid.absolute().parents[2])})"}
    a.out.parent.mkdir(parents=True, exist_ok=True)
    write_md(a.out, rows, meta)
    a.out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows, "raw_runs": runs}, indent=1,
                                                     default=str))
    print(a.out.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
