"""Pixel masking and rewriting on real files of every transfer syntax the test data offers."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.pixels import pack_bits
from pydicom.uid import (
    JPEG2000,
    MPEG4HP41,
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from deidcli.errors import PixelError
from deidcli.geometry import Rect
from deidcli.pixels import (
    PixelReport,
    check_pixels_cleanable,
    copy_pixels_untouched,
    frame_count,
    mask_overlays,
    overlay_images,
    rewrite_pixels,
)
from deidcli.pixels import rewrite as rewrite_module
from deidcli.pixels.mask import darkest_palette_index, field_fill, fill_value
from deidcli.reasons import REASONS
from tests.pixel_helpers import (
    dciodvfy_errors,
    decoded_frames,
    is_banded,
    is_constant,
    make_target,
    outside,
    read,
    sample_file,
    write,
)

EXPLICIT = str(ExplicitVRLittleEndian)
RLE = str(RLELossless)
J2KR = str(JPEG2000Lossless)

#: file -> (transfer syntax written after masking, lossy source)
MASK_CASES: dict[str, tuple[str, bool]] = {
    "CT_small.dcm": (EXPLICIT, False),
    "MR_small_implicit.dcm": (EXPLICIT, False),
    "MR_small_bigendian.dcm": (EXPLICIT, False),
    "image_dfl.dcm": (EXPLICIT, False),
    "ExplVR_BigEnd.dcm": (EXPLICIT, False),
    "SC_rgb_expb_32bit.dcm": (EXPLICIT, False),
    "SC_ybr_full_422_uncompressed.dcm": (EXPLICIT, False),
    "OBXXXX1A.dcm": (EXPLICIT, False),
    "gdcm-US-ALOKA-16_big.dcm": (EXPLICIT, False),
    "emri_small.dcm": (EXPLICIT, False),
    "MR_small_RLE.dcm": (RLE, False),
    "SC_rgb_rle_2frame.dcm": (RLE, False),
    "OBXXXX1A_rle_2frame.dcm": (RLE, False),
    "MR_small_jp2klossless.dcm": (J2KR, False),
    "US1_J2KR.dcm": (J2KR, False),
    "emri_small_jpeg_2k_lossless.dcm": (J2KR, False),
    "MR_small_jpeg_ls_lossless.dcm": (RLE, False),
    "emri_small_jpeg_ls_lossless.dcm": (RLE, False),
    "JPGLosslessP14SV1_1s_1f_8b.dcm": (RLE, False),
    "SC_rgb_jpeg_gdcm.dcm": (RLE, False),
    "JPGExtended.dcm": (EXPLICIT, True),
    "SC_rgb_jpeg_dcmtk.dcm": (EXPLICIT, True),
    "examples_ybr_color.dcm": (EXPLICIT, True),
    "JPEGLSNearLossless_16.dcm": (EXPLICIT, True),
    "SC_rgb_jls_lossy_line.dcm": (EXPLICIT, True),
    "US1_J2KI.dcm": (EXPLICIT, True),
    "JPEG2000.dcm": (EXPLICIT, True),
}


def _quarter(ds: Dataset) -> Rect:
    """A rectangle well inside any frame."""
    rows, columns = int(ds.Rows), int(ds.Columns)
    return Rect(columns // 4, rows // 4, columns // 2 + 1, rows // 2 + 1)


def _expected_fill(ds: Dataset, frame: np.ndarray, rect: Rect) -> int | tuple[int, ...] | None:
    """The constant the mask must show for simple cases (None: checked elsewhere): the flat field around
    the rectangle where there is one, else a monochrome frame's own darkest value (air in CT, not the
    type's minimum), black for RGB."""
    field = field_fill(frame, rect)
    if isinstance(field, np.ndarray):
        return field[:, None] if frame.ndim == 3 else field  # one value per row (rows x samples)
    if field is not None:
        return field if frame.ndim == 3 else field[0]
    photometric = ds.PhotometricInterpretation
    if photometric == "MONOCHROME2":
        return int(frame.min())
    if photometric == "RGB":
        return 0
    return None


