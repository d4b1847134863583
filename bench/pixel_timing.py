"""Seconds per frame for decoding and (re-)encoding, by transfer syntax, with a mask on every frame.

Usage: python bench/pixel_timing.py [FILE_OR_DIR ...]
Without arguments the pydicom / pydicom-data / deid-data sample files of every supported syntax are used.
Each file is rewritten `--repeat` times (default 3) and the best run is reported.
"""

from __future__ import annotations

import argparse
import copy
import sys
import warnings
from pathlib import Path

import pydicom

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from deidcli.geometry import Rect  # noqa: E402
from deidcli.pixels import rewrite_pixels  # noqa: E402

DEFAULT_FILES = [
    "CT_small.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm", "image_dfl.dcm", "MR_small_RLE.dcm",
    "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm", "JPGExtended.dcm", "SC_rgb_jpeg_dcmtk.dcm",
    "SC_rgb_jpeg_gdcm.dcm", "SC_rgb_rle_2frame.dcm", "JPEGLSNearLossless_16.dcm", "SC_rgb_jls_lossy_line.dcm",
    "US1_J2KR.dcm", "US1_J2KI.dcm", "US1_UNCR.dcm", "JPGLosslessP14SV1_1s_1f_8b.dcm", "OBXXXX1A_rle_2frame.dcm",
    "examples_ybr_color.dcm", "emri_small_jpeg_2k_lossless.dcm", "emri_small_jpeg_ls_lossless.dcm",
]


def default_paths() -> list[Path]:
    from pydicom.data import get_testdata_file

    paths = []
    for name in DEFAULT_FILES:
        found = get_testdata_file(name)
        if found:
            paths.append(Path(found))
    try:
        import deid_data

        root = Path(deid_data.__file__).parent / "data" / "ultrasounds"
        paths += [root / "GREYSCALE_IMAGE.dcm", root / "RGB_IMAGE.dcm"]
    except ImportError:
        pass
    return paths


def expand(arguments: list[str]) -> list[Path]:
    paths: list[Path] = []
    for argument in arguments:
        path = Path(argument)
        paths += sorted(path.rglob("*.dcm")) if path.is_dir() else [path]
    return paths


def measure(path: Path, repeat: int) -> tuple[str, str, int, str, float, float] | None:
    source = pydicom.dcmread(path)
    if "PixelData" not in source:
        return None
    rect = Rect(0, 0, max(1, int(source.Columns) // 4), max(1, int(source.Rows) // 10))
    best = None
    for _ in range(repeat):
        target = copy.deepcopy(source)
        report = rewrite_pixels(source, target, lambda index, frame: [rect])
        if best is None or report.decode_seconds + report.encode_seconds < best.decode_seconds + best.encode_seconds:
            best = report
    assert best is not None
    size = f"{source.Columns}x{source.Rows}x{source.SamplesPerPixel}@{source.BitsAllocated}"
    ts_in = pydicom.uid.UID(best.transfer_syntax_in).name
    ts_out = pydicom.uid.UID(best.transfer_syntax_out).name
    return ts_in, ts_out, best.frames, size, best.decode_seconds / best.frames, best.encode_seconds / best.frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("paths", nargs="*")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    paths = expand(args.paths) if args.paths else default_paths()
    print("| file | TS in | TS out | frames | size | decode s/frame | encode s/frame |")
    print("|---|---|---|---|---|---|---|")
    for path in paths:
        try:
            row = measure(path, args.repeat)
        except Exception as exc:  # report and continue: this is a benchmark
            print(f"| {path.name} | error: {type(exc).__name__}: {exc} |")
            continue
        if row:
            ts_in, ts_out, frames, size, decode, encode = row
            print(f"| {path.name} | {ts_in} | {ts_out} | {frames} | {size} | {decode:.5f} | {encode:.5f} |")


if __name__ == "__main__":
    main()
