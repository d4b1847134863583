"""Masking pixel frames and writing the result into the de-identified dataset.

Re-encoding policy (the lead copies this to the README):

* No rectangle on any frame: PixelData is copied byte-identical (the original element value) and the transfer
  syntax is kept, with two exceptions: Explicit VR Big Endian (retired) becomes Explicit VR Little Endian with
  the pixel bytes swapped per BitsAllocated word (palette LUT data too), and Deflated Explicit VR Little Endian
  becomes Explicit VR Little Endian with identical pixel bytes.
* Pixels changed, uncompressed source: written uncompressed, Explicit VR Little Endian.
* Pixels changed, lossless compressed source (RLE, JPEG lossless, JPEG-LS lossless, JPEG 2000 lossless,
  HTJ2K lossless): re-encoded losslessly, in the same transfer syntax when pydicom has an encoder for it (RLE,
  JPEG 2000 lossless), otherwise RLE Lossless, otherwise uncompressed Explicit VR Little Endian. Every encoded
  frame is decoded again and compared with the masked frame; any difference or encoder error moves the whole
  file to the next option, so the result is always exact.
* Pixels changed, lossy source (JPEG baseline/extended, JPEG-LS near-lossless, JPEG 2000, HTJ2K): the decoded
  pixels are written uncompressed, Explicit VR Little Endian. We never re-encode lossily (generation loss,
  and a lossy codec can smear the mask edge back into view). LossyImageCompression stays "01" with its
  ratio and method (the method is added from the source syntax when the source did not record it).
* YBR sources are decoded to RGB (PhotometricInterpretation RGB, PlanarConfiguration 0) whenever pixels are
  rewritten; 1-bit images are packed again.
* When pixels change, SmallestImagePixelValue/LargestImagePixelValue are removed (the fill may fall outside
  them) and any Extended Offset Table is dropped.

Memory: frames are decoded one at a time; the only full-size buffer is the output (uncompressed bytes or the
list of encoded frames). No frame is encoded until the first rectangle is found: frames before it are decoded
a second time only then, so files without any mask cost one decode pass and no encode.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.encaps import encapsulate, encapsulate_extended
from pydicom.pixels import get_decoder, get_encoder, pack_bits
from pydicom.uid import (
    UID,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    RLELossless,
)

from deidcli.errors import PixelError
from deidcli.geometry import Rect
from deidcli.pixels.frames import (
    LOSSY_METHODS,
    PixelLayout,
    check_encapsulated_frames,
    check_native_length,
    check_pixels_cleanable,
    iter_frames,
    preferred_plugin,
    read_layout,
)
from deidcli.pixels.mask import apply_rects, background_fill, clip_rects, fill_value

RectsForFrame = Callable[[int, np.ndarray], list[Rect]]

_PIXEL_DATA = 0x7FE00010
_PALETTE_KEYWORDS = (
    "RedPaletteColorLookupTableDescriptor",
    "GreenPaletteColorLookupTableDescriptor",
    "BluePaletteColorLookupTableDescriptor",
    "RedPaletteColorLookupTableData",
    "GreenPaletteColorLookupTableData",
    "BluePaletteColorLookupTableData",
    "SegmentedRedPaletteColorLookupTableData",
    "SegmentedGreenPaletteColorLookupTableData",
    "SegmentedBluePaletteColorLookupTableData",
)
_RCT_SYNTAXES = (JPEG2000Lossless,)
#: LossyImageCompression, LossyImageCompressionRatio, LossyImageCompressionMethod (tags: the header-only copy
#: tests these on every file, and a keyword costs a dictionary look-up per test)
_LOSSY_TAGS = (0x00282110, 0x00282112, 0x00282114)
_PLANAR_CONFIGURATION, _NUMBER_OF_FRAMES, _PIXEL_ASPECT_RATIO = 0x00280006, 0x00280008, 0x00280034


@dataclass
class PixelReport:
    """What happened to one file's pixels (goes to the audit table; no PHI)."""

    frames: int
    pixels_changed: bool
    rects_masked: int
    transfer_syntax_in: str
    transfer_syntax_out: str
    decode_seconds: float = 0.0
    encode_seconds: float = 0.0