# ------------------------------------------------------------------------------------- every TS: masked
@pytest.mark.parametrize("name", sorted(MASK_CASES))
def test_mask_round_trip_is_exact_and_valid(name: str, tmp_path) -> None:
    """Masked rectangle is constant, every other pixel equals the decoded input, dciodvfy adds no error."""
    expected_ts, lossy = MASK_CASES[name]
    path = sample_file(name)
    source = read(path)
    before = decoded_frames(source)
    rect = _quarter(source)
    target = make_target(source)

    report = rewrite_pixels(source, target, lambda index, frame: [rect])

    assert isinstance(report, PixelReport)
    assert report.pixels_changed and report.rects_masked == len(before) == report.frames
    assert report.transfer_syntax_in == str(source.file_meta.TransferSyntaxUID)
    assert report.transfer_syntax_out == expected_ts == str(target.file_meta.TransferSyntaxUID)
    out_path = write(target, tmp_path / "out.dcm")
    back = read(out_path)
    after = decoded_frames(back)
    assert len(after) == len(before)
    for old, new in zip(before, after, strict=True):
        assert new.shape == old.shape
        block = new[rect.y0 : rect.y1, rect.x0 : rect.x1]
        assert is_banded(block)  # one constant, or one per row across a band's edge (mask.band_field)
        fill = _expected_fill(back, old, rect)
        if fill is not None:
            assert np.all(block == fill)
        assert np.array_equal(outside(new, *rect.to_list()), outside(old, *rect.to_list()))
    if source.SamplesPerPixel == 3:
        expected_pi = "YBR_RCT" if expected_ts == J2KR else "RGB"
        assert back.PhotometricInterpretation == expected_pi and back.PlanarConfiguration == 0
    if lossy:
        assert back.LossyImageCompression == "01" and "LossyImageCompressionMethod" in back
    assert back.HighBit == back.BitsStored - 1
    assert dciodvfy_errors(out_path) <= _baseline_errors(path, tmp_path)


def _baseline_errors(path, tmp_path) -> set[str]:
    """dciodvfy errors of the input; for inputs dciodvfy cannot read (deflate), of an untouched copy."""
    errors = dciodvfy_errors(path)
    if not any("read failed" in error for error in errors):
        return errors
    source = read(path)
    copy_pixels_untouched(source, target := make_target(source))
    return dciodvfy_errors(write(target, tmp_path / "baseline.dcm"))


# ------------------------------------------------------------------------------------ every TS: no mask
@pytest.mark.parametrize("name", sorted(MASK_CASES))
def test_no_rectangle_keeps_pixel_data_byte_identical(name: str, tmp_path) -> None:
    """Nothing to hide: the PixelData value is the original one (big endian is only byte-swapped)."""
    path = sample_file(name)
    source = read(path)
    ts_in = source.file_meta.TransferSyntaxUID
    target = make_target(source)
    del target.PixelData

    report = rewrite_pixels(source, target, lambda index, frame: [])

    assert not report.pixels_changed and report.rects_masked == 0
    big_endian = ts_in == ExplicitVRBigEndian
    expected_ts = ExplicitVRLittleEndian if ts_in in (ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian) else ts_in
    assert target.file_meta.TransferSyntaxUID == expected_ts
    if not big_endian:
        assert target.PixelData == source.PixelData
    out_path = write(target, tmp_path / "out.dcm")
    back = read(out_path)
    for old, new in zip(decoded_frames(source), decoded_frames(back), strict=True):
        assert np.array_equal(old, new)
    if big_endian and source.BitsAllocated == 8:
        assert target.PixelData == source.PixelData
    assert dciodvfy_errors(out_path) <= _baseline_errors(path, tmp_path)


