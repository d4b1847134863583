"""Pixel data holding more than its frames: the bytes nobody looks at must not be copied.

When no rectangle is masked, pixel data is copied byte for byte; OCR and the eye only ever see the frames the
Image Pixel attributes describe. Whatever lies outside them (bytes after the last native frame, a frame
beyond NumberOfFrames, an encapsulated fragment or trailing bytes after a frame's end-of-image marker, an
RLE segment that decodes to more than its plane) would travel unseen into the release. Such files are
quarantined (`pixel_extra_data`) rather than trimmed: a scanner never writes them, so the extra bytes are a
sign of tampering or of a broken exporter, and trimming would mean trusting the very attributes that do not
match the data. Allowed: the one pad byte that makes an odd-length value even.

`check_pixel_integrity` is a pure function of the source; it only raises.
"""

from __future__ import annotations

from io import BytesIO

from pydicom.dataset import Dataset
from pydicom.encaps import generate_fragments, parse_basic_offsets
from pydicom.uid import UID, RLELossless

from deidcli.elements import value_of
from deidcli.errors import PixelError

PIXEL_DATA, FLOAT_PIXEL_DATA, DOUBLE_FLOAT_PIXEL_DATA = 0x7FE00010, 0x7FE00008, 0x7FE00009
#: Bytes per sample of the float pixel elements (their BitsAllocated is fixed by the standard).
_FLOAT_BYTES = {FLOAT_PIXEL_DATA: 4, DOUBLE_FLOAT_PIXEL_DATA: 8}
_JPEG_SOI, _J2K_SOC, _JP2_SIGNATURE = b"\xff\xd8", b"\xff\x4f", b"\x00\x00\x00\x0cjP  "
_JPEG_LS = frozenset({"1.2.840.10008.1.2.4.80", "1.2.840.10008.1.2.4.81"})


def check_pixel_integrity(source: Dataset, kept: Dataset) -> None:
    """Raise `pixel_extra_data` when a pixel element of `source` that `kept` (the de-identified dataset)
    still holds carries bytes outside the frames its attributes describe."""
    for tag in (PIXEL_DATA, FLOAT_PIXEL_DATA, DOUBLE_FLOAT_PIXEL_DATA):
        if tag not in source or tag not in kept:
            continue
        try:
            value = source[tag].value
        except Exception as error:  # noqa: BLE001 - pydicom raises many types on a corrupt element
            raise PixelError("pixel_decode_failed", f"{type(error).__name__} reading pixel data") from error
        if not isinstance(value, bytes | bytearray):
            raise PixelError("pixel_decode_failed", "pixel data value is not bytes")
        syntax = _transfer_syntax(source)
        if tag == PIXEL_DATA and syntax is not None and syntax.is_encapsulated:
            _check_encapsulated(source, bytes(value), syntax)
        else:
            _check_native_length(source, tag, len(value))


def _transfer_syntax(source: Dataset) -> UID | None:
    meta = getattr(source, "file_meta", None)
    syntax = meta.get("TransferSyntaxUID") if meta is not None else None
    try:
        return UID(str(syntax)) if syntax and UID(str(syntax)).is_transfer_syntax else None
    except ValueError:
        return None


def _int(source: Dataset, keyword: str, default: int | None = None) -> int:
    value = value_of(source, keyword)
    try:
        number = int(str(value).strip()) if value not in (None, "") else default
    except ValueError:
        number = None
    if number is None or number < 0:
        raise PixelError("no_pixel_module", f"{keyword} missing or not a number")
    return number


def _frames(source: Dataset) -> int:
    return max(_int(source, "NumberOfFrames", 1), 1)


