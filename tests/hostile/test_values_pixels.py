"""Bytes outside the frames (after the last frame, extra frames, extra fragments, over-long RLE segments,
float pixel data) are never copied: the file is quarantined `pixel_extra_data`."""

from __future__ import annotations

from io import BytesIO
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, generate_fragments, parse_basic_offsets

from deidcli.errors import PixelError
from deidcli.pixels.integrity import check_pixel_integrity
from tests.conftest import planted_dataset, pydicom_file
from tests.hostile.values_helpers import audit_row, canary_hits, run_api

CANARY = b"CANARYPIXELS0042"


def _run_one(tmp_path: Path, dataset: Dataset) -> dict:
    path = tmp_path / "in" / "a.dcm"
    path.parent.mkdir(parents=True, exist_ok=True)
    dataset.save_as(path, enforce_file_format=True)
    run_api(tmp_path / "in", tmp_path / "out")
    assert canary_hits(tmp_path / "out", CANARY.decode()) == []
    return audit_row(tmp_path / "out")


def _fragments(dataset: Dataset) -> list[bytes]:
    buffer = BytesIO(dataset.PixelData)
    parse_basic_offsets(buffer)
    return list(generate_fragments(buffer))


def test_bytes_after_the_last_native_frame_quarantine(tmp_path: Path) -> None:
    dataset = planted_dataset()
    dataset.PixelData = bytes(range(16)) + CANARY
    assert _run_one(tmp_path, dataset)["reason"] == "pixel_extra_data"


def test_a_frame_beyond_number_of_frames_quarantines(tmp_path: Path) -> None:
    dataset = planted_dataset()
    dataset.NumberOfFrames = 1
    dataset.PixelData = bytes(16) + CANARY  # a whole second 4x4 frame holding the canary
    assert _run_one(tmp_path, dataset)["reason"] == "pixel_extra_data"


def test_the_one_pad_byte_of_an_odd_length_is_allowed(tmp_path: Path) -> None:
    dataset = planted_dataset()
    dataset.Rows = dataset.Columns = 3
    dataset.PixelData = bytes(range(9)) + b"\0"
    assert _run_one(tmp_path, dataset)["reason"] == "ok"


@pytest.mark.parametrize("with_offsets", [True, False])
def test_an_extra_fragment_after_the_last_frame_quarantines(tmp_path: Path, with_offsets: bool) -> None:
    dataset = pydicom.dcmread(pydicom_file("SC_rgb_small_odd_jpeg.dcm"))
    frame = b"".join(_fragments(dataset))
    dataset.PixelData = encapsulate([frame], has_bot=with_offsets) + _item(CANARY + b"\xff\xd9")
    assert _run_one(tmp_path, dataset)["reason"] == "pixel_extra_data"


def test_bytes_after_the_end_of_image_marker_in_the_last_frame_quarantine(tmp_path: Path) -> None:
    dataset = pydicom.dcmread(pydicom_file("JPEG-lossy.dcm"))
    frame = b"".join(_fragments(dataset))
    dataset.PixelData = encapsulate([frame + CANARY + b"\xff\xd9"], has_bot=False)
    assert _run_one(tmp_path, dataset)["reason"] == "pixel_extra_data"


def test_extra_encapsulated_frame_without_offset_table_quarantines(tmp_path: Path) -> None:
    dataset = pydicom.dcmread(pydicom_file("emri_small_jpeg_2k_lossless.dcm"))
    fragments = _fragments(dataset)
    dataset.PixelData = encapsulate([*fragments, fragments[0][:64] + CANARY], has_bot=False)
    assert _run_one(tmp_path, dataset)["reason"] == "pixel_extra_data"


def test_rle_segment_decoding_past_its_plane_quarantines(tmp_path: Path) -> None:
    dataset = pydicom.dcmread(pydicom_file("MR_small_RLE.dcm"))
    (frame,) = _fragments(dataset)
    literal = bytes([len(CANARY) - 1]) + CANARY  # a PackBits literal run appended to the last segment
    dataset.PixelData = encapsulate([frame + literal], has_bot=True)
    assert _run_one(tmp_path, dataset)["reason"] == "pixel_extra_data"


def test_kept_float_pixel_data_longer_than_its_frames_quarantines(tmp_path: Path) -> None:
    dataset = planted_dataset()
    del dataset.PixelData
    for keyword in ("BitsStored", "HighBit", "PixelRepresentation"):
        delattr(dataset, keyword)
    dataset.SOPClassUID = dataset.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.30"
    dataset.BitsAllocated = 32
    dataset.FloatPixelData = np.zeros(16, dtype="<f4").tobytes() + CANARY
    assert _run_one(tmp_path, dataset)["reason"] == "pixel_extra_data"


@pytest.mark.parametrize("name", ["CT_small.dcm", "MR_small_RLE.dcm", "JPEG-LL.dcm", "SC_rgb_jpeg_dcmtk.dcm",
                                  "JPEG2000.dcm", "emri_small_jpeg_2k_lossless.dcm", "JPEGLSNearLossless_16.dcm",
                                  "SC_rgb_small_odd_jpeg.dcm", "rtdose.dcm", "liver.dcm"])
def test_real_files_pass_the_integrity_check(name: str) -> None:
    dataset = pydicom.dcmread(pydicom_file(name))
    check_pixel_integrity(dataset, dataset)


def test_pixel_data_removed_by_the_recipe_is_not_judged() -> None:
    dataset = planted_dataset()
    dataset.PixelData = bytes(16) + CANARY
    check_pixel_integrity(dataset, Dataset())
    with pytest.raises(PixelError):
        check_pixel_integrity(dataset, dataset)


def _item(payload: bytes) -> bytes:
    if len(payload) % 2:
        payload += b"\0"
    return b"\xfe\xff\x00\xe0" + len(payload).to_bytes(4, "little") + payload