def test_copy_untouched_restores_removed_image_attributes() -> None:
    """The recipe may drop group 0028 attributes; the copy puts back the ones describing the pixels."""
    source = read(sample_file("SC_rgb_rle_2frame.dcm"))
    target = make_target(source)
    for keyword in ("PixelData", "Rows", "Columns", "BitsStored", "HighBit", "PlanarConfiguration", "NumberOfFrames"):
        delattr(target, keyword)
    report = copy_pixels_untouched(source, target)
    assert report == PixelReport(2, False, 0, RLE, RLE)
    assert target.PixelData == source.PixelData and target["PixelData"].is_undefined_length
    for keyword in ("Rows", "Columns", "BitsStored", "HighBit", "PlanarConfiguration", "NumberOfFrames"):
        assert target[keyword].value == source[keyword].value


def test_deflated_copy_keeps_pixel_bytes(tmp_path) -> None:
    source = read(sample_file("image_dfl.dcm"))
    target = make_target(source)
    report = copy_pixels_untouched(source, target)
    assert report.transfer_syntax_out == EXPLICIT and target.PixelData == source.PixelData
    assert read(write(target, tmp_path / "out.dcm")).file_meta.TransferSyntaxUID == ExplicitVRLittleEndian


# ------------------------------------------------------------------------------------------ multi-frame
@pytest.mark.parametrize(
    ("name", "frame"),
    [("emri_small.dcm", 6), ("SC_rgb_rle_2frame.dcm", 1), ("examples_ybr_color.dcm", 7),
     ("emri_small_jpeg_2k_lossless.dcm", 9), ("OBXXXX1A_rle_2frame.dcm", 0)],
)
def test_rectangle_on_one_frame_changes_only_that_frame(name: str, frame: int, tmp_path) -> None:
    """Frames before the first rectangle are replayed unmasked; only frame `frame` differs."""
    source = read(sample_file(name))
    before = decoded_frames(source)
    rect = Rect(0, 0, 8, 8)
    report = rewrite_pixels(source, target := make_target(source), lambda i, f: [rect] if i == frame else [])
    assert report.rects_masked == 1 and report.pixels_changed
    after = decoded_frames(read(write(target, tmp_path / "out.dcm")))
    for index, (old, new) in enumerate(zip(before, after, strict=True)):
        if index == frame:
            assert not np.array_equal(old, new) or is_constant(old[:8, :8])
            assert is_constant(new[:8, :8])
            assert np.array_equal(outside(new, 0, 0, 8, 8), outside(old, 0, 0, 8, 8))
        else:
            assert np.array_equal(old, new), f"frame {index} changed"


def test_all_frames_plan_changes_every_frame(tmp_path) -> None:
    source = read(sample_file("emri_small.dcm"))
    rect = Rect(10, 10, 30, 30)
    before = decoded_frames(source)
    report = rewrite_pixels(source, target := make_target(source), lambda i, f: [rect])
    assert report.rects_masked == 10
    for old, new in zip(before, decoded_frames(read(write(target, tmp_path / "out.dcm"))), strict=True):
        assert np.all(new[10:30, 10:30] == old.min())  # each frame's own background


def test_callback_sees_every_frame_in_order_as_read_only_rgb() -> None:
    """OCR gets RGB for YBR JPEG sources, frame indices 0..n-1, and cannot scribble on the frame."""
    source = read(sample_file("examples_ybr_color.dcm"))
    seen: list[int] = []

    def rects(index: int, frame: np.ndarray) -> list[Rect]:
        seen.append(index)
        assert frame.shape == (240, 320, 3) and not frame.flags.writeable
        return []

    rewrite_pixels(source, make_target(source), rects)
    assert seen == list(range(30))


def test_rectangles_are_clipped_and_empty_ones_ignored() -> None:
    source = read(sample_file("CT_small.dcm"))
    target = make_target(source)
    lowest = decoded_frames(source)[0].min()
    report = rewrite_pixels(source, target, lambda i, f: [Rect(-50, -50, 5, 5), Rect(500, 500, 900, 900)])
    assert report.rects_masked == 1
    assert np.all(decoded_frames(target)[0][:5, :5] == lowest)