@dataclass(frozen=True)
class _OutputFormat:
    """The Image Pixel description of the frames being written (after YBR->RGB conversion)."""

    photometric_interpretation: str
    samples_per_pixel: int
    rows: int
    columns: int
    bits_allocated: int
    bits_stored: int
    pixel_representation: int
    frames: int

    def encoder_options(self) -> dict[str, int | str]:
        return {
            "rows": self.rows,
            "columns": self.columns,
            "samples_per_pixel": self.samples_per_pixel,
            "bits_allocated": self.bits_allocated,
            "bits_stored": self.bits_stored,
            "pixel_representation": self.pixel_representation,
            "photometric_interpretation": self.photometric_interpretation,
            "planar_configuration": 0,
            "number_of_frames": 1,
        }


@dataclass(frozen=True)
class _Written:
    """The finished PixelData and how it is encoded."""

    data: bytes
    vr: str
    extended: tuple[bytes, bytes] | None
    transfer_syntax: UID
    photometric_interpretation: str


class _EncodeFallback(Exception):
    """The chosen lossless encoder failed or did not round-trip; try the next option."""


# --------------------------------------------------------------------------------------------------- sinks
class _NativeSink:
    """Collects masked frames as uncompressed little-endian bytes in one preallocated buffer."""

    transfer_syntax = ExplicitVRLittleEndian

    def __init__(self, fmt: _OutputFormat) -> None:
        self.fmt = fmt
        self.photometric_interpretation = fmt.photometric_interpretation
        pixels = fmt.rows * fmt.columns * fmt.samples_per_pixel
        if fmt.bits_allocated == 1:
            self._buffer = np.zeros(pixels * fmt.frames, dtype=np.uint8)
            self._frame_size = pixels
        else:
            # Frames are spooled to an anonymous temporary file that pydicom streams into the output
            # (a buffered element): a 1 GB cine never needs a second in-memory copy of its pixels.
            self._frame_size = pixels * fmt.bits_allocated // 8
            self._spool = tempfile.TemporaryFile()  # noqa: SIM115 - lives until the output is written
        self._count = 0

    def add(self, frame: np.ndarray) -> None:
        start = self._count * self._frame_size
        if self.fmt.bits_allocated == 1:
            self._buffer[start : start + self._frame_size] = frame.reshape(-1)
        else:
            little = frame.astype(frame.dtype.newbyteorder("<"), copy=False)
            self._spool.write(np.ascontiguousarray(little).data)
        self._count += 1

    def finish(self) -> tuple[bytes | BinaryIO, str, tuple[bytes, bytes] | None]:
        """(PixelData value, VR, extended offset table or None)."""
        if self.fmt.bits_allocated == 1:
            return pack_bits(self._buffer, pad=True), "OB", None
        if self._spool.tell() % 2:
            self._spool.write(b"\x00")
        self._spool.flush()
        self._spool.seek(0)
        return self._spool, "OB" if self.fmt.bits_allocated <= 8 else "OW", None


class _EncapsulatedSink:
    """Encodes each masked frame losslessly and checks that decoding gives the same pixels back."""

    def __init__(self, fmt: _OutputFormat, transfer_syntax: UID) -> None:
        self.fmt = fmt
        self.transfer_syntax = transfer_syntax
        self._encoder = get_encoder(transfer_syntax)
        self._decoder = get_decoder(transfer_syntax)
        self._plugin = preferred_plugin(self._decoder)
        self._options = fmt.encoder_options()
        self.photometric_interpretation = fmt.photometric_interpretation
        if transfer_syntax in _RCT_SYNTAXES and fmt.photometric_interpretation == "RGB":
            # RGB frames go in; the codestream carries the reversible colour transform, as PS3.5 8.2.4
            # (and dciodvfy) expect for colour JPEG 2000 lossless.
            self.photometric_interpretation = "YBR_RCT"
            self._options["photometric_interpretation"] = "YBR_RCT"
        self._frames: list[bytes] = []

    def add(self, frame: np.ndarray) -> None:
        source = frame.astype(frame.dtype.newbyteorder("="), copy=False)
        try:
            encoded = self._encoder.encode(source, **self._options)
            decoded, _ = self._decoder.as_array(
                encapsulate([encoded], has_bot=False), raw=True, decoding_plugin=self._plugin, **self._options
            )
        except Exception as exc:  # any plugin failure: fall back to the next lossless option
            raise _EncodeFallback(type(exc).__name__) from exc
        if decoded.shape != source.shape or not np.array_equal(decoded, source):
            raise _EncodeFallback("round trip differs")
        self._frames.append(encoded)

    def finish(self) -> tuple[bytes, str, tuple[bytes, bytes] | None]:
        """Encapsulated PixelData; the Extended Offset Table is used past the 4 GiB Basic Offset Table limit."""
        if sum(len(frame) + 8 for frame in self._frames) < 2**32 - 1:
            return encapsulate(self._frames, has_bot=True), "OB", None
        data, offsets, lengths = encapsulate_extended(self._frames)
        return data, "OB", (offsets, lengths)


