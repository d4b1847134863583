"""Peak RSS of `deid run` on a large multi-frame cine (frames are processed one at a time).

Generates an uncompressed RGB ultrasound cine (default 120 frames of 800x600, 173 MB of pixel data)
with a header bar of burned-in text, runs `deid run --workers 1` on it with a region rule (so every
frame is decoded, masked and re-encoded) and reports the child process's peak RSS next to the file size.

    python bench/memory_cine.py [--frames 120] [--ocr]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

ROWS, COLUMNS = 600, 800


def make_cine(path: Path, frames: int) -> int:
    rng = np.random.default_rng(7)
    data = bytearray()
    for index in range(frames):
        frame = rng.integers(0, 60, size=(ROWS, COLUMNS, 3), dtype=np.uint8)
        cv2.putText(frame, f"DOE^JOHN 0012345 FRAME {index}", (10, 18), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (255, 255, 255), 1)
        data += frame.tobytes()
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.3.1"  # Ultrasound Multi-frame Image Storage
    ds.SOPInstanceUID, ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid(), generate_uid()
    ds.Modality, ds.Manufacturer, ds.ManufacturerModelName = "US", "BENCH", "CINE"
    ds.PatientName, ds.PatientID = "DOE^JOHN", "0012345"
    ds.Rows, ds.Columns, ds.NumberOfFrames = ROWS, COLUMNS, frames
    ds.SamplesPerPixel, ds.PhotometricInterpretation, ds.PlanarConfiguration = 3, "RGB", 0
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    ds.FrameTime = 33.3
    ds.FrameIncrementPointer = 0x00181063
    ds.PixelData = bytes(data)
    ds.save_as(path, enforce_file_format=True)
    return len(data)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--ocr", action="store_true", help="run OCR on every frame too (slow)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        folder = Path(root) / "in"
        folder.mkdir()
        pixel_bytes = make_cine(folder / "cine.dcm", options.frames)
        rules = Path(root) / "rules.json"
        rules.write_text(json.dumps({"rules": [{"name": "bench cine header", "match": {"Manufacturer": "BENCH"},
                                                "rectangles": [[0, 0, COLUMNS, 24]]}]}))
        deid = str(Path(sys.executable).with_name("deid"))
        # /usr/bin/time reports the child's own peak (RUSAGE_CHILDREN would count the forked parent's pages)
        command = ["/usr/bin/time", "-f", "PEAK_KB %M", deid, "run", str(folder), str(Path(root) / "out"), "--workers", "1", "--no-progress",
                   "--region-rules", str(rules), "--ocr", "auto" if options.ocr else "never"]
        started = time.perf_counter()
        completed = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        peak_kb = next(line.split()[1] for line in completed.stderr.splitlines() if line.startswith("PEAK_KB"))
        peak_mb = int(peak_kb) / 1024
        print(completed.stdout.strip().splitlines()[0] if completed.stdout else completed.stderr)
        print("| frames | pixel data MB | peak RSS MB | peak / pixel data | seconds |")
        print("|---|---|---|---|---|")
        print(f"| {options.frames} | {pixel_bytes / 2**20:.0f} | {peak_mb:.0f} | {peak_mb / (pixel_bytes / 2**20):.2f} "
              f"| {seconds:.1f} |")


if __name__ == "__main__":
    main()