# -------------------------------------------------------------------------------------- fill constants
def test_fill_values_render_black() -> None:
    assert fill_value("MONOCHROME2", 12, 0) == (0,)
    assert fill_value("MONOCHROME2", 16, 1) == (-32768,)
    assert fill_value("MONOCHROME1", 12, 0) == (4095,)
    assert fill_value("MONOCHROME1", 8, 1) == (127,)
    assert fill_value("RGB", 8, 0) == (0, 0, 0)
    assert fill_value("YBR_FULL", 8, 0) == (0, 128, 128)


def _palette_dataset(frame: np.ndarray) -> Dataset:
    """An 8-bit PALETTE COLOR image whose darkest colour is at index 5 (index 0 is white)."""
    ds = _image_dataset(frame, "PALETTE COLOR")
    red = np.full(256, 200, dtype="<u2") * 256
    green, blue = red.copy(), red.copy()
    red[0] = green[0] = blue[0] = 65535
    red[5] = green[5] = blue[5] = 0
    for colour, lut in (("Red", red), ("Green", green), ("Blue", blue)):
        ds.add_new(f"{colour}PaletteColorLookupTableDescriptor", "US", [256, 0, 16])
        ds.add_new(f"{colour}PaletteColorLookupTableData", "OW", lut.tobytes())
    return ds


def _image_dataset(frame: np.ndarray, photometric: str, frames: int = 1) -> Dataset:
    """A minimal Secondary Capture dataset around `frame` (uint8/uint16, 1 sample)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "OT"
    ds.Rows, ds.Columns = frame.shape[-2:]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = ds.BitsStored = frame.dtype.itemsize * 8
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    ds.PixelData = np.ascontiguousarray(frame).tobytes()
    return ds


def test_palette_fill_is_darkest_palette_entry() -> None:
    frame = (9 + np.indices((16, 16)).sum(axis=0) % 3).astype(np.uint8)  # no flat field: the palette's darkest
    ds = _palette_dataset(frame)
    assert darkest_palette_index(ds) == 5
    target = make_target(ds)
    rewrite_pixels(ds, target, lambda i, f: [Rect(0, 0, 4, 4)])
    out = decoded_frames(target)[0]
    assert np.all(out[:4, :4] == 5) and np.array_equal(out[4:, :], frame[4:, :])
    assert target.RedPaletteColorLookupTableData == ds.RedPaletteColorLookupTableData


def test_monochrome1_fill_is_the_frames_maximum() -> None:
    """MONOCHROME1 renders its highest value black: the mask takes the frame's own maximum."""
    frame = (100 + np.indices((8, 8)).sum(axis=0) % 3).astype(np.uint16)  # textured: no field to take
    frame[7, 7] = 3000
    ds = _image_dataset(frame, "MONOCHROME1")
    ds.BitsStored, ds.HighBit = 12, 11
    rewrite_pixels(ds, target := make_target(ds), lambda i, f: [Rect(0, 0, 2, 2)])
    assert np.all(decoded_frames(target)[0][:2, :2] == 3000)


def test_monochrome2_fill_is_the_frames_background_not_the_type_minimum() -> None:
    """A signed CT frame masks with its air (-1024), not -32768 (which breaks windowing and statistics)."""
    frame = (40 + np.indices((8, 8)).sum(axis=0) % 3).astype(np.int16)  # tissue-like: no flat field
    frame[6:, :] = -1024
    ds = _image_dataset(frame, "MONOCHROME2")
    ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 15, 1
    ds.PixelData = frame.tobytes()
    rewrite_pixels(ds, target := make_target(ds), lambda i, f: [Rect(0, 0, 2, 2)])
    out = decoded_frames(target)[0]
    assert np.all(out[:2, :2] == -1024) and np.array_equal(out[2:6, :], frame[2:6, :])