_Sink = _NativeSink | _EncapsulatedSink


# ------------------------------------------------------------------------------------------------- public
def copy_pixels_untouched(source: Dataset, target: Dataset, *, cleanable_checked: bool = False) -> PixelReport:
    """Copy PixelData and the Image Pixel module without decoding (see the policy in the module docstring).

    The bouncer runs here too (fail closed): video or a syntax nobody can decode is never passed through;
    `cleanable_checked` says the caller has just run it on this source (the pixel stage does, before
    matching region rules), so it is not run twice.
    """
    if not cleanable_checked:
        check_pixels_cleanable(source)
    layout = read_layout(source)
    check_native_length(source, layout)
    ts_in = layout.transfer_syntax
    ts_out = _untouched_syntax(ts_in)
    element = source[_PIXEL_DATA]
    value = element.value
    if ts_in == ExplicitVRBigEndian:
        # 8-bit data in an OW element is stored as big endian 16-bit words: its bytes are swapped in
        # pairs (PS3.5 8.1.1), which little endian must undo, or every pixel pair is exchanged.
        word_bits = 16 if element.VR == "OW" and layout.bits_allocated <= 8 else layout.bits_allocated
        value = _swap_words(value, word_bits)
    vr = "OB" if layout.transfer_syntax.is_encapsulated or layout.bits_allocated <= 8 else "OW"
    if element.VR in ("OB", "OW") and not layout.transfer_syntax.is_encapsulated:
        vr = element.VR
    _copy_pixel_module(source, target, layout)
    _set_pixel_data(target, value, vr, layout.transfer_syntax.is_encapsulated)
    for tag in (0x7FE00001, 0x7FE00002):  # ExtendedOffsetTable, ExtendedOffsetTableLengths
        _copy_or_delete(source, target, tag)
    _copy_palette(source, target, layout)
    _mark_lossy(source, target, layout)
    target.file_meta.TransferSyntaxUID = ts_out
    return PixelReport(layout.frames, False, 0, str(ts_in), str(ts_out))


def rewrite_pixels(source: Dataset, target: Dataset, rects_for_frame: RectsForFrame) -> PixelReport:
    """Decode each source frame, ask `rects_for_frame` what to hide, fill it, and write `target`'s pixels."""
    check_pixels_cleanable(source)
    layout = read_layout(source)
    check_native_length(source, layout)
    check_encapsulated_frames(source, layout)
    return _Rewrite(source, target, layout, rects_for_frame).run()


