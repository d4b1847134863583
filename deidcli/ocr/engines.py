"""Text detectors: one small interface, two CPU engines behind it.

The scanner (deidcli.ocr.scan) owns every decision about scale, views and rotation; an engine
only finds text in the 8-bit picture it is handed and reports boxes in that picture's pixel
coordinates. So each engine is configured to *not* resize on its own (its internal size limit is
set on purpose above anything the scanner sends) and to *not* drop low-confidence results
(fail closed: a box the engine is unsure about must still be masked, never silently discarded).

Models load once, in the constructor; the pipeline builds one detector per worker process, with
that worker's share of the cores as intra-op threads (deidcli.ocr.threads).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np

from deidcli.errors import UsageError
from deidcli.geometry import Rect
from deidcli.ocr.threads import DEFAULT_THREADS

#: Longest side the scanner ever hands an engine; engines' own limits are set to this so they
#: never shrink (losing small text) or enlarge (wasting time) behind the scanner's back.
ENGINE_MAX_SIDE = 2048

def _session_options(threads: int):
    """ONNX Runtime options for every RapidOCR model: `threads` intra-op threads that sleep rather than
    spin when idle (spinning threads burn a shared core for nothing between the many small calls of a
    scan), one inter-op thread, all graph optimisations, and the CPU memory arena on (RapidOCR turns it
    off; measured on the 1024 px detection: ~15 % less CPU with it, allocations are reused)."""
    from onnxruntime import GraphOptimizationLevel, SessionOptions

    options = SessionOptions()
    options.log_severity_level = 4
    options.graph_optimization_level = GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_cpu_mem_arena = True
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


@dataclass(frozen=True)
class DetectedText:
    """One text box found by an engine: where, what it read (PHI!) and how sure it is (0..1)."""

    rect: Rect
    text: str
    confidence: float


@runtime_checkable
class TextDetector(Protocol):
    """Finds text in an 8-bit gray (H, W) or RGB (H, W, 3) image; boxes in that image's pixels.

    Engines may also accept a keyword `read_max_aspect` (see RapidOcrDetector.detect); the
    scanner passes it only to detectors whose `detect` declares it.
    """

    name: str

    def detect(self, image8: np.ndarray) -> list[DetectedText]: ...


def polygon_rect(points: object) -> Rect:
    """The axis-aligned box around an engine's quadrilateral, rounded outwards."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    return Rect(
        int(np.floor(pts[:, 0].min())),
        int(np.floor(pts[:, 1].min())),
        int(np.ceil(pts[:, 0].max())) + 1,
        int(np.ceil(pts[:, 1].max())) + 1,
    )


def _check_image8(image8: np.ndarray) -> None:
    """Engines take uint8 gray or RGB only; anything else is a scanner bug, so say so early."""
    if not isinstance(image8, np.ndarray) or image8.dtype != np.uint8:
        raise TypeError("engine input must be a uint8 numpy array")
    if image8.ndim not in (2, 3) or (image8.ndim == 3 and image8.shape[2] != 3) or image8.size == 0:
        raise ValueError("engine input must be a non-empty (H, W) or (H, W, 3) array")


#: Detectors round sizes to multiples of 32; thinner pictures would round to nothing and be
#: skipped silently (fail open), so they are padded up to this first.
MIN_ENGINE_SIDE = 64


def _pad_small(image8: np.ndarray) -> np.ndarray:
    """Pads bottom/right with black up to MIN_ENGINE_SIDE so coordinates stay unchanged."""
    rows, cols = image8.shape[:2]
    if rows >= MIN_ENGINE_SIDE and cols >= MIN_ENGINE_SIDE:
        return image8
    bottom, right = max(0, MIN_ENGINE_SIDE - rows), max(0, MIN_ENGINE_SIDE - cols)
    return cv2.copyMakeBorder(image8, 0, bottom, 0, right, cv2.BORDER_CONSTANT, value=0)


#: RapidOCR's classes are patched while models load (below): one load at a time, whatever the threads.
_LOADING = threading.RLock()


