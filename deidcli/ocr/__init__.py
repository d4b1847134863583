"""Burned-in text detection: engines, 8-bit views, the fail-closed scanner, authorised words.

Knows nothing about DICOM datasets: it takes pixel arrays plus a few plain facts
(photometric interpretation, bits stored, signedness). EasyOCR/torch load lazily, only when an
EasyOcrDetector is built, so the tool works without the optional extra.
"""

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