# --------------------------------------------------------------------------------------------- machinery
class _Rewrite:
    """One rewrite: the first pass asks for rectangles; later passes (prefix, fallbacks) replay the plan."""

    def __init__(self, source: Dataset, target: Dataset, layout: PixelLayout, rects_for_frame: RectsForFrame):
        self.source = source
        self.target = target
        self.layout = layout
        self.rects_for_frame = rects_for_frame
        self.plan: list[list[Rect]] = []
        self.fmt: _OutputFormat | None = None
        self.fill: tuple[int, ...] = (0,)
        self.decode_seconds = 0.0
        self.encode_seconds = 0.0

    def run(self) -> PixelReport:
        sink, failed = self._first_pass()
        if not any(self.plan):
            report = copy_pixels_untouched(self.source, self.target)
            report.decode_seconds = self.decode_seconds
            return report
        written = self._finish_with_fallbacks(None if failed else sink)
        self._write_target(written)
        rects_masked = sum(len(rects) for rects in self.plan)
        return PixelReport(
            self.layout.frames, True, rects_masked, str(self.layout.transfer_syntax), str(written.transfer_syntax),
            self.decode_seconds, self.encode_seconds,
        )

    # -- passes
    def _frames(self) -> Iterator[np.ndarray]:
        """Decoded frames in order, timing the decoder and learning the output format from the first."""
        iterator = iter_frames(self.source, self.layout)
        while True:
            started = time.perf_counter()
            item = next(iterator, None)
            self.decode_seconds += time.perf_counter() - started
            if item is None:
                return
            frame, properties = item
            if self.fmt is None:
                self._learn_format(properties)
            yield frame

    def _first_pass(self) -> tuple[_Sink | None, bool]:
        """Ask for every frame's rectangles; encode from the first rectangle on. Returns (sink, encoder failed)."""
        sink: _Sink | None = None
        failed = False
        for index, frame in enumerate(self._frames()):
            view = frame.view()
            view.flags.writeable = False
            rects = clip_rects(list(self.rects_for_frame(index, view)), self.layout.columns, self.layout.rows)
            self.plan.append(rects)
            if failed or (not rects and sink is None):
                continue
            try:
                if sink is None:
                    sink = self._replay(self._open_sink(self._candidates()[0]), until=index)
                self._emit(sink, index, frame)
            except _EncodeFallback:
                failed = True
        return sink, failed

    def _replay(self, sink: _Sink, until: int | None = None) -> _Sink:
        """Feed frames [0, until) again from a fresh decode (nothing was kept), masked per the plan."""
        if until == 0:
            return sink
        for index, frame in enumerate(self._frames()):
            if until is not None and index >= until:
                break
            self._emit(sink, index, frame)
        return sink

    def _emit(self, sink: _Sink, index: int, frame: np.ndarray) -> None:
        if self.plan[index]:
            graded = getattr(self.fmt, "photometric_interpretation", "") != "PALETTE COLOR"
            apply_rects(frame, self.plan[index], background_fill(frame, self.fmt, self.fill), graded=graded)
        started = time.perf_counter()
        try:
            sink.add(frame)
        finally:
            self.encode_seconds += time.perf_counter() - started

    def _finish_with_fallbacks(self, sink: _Sink | None) -> _Written:
        """Finish the first sink, or redo the file with each next lossless option until one round-trips."""
        candidates = self._candidates()
        attempt = 0 if sink is not None else 1
        while attempt < len(candidates):
            try:
                if sink is None:
                    sink = self._replay(self._open_sink(candidates[attempt]))
                started = time.perf_counter()
                data, vr, extended = sink.finish()
                self.encode_seconds += time.perf_counter() - started
                return _Written(data, vr, extended, UID(sink.transfer_syntax), sink.photometric_interpretation)
            except _EncodeFallback:
                sink = None
                attempt += 1
        raise PixelError("pixel_encode_failed", "no lossless encoding round-tripped")

    # -- decisions
    def _learn_format(self, properties: dict[str, str | int]) -> None:
        layout = self.layout
        photometric = str(properties.get("photometric_interpretation", layout.photometric_interpretation))
        self.fmt = _OutputFormat(
            photometric_interpretation=photometric,
            samples_per_pixel=layout.samples_per_pixel,
            rows=layout.rows,
            columns=layout.columns,
            bits_allocated=layout.bits_allocated,
            bits_stored=layout.bits_stored,
            pixel_representation=layout.pixel_representation,
            frames=layout.frames,
        )
        little = layout.transfer_syntax != ExplicitVRBigEndian
        self.fill = fill_value(photometric, layout.bits_stored, layout.pixel_representation, self.source, little)

    def _candidates(self) -> list[UID | None]:
        """Output syntaxes to try in order; None means uncompressed Explicit VR Little Endian."""
        ts_in = self.layout.transfer_syntax
        if not self.layout.is_lossless_compressed or self.layout.bits_allocated == 1:
            return [None]
        options: list[UID | None] = []
        for uid in (ts_in, RLELossless):
            if uid not in options and _has_encoder(uid):
                options.append(uid)
        return [*options, None]

    def _open_sink(self, transfer_syntax: UID | None) -> _Sink:
        assert self.fmt is not None
        if transfer_syntax is None:
            return _NativeSink(self.fmt)
        return _EncapsulatedSink(self.fmt, transfer_syntax)

    # -- output
    def _write_target(self, written: _Written) -> None:
        assert self.fmt is not None
        source, target, fmt = self.source, self.target, self.fmt
        _copy_pixel_module(source, target, self.layout)
        target.PhotometricInterpretation = written.photometric_interpretation
        if fmt.samples_per_pixel > 1:
            target.PlanarConfiguration = 0
        for keyword in (
            "SmallestImagePixelValue", "LargestImagePixelValue", "ExtendedOffsetTable", "ExtendedOffsetTableLengths",
        ):
            _delete(target, keyword)
        _copy_palette(source, target, self.layout)
        _mark_lossy(source, target, self.layout)
        _set_pixel_data(target, written.data, written.vr, written.transfer_syntax.is_encapsulated)
        if written.extended is not None:
            target.ExtendedOffsetTable, target.ExtendedOffsetTableLengths = written.extended
        target.file_meta.TransferSyntaxUID = written.transfer_syntax


def _has_encoder(uid: UID) -> bool:
    try:
        return get_encoder(uid).is_available
    except NotImplementedError:
        return False


