"""Where the scanner spends its detector time: windows around print instead of whole frames, the
engine's threads and session options. The recall side of each is checked on synthetic frames with
planted text; the timing itself lives in bench/ (never in tests)."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from deidcli.geometry import Rect, outside
from deidcli.ocr import BUILTIN_MAMMOGRAPHY_WORDS, TextScanner, make_detector
from deidcli.ocr.layout import anatomy_mask
from deidcli.ocr.scan import (
    ENGINE_GRID,
    MIN_WINDOW,
    fit_engine_grid,
    merge_overlapping,
    stroke_windows,
)
from deidcli.ocr.threads import engine_threads

sys.path.insert(0, str(Path(__file__).parent))
from ocr_fixtures import mammogram, recall  # noqa: E402


def _overlap(a: Rect, b: Rect) -> bool:
    return a.x0 < b.x1 and b.x0 < a.x1 and a.y0 < b.y1 and b.y0 < a.y1


def _contains(outer: Rect, inner: Rect) -> bool:
    return outer.x0 <= inner.x0 and outer.y0 <= inner.y0 and outer.x1 >= inner.x1 and outer.y1 >= inner.y1


def test_flat_picture_has_no_window() -> None:
    assert stroke_windows(np.zeros((600, 800), bool)) == []


def test_print_gets_a_window_holding_the_whole_line_and_little_else() -> None:
    picture = np.zeros((1024, 800), np.uint8)
    cv2.putText(picture, "DOE JOHN 1962-03-04", (40, 60), cv2.FONT_HERSHEY_SIMPLEX, 0.9, 255, 2)
    strokes = cv2.morphologyEx(picture, cv2.MORPH_TOPHAT, np.ones((15, 15), np.uint8)) > 40
    windows = stroke_windows(strokes)
    ys, xs = np.nonzero(picture)
    ink = Rect(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    assert windows and any(_contains(w, ink) for w in windows)
    assert sum(w.area for w in windows) < 0.25 * picture.size
    assert all(w.width % ENGINE_GRID == 0 and w.height % ENGINE_GRID == 0 for w in windows)


def test_strokes_everywhere_give_no_windows_but_the_whole_picture() -> None:
    """Speckle or textured tissue: windows would cover most of the frame, so the caller detects it whole."""
    rng = np.random.default_rng(0)
    assert stroke_windows(rng.random((600, 800)) > 0.9) is None


def test_windows_fit_the_detector_grid_inside_the_picture() -> None:
    for rect in (Rect(0, 0, 10, 10), Rect(790, 590, 800, 600), Rect(100, 200, 433, 250)):
        fitted = fit_engine_grid(rect, 800, 600)
        assert _contains(fitted, rect) and _contains(Rect(0, 0, 800, 600), fitted)
        assert fitted.width % ENGINE_GRID == 0 and fitted.height % ENGINE_GRID == 0
        assert min(fitted.width, fitted.height) >= MIN_WINDOW
    assert fit_engine_grid(Rect(0, 0, 10, 10), 100, 70) == Rect(0, 0, 100, 70)  # smaller than a window


def test_merged_windows_do_not_overlap_and_cover_the_same_ground() -> None:
    rects = [Rect(0, 0, 100, 100), Rect(50, 50, 150, 150), Rect(300, 300, 400, 400), Rect(140, 0, 200, 60)]
    merged = merge_overlapping(rects)
    assert not any(_overlap(a, b) for i, a in enumerate(merged) for b in merged[i + 1 :])
    assert all(any(_contains(m, r) for m in merged) for r in rects)


def test_parts_around_the_anatomy_reach_overlap_into_it_and_no_further() -> None:
    """Strips around the extent reach `overlap` into it and no further; a side touching the edge has none;
    with `full_bands` the top and bottom bands run across the whole width (the chrome pass's toolbar)."""
    extent = Rect(200, 0, 800, 900)
    parts = outside(extent, 800, 1000, overlap=48)
    deep = extent.pad(-48, -48)
    assert parts and not any(_overlap(p, deep) for p in parts)
    assert Rect(0, 0, 248, 1000) in parts  # left strip, full height
    assert all(p.x1 <= 800 and p.y1 <= 1000 for p in parts)
    assert not any(p.y1 <= extent.y0 for p in parts)  # the extent starts at the top: no top band
    assert outside(Rect(10, 10, 60, 60), 800, 600, overlap=48) == [Rect(0, 0, 800, 600)]
    inset = Rect(100, 100, 700, 500)
    assert Rect(148, 452, 652, 600) in outside(inset, 800, 600, overlap=48)
    assert Rect(0, 452, 800, 600) in outside(inset, 800, 600, overlap=48, full_bands=True)


def test_a_long_line_of_large_print_is_background_not_anatomy() -> None:
    """Blurred, a 440x31 px name line passes the area test for anatomy; being thinner than any body it
    stays background, where it is masked unread instead of kept unless it reads as text."""
    view = np.full((1024, 788), 40, np.uint8)
    cv2.ellipse(view, (788, 512), (630, 430), 0, 0, 360, 160, -1)  # a breast against the right edge
    cv2.putText(view, "QXPFK2KYQWLP, QXPGI7QUDZP7", (14, 45), cv2.FONT_HERSHEY_SIMPLEX, 0.95, 255, 3)
    anatomy = anatomy_mask(view)
    assert not anatomy[20:50, 14:400].any()
    assert anatomy[512, 600]


def test_engine_threads_share_the_cores_and_the_environment_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("deidcli.ocr.threads.usable_cores", lambda: 8)
    monkeypatch.delenv("DEID_OCR_THREADS", raising=False)
    assert [engine_threads(w) for w in (1, 2, 3, 8, 16)] == [8, 4, 2, 1, 1]
    monkeypatch.setenv("DEID_OCR_THREADS", "3")
    assert engine_threads(1) == 3


@pytest.mark.parametrize("typo", ["two", "0", "-1", "1.5", ""])
def test_a_bad_thread_count_in_the_environment_is_ignored_not_a_crash_at_import(
        monkeypatch: pytest.MonkeyPatch, typo: str) -> None:
    """It used to be parsed with int() when deidcli.ocr.threads was imported: `DEID_OCR_THREADS=two` broke
    every OCR run with a ValueError, while engine_threads() ignored the same value."""
    import importlib

    import deidcli.ocr.threads as threads

    monkeypatch.setattr("deidcli.ocr.threads.usable_cores", lambda: 4)
    monkeypatch.setenv("DEID_OCR_THREADS", typo)
    try:
        reloaded = importlib.reload(threads)
        assert reloaded.DEFAULT_THREADS == 1
        assert reloaded.told_threads() is None
    finally:
        monkeypatch.delenv("DEID_OCR_THREADS")
        importlib.reload(threads)


def test_rapidocr_sessions_get_the_threads_and_the_memory_arena() -> None:
    detector = make_detector("rapidocr", threads=2)
    detector.load_all()
    engine = detector._engine  # noqa: SLF001 - the options are only visible on the sessions
    for session in (engine.text_det.infer.session, engine.text_rec.stage().session.session,
                    engine.text_cls.stage().infer.session):
        options = session.get_session_options()
        assert options.intra_op_num_threads == 2
        assert options.enable_cpu_mem_arena
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def test_mammogram_print_is_hidden_while_the_breast_is_not_detected_twice() -> None:
    """The display view is detected around the print, the local-contrast view over the breast: together
    the engine sees less than the frame twice over (before: the whole frame, then the breast's extent),
    and every planted line is still masked."""
    image = mammogram(rows=3328, cols=2560, photometric="MONOCHROME2", seed=0)
    detector = make_detector("rapidocr")
    seen: list[tuple[int, ...]] = []
    original = detector.detect

    def detect(image8: np.ndarray, **kwargs: object) -> list:
        seen.append(image8.shape[:2])
        return original(image8, **kwargs)

    detector.detect = detect  # type: ignore[method-assign]
    detector.detect.__wrapped__ = original  # type: ignore[attr-defined] - keeps the `read` signature
    result = TextScanner(detector, BUILTIN_MAMMOGRAPHY_WORDS).scan(image.pixels, image.photometric,
                                                                    image.bits_stored)
    hidden, planted = recall(image, result.masked)
    assert hidden == planted
    frame_area = 1024 * 788
    assert sum(r * c for r, c in seen) < 1.6 * frame_area


def test_rapidocr_loads_the_recogniser_only_when_a_box_is_read() -> None:
    """Background print is masked unread, so a scan that reads nothing never loads the recogniser and the
    classifier (0.16 s of the engine's start-up); the first box to read loads them, and it is read."""
    detector = make_detector("rapidocr", threads=1)
    engine = detector._engine  # noqa: SLF001 - whether a model is loaded is only visible there
    picture = np.zeros((160, 640), np.uint8)
    cv2.putText(picture, "R MLO", (40, 100), cv2.FONT_HERSHEY_SIMPLEX, 2.0, 255, 4)
    unread = detector.detect(picture, read=lambda _rect: False)
    assert unread and all(item.text == "" for item in unread)
    assert engine.text_rec._stage is None and engine.text_cls._stage is None  # noqa: SLF001
    read = detector.detect(picture)
    assert engine.text_rec._stage is not None  # noqa: SLF001
    assert any("MLO" in item.text.replace(" ", "") for item in read)


def test_gray_display_view_made_from_the_display_values_is_the_view_made_from_the_frame() -> None:
    """The scan resizes a gray frame once and makes its display view from those values: the same pictures."""
    from deidcli.ocr.scan import _display_values, choose_scale

    image = mammogram(rows=3328, cols=2560, photometric="MONOCHROME1", seed=1)
    scanner = TextScanner(make_detector("rapidocr"), None)
    scale = choose_scale(3328, 2560, scanner.scan_max_side, scanner.small_side, scanner.small_scale)
    values = _display_values(image.pixels, image.photometric, scale)
    once = scanner.views(image.pixels, image.photometric, scale, image.bits_stored, values)
    twice = scanner.views(image.pixels, image.photometric, scale, image.bits_stored)
    assert [name for name, _ in once] == [name for name, _ in twice]
    assert all(np.array_equal(a, b) for (_, a), (_, b) in zip(once, twice, strict=True))


def _frame_scanner(frames: str | None):
    from deidcli.audit import FileResult, PrivateRecord
    from deidcli.pixels.stage import FrameScanner, PixelStage

    source = pydicom_dataset(frames)
    stage = PixelStage(lambda: None, [], False, "rapidocr")
    scanner = FrameScanner(stage, source, [], True, FileResult(), PrivateRecord("in.dcm", "id", "", "", ""))
    scans: list[int] = []

    def scan(index: int, frame: np.ndarray) -> list[Rect]:
        scans.append(index)
        return []

    scanner._scan = scan  # type: ignore[method-assign]  # noqa: SLF001 - the scan is what is counted
    return scanner, scans


def pydicom_dataset(frames: str | None):
    from pydicom.dataelem import RawDataElement
    from pydicom.dataset import Dataset

    source = Dataset()
    source.Rows, source.Columns = 8, 8
    if frames is not None:  # as read from a file: the value is only parsed when used
        source._dict[0x00280008] = RawDataElement(0x00280008, "IS", len(frames), frames.encode(), 0, False, True)
    return source


def test_repeated_frames_of_a_cine_are_scanned_once_and_a_one_frame_file_is_not_hashed() -> None:
    frame = np.full((8, 8), 7, np.uint16)
    cine, scans = _frame_scanner("3")
    for index in range(3):
        cine(index, frame.copy())
    assert cine.frames_may_repeat and scans == [0]
    single, scans = _frame_scanner(None)
    assert not single.frames_may_repeat
    single(0, frame)
    assert scans == [0] and single.cache == {}
    malformed, _ = _frame_scanner("three")  # a count nobody can read: hashed (and only slower), never skipped
    assert malformed.frames_may_repeat


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16, np.float32])
def test_brightest_channel_is_the_per_pixel_maximum_in_a_new_array(dtype: type) -> None:
    from deidcli.ocr.views import brightest_channel

    rgb = (np.random.default_rng(3).random((37, 53, 3)) * 1000 - 200).astype(dtype)
    brightest = brightest_channel(rgb)
    assert brightest.dtype == rgb.dtype and np.array_equal(brightest, rgb.max(axis=2))
    brightest[:] = 0
    assert rgb.any()  # the input is untouched
    gray = rgb[..., 0]
    assert brightest_channel(gray) is gray


def test_rapidocr_detector_input_from_the_table_is_bit_identical_to_rapidocrs_own() -> None:
    """The detector's input is read from a 256-entry table: the same float32 values RapidOCR computes, so
    the same boxes, whatever the picture."""
    from rapidocr_onnxruntime.ch_ppocr_det.utils import DetPreProcess

    detector = make_detector("rapidocr", threads=1)
    engine = detector._engine.text_det  # noqa: SLF001 - the preprocessing is only reachable there
    rng = np.random.default_rng(5)
    for shape in ((256, 320, 3), (64, 97, 3), (1024, 788, 3)):
        picture = rng.integers(0, 256, shape, dtype=np.uint8)
        ours = engine.get_preprocess(max(shape[:2]))(picture)
        theirs = DetPreProcess(ours_limit(engine, max(shape[:2])), engine.limit_type, engine.mean, engine.std)(picture)
        assert ours.dtype == theirs.dtype == np.float32 and ours.shape == theirs.shape
        assert np.array_equal(ours, theirs)


def ours_limit(engine: object, max_wh: int) -> int:
    return type(engine).get_preprocess(engine, max_wh).limit_side_len  # RapidOCR's own choice of size limit