def test_mask_on_a_flat_field_takes_the_fields_value() -> None:
    """Print on a grey plate: the mask takes the plate's value, so the field around the glyphs is unchanged
    and the glyphs are gone (not a black block that was never in the image)."""
    frame = np.full((40, 60), 120, dtype=np.uint8)
    frame[:, 45:] = 0  # a dark strip beside the plate
    frame[10:20, 10:30] = 255  # the print
    ds = _image_dataset(frame, "MONOCHROME2")
    rewrite_pixels(ds, target := make_target(ds), lambda i, f: [Rect(6, 6, 34, 24)])
    out = decoded_frames(target)[0]
    expected = frame.copy()
    expected[10:20, 10:30] = 120
    assert np.array_equal(out, expected)


def test_mask_on_a_lossy_colour_field_takes_the_fields_median() -> None:
    """A JPEG grey header band (values within a few levels, none holding most of the border): the mask takes
    the band's median instead of a black block on the band (deid-data RGB_CINE, color3d's toolbar)."""
    from deidcli.pixels.mask import apply_rects

    rng = np.random.default_rng(9)
    frame = (40 + rng.integers(-2, 3, (40, 60, 3))).astype(np.uint8)
    frame[10:20, 10:30] = 230  # the print
    apply_rects(frame, [Rect(6, 6, 34, 24)], (0, 0, 0))
    assert np.all(frame[6:24, 6:34] == 40)
    textured = rng.integers(0, 255, (40, 60, 3)).astype(np.uint8)
    apply_rects(textured, [Rect(6, 6, 34, 24)], (0, 0, 0))
    assert np.all(textured[6:24, 6:34] == 0)  # no field: the frame's fill


def test_mask_on_a_graded_plate_takes_the_plates_rows() -> None:
    """A toolbar button shaded over 30 levels from top to bottom (color3d_jpeg_baseline): no constant matches it,
    so each row of the mask takes its own row's value from the mask's sides; the glyphs are gone."""
    from deidcli.pixels.mask import apply_rects

    rng = np.random.default_rng(11)
    shade = np.linspace(30, 60, 40).astype(int)[:, None, None]
    frame = np.clip(shade + rng.integers(-1, 2, (40, 60, 3)), 0, 255).astype(np.uint8)
    plate = frame.copy()
    frame[14:24, 12:30] = 140  # the print
    apply_rects(frame, [Rect(8, 10, 34, 28)], (0, 0, 0))
    assert np.abs(frame[10:28, 8:34].astype(int) - plate[10:28, 8:34]).max() <= 3
    assert (frame[14:24, 12:30] < 80).all()


def test_mask_whose_side_crosses_print_is_not_filled_from_it() -> None:
    """A glyph crossing a side of the mask would give its rows the glyph's own value (the print's rows kept):
    such a mask takes no graded fill."""
    from deidcli.pixels.mask import graded_fill

    frame = np.full((40, 60, 3), 40, np.uint8)
    frame[14:24, 6:30] = 200  # print running out of the mask's left side
    assert graded_fill(frame, Rect(8, 10, 34, 28)) is None


def test_mask_on_mixed_surroundings_takes_the_frames_fill() -> None:
    """A rectangle whose ring is half plate, half dark strip has no field: the frame's darkest value fills it."""
    frame = np.full((40, 60), 120, dtype=np.uint8)
    frame[:, 30:] = 80
    frame[39, 0] = 3  # the frame's darkest value
    frame[10:20, 20:40] = 255
    ds = _image_dataset(frame, "MONOCHROME2")
    rewrite_pixels(ds, target := make_target(ds), lambda i, f: [Rect(16, 6, 44, 24)])
    out = decoded_frames(target)[0]
    assert np.all(out[6:24, 16:44] == 3) and np.array_equal(out[:6], frame[:6])


