"""Peer: EasyOCR the naive way (as kskit does): full resolution, every detected box masked.

    .venv/bin/python bench/pixel_eval/naive_easyocr.py IN_DIR OUT_DIR

For each file: decode, `reader.readtext(frame8)` with EasyOCR's defaults on a full-range 8-bit view,
fill every box with the frame's minimum. Multi-frame files: 5 evenly spaced frames are read and the union
of their boxes is masked on every frame (reading all 120 frames of a cine would take many minutes).
Written uncompressed (Explicit VR Little Endian; colour as RGB). Headers are left alone: this is a pixel
baseline. Prints one JSON line: ok/failed and per-file seconds (in-process).
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import ExplicitVRLittleEndian

sys.path.insert(0, str(Path(__file__).resolve().parent))
from imaging import raw_frames, to_display  # noqa: E402


def main() -> int:
    in_dir, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
    out_dir.mkdir(parents=True, exist_ok=True)
    import easyocr
    import easyocr_en_models
    import torch

    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    reader = easyocr.Reader(["en"], gpu=False, model_storage_directory=easyocr_en_models.model_dir(),
                            download_enabled=False, verbose=False)
    ok = failed = 0
    per_file: dict[str, float] = {}
    errors: list[str] = []
    for f in sorted(p for p in in_dir.iterdir() if p.is_file()):
        t0 = time.perf_counter()
        try:
            ds = pydicom.dcmread(f)
            frames = raw_frames(ds).copy()
            n = frames.shape[0]
            picks = sorted({round(i * (n - 1) / 4) for i in range(5)}) if n > 5 else range(n)
            rects = []
            for i in picks:
                for poly, _text, _conf in reader.readtext(to_display(frames[i], ds)):
                    p = np.asarray(poly)
                    rects.append((int(p[:, 0].min()), int(p[:, 1].min()), int(np.ceil(p[:, 0].max())) + 1,
                                  int(np.ceil(p[:, 1].max())) + 1))
            fill = frames.min()
            for x0, y0, x1, y1 in rects:
                frames[:, max(0, y0):y1, max(0, x0):x1] = fill
            write(ds, frames, out_dir / f.name)
            ok += 1
        except Exception as e:  # one bad file never stops the run
            failed += 1
            errors.append(f"{f.name}: {type(e).__name__}: {str(e)[:160]}")
        per_file[f.name] = time.perf_counter() - t0
    print(json.dumps({"tool": "easyocr-naive", "version": easyocr.__version__, "ok": ok, "failed": failed,
                      "errors": errors[:10], "per_file_s": per_file}))
    return 0


def write(ds: pydicom.Dataset, frames: np.ndarray, path: Path) -> None:
    arr = frames if int(ds.get("NumberOfFrames", 1) or 1) > 1 else frames[0]
    if "FloatPixelData" in ds:
        ds.FloatPixelData = arr.astype("<f4").tobytes()
    elif "DoubleFloatPixelData" in ds:
        ds.DoubleFloatPixelData = arr.astype("<f8").tobytes()
    else:
        if int(ds.get("SamplesPerPixel", 1)) == 3:
            ds.PhotometricInterpretation = "RGB"
            ds.PlanarConfiguration = 0
        ds.PixelData = arr.astype(arr.dtype.newbyteorder("<")).tobytes()
        ds["PixelData"].VR = "OW" if ds.BitsAllocated > 8 else "OB"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.save_as(path, enforce_file_format=True)


if __name__ == "__main__":
    sys.exit(main())
