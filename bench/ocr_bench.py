"""OCR benchmark: seconds per frame and recall of planted text, per engine and scan setting.

Runs the real scanner (views, scaling, rotation, padding, decision) over the synthetic frames of
tests/ocr_fixtures.py and prints/writes a markdown table. Recall counts a planted PHI box as
found when >= 95 % of its area lies inside the masked rectangles; "labels kept" counts
authorised view labels left visible. Timings are wall-clock, one process, engine threads as
given (default 1: the batch runs one worker per core).

    .venv/bin/python bench/ocr_bench.py                       # default settings, both engines
    .venv/bin/python bench/ocr_bench.py --sweep --engines rapidocr --out bench/ocr_results.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from ocr_fixtures import Synthetic, authorised_kept, mammogram, recall, ultrasound  # noqa: E402

from deidcli.geometry import Rect  # noqa: E402
from deidcli.ocr import BUILTIN_MAMMOGRAPHY_WORDS, TextScanner, make_detector  # noqa: E402
from deidcli.ocr.views import display_gray, minmax  # noqa: E402


@dataclass
class Row:
    engine: str
    kind: str
    setting: str
    images: int
    mean_s: float
    max_s: float
    cpu_s: float
    hidden: int
    planted: int
    labels_kept: int
    labels: int

    def markdown(self) -> str:
        rec = f"{self.hidden}/{self.planted} ({100 * self.hidden / max(self.planted, 1):.0f} %)"
        labels = f"{self.labels_kept}/{self.labels}" if self.labels else "-"
        return (
            f"| {self.engine} | {self.kind} | {self.setting} | {self.images} | {self.mean_s:.2f} | "
            f"{self.max_s:.2f} | {self.cpu_s:.2f} | {rec} | {labels} |"
        )


HEADER = (
    "| engine | images | setting | n | s/frame (mean) | s/frame (max) | CPU s/frame (mean) | recall | labels kept |\n"
    "|---|---|---|---|---|---|---|---|---|"
)


def mammograms(n: int) -> list[Synthetic]:
    """n mammograms alternating MONOCHROME1/2; every third is 4096x3328, the rest 3328x2560."""
    out = []
    for seed in range(n):
        rows, cols = (4096, 3328) if seed % 3 == 2 else (3328, 2560)
        out.append(mammogram(rows, cols, ("MONOCHROME1", "MONOCHROME2")[seed % 2], seed=seed))
    return out


def ultrasounds(n: int) -> list[Synthetic]:
    """n ultrasound frames cycling 8/13 px text, gray/RGB."""
    return [ultrasound(seed=s, text_height=(8, 13)[s % 2], color=bool((s // 2) % 2)) for s in range(n)]


def run(engine: str, detector, images: list[Synthetic], kind: str, setting: str, authorised, **kw) -> Row:
    """Scan each image once (after one warm-up scan) and collect time and recall."""
    scanner = TextScanner(detector, authorised, **kw)
    scanner.scan(images[0].pixels, images[0].photometric, images[0].bits_stored)  # warm-up
    times, cpu, hidden, planted, kept, labels = [], [], 0, 0, 0, 0
    for img in images:
        started = time.process_time()
        result = scanner.scan(img.pixels, img.photometric, img.bits_stored)
        cpu.append(time.process_time() - started)
        times.append(result.seconds)
        h, n = recall(img, result.masked)
        k, m = authorised_kept(img, result.masked)
        hidden, planted, kept, labels = hidden + h, planted + n, kept + k, labels + m
    row = Row(engine, kind, setting, len(images), statistics.mean(times), max(times), statistics.mean(cpu),
              hidden, planted, kept, labels)
    print(row.markdown(), flush=True)
    return row


def naive_easyocr(detector, images: list[Synthetic], kind: str) -> Row:
    """EasyOCR readtext with its defaults on the full-resolution min-max 8-bit frame (as kskit)."""
    times, cpu, hidden, planted = [], [], 0, 0
    for img in images:
        start, started = time.perf_counter(), time.process_time()
        frame = img.pixels if img.pixels.ndim == 3 else minmax(display_gray(img.pixels, img.photometric))
        found = detector.naive(frame)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - started)
        rows, cols = img.pixels.shape[:2]
        masked = [Rect(*d.rect.to_list()).clip(cols, rows) for d in found]
        h, n = recall(img, masked)
        hidden, planted = hidden + h, planted + n
    row = Row(
        "easyocr",
        kind,
        "naive readtext, full res, defaults",
        len(images),
        statistics.mean(times),
        max(times),
        statistics.mean(cpu),
        hidden,
        planted,
        0,
        0,
    )
    print(row.markdown(), flush=True)
    return row


def bench_engine(engine: str, n_mammo: int, n_us: int, sweep: bool, naive: bool, threads: int) -> list[Row]:
    detector = make_detector(engine, threads=threads)
    mg, us = mammograms(n_mammo), ultrasounds(n_us)
    words = BUILTIN_MAMMOGRAPHY_WORDS
    small = [m for m in mg if m.pixels.shape == (3328, 2560)]
    large = [m for m in mg if m.pixels.shape != (3328, 2560)]
    rows = [
        run(engine, detector, small, "mammo 3328x2560", "default: 1024, log, windows around strokes", words)
    ]
    if large:
        rows.append(
            run(
                engine, detector, large, "mammo 4096x3328", "default: 1024, log, windows around strokes", words
            )
        )
    rows.append(
        run(engine, detector, us, "US 800x600", "default: x1, minmax/rgb, windows around strokes", None)
    )
    if sweep:
        for side in (800, 1280):
            rows.append(run(engine, detector, mg, "mammo", f"{side}, log", words, scan_max_side=side))
        for views in (("minmax",), ("equalised",), ("minmax", "log")):
            rows.append(
                run(engine, detector, mg, "mammo", f"1024, {'+'.join(views)}", words, gray_view_names=views)
            )
        rows.append(run(engine, detector, mg, "mammo", "1024, log, + turned pass (whole frame)", words, rotations=(0, 90)))
        rows.append(run(engine, detector, us, "US 800x600", "x1.5 upscale", None, small_scale=1.5))
        rows.append(run(engine, detector, us, "US 800x600", "x1, + turned pass", None, rotations=(0, 90)))
        rows.append(
            run(
                engine,
                detector,
                us,
                "US 800x600",
                "x1, rgb+maxchannel",
                None,
                colour_view_names=("rgb", "maxchannel"),
            )
        )
        rows.append(run(engine, detector, us, "US 800x600", "x1, mammo list (reads short boxes)", words))
    if naive and engine == "easyocr":
        rows.append(naive_easyocr(detector, mg[:1], "mammo"))
        rows.append(naive_easyocr(detector, us[:2], "US 800x600"))
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", default="rapidocr,easyocr")
    parser.add_argument("--mammograms", type=int, default=6)
    parser.add_argument("--ultrasounds", type=int, default=8)
    parser.add_argument("--easyocr-mammograms", type=int, default=2)
    parser.add_argument("--easyocr-ultrasounds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--sweep", action="store_true", help="also try other scales/views/rotations")
    parser.add_argument("--naive", action="store_true", help="also time EasyOCR's naive full-res readtext")
    parser.add_argument("--out", type=Path, help="write the markdown table here")
    args = parser.parse_args(argv)
    print(HEADER, flush=True)
    rows: list[Row] = []
    for engine in args.engines.split(","):
        easy = engine == "easyocr"
        rows += bench_engine(
            engine,
            args.easyocr_mammograms if easy else args.mammograms,
            args.easyocr_ultrasounds if easy else args.ultrasounds,
            args.sweep,
            args.naive,
            args.threads,
        )
    if args.out:
        body = "\n".join(r.markdown() for r in rows)
        args.out.write_text(f"{HEADER}\n{body}\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    np.seterr(all="ignore")
    raise SystemExit(main())