def _untouched_syntax(ts_in: UID) -> UID:
    if ts_in in (ExplicitVRBigEndian, DeflatedExplicitVRLittleEndian):
        return ExplicitVRLittleEndian
    return ts_in


def _swap_words(value: bytes, bits_allocated: int) -> bytes:
    """Big endian -> little endian for words of BitsAllocated bits (bytes and bit-packed data are unchanged)."""
    if bits_allocated <= 8:
        return bytes(value)
    itemsize = bits_allocated // 8
    whole = len(value) - len(value) % itemsize
    swapped = np.frombuffer(value, dtype=f">u{itemsize}", count=whole // itemsize).astype(f"<u{itemsize}")
    return swapped.tobytes() + bytes(value[whole:])


def _copy_pixel_module(source: Dataset, target: Dataset, layout: PixelLayout) -> None:
    """Write the Image Pixel attributes describing `layout` into the target (it may have lost them).

    The eight fixed attributes go straight into the element dict (`Dataset.__setattr__` costs a keyword
    look-up and cache resets per call: a tenth of the header-only path); the target is a new dataset."""
    elements = target._dict
    for tag, vr, value in (
        (0x00280002, "US", layout.samples_per_pixel),  # SamplesPerPixel
        (0x00280004, "CS", layout.photometric_interpretation),  # PhotometricInterpretation
        (0x00280010, "US", layout.rows),  # Rows
        (0x00280011, "US", layout.columns),  # Columns
        (0x00280100, "US", layout.bits_allocated),  # BitsAllocated
        (0x00280101, "US", layout.bits_stored),  # BitsStored
        (0x00280102, "US", layout.bits_stored - 1),  # HighBit
        (0x00280103, "US", layout.pixel_representation),  # PixelRepresentation
    ):
        element = DataElement(tag, vr, value)
        elements[element.tag] = element
    if layout.samples_per_pixel > 1:
        target.PlanarConfiguration = layout.planar_configuration
    else:
        _delete(target, _PLANAR_CONFIGURATION)
    if _NUMBER_OF_FRAMES in source or layout.frames > 1:
        target.NumberOfFrames = layout.frames
    else:
        _delete(target, _NUMBER_OF_FRAMES)
    _copy_or_delete(source, target, _PIXEL_ASPECT_RATIO)


def _copy_palette(source: Dataset, target: Dataset, layout: PixelLayout) -> None:
    """Palette LUTs belong to the pixels; big endian LUT words are swapped like the pixels."""
    if layout.photometric_interpretation != "PALETTE COLOR":
        return
    big_endian = layout.transfer_syntax == ExplicitVRBigEndian
    for keyword in _PALETTE_KEYWORDS:
        if keyword not in source:
            _delete(target, keyword)
            continue
        element = source[keyword]
        value = element.value
        if big_endian and keyword.endswith("Data") and isinstance(value, bytes | bytearray):
            value = _swap_words(value, 16)
        target.add_new(element.tag, _palette_vr(keyword, element.VR, layout.pixel_representation), value)


def _palette_vr(keyword: str, vr: str, pixel_representation: int) -> str:
    """Resolve the ambiguous 'US or SS' / 'US or OW' VRs an implicit VR source leaves behind."""
    if " or " not in vr:
        return vr
    if keyword.endswith("Descriptor"):
        return "SS" if pixel_representation == 1 else "US"
    return "OW"


def _mark_lossy(source: Dataset, target: Dataset, layout: PixelLayout) -> None:
    """Once lossy, always lossy: keep the flag, ratio and method; add them if the syntax says lossy."""
    for tag in _LOSSY_TAGS:
        if tag in source:
            target[tag] = source[tag]
    method = LOSSY_METHODS.get(str(layout.transfer_syntax))
    if method is None:
        return
    target.LossyImageCompression = "01"
    if _LOSSY_TAGS[2] not in target:
        target.LossyImageCompressionMethod = method


def _set_pixel_data(target: Dataset, value: bytes, vr: str, encapsulated: bool) -> None:
    element = DataElement(_PIXEL_DATA, vr, value)
    element.is_undefined_length = encapsulated
    target[_PIXEL_DATA] = element


def _copy_or_delete(source: Dataset, target: Dataset, keyword: str | int) -> None:
    if keyword in source:
        target[keyword] = source[keyword]
    else:
        _delete(target, keyword)


def _delete(target: Dataset, keyword: str | int) -> None:
    if keyword in target:
        del target[keyword]