def expected_native_length(source: Dataset, tag: int = PIXEL_DATA) -> int:
    """Bytes the Image Pixel attributes promise for a native (uncompressed) pixel element."""
    samples = _int(source, "Rows") * _int(source, "Columns") * _frames(source) * _int(source, "SamplesPerPixel", 1)
    if tag in _FLOAT_BYTES:
        return samples * _FLOAT_BYTES[tag]
    bits = _int(source, "BitsAllocated")
    if bits == 1:
        return (samples + 7) // 8
    if str(source.get("PhotometricInterpretation", "")).strip() == "YBR_FULL_422":
        samples = samples * 2 // 3  # two chroma samples shared by two pixels
    return samples * ((bits + 7) // 8)


def _check_native_length(source: Dataset, tag: int, actual: int) -> None:
    expected = expected_native_length(source, tag)
    if actual > expected + expected % 2:
        raise PixelError("pixel_extra_data", f"{actual - expected} bytes after the last of {_frames(source)} frames")


# ------------------------------------------------------------------------------------------ encapsulated
def _check_encapsulated(source: Dataset, value: bytes, syntax: UID) -> None:
    frames = _frames(source)
    buffer = BytesIO(value)
    try:
        offsets = parse_basic_offsets(buffer)
        fragments = list(generate_fragments(buffer))
    except Exception as error:  # malformed item tags or lengths
        raise PixelError("pixel_decode_failed", f"{type(error).__name__} reading encapsulated fragments") from error
    extended = source.get("ExtendedOffsetTable")
    if extended is not None:
        count = len(extended.value or b"") // 8
        if count > frames:
            raise PixelError("pixel_extra_data", f"extended offset table lists {count} frames, {frames} declared")
    if len(offsets) > frames:
        raise PixelError("pixel_extra_data", f"offset table lists {len(offsets)} frames, {frames} declared")
    for index, frame in enumerate(_group_frames(fragments, offsets, frames, syntax)):
        if index >= frames:
            raise PixelError("pixel_extra_data", f"a fragment or frame after the last of {frames} frames")
        _check_frame_end(source, frame, syntax, index)


def _group_frames(fragments: list[bytes], offsets: list[int], frames: int, syntax: UID) -> list[bytes]:
    """The encapsulated frames, each with every fragment that belongs to it (extra ones included)."""
    if offsets and len(offsets) == frames:
        starts, position = {}, 0
        for index, fragment in enumerate(fragments):
            starts[position] = index
            position += 8 + len(fragment)
        if any(offset not in starts for offset in offsets):
            raise PixelError("pixel_decode_failed", "the offset table does not point at fragments")
        bounds = [starts[offset] for offset in offsets] + [len(fragments)]
        return [b"".join(fragments[bounds[i]:bounds[i + 1]]) for i in range(frames)]
    if frames == 1:
        return [b"".join(fragments)]
    if len(fragments) <= frames or syntax == RLELossless:
        return list(fragments)  # one fragment per frame (fewer: truncation, the pixel stage says so)
    grouped: list[list[bytes]] = []
    for fragment in fragments:  # no offsets: a frame starts where a codestream starts
        if not grouped or fragment.startswith((_JPEG_SOI, _J2K_SOC, _JP2_SIGNATURE)):
            grouped.append([])
        grouped[-1].append(fragment)
    return [b"".join(group) for group in grouped]


def _check_frame_end(source: Dataset, frame: bytes, syntax: UID, index: int) -> None:
    if syntax == RLELossless:
        _check_rle_frame(source, frame, index)
        return
    if frame.startswith(_JPEG_SOI):
        end = _jpeg_end(frame, jpeg_ls=str(syntax) in _JPEG_LS)
    elif frame.startswith(_J2K_SOC):
        end = _j2k_end(frame)
    else:
        return  # a wrapper we do not parse (JP2 boxes): the decoder and the pixel stage judge it
    if end is not None and len(frame) - end > 1:
        raise PixelError("pixel_extra_data", f"{len(frame) - end} bytes after the end of frame {index}")


def _jpeg_end(data: bytes, jpeg_ls: bool) -> int | None:
    """Offset just past the EOI marker of a JPEG or JPEG-LS codestream, None when it does not parse."""
    position, size = 2, len(data)
    while position + 1 < size:
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:
            position += 1  # fill byte
            continue
        position += 2
        if marker == 0xD9:
            return position
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            continue
        if position + 2 > size:
            return None
        length = int.from_bytes(data[position:position + 2], "big")
        if length < 2:
            return None
        position += length
        if marker == 0xDA:  # start of scan: entropy-coded data runs to the next marker
            position = _scan_end(data, position, jpeg_ls)
    return None


def _scan_end(data: bytes, position: int, jpeg_ls: bool) -> int:
    while True:
        position = data.find(b"\xff", position)
        if position < 0 or position + 1 >= len(data):
            return len(data)
        following = data[position + 1]
        is_marker = following >= 0x80 if jpeg_ls else (following != 0x00 and not 0xD0 <= following <= 0xD7)
        if is_marker and following != 0xFF:
            return position
        position += 1 if following == 0xFF else 2


def _j2k_end(data: bytes) -> int | None:
    """Offset just past the EOC marker of a JPEG 2000 / HTJ2K codestream, jumping tile-parts by Psot."""
    position, size = 2, len(data)
    while position + 4 <= size:
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xD9:
            return position + 2
        if marker == 0x90:  # SOT: Psot is the tile-part length from this marker on
            tile_part = int.from_bytes(data[position + 6:position + 10], "big")
            if tile_part == 0:
                return None  # the last tile-part runs to EOC: nothing to measure it with
            position += tile_part
            continue
        position += 2 + int.from_bytes(data[position + 2:position + 4], "big")
    return None


def _check_rle_frame(source: Dataset, frame: bytes, index: int) -> None:
    """Every RLE segment must decode to exactly one plane: a longer one carries bytes nobody sees."""
    if len(frame) < 64:
        raise PixelError("pixel_truncated", f"RLE frame {index} has no header")
    count = int.from_bytes(frame[:4], "little")
    offsets = [int.from_bytes(frame[4 + 4 * i:8 + 4 * i], "little") for i in range(min(count, 15))]
    if not 1 <= count <= 15 or offsets[0] != 64 or any(b <= a for a, b in zip(offsets, offsets[1:], strict=False)):
        raise PixelError("pixel_decode_failed", f"RLE frame {index} has a malformed header")
    if offsets[-1] >= len(frame):
        raise PixelError("pixel_truncated", f"RLE frame {index} is shorter than its header says")
    plane = _int(source, "Rows") * _int(source, "Columns")
    for start, end in zip(offsets, [*offsets[1:], len(frame)], strict=True):
        if _packbits_length(frame, start, end) > plane + 1:
            raise PixelError("pixel_extra_data", f"an RLE segment of frame {index} decodes past its plane")


def _packbits_length(data: bytes, position: int, end: int) -> int:
    """How many bytes a PackBits segment decodes to, without decoding it."""
    produced = 0
    while position < end:
        header = data[position]
        if header < 128:
            produced += header + 1
            position += header + 2
        elif header > 128:
            produced += 257 - header
            position += 2
        else:
            position += 1
    return produced
