"""Burned-in text detection: engines, 8-bit views, the fail-closed scanner, authorised words.

Knows nothing about DICOM datasets: it takes pixel arrays plus a few plain facts
(photometric interpretation, bits stored, signedness). EasyOCR/torch load lazily, only when an
EasyOcrDetector is built, so the tool works without the optional extra.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deidcli._lazy import lazy_exports

# Lazy (PEP 562): `deidcli.ocr.authorised` (word lists, needed by every run's recipe check) must not drag
# OpenCV and the engines into an `--ocr never` run.
_EXPORTS = {
    **dict.fromkeys(["BUILTIN_MAMMOGRAPHY_WORDS", "AuthorisedWords", "builtin_mammography_words",
                     "combined_authorised_words", "load_authorised_words"], "deidcli.ocr.authorised"),
    **dict.fromkeys(["DetectedText", "EasyOcrDetector", "RapidOcrDetector", "TextDetector", "make_detector"],
                    "deidcli.ocr.engines"),
    **dict.fromkeys(["ScanResult", "TextScanner"], "deidcli.ocr.scan"),
}

__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)

if TYPE_CHECKING:
    from deidcli.ocr.authorised import (
        BUILTIN_MAMMOGRAPHY_WORDS,
        AuthorisedWords,
        builtin_mammography_words,
        combined_authorised_words,
        load_authorised_words,
    )
    from deidcli.ocr.engines import (
        DetectedText,
        EasyOcrDetector,
        RapidOcrDetector,
        TextDetector,
        make_detector,
    )
    from deidcli.ocr.scan import ScanResult, TextScanner

__all__ = [
    "BUILTIN_MAMMOGRAPHY_WORDS",
    "AuthorisedWords",
    "DetectedText",
    "EasyOcrDetector",
    "RapidOcrDetector",
    "ScanResult",
    "TextDetector",
    "TextScanner",
    "builtin_mammography_words",
    "combined_authorised_words",
    "load_authorised_words",
    "make_detector",
]
