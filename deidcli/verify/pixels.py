"""Text detection again on every frame of an output, with another engine or scale than the writer's.

The writer reads frames with RapidOCR at 1024 px on the long side through a log view. Verify reads them
with EasyOCR (another detector, CRAFT, at native resolution up to 1536 px) when it is installed, else with
RapidOCR at another scale (small frames doubled, large ones at 1536 px) through a square-root view, so a
blind spot of one pass is unlikely to be a blind spot of the other. Every box read with at least
`MIN_CONFIDENCE` and two letters or digits is a finding unless its whole text is an authorised word (the
recipe's lists, or a label the writer's audit says it kept); a crop of it goes to the private folder.
Weaker boxes are kept in the findings JSON for the report, not counted as findings.
"""

from __future__ import annotations

import hashlib
import re
import warnings
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from deidcli.verify.findings import Finding

MIN_CONFIDENCE = 0.5
MAX_SIDE = 1536
SMALL_SIDE = 800
CROP_MARGIN = 6


def normalise(text: str) -> str:
    """Upper case, letters and digits only: `L CC` = `LCC` = `l-cc`."""
    return re.sub(r"[^0-9A-Z]", "", text.upper())


def authorised_words(lists: list[str]) -> set[str]:
    """The recipe's built-in word lists (`deidcli/data/authorised-NAME.txt`) or files, read as data."""
    words: set[str] = set()
    for name in lists:
        path = Path(name)
        if not path.is_file():
            candidate = resources.files("deidcli").joinpath("data", f"authorised-{name}.txt")
            if not candidate.is_file():
                continue
            text = candidate.read_text(encoding="utf-8")
        else:
            text = path.read_text(encoding="utf-8")
        for line in text.splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                words.add(normalise(line))
    return words


@dataclass
class Box:
    frame: int
    x0: int
    y0: int
    x1: int
    y1: int
    text: str
    confidence: float
    kind: str = ""  # "finding", "authorised" or "weak"

    def as_dict(self) -> dict:
        return {"frame": self.frame, "rect": [self.x0, self.y0, self.x1, self.y1], "text": self.text,
                "confidence": round(self.confidence, 3), "kind": self.kind}


class Reader:
    """One engine, loaded once per worker; `read(image8_rgb)` -> [(quad, text, confidence)]."""

    def __init__(self, engine: str) -> None:
        self.engine = engine
        if engine == "easyocr":
            import easyocr
            import easyocr_en_models
            import torch

            torch.set_num_threads(1)
            warnings.filterwarnings("ignore", category=UserWarning, module=r"torch(\..*)?$")
            self._reader = easyocr.Reader(["en"], gpu=False, model_storage_directory=easyocr_en_models.model_dir(),
                                          download_enabled=False, verbose=False)
        else:
            from rapidocr_onnxruntime import RapidOCR

            self._reader = RapidOCR(text_score=0.0, det_limit_side_len=MAX_SIDE * 2, det_limit_type="max",
                                    intra_op_num_threads=1, inter_op_num_threads=1)

    def scale_for(self, shape: tuple[int, ...]) -> float:
        longest = max(shape[:2])
        if longest > MAX_SIDE:
            return MAX_SIDE / longest
        if self.engine == "rapidocr" and longest < SMALL_SIDE:
            return 2.0
        return 1.0

    def read(self, image: np.ndarray) -> list[tuple[np.ndarray, str, float]]:
        if self.engine == "easyocr":
            found = self._reader.readtext(image, canvas_size=MAX_SIDE * 2, mag_ratio=1.0, min_size=4)
            return [(np.asarray(quad, dtype=float), str(text), float(conf)) for quad, text, conf in found]
        result, _ = self._reader(np.ascontiguousarray(image[..., ::-1]))
        return [(np.asarray(quad, dtype=float), str(text), float(conf)) for quad, text, conf in result or []]


def default_engine() -> str:
    """EasyOCR when installed (another detector than the writer's default), else RapidOCR."""
    from importlib.util import find_spec

    return "easyocr" if find_spec("easyocr") and find_spec("easyocr_en_models") else "rapidocr"


