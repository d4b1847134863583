"""Burned-in text detection: fail-closed decisions, geometry, and both real engines on
synthetic frames with text at known boxes plus deid-data's real ultrasounds.

The heavy sweep (many seeds, sizes, timing) lives in bench/ocr_bench.py; here a handful of
images per engine keeps this file to a couple of minutes on two cores.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from deidcli.errors import OcrError, UsageError
from deidcli.geometry import Rect
from deidcli.ocr import (
    BUILTIN_MAMMOGRAPHY_WORDS,
    AuthorisedWords,
    DetectedText,
    ScanResult,
    TextScanner,
    load_authorised_words,
    make_detector,
)
from deidcli.ocr.scan import choose_scale, prune_contained, unrotate
from deidcli.ocr.views import display_gray, equalised, gray_views, minmax

sys.path.insert(0, str(Path(__file__).parent))
from ocr_fixtures import Synthetic, authorised_kept, coverage, mammogram, recall, ultrasound  # noqa: E402

HAVE_EASYOCR = (
    importlib.util.find_spec("easyocr") is not None and importlib.util.find_spec("torch") is not None
)
needs_easyocr = pytest.mark.skipif(
    not HAVE_EASYOCR, reason="easyocr extra not installed (pip install 'deidcli[easyocr]')"
)


class FakeDetector:
    """A scripted engine: returns fixed boxes (in the coordinates of the picture it is given)."""

    name = "fake"

    def __init__(
        self, found: list[DetectedText] | None = None, error: Exception | None = None, delay: float = 0.0
    ):
        self.found = found or []
        self.error = error
        self.delay = delay
        self.calls: list[tuple[int, ...]] = []

    def detect(self, image8: np.ndarray) -> list[DetectedText]:
        """The scripted boxes describe the whole frame: later pictures of another shape (the
        scanner's crops for over-large boxes and its residual check) see nothing."""
        import time

        self.calls.append(image8.shape)
        if self.delay:
            time.sleep(self.delay)
        if self.error:
            raise self.error
        return list(self.found) if image8.shape == self.calls[0] else []


def fake_scanner(found: list[DetectedText], **kw) -> TextScanner:
    """A scanner at scale 1 with one view and no rotation, so fake boxes map 1:1 (plus padding)."""
    opts = dict(scan_max_side=2048, small_side=1, gray_view_names=("minmax",), rotations=(0,), pad_ratio=0.0)
    opts.update(kw)
    return TextScanner(FakeDetector(found), BUILTIN_MAMMOGRAPHY_WORDS, **opts)


FRAME = np.zeros((1200, 1100), np.uint16)


# --- authorised words -------------------------------------------------------------------------


def test_authorised_normalises_case_and_whitespace() -> None:
    words = AuthorisedWords(["L CC", "RMLO"], threshold=0.8)
    for text in ("L CC", "LCC", "l cc", " l\tC C ", "R MLO", "rmlo"):
        assert words.spares(text, 0.9), text


def test_authorised_needs_whole_text_and_confidence() -> None:
    words = AuthorisedWords(["L CC"], threshold=0.8)
    assert not words.spares("L CC SMITH", 0.99)
    assert not words.spares("LCC1", 0.99)
    assert not words.spares("LCC", 0.79)
    assert not words.spares("", 0.99)


def test_load_authorised_words_skips_comments(tmp_path: Path) -> None:
    path = tmp_path / "words.txt"
    path.write_text("# header\nL CC  # laterality+view\n\n  XCCL\n#RMLO\n", encoding="utf-8")
    words = load_authorised_words(path)
    assert len(words) == 2
    assert words.spares("LCC", 1.0) and words.spares("xccl", 1.0) and not words.spares("RMLO", 1.0)


def test_builtin_mammography_list() -> None:
    for label in (
        "L CC",
        "R CC",
        "L MLO",
        "R MLO",
        "LCC",
        "RCC",
        "LMLO",
        "RMLO",
        "ML",
        "LM",
        "XCCL",
        "XCCM",
        "CC",
        "MLO",
        "LMO",
        "SIO",
        "AT",
        "FB",
        "L",
        "R",
    ):
        assert BUILTIN_MAMMOGRAPHY_WORDS.spares(label, 0.99), label
    assert not BUILTIN_MAMMOGRAPHY_WORDS.spares("DOE^JANE", 0.99)


# --- geometry and views -----------------------------------------------------------------------


@pytest.mark.parametrize("turns", [1, 2, 3])
def test_unrotate_maps_boxes_back(turns: int) -> None:
    rows, cols = 37, 53
    box = Rect(5, 7, 19, 12)
    image = np.zeros((rows, cols), np.uint8)
    image[box.y0 : box.y1, box.x0 : box.x1] = 1
    turned = np.rot90(image, turns)
    ys, xs = np.nonzero(turned)
    found = Rect(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    assert unrotate(found, turns, rows, cols) == box


def test_choose_scale_shrinks_big_frames_and_enlarges_small_ones_up_to_small_side() -> None:
    assert choose_scale(3328, 2560, 1024, 1024, 2.0) == pytest.approx(1024 / 3328)
    assert choose_scale(600, 800, 1024, 1024, 2.0) == pytest.approx(1024 / 800)
    assert choose_scale(128, 128, 1024, 512, 4.0) == 4.0  # 6-7 px glyphs become 24-28 px
    assert choose_scale(1024, 1000, 1024, 1024, 2.0) == 1.0


def test_prune_contained() -> None:
    big, small, other = Rect(0, 0, 10, 10), Rect(2, 2, 5, 5), Rect(8, 8, 20, 20)
    assert sorted(prune_contained([small, big, other, big])) == sorted([big, other])


def test_views_show_text_at_any_gray_level() -> None:
    """Dim text far below a tissue window and MONOCHROME1 inversion both end up visible."""
    frame = np.full((64, 64), 100, np.uint16)
    frame[:, 32:] = 9000  # "tissue"
    frame[10:20, 5:25] = 900  # dim text on air: ~20 gray levels in minmax
    frame[0, 0] = 16383
    views = dict(gray_views(display_gray(frame, "MONOCHROME2"), ("minmax", "log", "equalised")))
    air, text = views["log"][30, 10], views["log"][15, 10]
    assert int(text) - int(air) > 40
    assert int(views["minmax"][15, 10]) - int(views["minmax"][30, 10]) < 15  # why log is the default
    inverted = display_gray(16383 - frame, "MONOCHROME1")
    assert np.array_equal(minmax(inverted), minmax(display_gray(frame, "MONOCHROME2")))
    assert equalised(np.zeros((4, 4), np.float32)).max() == 0


# --- fail closed (scripted engine) ------------------------------------------------------------


def test_engine_error_is_ocr_failed_without_text() -> None:
    scanner = TextScanner(FakeDetector(error=ValueError("DOE^JANE")), None)
    with pytest.raises(OcrError) as info:
        scanner.scan(FRAME, "MONOCHROME2", 12)
    assert info.value.reason == "ocr_failed"
    assert "DOE" not in str(info.value) and "DOE" not in info.value.detail


def test_low_confidence_box_is_masked() -> None:
    box = Rect(100, 100, 300, 140)
    result = fake_scanner(
        [DetectedText(box, "?", 0.05), DetectedText(Rect(500, 500, 560, 540), "LCC", 0.3)]
    ).scan(FRAME, "MONOCHROME2", 12)
    assert coverage(box, result.masked, *FRAME.shape) == 1.0
    assert len(result.masked) == 2 and not result.spared  # a low-confidence label is masked too
    assert result.lowest_confidence == pytest.approx(0.05)


def test_authorised_label_spared_but_not_with_extra_text() -> None:
    label, mixed = Rect(100, 100, 200, 140), Rect(100, 600, 400, 640)
    result = fake_scanner([DetectedText(label, "L CC", 0.97), DetectedText(mixed, "L CC DOE", 0.99)]).scan(
        FRAME, "MONOCHROME2", 12
    )
    assert [t for _, t in result.spared] == ["L CC"]
    assert coverage(label, result.masked, *FRAME.shape) == 0.0
    assert coverage(mixed, result.masked, *FRAME.shape) == 1.0
    assert result.recognised_masked_text == ["L CC DOE"]


def test_no_authorised_list_masks_everything() -> None:
    scanner = TextScanner(
        FakeDetector([DetectedText(Rect(10, 10, 50, 30), "LCC", 0.99)]),
        None,
        gray_view_names=("minmax",),
        rotations=(0,),
    )
    assert len(scanner.scan(FRAME, "MONOCHROME2", 12).masked) == 1


def test_masks_are_padded_and_mapped_to_full_resolution() -> None:
    """A box found on the downscaled view covers the same place at full size, widened."""
    scanner = TextScanner(
        FakeDetector([DetectedText(Rect(100, 100, 200, 120), "X", 0.99)]),
        None,
        scan_max_side=1000,
        gray_view_names=("minmax",),
        rotations=(0,),
        pad_ratio=0.35,
    )
    frame = np.zeros((4000, 3000), np.uint16)
    (rect,) = scanner.scan(frame, "MONOCHROME2", 14).masked
    assert rect.x0 < 400 and rect.y0 < 400 and rect.x1 > 800 and rect.y1 > 480


@pytest.mark.parametrize(
    "frame",
    [
        None,
        np.zeros((0, 10), np.uint16),
        np.zeros((10, 10, 4), np.uint8),
        np.zeros((2, 10, 10), np.uint8).reshape(2, 10, 10, 1),
        np.zeros((10, 10), np.complex64),
        np.array([[1.0, np.nan]], np.float32),
        np.array([["a"]], object),
    ],
)
def test_bad_frame_is_ocr_bad_input(frame: object) -> None:
    with pytest.raises(OcrError) as info:
        TextScanner(FakeDetector(), None).scan(frame, "MONOCHROME2", 8)  # type: ignore[arg-type]
    assert info.value.reason == "ocr_bad_input"


@pytest.mark.parametrize("dtype", [np.int16, np.int32, np.float32, np.uint8])
def test_signed_and_float_frames_are_scanned(dtype: type) -> None:
    """Any numeric stored type reaches the engine as uint8 pictures, enlarged to 512 (small frame).
    An 8-bit frame's print stands out from the tissue's texture on the display view, so only a window
    around it is detected. A wider frame also gets the local-contrast pass, which looks only around
    what stands out there: the faint print."""
    import cv2

    frame = (np.arange(300 * 400).reshape(300, 400) % 7 - (100 if dtype != np.uint8 else 0)).astype(dtype)
    frame[50:250, 100:300] += 100  # "tissue"
    ink = np.zeros((300, 400), np.uint8)
    cv2.putText(ink, "DOE 1962", (120, 160), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 1, 1)
    frame[ink > 0] += 40  # faint print over the tissue
    pictures: list[np.ndarray] = []

    class Recording(FakeDetector):
        def detect(self, image8: np.ndarray) -> list[DetectedText]:
            pictures.append(image8)
            return super().detect(image8)

    bits = 8 if dtype == np.uint8 else 16
    TextScanner(Recording(), None).scan(frame, "MONOCHROME2", bits, signed=True)  # chrome pass included
    assert pictures and all(p.dtype == np.uint8 for p in pictures)
    detector = Recording()
    TextScanner(detector, None, chrome_scale=0).scan(frame, "MONOCHROME2", bits, signed=True)
    rows, cols = detector.calls[-1] if dtype == np.uint8 else detector.calls[1]
    assert rows * cols < 384 * 512 / 2  # a window around the print, not the frame
    if dtype == np.uint8:
        assert len(detector.calls) == 1
    else:  # the display view (whole: the pattern is textured on both sides), then the contrast window; integer
        # frames then get the band pass's pictures of the print's line (scan._band_print: a 256 px window, 1x and 2x)
        assert detector.calls[:2] == [(384, 512), (rows, cols)]
        assert all(call in ((256, 256), (512, 512)) for call in detector.calls[2:])
        assert len(detector.calls) == (2 if dtype == np.float32 else 4)


def test_thin_frame_still_reaches_the_detector(rapid: TextScanner) -> None:
    """A 20-row strip with text: engines round sizes to 32, which must not drop it unscanned."""
    import cv2

    strip = np.zeros((20, 400), np.uint8)
    cv2.putText(strip, "DOE JANE 1962", (5, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 255, 1, cv2.LINE_AA)
    result = rapid.scan(strip, "MONOCHROME2", 8)
    assert coverage(Rect(5, 4, 120, 17), result.masked, 20, 400) >= 0.95


def test_time_over_budget_is_ocr_timeout() -> None:
    scanner = TextScanner(FakeDetector(delay=0.05), None, timeout_s=0.01)
    with pytest.raises(OcrError) as info:
        scanner.scan(FRAME, "MONOCHROME2", 12)
    assert info.value.reason == "ocr_timeout"


def test_unknown_engine() -> None:
    with pytest.raises(UsageError):
        make_detector("tesseract")


def test_importing_deidcli_ocr_does_not_import_torch() -> None:
    code = "import sys, deidcli.ocr; print('torch' in sys.modules or 'easyocr' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --- real engines on synthetic frames ---------------------------------------------------------


@pytest.fixture(scope="module")
def rapid() -> TextScanner:
    return TextScanner(make_detector("rapidocr"), BUILTIN_MAMMOGRAPHY_WORDS)


@pytest.fixture(scope="module")
def easy() -> TextScanner:
    if not HAVE_EASYOCR:
        pytest.skip("easyocr extra not installed (pip install 'deidcli[easyocr]')")
    return TextScanner(make_detector("easyocr"), BUILTIN_MAMMOGRAPHY_WORDS)


def assert_hidden(scanner: TextScanner, image: Synthetic) -> ScanResult:
    """Every PHI box >= 95% inside the masks; every authorised label left visible."""
    result = scanner.scan(image.pixels, image.photometric, image.bits_stored)
    rows, cols = image.pixels.shape[:2]
    missed = [
        (p.text, p.gray, p.rotation, round(coverage(p.rect, result.masked, rows, cols), 2))
        for p in image.planted
        if not p.authorised and coverage(p.rect, result.masked, rows, cols) < 0.95
    ]
    assert not missed, f"{image.kind}: text not hidden: {missed}"
    kept, labels = authorised_kept(image, result.masked)
    assert kept == labels, f"{image.kind}: authorised label masked; spared={[t for _, t in result.spared]}"
    hidden, total = recall(image, result.masked)
    assert hidden == total >= 4
    return result


MAMMOS = [
    pytest.param(dict(rows=3328, cols=2560, photometric="MONOCHROME1", seed=0), id="3328x2560-M1"),
    pytest.param(dict(rows=4096, cols=3328, photometric="MONOCHROME2", seed=1), id="4096x3328-M2"),
]
ULTRASOUNDS = [
    pytest.param(dict(seed=0, text_height=8, color=False), id="8px-gray"),
    pytest.param(dict(seed=1, text_height=13, color=True), id="13px-rgb"),
]


@pytest.mark.parametrize("spec", MAMMOS)
def test_rapidocr_mammogram(rapid: TextScanner, spec: dict) -> None:
    assert_hidden(rapid, mammogram(**spec))


@pytest.mark.parametrize("spec", ULTRASOUNDS)
def test_rapidocr_ultrasound(rapid: TextScanner, spec: dict) -> None:
    assert_hidden(rapid, ultrasound(**spec))


@pytest.mark.easyocr
@needs_easyocr
def test_easyocr_mammogram(easy: TextScanner) -> None:
    assert_hidden(easy, mammogram(rows=3328, cols=2560, photometric="MONOCHROME2", seed=3))


@pytest.mark.easyocr
@needs_easyocr
def test_easyocr_ultrasound(easy: TextScanner) -> None:
    """One frame only: CRAFT takes seconds per 800x600 pass on one CPU thread."""
    assert_hidden(easy, ultrasound(seed=0, text_height=8, color=False))


# --- real files -------------------------------------------------------------------------------


def deid_data_frame(name: str) -> tuple[np.ndarray, str, int]:
    deid_data = pytest.importorskip("deid_data")
    import pydicom

    path = Path(deid_data.__file__).parent / "data" / "ultrasounds" / name
    ds = pydicom.dcmread(path)
    frame = ds.pixel_array
    if frame.ndim == 4 or (frame.ndim == 3 and ds.get("SamplesPerPixel", 1) == 1):
        frame = frame[0]
    photometric = "RGB" if frame.ndim == 3 else str(ds.PhotometricInterpretation)
    if frame.ndim == 3 and str(ds.PhotometricInterpretation).startswith("YBR"):
        from pydicom.pixels import convert_color_space

        frame = convert_color_space(frame, str(ds.PhotometricInterpretation), "RGB")
    return frame, photometric, int(ds.BitsStored)


@pytest.mark.parametrize("name", ["GREYSCALE_IMAGE.dcm", "RGB_IMAGE.dcm"])
def test_real_ultrasound_text_is_masked_and_rescan_is_clean(rapid: TextScanner, name: str) -> None:
    frame, photometric, bits = deid_data_frame(name)
    first = rapid.scan(frame, photometric, bits)
    assert len(first.masked) >= 2, "burned-in names not found"
    cleaned = frame.copy()
    for r in first.masked:
        cleaned[r.y0 : r.y1, r.x0 : r.x1] = 0
    again = rapid.scan(cleaned, photometric, bits)
    assert not again.masked, f"{len(again.masked)} text boxes left after masking"