@contextlib.contextmanager
def _our_session_options(threads: int) -> Iterator[None]:
    """RapidOCR 1.4 builds its session options itself, from a config that cannot say "no spinning" or "arena
    on": its builder is swapped for `_session_options` while models load (one load at a time)."""
    from rapidocr_onnxruntime.utils.infer_engine import OrtInferSession

    with _LOADING:
        builder = OrtInferSession.__dict__["_init_sess_opts"]
        OrtInferSession._init_sess_opts = staticmethod(lambda _config: _session_options(threads))
        try:
            yield
        finally:
            OrtInferSession._init_sess_opts = builder


@contextlib.contextmanager
def _replaced(module: object, attributes: dict[str, object]) -> Iterator[None]:
    """`module`'s attributes replaced for the duration (RapidOCR's constructor names its stage classes)."""
    saved = {name: getattr(module, name) for name in attributes}
    for name, value in attributes.items():
        setattr(module, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(module, name, value)


class _LoadOnFirstUse:
    """A RapidOCR stage (classifier, recogniser) whose ONNX model loads the first time it is called, with
    the same session options as the others. A model that fails to load then raises inside `detect`,
    which the scanner turns into `ocr_failed` (the file is quarantined, never passed unread)."""

    def __init__(self, stage_class: type, config: dict, threads: int) -> None:
        self._stage_class, self._config, self._threads = stage_class, config, threads
        self._stage: object | None = None

    def stage(self) -> Any:
        """The loaded stage (loading it now if needed)."""
        if self._stage is None:
            with _our_session_options(self._threads):
                if self._stage is None:  # another thread may have loaded it meanwhile
                    self._stage = self._stage_class(self._config)
        return self._stage

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.stage()(*args, **kwargs)


def _normalise_through_a_table(text_det: Any) -> None:
    """RapidOCR's detector input, (uint8 - mean) / std per channel, read from a 256-entry table instead.

    Why: RapidOCR computes it in float64 over the whole picture (its mean and std are float64 arrays),
    then transposes and casts to float32: 20 ms of a 256x320 window's ~50, measured, and the scanner
    sends every frame 3-5 windows. The table is made by the same operations on the 256 possible values,
    so the model gets bit-identical input (tests/test_ocr_speed.py compares both)."""
    make_preprocess = text_det.get_preprocess

    def get_preprocess(max_wh: int) -> Any:
        preprocess = make_preprocess(max_wh)
        exact = preprocess.normalize
        table = ((np.arange(256).astype("float32")[:, None] * preprocess.scale - preprocess.mean)
                 / preprocess.std).astype(np.float32)

        def normalise(image: np.ndarray) -> np.ndarray:  # (H, W, C) uint8 -> (C, H, W) float32
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != table.shape[1]:
                return exact(image).transpose((2, 0, 1))
            out = np.empty((image.shape[2], *image.shape[:2]), np.float32)
            for channel in range(image.shape[2]):
                np.take(table[:, channel], image[..., channel], out=out[channel])
            return out

        preprocess.normalize = normalise
        preprocess.permute = lambda planes: planes  # normalise already gives channels first
        return preprocess

    text_det.get_preprocess = get_preprocess


def _deferred(stage_class: type, threads: int) -> Callable[[dict], _LoadOnFirstUse]:
    """What RapidOCR's constructor calls in place of `stage_class(config)`: a stage that loads later."""
    return lambda config: _LoadOnFirstUse(stage_class, config, threads)


class RapidOcrDetector:
    """PP-OCRv4 (DB detector + CRNN recogniser) through ONNX Runtime: small, fast, no torch.

    Configuration, from rapidocr_onnxruntime 1.4.4's own parameters (read in its main.py):
    - `det_limit_side_len` with `det_limit_type="max"` above anything the scanner sends: the
      engine keeps the scanner's resolution (its default "min side 736" upscales every frame).
    - `det_box_thresh` 0.3 (default 0.5) and `det_unclip_ratio` 1.8 (1.6): keep faint text and
      grow boxes a little towards the real glyph extent.
    - `use_cls`: the 0/180-degree classifier, for reading upside-down text in the turned pass.
    - ONNX Runtime: see `_session_options` (threads, no spinning, memory arena on).
    `detect` calls the engine's three stages (`text_det`, `text_cls`, `text_rec`, as
    RapidOCR.__call__ does) so it can skip reading boxes that cannot be authorised words; this
    also means RapidOCR's `text_score` filter (drops results under 0.5: fail open) never applies.
    """

    name = "rapidocr"

    def __init__(self, threads: int = DEFAULT_THREADS, use_cls: bool = True) -> None:
        import rapidocr_onnxruntime.main as rapidocr_main

        # The classifier and the recogniser (0.16 of the engine's 0.25 s of model loading, measured) load
        # on first use: a run that reads no box (US bands, background print, a tiny file) never pays.
        with _our_session_options(threads):  # holds _LOADING: the classes named below are the originals
            stages = {name: _deferred(getattr(rapidocr_main, name), threads)
                      for name in ("TextClassifier", "TextRecognizer")}
            with _replaced(rapidocr_main, stages):
                self._engine = rapidocr_main.RapidOCR(
                    text_score=0.0,
                    use_cls=use_cls,
                    max_side_len=ENGINE_MAX_SIDE * 2,
                    min_side_len=8,
                    det_limit_side_len=ENGINE_MAX_SIDE * 2,
                    det_limit_type="max",
                    det_box_thresh=0.3,
                    det_unclip_ratio=1.8,
                )
        _normalise_through_a_table(self._engine.text_det)
        self.use_cls = use_cls
        self.threads = threads

    def load_all(self) -> None:
        """Load the models that wait for their first use (a readiness check that must see them all)."""
        self._engine.text_cls.stage()
        self._engine.text_rec.stage()

    def detect(self, image8: np.ndarray, read_max_aspect: float | None = None,
               read: Callable[[Rect], bool] | None = None) -> list[DetectedText]:
        """Boxes, texts and recognition scores; RapidOCR wants BGR, so RGB is swapped here.

        `read`, when given, says which boxes to recognise (the scanner reads boxes on anatomy, where
        only text that reads as text is masked; background boxes are masked unread). Recognition
        costs ~0.2 s per long line on one core, far more than detection, so this matters.

        Boxes longer than `read_max_aspect` (width/height, either orientation) are returned
        unread (text "", confidence 0.0): the scanner masks them whatever they say, so reading
        them would only cost time (recognition is ~40 % of a mammogram's scan).
        """
        _check_image8(image8)
        image8 = _pad_small(image8)
        bgr = (
            np.ascontiguousarray(image8[..., ::-1])
            if image8.ndim == 3
            else cv2.cvtColor(image8, cv2.COLOR_GRAY2BGR)
        )
        engine = self._engine
        boxes, _ = engine.text_det(bgr)
        if boxes is None or len(boxes) == 0:
            return []
        boxes = engine.sorted_boxes(boxes)
        to_read = [i for i, b in enumerate(boxes) if _wanted(polygon_rect(b), read_max_aspect, read)]
        texts: dict[int, tuple[str, float]] = {}
        if to_read:
            crops = engine.get_crop_img_list(bgr, [boxes[i] for i in to_read])
            if self.use_cls:
                crops, _, _ = engine.text_cls(crops)
            read, _ = engine.text_rec(crops, False)
            texts = {i: (str(r[0]), float(r[1])) for i, r in zip(to_read, read, strict=True)}
        return [DetectedText(polygon_rect(b), *texts.get(i, ("", 0.0))) for i, b in enumerate(boxes)]


def _wanted(rect: Rect, read_max_aspect: float | None, read: Callable[[Rect], bool] | None) -> bool:
    """Whether a box is to be recognised: short enough for `read_max_aspect` and chosen by `read`."""
    return not too_long(rect, read_max_aspect) and (read is None or read(rect))


def too_long(rect: Rect, read_max_aspect: float | None) -> bool:
    """Whether a box is too elongated to hold any authorised word (so it need not be read)."""
    if read_max_aspect is None:
        return False
    return max(rect.width, rect.height) > read_max_aspect * max(1, min(rect.width, rect.height))


class EasyOcrDetector:
    """CRAFT detector + CRNN recogniser (EasyOCR, torch on CPU), offline models only.

    `canvas_size` is EasyOCR's internal size cap; it is set to ENGINE_MAX_SIDE so the scanner's
    resolution is used as is. `min_size` drops nothing real (default 20 px would drop a single
    8 px character). Importing easyocr/torch happens here, not at deidcli import time, so the tool
    works without the optional extra.
    """

    name = "easyocr"

    def __init__(self, threads: int = DEFAULT_THREADS, model_dir: str | None = None) -> None:
        try:
            import easyocr
            import easyocr_en_models
            import torch
        except ImportError as exc:  # pragma: no cover - depends on the optional extra
            raise UsageError("the easyocr engine needs the extra: pip install 'deidcli[easyocr]'") from exc
        torch.set_num_threads(max(1, threads))
        self._reader = easyocr.Reader(
            ["en"],
            gpu=False,
            model_storage_directory=model_dir or easyocr_en_models.model_dir(),
            download_enabled=False,
            verbose=False,
        )
        self.canvas_size = ENGINE_MAX_SIDE

    def detect(self, image8: np.ndarray, read_max_aspect: float | None = None,
               read: Callable[[Rect], bool] | None = None) -> list[DetectedText]:
        """CRAFT boxes (no engine resizing, no size filter), then recognition of the boxes short
        enough to be an authorised word (longer ones come back unread: text "", confidence 0)."""
        _check_image8(image8)
        image8 = _pad_small(image8)
        reader = self._reader
        grey = image8 if image8.ndim == 2 else cv2.cvtColor(image8, cv2.COLOR_RGB2GRAY)
        colour = image8 if image8.ndim == 3 else cv2.cvtColor(image8, cv2.COLOR_GRAY2RGB)
        horizontal, free = reader.detect(colour, canvas_size=self.canvas_size, mag_ratio=1.0, min_size=4)
        found: list[DetectedText] = []
        read_h, read_f = [], []
        for x0, x1, y0, y1 in horizontal[0]:
            rect = Rect(int(x0), int(y0), int(x1) + 1, int(y1) + 1)
            if not _wanted(rect, read_max_aspect, read):
                found.append(DetectedText(rect, "", 0.0))
            else:
                read_h.append([x0, x1, y0, y1])
        for poly in free[0]:
            rect = polygon_rect(poly)
            if not _wanted(rect, read_max_aspect, read):
                found.append(DetectedText(rect, "", 0.0))
            else:
                read_f.append(poly)
        if read_h or read_f:
            results = reader.recognize(grey, read_h, read_f, detail=1, paragraph=False, reformat=False)
            found += [DetectedText(polygon_rect(box), str(text), float(conf)) for box, text, conf in results]
        return found

    def naive(self, image8: np.ndarray) -> list[DetectedText]:
        """EasyOCR with its defaults at full resolution (as kskit does): the benchmark baseline."""
        results = self._reader.readtext(image8)
        return [DetectedText(polygon_rect(box), str(text), float(conf)) for box, text, conf in results]


ENGINES: dict[str, type] = {"rapidocr": RapidOcrDetector, "easyocr": EasyOcrDetector}


def import_engine(name: str) -> None:
    """Import the scanner and an engine's libraries (OpenCV, ONNX Runtime, RapidOCR) without loading a model.

    A batch's parent calls it before forking its workers, which then share one copy instead of importing
    ~0.27 s of CPU each on their first file. Importing starts no thread (OpenCV and ONNX Runtime make their
    pools with the first parallel call or session), so forking after it is safe. EasyOCR's torch is left to
    the workers: its import is heavier and not needed by a run on the default engine."""
    import deidcli.ocr.scan  # noqa: F401 - the scanner and its geometry (OpenCV)

    if name == "rapidocr":
        import rapidocr_onnxruntime.main  # noqa: F401 - with ONNX Runtime; the models load in each worker


def make_detector(name: str, threads: int | None = None) -> TextDetector:
    """Build (and load the models of) one engine by name; one per worker process (`threads`: intra-op
    threads, None for DEFAULT_THREADS).

    A batch gives `threads` (its worker's share of the cores): OpenCV's own pool, which the scan and the fit
    use for every resize, blur, morphology and labelling, gets the same share. Why: by default each worker's
    OpenCV runs as many threads as the machine has cores, so two workers on two cores ran four; the extra
    threads only waited and woke (measured: labelling a 1500x190 mask cost 30 % more CPU with 2 threads
    than with 1), and the results are the same whatever the count."""
    try:
        engine = ENGINES[name]
    except KeyError:
        raise UsageError(f"unknown OCR engine {name!r}; choose one of {sorted(ENGINES)}") from None
    if threads is not None:
        cv2.setNumThreads(max(1, threads))
    return engine(threads=DEFAULT_THREADS if threads is None else threads)
