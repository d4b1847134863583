"""Helpers for the pixel tests: real sample files from installed packages, round trips, dciodvfy."""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.pixels import iter_pixels

VENV_BIN = Path(sys.executable).parent
DCIODVFY = shutil.which("dciodvfy") or str(VENV_BIN / "dciodvfy")


def sample_file(name: str) -> Path:
    """A pydicom test file (pydicom's own or pydicom-data's); skip when not installed.

    get_testdata_file goes to the network for a name it does not have, so look locally first.
    """
    import pydicom.data
    from pydicom.data import get_testdata_file

    local = [Path(pydicom.data.__file__).parent / "test_files" / name]
    try:
        import data_store

        local.append(Path(data_store.__file__).parent / "data" / name)
    except ImportError:
        pass
    if not any(path.exists() for path in local):
        pytest.skip(f"{name} not available (pydicom-data missing?)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = get_testdata_file(name)
    if path is None:
        pytest.skip(f"{name} not available (pydicom-data missing?)")
    return Path(path)


def ultrasound(name: str) -> Path:
    """A deid-data ultrasound (GREYSCALE_IMAGE.dcm, RGB_IMAGE.dcm, ...)."""
    deid_data = pytest.importorskip("deid_data")
    path = Path(deid_data.__file__).parent / "data" / "ultrasounds" / name
    if not path.exists():
        pytest.skip(f"deid-data has no {name}")
    return path


def read(path: Path | str) -> Dataset:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return pydicom.dcmread(path)


def make_target(source: Dataset) -> Dataset:
    """What the pipeline hands us: a copy of the source with its own file meta."""
    target = copy.deepcopy(source)
    meta = FileMetaDataset()
    for element in source.file_meta:
        meta[element.tag] = copy.deepcopy(element)
    target.file_meta = meta
    return target


def write(target: Dataset, path: Path) -> Path:
    """Write as the lead's writer will (DICOM file format, encoding from the transfer syntax)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pydicom.dcmwrite(path, target, enforce_file_format=True)
    return path


def decoded_frames(ds: Dataset) -> list[np.ndarray]:
    """Frames decoded with the plugin the rewriter uses (lossy JPEG decoders differ by a few levels)."""
    from pydicom.pixels import get_decoder

    from deidcli.pixels.frames import preferred_plugin

    plugin = preferred_plugin(get_decoder(ds.file_meta.TransferSyntaxUID))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return [frame.copy() for frame in iter_pixels(ds, decoding_plugin=plugin)]


def outside(frame: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """Pixels of `frame` outside the rectangle (flattened per sample)."""
    keep = np.ones(frame.shape[:2], dtype=bool)
    keep[y0:y1, x0:x1] = False
    return frame[keep]


def is_constant(block: np.ndarray) -> bool:
    flat = block.reshape(-1, *block.shape[2:])
    return bool(np.all(flat == flat[0]))


def is_banded(block: np.ndarray) -> bool:
    """One constant, or two runs of rows each one constant (a mask across a band's edge: mask.band_field)."""
    if not all(np.all(row == row[0]) for row in block):  # each row one value (one sample tuple in colour)
        return False
    rows = block[:, 0].reshape(len(block), -1)
    return int(np.count_nonzero((rows[1:] != rows[:-1]).any(axis=1))) <= 1


_VOLATILE = re.compile(r"\] = <[^>]*>|\[[^\]]*\]|\b\d+\b")


def dciodvfy_errors(path: Path | str) -> set[str]:
    """The 'Error' lines dciodvfy prints for a file, normalised so input and output can be compared.

    Values (`] = <value>`), bracketed value indices and free-standing numbers are removed; the kind of error
    and the attribute/module names in <...> remain, so an error the input already had is recognised.
    """
    if not Path(DCIODVFY).exists():
        pytest.skip("dciodvfy not installed")
    result = subprocess.run(
        [DCIODVFY, str(path)], capture_output=True, text=True, errors="replace", timeout=120, check=False
    )
    lines = (result.stdout + result.stderr).splitlines()
    errors = set()
    for line in lines:
        if not line.startswith("Error"):
            continue
        errors.add(" ".join(_VOLATILE.sub("", line).split()))
    return errors