def view8(frame: np.ndarray, photometric: str) -> np.ndarray:
    """An 8-bit RGB picture: 8-bit data as is, deeper data through a square-root stretch of its range."""
    if frame.dtype == np.uint8:
        image = frame
    else:
        values = frame.astype(np.float64)
        low, high = float(values.min()), float(values.max())
        image = (np.sqrt((values - low) / (high - low)) * 255).astype(np.uint8) if high > low else np.zeros(
            frame.shape, np.uint8)
    if photometric == "MONOCHROME1":
        image = 255 - image
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    return np.ascontiguousarray(image)


def scan_frames(reader: Reader, path: Path, relative: str, allowed: set[str], crops_dir: Path | None,
                needle_finder=None) -> tuple[list[Finding], list[Box]]:
    """Read every frame of one output; findings for text neither masked nor authorised, and every box."""
    import pydicom
    from pydicom.pixels import iter_pixels

    dataset = pydicom.dcmread(path, stop_before_pixels=True, force=True)
    if not any(k in dataset for k in ("Rows",)):
        return [], []
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2"))
    findings: list[Finding] = []
    boxes: list[Box] = []
    seen: dict[bytes, list[Box]] = {}
    for number, frame in enumerate(iter_pixels(path)):
        image = view8(frame, photometric if frame.ndim == 2 else "RGB")
        digest = hashlib.blake2b(image.tobytes(), digest_size=16).digest()
        if digest in seen:
            frame_boxes = [Box(number, b.x0, b.y0, b.x1, b.y1, b.text, b.confidence, b.kind) for b in seen[digest]]
        else:
            frame_boxes = _read_frame(reader, image, number, allowed, needle_finder)
            seen[digest] = frame_boxes
        for index, box in enumerate(frame_boxes):
            if box.kind != "finding":
                continue
            crop = _save_crop(image, box, crops_dir, relative, index) if crops_dir else ""
            findings.append(Finding(relative, "pixels", f"frame {number} box ({box.x0},{box.y0})-({box.x1},{box.y1})",
                                    f"legible text neither masked nor authorised (confidence {box.confidence:.2f})",
                                    box.text, crop))
        boxes += frame_boxes
    return findings, boxes


def _read_frame(reader: Reader, image: np.ndarray, number: int, allowed: set[str], needle_finder) -> list[Box]:
    scale = reader.scale_for(image.shape)
    scaled = image if scale == 1.0 else cv2.resize(
        image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    rows, cols = image.shape[:2]
    boxes = []
    for quad, text, confidence in reader.read(scaled):
        points = quad.reshape(-1, 2) / scale
        x0, y0 = (max(0, int(np.floor(v))) for v in points.min(axis=0))
        x1, y1 = int(np.ceil(points[:, 0].max())), int(np.ceil(points[:, 1].max()))
        box = Box(number, x0, y0, min(cols, x1), min(rows, y1), text, confidence)
        legible = len(normalise(text)) >= 2 and confidence >= MIN_CONFIDENCE
        names_a_value = bool(needle_finder and needle_finder(text))
        if normalise(text) in allowed and not names_a_value:
            box.kind = "authorised"
        elif legible or names_a_value:
            box.kind = "finding"
        else:
            box.kind = "weak"
        boxes.append(box)
    return boxes


def _save_crop(image: np.ndarray, box: Box, crops_dir: Path, relative: str, index: int) -> str:
    rows, cols = image.shape[:2]
    crop = image[max(0, box.y0 - CROP_MARGIN):min(rows, box.y1 + CROP_MARGIN),
                 max(0, box.x0 - CROP_MARGIN):min(cols, box.x1 + CROP_MARGIN)]
    if crop.size == 0:
        return ""
    crops_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    name = f"{Path(relative).stem}-f{box.frame}-{index}.png"
    target = crops_dir / name
    cv2.imwrite(str(target), np.ascontiguousarray(crop[..., ::-1]))
    return str(target)