# -------------------------------------------------------------------------------- lossless fallbacks
def test_encoder_that_does_not_round_trip_falls_back_to_uncompressed(monkeypatch) -> None:
    """A lossless encoder whose output decodes differently must never be used."""
    real_get_encoder = rewrite_module.get_encoder

    class Corrupting:
        def __init__(self, uid: UID) -> None:
            self._real = real_get_encoder(uid)
            self.is_available = True

        def encode(self, *args, **kwargs) -> bytes:
            data = bytearray(self._real.encode(*args, **kwargs))
            data[-10] ^= 0x55
            return bytes(data)

    monkeypatch.setattr(rewrite_module, "get_encoder", Corrupting)
    source = read(sample_file("MR_small_RLE.dcm"))
    before = decoded_frames(source)[0]
    report = rewrite_pixels(source, target := make_target(source), lambda i, f: [Rect(0, 0, 4, 4)])
    assert report.transfer_syntax_out == EXPLICIT
    after = decoded_frames(target)[0]
    assert np.array_equal(outside(after, 0, 0, 4, 4), outside(before, 0, 0, 4, 4))


# ------------------------------------------------------------------------------------ broken pixel data
def _rewrite_reason(ds: Dataset) -> str:
    with pytest.raises(PixelError) as caught:
        rewrite_pixels(ds, make_target(ds), lambda i, f: [Rect(0, 0, 4, 4)])
    assert caught.value.reason in REASONS
    return caught.value.reason


def test_truncated_file_is_pixel_truncated(tmp_path) -> None:
    raw = sample_file("CT_small.dcm").read_bytes()
    (cut := tmp_path / "cut.dcm").write_bytes(raw[:-1000])
    assert _rewrite_reason(read(cut)) == "pixel_truncated"


def test_odd_length_short_pixel_data_is_pixel_truncated() -> None:
    ds = read(sample_file("CT_small.dcm"))
    ds.PixelData = ds.PixelData[:-101]
    assert len(ds.PixelData) % 2 == 1
    assert _rewrite_reason(ds) == "pixel_truncated"
    with pytest.raises(PixelError, match="pixel_truncated"):
        copy_pixels_untouched(ds, make_target(ds))


def test_pydicom_too_short_j2k_file_is_rejected() -> None:
    """pydicom drops the whole dataset of this truncated file: no pixel module is left to clean."""
    ds = read(sample_file("emri_small_jpeg_2k_lossless_too_short.dcm"))
    assert _rewrite_reason(ds) in ("no_pixel_module", "pixel_truncated")


