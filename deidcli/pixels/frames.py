"""Reading pixel frames: the bouncer that refuses what cannot be cleaned, and a one-frame-at-a-time decoder.

Everything here reads the *source* dataset only. Decoding goes through pydicom 3's decoder registry
(`pydicom.pixels.get_decoder(...).iter_array`) so that exactly one decoded frame is alive at a time: a 100 MB
cine must never be expanded into a full array. Every failure is turned into a `PixelError` whose reason code
says what went wrong (decode failed, truncated, unsupported transfer syntax); the detail text is built by us
and never copies exception messages, which could in principle quote file content.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydicom.dataset import Dataset
from pydicom.encaps import generate_frames
from pydicom.pixels import as_pixel_options, get_decoder
from pydicom.pixels.utils import get_expected_length
from pydicom.uid import (
    HTJ2K,
    JPEG2000,
    JPEG2000MC,
    UID,
    DeflatedExplicitVRLittleEndian,
    EncapsulatedCDAStorage,
    EncapsulatedMTLStorage,
    EncapsulatedOBJStorage,
    EncapsulatedPDFStorage,
    EncapsulatedSTLStorage,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    HTJ2KLossless,
    HTJ2KLosslessRPCL,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEG2000MCLossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    JPEGLSLossless,
    JPEGLSNearLossless,
    MPEGTransferSyntaxes,
    RLELossless,
)

from deidcli.elements import text_of, value_at
from deidcli.errors import PixelError

#: Transfer syntaxes whose pixel data is a video stream: burned-in text cannot be removed frame by frame.
VIDEO_TRANSFER_SYNTAXES: frozenset[str] = frozenset(str(uid) for uid in MPEGTransferSyntaxes)

#: SOP classes whose "pixel" payload is a document or mesh we cannot inspect.
ENCAPSULATED_DOCUMENT_SOP_CLASSES: frozenset[str] = frozenset(
    str(uid)
    for uid in (
        EncapsulatedPDFStorage,
        EncapsulatedCDAStorage,
        EncapsulatedSTLStorage,
        EncapsulatedOBJStorage,
        EncapsulatedMTLStorage,
    )
)

#: Compressed syntaxes that reproduce the pixels exactly.
LOSSLESS_TRANSFER_SYNTAXES: frozenset[str] = frozenset(
    str(uid)
    for uid in (
        RLELossless,
        JPEGLossless,
        JPEGLosslessSV1,
        JPEGLSLossless,
        JPEG2000Lossless,
        JPEG2000MCLossless,
        HTJ2KLossless,
        HTJ2KLosslessRPCL,
    )
)

#: Compressed syntaxes that may have lost information, with the DICOM Lossy Image Compression Method code.
LOSSY_METHODS: dict[str, str] = {
    str(JPEGBaseline8Bit): "ISO_10918_1",
    str(JPEGExtended12Bit): "ISO_10918_1",
    str(JPEGLSNearLossless): "ISO_14495_1",
    str(JPEG2000): "ISO_15444_1",
    str(JPEG2000MC): "ISO_15444_2",
    str(HTJ2K): "ISO_15444_15",
}

#: Native (uncompressed) syntaxes pydicom reads.
NATIVE_TRANSFER_SYNTAXES: frozenset[str] = frozenset(
    str(uid)
    for uid in (ImplicitVRLittleEndian, ExplicitVRLittleEndian, ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian)
)

#: Codestreams that end with the EOI/EOC marker FFD9 (JPEG, JPEG-LS, JPEG 2000, HTJ2K).
_MARKER_TERMINATED: frozenset[str] = frozenset(
    str(uid) for uid in (*LOSSY_METHODS, *LOSSLESS_TRANSFER_SYNTAXES) if str(uid) != str(RLELossless)
)

#: Decoding plugins in order of preference; gdcm is only used when nothing else is installed.
_PLUGIN_PREFERENCE = ("pylibjpeg", "pydicom", "pillow", "pyjpegls")

_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


@dataclass(frozen=True)
class PixelLayout:
    """The Image Pixel attributes of the source that decide how frames are decoded and written back."""

    transfer_syntax: UID
    rows: int
    columns: int
    samples_per_pixel: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    photometric_interpretation: str
    planar_configuration: int
    frames: int

    @property
    def is_lossy(self) -> bool:
        return str(self.transfer_syntax) in LOSSY_METHODS

    @property
    def is_lossless_compressed(self) -> bool:
        return str(self.transfer_syntax) in LOSSLESS_TRANSFER_SYNTAXES


def source_transfer_syntax(source: Dataset) -> UID:
    """The transfer syntax the source was read with; inferred from its encoding when the meta lacks it."""
    file_meta = getattr(source, "file_meta", None)
    uid = file_meta.get("TransferSyntaxUID") if file_meta is not None else None
    if uid:
        return UID(str(uid))
    implicit, little = source.original_encoding
    if implicit is None:
        raise PixelError("unsupported_transfer_syntax", "no transfer syntax in file meta and none inferable")
    if not little:
        return ExplicitVRBigEndian
    return ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian


def has_pixel_data(source: Dataset) -> bool:
    return any(keyword in source for keyword in _PIXEL_KEYWORDS)


def frame_count(source: Dataset) -> int:
    """Number of frames, tolerating the malformed NumberOfFrames values seen in the wild ('', 0, '3 ')."""
    return _frames_of(source.get("NumberOfFrames"))


def _frames_of(value: Any) -> int:
    """`frame_count` of a NumberOfFrames value (None when absent)."""
    try:
        count = int(str(value).strip()) if value not in (None, "") else 1
    except ValueError as exc:
        raise PixelError("no_pixel_module", "NumberOfFrames is not an integer") from exc
    return max(count, 1)


def check_pixels_cleanable(source: Dataset) -> None:
    """Refuse, before any work is done, files whose pixels we cannot inspect and mask.

    Video syntaxes and encapsulated documents hold content we cannot decode frame by frame into pixels;
    a syntax without an installed decoder would make us fail later, after the metadata work was wasted.
    """
    # UIDs read from their bytes (`text_of`), presence by tag: this runs for every file with pixels
    sop_class = text_of(source, "SOPClassUID")
    if sop_class in ENCAPSULATED_DOCUMENT_SOP_CLASSES or 0x00420011 in source._dict:  # EncapsulatedDocument
        raise PixelError("encapsulated_document", "encapsulated document SOP class")
    file_meta = getattr(source, "file_meta", None)
    declared = text_of(file_meta, "TransferSyntaxUID") if file_meta is not None else ""
    if declared in VIDEO_TRANSFER_SYNTAXES:
        raise PixelError("video_not_cleanable", f"video transfer syntax {declared}")
    if not has_pixel_data(source):
        return
    tsyntax = source_transfer_syntax(source)
    if str(tsyntax) in VIDEO_TRANSFER_SYNTAXES:
        raise PixelError("video_not_cleanable", f"video transfer syntax {tsyntax}")
    _require_decoder(tsyntax)


def _require_decoder(tsyntax: UID) -> None:
    try:
        decoder = get_decoder(tsyntax)
    except NotImplementedError as exc:
        raise PixelError("unsupported_transfer_syntax", f"no decoder for {tsyntax}") from exc
    if not decoder.is_available:
        raise PixelError("unsupported_transfer_syntax", f"no installed decoding plugin for {tsyntax}")


def read_layout(source: Dataset) -> PixelLayout:
    """The source's Image Pixel attributes, or `no_pixel_module` when a required one is missing.

    Each attribute is read once, by tag (`deidcli.elements`: the value `Dataset.get` gives, without its
    keyword look-up; a dozen keyword reads were a fifth of the header-only pixel copy)."""
    if _PIXEL_DATA_TAG not in source:
        if has_pixel_data(source):
            raise PixelError("unsupported_pixel_format", "float pixel data is not supported")
        raise PixelError("no_pixel_module", "no PixelData element")
    values = {keyword: value_at(source, tag) for keyword, tag in _LAYOUT_TAGS.items()}
    missing = [keyword for keyword in _LAYOUT_REQUIRED if values[keyword] in (None, "")]
    if missing:
        raise PixelError("no_pixel_module", "missing " + ", ".join(missing))
    bits_allocated = int(values["BitsAllocated"])
    layout = PixelLayout(
        transfer_syntax=source_transfer_syntax(source),
        rows=int(values["Rows"]),
        columns=int(values["Columns"]),
        samples_per_pixel=int(values["SamplesPerPixel"]),
        bits_allocated=bits_allocated,
        bits_stored=int(values["BitsStored"] or bits_allocated),
        pixel_representation=int(values["PixelRepresentation"] or 0),
        photometric_interpretation=str(values["PhotometricInterpretation"]).strip(),
        planar_configuration=int(values["PlanarConfiguration"] or 0),
        frames=_frames_of(values["NumberOfFrames"]),
    )
    _check_layout(layout)
    return layout


_PIXEL_DATA_TAG = 0x7FE00010
#: The attributes `read_layout` reads (keyword -> tag); the first five are required.
_LAYOUT_TAGS = {
    "Rows": 0x00280010, "Columns": 0x00280011, "SamplesPerPixel": 0x00280002, "BitsAllocated": 0x00280100,
    "PhotometricInterpretation": 0x00280004, "BitsStored": 0x00280101, "PixelRepresentation": 0x00280103,
    "PlanarConfiguration": 0x00280006, "NumberOfFrames": 0x00280008,
}
_LAYOUT_REQUIRED = ("Rows", "Columns", "SamplesPerPixel", "BitsAllocated", "PhotometricInterpretation")


def _check_layout(layout: PixelLayout) -> None:
    if layout.rows <= 0 or layout.columns <= 0:
        raise PixelError("no_pixel_module", "Rows or Columns is zero")
    if layout.samples_per_pixel not in (1, 3):
        raise PixelError("unsupported_pixel_format", f"SamplesPerPixel {layout.samples_per_pixel}")
    if layout.bits_allocated not in (1, 8, 16, 32, 64):
        raise PixelError("unsupported_pixel_format", f"BitsAllocated {layout.bits_allocated}")
    if not 0 < layout.bits_stored <= layout.bits_allocated:
        raise PixelError("unsupported_pixel_format", "BitsStored outside 1..BitsAllocated")


def check_native_length(source: Dataset, layout: PixelLayout) -> None:
    """Native pixel data shorter than the attributes promise is truncated, whatever pydicom would guess."""
    if layout.transfer_syntax.is_encapsulated:
        return
    expected = get_expected_length(source, "bytes")
    actual = len(source.PixelData)
    if actual < expected:
        raise PixelError("pixel_truncated", f"{actual} bytes of pixel data, {expected} expected")


def check_encapsulated_frames(source: Dataset, layout: PixelLayout) -> None:
    """Every encapsulated frame must be present, and JPEG-family frames must end with their end marker.

    libjpeg decodes a JPEG cut short without complaint (the missing rows come back grey), so a truncated
    file would otherwise be masked and written as if it were whole.
    """
    if not layout.transfer_syntax.is_encapsulated:
        return
    needs_marker = str(layout.transfer_syntax) in _MARKER_TERMINATED
    extended = None
    if "ExtendedOffsetTable" in source and "ExtendedOffsetTableLengths" in source:
        extended = (source.ExtendedOffsetTable, source.ExtendedOffsetTableLengths)
    count = 0
    try:
        for frame in generate_frames(source.PixelData, number_of_frames=layout.frames, extended_offsets=extended):
            if count >= layout.frames:
                break
            if needs_marker and not frame.rstrip(b"\x00\xff").endswith(b"\xff\xd9"):
                raise PixelError("pixel_truncated", f"frame {count} has no end-of-image marker")
            count += 1
    except PixelError:
        raise
    except Exception as exc:  # malformed items / offset table
        raise PixelError("pixel_decode_failed", f"{type(exc).__name__} reading encapsulated fragments") from exc
    if count < layout.frames:
        raise PixelError("pixel_truncated", f"{count} of {layout.frames} encapsulated frames present")


def iter_frames(
    source: Dataset, layout: PixelLayout, indices: Iterable[int] | None = None
) -> Iterator[tuple[np.ndarray, dict[str, str | int]]]:
    """Yield (frame, pixel properties after decoding) one frame at a time, YBR converted to RGB.

    Encapsulated JPEG data can yield more frames than NumberOfFrames (one per fragment when the offset table
    is missing); extra frames are ignored, missing ones are `pixel_truncated`.
    """
    _require_decoder(layout.transfer_syntax)
    wanted = list(indices) if indices is not None else None
    expected = len(wanted) if wanted is not None else layout.frames
    decoder = get_decoder(layout.transfer_syntax)
    options = as_pixel_options(source)
    options["number_of_frames"] = layout.frames
    yielded = 0
    iterator = decoder.iter_array(
        source, indices=wanted or None, raw=False, validate=True, decoding_plugin=preferred_plugin(decoder),
        **options,
    )
    while yielded < expected:
        try:
            frame, properties = next(iterator)
        except StopIteration:
            break
        except PixelError:
            raise
        except Exception as exc:  # every decoder failure becomes a reason code
            raise _decode_error(exc, layout) from exc
        _check_frame_shape(frame, layout)
        yielded += 1
        yield frame, properties
    if yielded < expected:
        raise PixelError("pixel_truncated", f"{yielded} of {expected} frames could be read")


def preferred_plugin(decoder: Any) -> str:
    """One decoding plugin, never python-gdcm while another is installed.

    pydicom tries every plugin in turn after a failure, and gdcm answers some corrupt JPEG streams by
    throwing a C++ exception that aborts the whole Python process; one bad file must cost one quarantine
    row, not the worker. pylibjpeg (libjpeg, openjpeg, rle) decodes every syntax we handle.
    """
    available = decoder.available_plugins
    for name in _PLUGIN_PREFERENCE:
        if name in available:
            return name
    return ""


def _check_frame_shape(frame: np.ndarray, layout: PixelLayout) -> None:
    shape = (layout.rows, layout.columns) + ((layout.samples_per_pixel,) if layout.samples_per_pixel > 1 else ())
    if frame.shape != shape:
        raise PixelError("pixel_decode_failed", f"decoded frame shape {frame.shape} does not match {shape}")


def _decode_error(exc: Exception, layout: PixelLayout) -> PixelError:
    """Map a decoder exception to a reason; messages are not copied (they could quote file bytes)."""
    message = str(exc).lower()
    kind = type(exc).__name__
    if isinstance(exc, NotImplementedError):
        return PixelError("unsupported_transfer_syntax", f"{kind} for {layout.transfer_syntax}")
    truncated_markers = ("less than expected", "too short", "end of the", "insufficient", "truncat")
    if any(marker in message for marker in truncated_markers):
        return PixelError("pixel_truncated", f"{kind} while decoding {layout.transfer_syntax}")
    return PixelError("pixel_decode_failed", f"{kind} while decoding {layout.transfer_syntax}")