@pytest.mark.parametrize("name", ["SC_rgb_jpeg_dcmtk.dcm", "JPGExtended.dcm", "US1_J2KR.dcm"])
def test_jpeg_stream_cut_short_is_pixel_truncated(name: str) -> None:
    """libjpeg decodes a cut JPEG silently; the missing end-of-image marker gives it away."""
    ds = read(sample_file(name))
    fragment = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([fragment[: len(fragment) * 2 // 3]])
    assert _rewrite_reason(ds) == "pixel_truncated"


def _bad_marker_mid_stream(frame: bytes) -> bytes:
    """An SOF marker with a zero length dropped into the middle of the entropy-coded data."""
    middle = len(frame) // 2
    return frame[:middle] + b"\xff\xc0\x00\x00" * 8 + frame[middle + 32 :]


def _junk_after_start(frame: bytes) -> bytes:
    """The codestream's header overwritten just after its first marker."""
    return frame[:2] + b"\x13" * 38 + frame[40:]


@pytest.mark.parametrize(
    ("name", "corrupt"),
    [
        ("SC_rgb_jpeg_dcmtk.dcm", _bad_marker_mid_stream),
        ("JPGExtended.dcm", _bad_marker_mid_stream),
        ("JPGLosslessP14SV1_1s_1f_8b.dcm", _bad_marker_mid_stream),
        ("MR_small_jpeg_ls_lossless.dcm", _bad_marker_mid_stream),
        ("US1_J2KR.dcm", _junk_after_start),
        ("MR_small_RLE.dcm", _junk_after_start),
    ],
)
def test_corrupted_stream_is_pixel_decode_failed(name: str, corrupt) -> None:
    """Corruption the decoder notices must surface as pixel_decode_failed, never as a crash or a result."""
    ds = read(sample_file(name))
    frame = next(generate_frames(ds.PixelData, number_of_frames=1))
    ds.PixelData = encapsulate([corrupt(frame)])
    assert _rewrite_reason(ds) == "pixel_decode_failed"


def test_missing_frame_is_pixel_truncated() -> None:
    ds = read(sample_file("SC_rgb_rle_2frame.dcm"))
    ds.NumberOfFrames = 3
    assert _rewrite_reason(ds) == "pixel_truncated"


def test_no_pixel_data_is_no_pixel_module() -> None:
    ds = read(sample_file("CT_small.dcm"))
    del ds.PixelData
    assert _rewrite_reason(ds) == "no_pixel_module"


# ------------------------------------------------------------------------------------------ the bouncer
def _with_syntax(ds: Dataset, uid: str) -> Dataset:
    ds.file_meta.TransferSyntaxUID = UID(uid)
    return ds


def test_video_transfer_syntax_is_not_cleanable() -> None:
    ds = _with_syntax(_image_dataset(np.zeros((4, 4), np.uint8), "MONOCHROME2"), MPEG4HP41)
    ds.PixelData = encapsulate([b"\x00\x00\x01\xb3" + b"\x00" * 60])
    for call in (check_pixels_cleanable, lambda d: rewrite_pixels(d, make_target(d), lambda i, f: [])):
        with pytest.raises(PixelError) as caught:
            call(ds)
        assert caught.value.reason == "video_not_cleanable"


def test_encapsulated_pdf_is_not_cleanable() -> None:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.104.1"
    ds.MIMETypeOfEncapsulatedDocument = "application/pdf"
    ds.EncapsulatedDocument = b"%PDF-1.4\n%%EOF\n"
    with pytest.raises(PixelError) as caught:
        check_pixels_cleanable(ds)
    assert caught.value.reason == "encapsulated_document"
    del ds.SOPClassUID
    with pytest.raises(PixelError, match="encapsulated_document"):
        check_pixels_cleanable(ds)


def test_unknown_transfer_syntax_is_unsupported() -> None:
    ds = _with_syntax(_image_dataset(np.zeros((4, 4), np.uint8), "MONOCHROME2"), "1.2.3.4.5.6")
    with pytest.raises(PixelError) as caught:
        check_pixels_cleanable(ds)
    assert caught.value.reason == "unsupported_transfer_syntax"


def test_cleanable_files_pass_the_bouncer() -> None:
    for name in ("CT_small.dcm", "US1_J2KR.dcm", "examples_ybr_color.dcm", "MR_small_RLE.dcm"):
        check_pixels_cleanable(read(sample_file(name)))
    check_pixels_cleanable(Dataset())  # no pixels, no TS: nothing to refuse here


def test_frame_count() -> None:
    assert frame_count(read(sample_file("examples_ybr_color.dcm"))) == 30
    assert frame_count(read(sample_file("CT_small.dcm"))) == 1
    ds = Dataset()
    ds.NumberOfFrames = "0"
    assert frame_count(ds) == 1


# ------------------------------------------------------------------------------------------- memory
def test_memory_is_output_plus_one_frame() -> None:
    """A 40-frame 256x256 16-bit cine (5 MiB) must not be expanded into several full copies."""
    frames = 40
    cine = (np.arange(frames * 256 * 256, dtype=np.uint32) % 4096).astype(np.uint16).reshape(frames, 256, 256)
    ds = _image_dataset(cine, "MONOCHROME2", frames=frames)
    ds.BitsStored, ds.HighBit = 12, 11
    size = len(ds.PixelData)
    target = make_target(ds)
    del target.PixelData
    tracemalloc.start()
    try:
        rewrite_pixels(ds, target, lambda i, f: [Rect(0, 0, 10, 10)])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # the output buffer, its bytes() copy at the end, and a few frames; never the 3-4 copies of a naive path
    assert peak < 2.3 * size, f"peak {peak / size:.2f}x the pixel data"


# ------------------------------------------------------------------------------------------- overlays
def _overlay_dataset() -> Dataset:
    ds = _image_dataset(np.zeros((32, 32), np.uint8), "MONOCHROME2")
    bits = np.zeros((16, 16), dtype=np.uint8)
    bits[2:6, 2:12] = 1  # "text" at overlay rows 2-5, columns 2-11

    ds.add_new(0x60000010, "US", 16)
    ds.add_new(0x60000011, "US", 16)
    ds.add_new(0x60000040, "CS", "G")
    ds.add_new(0x60000050, "SS", [9, 5])  # 1-based: overlay (0,0) is image row 8, column 4
    ds.add_new(0x60000100, "US", 1)
    ds.add_new(0x60000102, "US", 0)
    ds.add_new(0x60003000, "OW", pack_bits(bits.reshape(-1)))
    return ds


def test_overlay_images_are_in_image_coordinates() -> None:
    ((group, image),) = overlay_images(_overlay_dataset())
    assert group == 0x6000 and image.shape == (32, 32) and image.dtype == np.uint8
    expected = np.zeros((32, 32), dtype=np.uint8)
    expected[10:14, 6:16] = 255
    assert np.array_equal(image, expected)


def test_mask_overlays_clears_only_inside_rectangles() -> None:
    ds = _overlay_dataset()
    cleared = mask_overlays(ds, [Rect(0, 0, 10, 32)])  # image columns 0-9 = overlay columns 0-5 (4 of them set)
    assert cleared == 4 * 4
    ((_, image),) = overlay_images(ds)
    assert not image[:, :10].any() and image[10:14, 10:16].all()


def test_real_overlay_file_can_be_rendered_and_cleared() -> None:
    ds = read(sample_file("MR-SIEMENS-DICOM-WithOverlays.dcm"))
    images = overlay_images(ds)
    assert images and any(image.any() for _, image in images)
    mask_overlays(ds, [Rect(0, 0, int(ds.Columns), int(ds.Rows))])
    assert not any(image.any() for _, image in overlay_images(ds))


def test_uncompressed_implicit_source_gets_explicit_output(tmp_path) -> None:
    source = read(sample_file("MR_small_implicit.dcm"))
    assert source.file_meta.TransferSyntaxUID == ImplicitVRLittleEndian
    rewrite_pixels(source, target := make_target(source), lambda i, f: [Rect(0, 0, 3, 3)])
    assert read(write(target, tmp_path / "o.dcm")).file_meta.TransferSyntaxUID == ExplicitVRLittleEndian


def test_lossy_j2k_is_never_reencoded_lossily() -> None:
    source = read(sample_file("US1_J2KI.dcm"))
    report = rewrite_pixels(source, target := make_target(source), lambda i, f: [Rect(0, 0, 3, 3)])
    assert report.transfer_syntax_in == str(JPEG2000) and report.transfer_syntax_out == EXPLICIT
    assert target.LossyImageCompression == "01" and target.LossyImageCompressionMethod == "ISO_15444_1"


def test_one_bit_frames_are_masked_and_repacked() -> None:
    bits = (np.arange(3 * 10 * 13) % 3 == 0).astype(np.uint8).reshape(3, 10, 13)
    ds = _image_dataset(np.zeros((10, 13), np.uint8), "MONOCHROME2", frames=3)
    ds.BitsAllocated = ds.BitsStored = 1
    ds.HighBit = 0
    ds.PixelData = pack_bits(bits.reshape(-1))
    report = rewrite_pixels(ds, target := make_target(ds), lambda i, f: [Rect(0, 0, 5, 5)] if i == 1 else [])
    expected = bits.copy()
    expected[1, :5, :5] = 0
    assert report.rects_masked == 1
    assert np.array_equal(np.stack(decoded_frames(target)), expected)


def test_float_pixel_data_is_refused() -> None:
    ds = _image_dataset(np.zeros((4, 4), np.uint8), "MONOCHROME2")
    del ds.PixelData
    ds.BitsAllocated = 32
    ds.FloatPixelData = np.zeros(16, np.float32).tobytes()
    with pytest.raises(PixelError) as caught:
        rewrite_pixels(ds, make_target(ds), lambda i, f: [])
    assert caught.value.reason == "unsupported_pixel_format" and caught.value.reason in REASONS
