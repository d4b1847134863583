"""Geometry before text: anatomy vs background, text-like marks, and the scanner's rules built on them."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from deidcli.errors import OcrError
from deidcli.geometry import Rect
from deidcli.ocr import DetectedText, TextScanner
from deidcli.ocr.layout import anatomy_mask, local_contrast, text_marks
from deidcli.ocr.scan import DEFAULT_PAD_RATIO, reads_as_text, same_block, to_full_resolution


class Scripted:
    """An engine that reports the same boxes in every picture it is given (full frame and crops)."""

    name = "scripted"

    def __init__(self, found: list[DetectedText]) -> None:
        self.found = found
        self.calls = 0

    def detect(self, image8: np.ndarray) -> list[DetectedText]:
        self.calls += 1
        rows, cols = image8.shape[:2]
        return [f for f in self.found if f.rect.x1 <= cols and f.rect.y1 <= rows]


def body_with_label(text_on: str) -> tuple[np.ndarray, np.ndarray]:
    """A 512x512 8-bit frame: a disc of textured 'tissue' on black air and a line of print."""
    rng = np.random.default_rng(1)
    frame = np.zeros((512, 512), np.uint8)
    disc = np.zeros_like(frame)
    cv2.circle(disc, (256, 300), 180, 1, -1)
    frame[disc == 1] = (110 + rng.normal(0, 12, disc.sum())).clip(0, 255).astype(np.uint8)
    glyphs = np.zeros_like(frame)
    origin = (10, 30) if text_on == "air" else (160, 300)
    cv2.putText(glyphs, "DOE JANE 1962", origin, cv2.FONT_HERSHEY_SIMPLEX, 0.6, 1, 1, cv2.LINE_8)
    frame[glyphs == 1] = 250
    return frame, glyphs.astype(bool)


def test_anatomy_is_the_body_with_text_over_it_and_air_is_background() -> None:
    frame, glyphs = body_with_label("tissue")
    anatomy = anatomy_mask(frame)
    assert anatomy[300, 256] and anatomy[glyphs].all()  # print over tissue stays "anatomy"
    assert not anatomy[5:40, :100].any()  # air in the corner


def test_ultrasound_data_regions_bound_the_anatomy() -> None:
    frame, _ = body_with_label("tissue")
    anatomy = anatomy_mask(frame, [Rect(0, 0, 256, 512)])
    assert anatomy[300, 200] and not anatomy[300, 300]


def test_small_print_on_air_is_a_mark_even_when_no_detector_sees_it() -> None:
    frame, glyphs = body_with_label("air")
    marks = text_marks(frame, anatomy_mask(frame))
    covered = np.zeros_like(glyphs)
    for m in marks:
        covered[m.y0 : m.y1, m.x0 : m.x1] = True
    assert covered[glyphs].mean() > 0.95
    assert not any(m.y0 > 150 for m in marks)  # nothing on the body


def test_noise_on_air_and_tissue_texture_are_not_marks() -> None:
    rng = np.random.default_rng(2)
    frame, _ = body_with_label("tissue")
    frame = np.clip(frame.astype(int) + rng.integers(0, 6, frame.shape), 0, 255).astype(np.uint8)
    frame[frame == 250] = 110  # no print at all
    assert text_marks(frame, anatomy_mask(frame)) == []


def test_local_contrast_shows_print_above_any_window() -> None:
    """12-bit tissue at 2600 with print at 2900: 300 levels, invisible in a log view, strong here."""
    frame = np.full((200, 300), 2600, np.uint16)
    glyphs = np.zeros(frame.shape, np.uint8)  # OpenCV 5 draws on 8-bit images only
    cv2.putText(glyphs, "DOE", (20, 100), cv2.FONT_HERSHEY_SIMPLEX, 1.0, 1, 2)
    frame[glyphs == 1] = 2900
    view = local_contrast(frame)
    assert view[frame == 2900].mean() > 200 and abs(view[frame == 2600].mean() - 128) < 8  # print on a mid-gray field


@pytest.mark.parametrize("text, confidence, expected", [
    ("DOE JANE", 0.9, True), ("EnMC hlIAs", 0.51, True), ("ID", 0.7, True), ("1", 0.96, False),
    ("?", 0.25, False), ("中", 0.49, False), ("", 0.0, False), ("4.4", 0.43, False),
])
def test_what_reads_as_text_on_anatomy(text, confidence, expected) -> None:
    assert reads_as_text(DetectedText(Rect(0, 0, 10, 10), text, confidence)) is expected


def test_lines_of_one_block_belong_together() -> None:
    name = Rect(100, 100, 300, 120)
    assert same_block(Rect(100, 126, 280, 146), name)  # the next line
    assert not same_block(Rect(100, 200, 280, 220), name)  # five lines further down
    assert not same_block(Rect(100, 126, 280, 226), name)  # a much taller box


def test_box_on_anatomy_that_does_not_read_as_text_is_left_alone() -> None:
    frame, _ = body_with_label("tissue")
    blob = Rect(200, 250, 320, 290)
    result = TextScanner(Scripted([DetectedText(blob, "?", 0.2)]), None, windows=False).scan(frame, "MONOCHROME2", 8)
    assert result.masked == [] and result.rejected >= 1


def test_box_on_background_is_masked_unread() -> None:
    frame, _ = body_with_label("tissue")
    corner = Rect(10, 10, 120, 30)
    result = TextScanner(Scripted([DetectedText(corner, "", 0.0)]), None, windows=False).scan(frame, "MONOCHROME2", 8)
    assert any(r.x0 <= 10 and r.y0 <= 10 and r.x1 >= 120 and r.y1 >= 30 for r in result.masked)


def test_text_that_keeps_appearing_beside_masked_text_quarantines() -> None:
    """The engine reads new text next to every masked box, again and again: never stamped clean."""

    class Haunted:
        name = "haunted"

        def detect(self, image8):
            rows, cols = image8.shape[:2]
            return [DetectedText(Rect(cols - 40, rows // 2, cols - 2, rows // 2 + 12), "SMITH", 0.95)]

    frame, _ = body_with_label("air")
    with pytest.raises(OcrError) as info:
        TextScanner(Haunted(), None).scan(frame, "MONOCHROME2", 8)
    assert info.value.reason == "ocr_residual_text"


@pytest.mark.parametrize("name, glyphs", [
    ("GREYSCALE_IMAGE.dcm", (905, 315, 929, 340)),  # "X3" glued to the depth marker's grey triangle (ruler left out)
    ("ultrasound-multiframe.dcm", (706, 283, 728, 299)),  # "x2", turned 45 degrees, beside the sector's edge
])
def test_marks_cover_print_next_to_graphics_on_real_ultrasound(name, glyphs) -> None:
    """Both were left legible: the X fused with the triangle failed the glyph test and the line stopped at
    the 3; the "x2" merged with the dark gaps along the edge line (black top-hat) into a block taller
    than a line. Marks (padded as the scanner pads them) must cover the whole of each."""
    import pydicom
    from pydicom.pixels import iter_pixels

    from deidcli.pixels.stage import ultrasound_data_regions
    from tests.conftest import deid_data_file

    source = pydicom.dcmread(deid_data_file("ultrasounds", name))
    frame = next(iter(iter_pixels(source)))
    gray = frame if frame.ndim == 2 else frame.max(axis=2)
    marks = text_marks(gray, anatomy_mask(gray, ultrasound_data_regions(source)))
    x0, y0, x1, y1 = glyphs
    covered = np.zeros(gray.shape, bool)
    for mark in marks:  # padded as the scanner pads every mark
        mark = to_full_resolution(mark, 1.0, DEFAULT_PAD_RATIO, *gray.shape)
        covered[mark.y0 : mark.y1, mark.x0 : mark.x1] = True
    ink = gray[y0:y1, x0:x1] > 200
    assert covered[y0:y1, x0:x1][ink].mean() > 0.9


def test_print_at_the_frame_edge_is_a_mark_and_a_field_of_view_sliver_is_not() -> None:
    """A name printed flush with the left edge is still found (several marks); the sliver between a round field
    of view and the top edge (one mark lying along the border) is not print."""
    frame = np.zeros((256, 256), np.uint8)
    cv2.circle(frame, (128, 133), 132, 90, -1)  # the field of view, within a stroke of the top edge
    cv2.putText(frame, "DOE 1962", (0, 240), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 255, 1, cv2.LINE_8)
    anatomy = np.zeros(frame.shape, bool)
    marks = text_marks(frame, anatomy)
    assert any(m.x0 == 0 and m.y0 >= 220 for m in marks)
    assert not any(m.y0 == 0 for m in marks)


def test_dark_print_on_a_bright_plate_is_still_a_mark() -> None:
    """The field of dark print is the plate around it: its line stands out and stays a mark."""
    frame = np.zeros((200, 300), np.uint8)
    frame[40:100, 20:280] = 200
    glyphs = np.zeros_like(frame)
    cv2.putText(glyphs, "DOE 1962", (30, 80), cv2.FONT_HERSHEY_SIMPLEX, 0.7, 1, 2, cv2.LINE_8)
    frame[glyphs == 1] = 20
    marks = text_marks(frame, np.zeros(frame.shape, bool))
    ys, xs = np.nonzero(glyphs)
    assert any(m.x0 <= xs.min() + 12 and m.x1 >= xs.max() - 12 and m.y0 <= ys.min() + 2 for m in marks)


def test_print_cut_by_the_edge_of_its_band_is_marked_whole() -> None:
    """Print on a header band one row above the black under it: the band's edge is not flat, so the flatness
    test cut the glyphs in half (ALOKA's time under its date); the line must reach their feet."""
    frame = np.zeros((120, 300), np.uint8)
    frame[:24] = 65
    glyphs = np.zeros_like(frame)
    cv2.putText(glyphs, "11 24 20", (10, 22), cv2.FONT_HERSHEY_PLAIN, 1.0, 1, 1, cv2.LINE_8)
    frame[glyphs == 1] = 190
    marks = text_marks(frame, np.zeros(frame.shape, bool))
    assert marks
    assert max(m.y1 for m in marks) >= np.nonzero(glyphs)[0].max()


def test_colour_print_over_a_grey_picture_is_found_glyph_by_glyph() -> None:
    """Print drawn in one pure colour over grey speckle (ALOKA's green "L0" across its sector's edge) is found
    as one rectangle per glyph; a colour-flow map (many colours) and a lone tick are not print."""
    from deidcli.ocr.layout import colour_text_marks

    rng = np.random.default_rng(2)
    grey = rng.integers(20, 120, (200, 300), dtype=np.uint8)
    frame = np.repeat(grey[..., None], 3, axis=2)
    glyphs = np.zeros(grey.shape, np.uint8)
    cv2.putText(glyphs, "L0", (40, 60), cv2.FONT_HERSHEY_PLAIN, 1.0, 1, 1, cv2.LINE_8)
    frame[glyphs == 1] = (0, 250, 0)
    flow = np.zeros(grey.shape, np.uint8)
    cv2.ellipse(flow, (200, 140), (30, 12), 0, 0, 360, 1, -1)
    frame[flow == 1] = np.stack([rng.integers(150, 255, int(flow.sum())), rng.integers(0, 120, int(flow.sum())),
                                 np.zeros(int(flow.sum()), int)], axis=1).astype(np.uint8)
    frame[100:106, 250:252] = (0, 250, 0)  # a tick of a depth scale
    marks = colour_text_marks(frame)
    assert len(marks) == 2
    covered = np.zeros(grey.shape, bool)
    for mark in marks:
        covered[mark.y0 : mark.y1, mark.x0 : mark.x1] = True
    assert covered[glyphs == 1].all()
    assert not covered[flow == 1].any() and not covered[100:106, 250:252].any()
    assert covered.sum() < 3 * glyphs.sum()  # glyph by glyph, not the picture between them


def test_a_palette_photo_has_no_colour_print_but_print_drawn_on_it_is_found() -> None:
    """pydicom-data's OT-PAL-8-face is a photo in 256 LUT colours: every pixel is one exact colour, so the folds
    of its light blue shirt came apart into glyph-sized one-colour marks (11 before), blanked where no print was.
    A colour the picture holds elsewhere is not a drawn one; a name drawn on a grey plate over it in its own colour
    still is (gdcm-US-ALOKA-16's green "L0", a palette file too: tests/test_pixel_stage.py)."""
    import pydicom

    from deidcli.ocr.layout import colour_text_marks
    from deidcli.pixels.stage import palette_rgb8
    from tests.pixel_helpers import sample_file

    ds = pydicom.dcmread(sample_file("OT-PAL-8-face.dcm"), force=True)
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = pydicom.uid.ImplicitVRLittleEndian  # the file has no file meta
    rgb = palette_rgb8(ds.pixel_array, ds)
    assert colour_text_marks(rgb) == []
    glyphs = np.zeros(rgb.shape[:2], np.uint8)
    cv2.putText(glyphs, "KOWALSKI 1957", (200, 300), cv2.FONT_HERSHEY_PLAIN, 1.0, 1, 1, cv2.LINE_8)
    drawn = rgb.copy()
    drawn[285:310, 190:330] = 128
    drawn[glyphs == 1] = (0, 250, 0)
    covered = np.zeros(glyphs.shape, bool)
    for mark in colour_text_marks(drawn):
        covered[mark.y0 : mark.y1, mark.x0 : mark.x1] = True
    assert covered[glyphs == 1].all()


def test_a_piece_of_a_slanted_box_edge_is_not_print() -> None:
    """A short piece of a thin slanted line (a colour-flow box's edge cut by the flatness test) has a square
    enough box for the glyph test; it is a straight stroke, not a glyph. A date with slashes stays a mark."""
    frame = np.zeros((200, 300), np.uint8)
    cv2.line(frame, (40, 40), (52, 70), 255, 1, cv2.LINE_8)
    glyphs = np.zeros_like(frame)
    cv2.putText(glyphs, "03/07/1957", (100, 150), cv2.FONT_HERSHEY_SIMPLEX, 0.6, 1, 1, cv2.LINE_8)
    frame[glyphs == 1] = 255
    marks = text_marks(frame, np.zeros(frame.shape, bool))
    assert not any(m.x0 < 60 and m.y0 < 80 for m in marks)
    ys, xs = np.nonzero(glyphs)
    assert any(m.x0 <= xs.min() and m.x1 > xs.max() - 10 for m in marks)


def test_antialiased_digit_beside_a_sector_is_covered_through_its_gaps() -> None:
    """pydicom-data JPGLosslessP14SV1_1s_1f_8b: an antialiased "0" on black beside the sector is not drawn at one
    level, so its own line is dropped; the dark field around it (a line of the black top-hat, the field's own
    level) stands for it because the glyph's strokes cover 6.4 % of that line's box. Gaps between large
    structures hold none (under 1 % on gdcm-US-ALOKA-16) and stay unmasked."""
    import pydicom

    from deidcli.pixels.stage import ultrasound_data_regions
    from tests.pixel_helpers import sample_file

    source = pydicom.dcmread(sample_file("JPGLosslessP14SV1_1s_1f_8b.dcm"))
    gray = source.pixel_array
    marks = text_marks(gray, anatomy_mask(gray, ultrasound_data_regions(source)), drawn_only=True)
    covered = np.zeros(gray.shape, bool)
    for mark in marks:
        mark = to_full_resolution(mark, 1.0, DEFAULT_PAD_RATIO, *gray.shape)
        covered[mark.y0 : mark.y1, mark.x0 : mark.x1] = True
    ink = gray[300:327, 820:845] > 150
    assert covered[300:327, 820:845][ink].all()


def _covered_by_marks(gray: np.ndarray, marks: list[Rect]) -> np.ndarray:
    """Where the marks (padded as the scanner pads every mark) lie."""
    covered = np.zeros(gray.shape, bool)
    for mark in marks:
        mark = to_full_resolution(mark, 1.0, DEFAULT_PAD_RATIO, *gray.shape)
        covered[mark.y0 : mark.y1, mark.x0 : mark.x1] = True
    return covered


def test_ecg_trace_and_caliper_are_not_print_on_real_ultrasound() -> None:
    """deid-data ultrasound-multiframe, frame 14: the green ECG trace under the sector (a wavy 1-2 px line,
    153x45 px) and the white caliper's arms with their end ticks passed as lines of print and were blanked on
    every frame. They are traces (see layout.trace); the "x2" beside the caliper stays covered."""
    import pydicom
    from pydicom.pixels import pixel_array

    from deidcli.pixels.stage import ultrasound_data_regions
    from tests.conftest import deid_data_file

    path = deid_data_file("ultrasounds", "ultrasound-multiframe.dcm")
    source = pydicom.dcmread(path)
    rgb = pixel_array(path, index=14)
    gray = rgb.max(axis=2)
    anatomy = anatomy_mask(gray, ultrasound_data_regions(source))
    covered = _covered_by_marks(gray, text_marks(gray, anatomy, drawn_only=True))  # as the scanner calls it
    ecg = np.zeros(gray.shape, bool)
    ecg[530:595, 40:215] = (rgb[530:595, 40:215, 1].astype(int) - rgb[530:595, 40:215, 0] > 60)  # green
    assert ecg.sum() > 150
    assert not covered[ecg].any()
    caliper = np.zeros(gray.shape, bool)
    caliper[258:272, 648:680] = gray[258:272, 648:680] > 200  # upper arm and end tick, clear of the "x2" line
    caliper[330:390, 715:765] = gray[330:390, 715:765] > 200  # lower arm and end tick
    assert caliper.sum() > 60
    assert not covered[caliper].any()
    x2 = gray[283:299, 706:728] > 200
    assert covered[283:299, 706:728][x2].mean() > 0.9


def _joined_cursive(text: str, scale: float) -> np.ndarray:
    """A name in a script font drawn with 1-2 px strokes and joined along its baseline into one stroke
    (handwriting), as a 0/1 picture."""
    big = np.zeros((270, 1500), np.uint8)
    cv2.putText(big, text, (15, 200), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, scale * 3, 1, 1, cv2.LINE_8)
    thin = (cv2.resize(big * 255, (500, 90), interpolation=cv2.INTER_AREA) > 40).astype(np.uint8)
    _, _, stats, _ = cv2.connectedComponentsWithStats(thin, connectivity=8)
    glyphs = stats[1:][stats[1:, cv2.CC_STAT_HEIGHT] > 4]
    base = int(np.median(glyphs[:, 1] + glyphs[:, 3])) - 2
    cv2.line(thin, (int(glyphs[:, 0].min()), base), (int((glyphs[:, 0] + glyphs[:, 2]).max()), base), 1, 1)
    return thin


@pytest.mark.parametrize("name, scale", [("Ella Bode", 1.6), ("Wim Lum", 2.4), ("Munn", 2.4)])
def test_joined_cursive_name_is_print_and_an_ecg_like_trace_is_not(name, scale) -> None:
    """The attacker's case for the trace rule: a name written as one thin joined stroke is still a mark (its
    strokes fold back over each other, and it fills far more of its box than a trace); a wavy 1 px curve of
    the same size beside it is not."""
    frame = np.zeros((300, 700), np.uint8)
    writing = _joined_cursive(name, scale)
    frame[20:110, 50:550][writing == 1] = 230
    xs = np.arange(60, 400)
    ys = (240 + 18 * np.sin(xs / 9.0) * (np.abs(np.sin(xs / 40.0)) > 0.8) + 3 * np.sin(xs / 25.0)).astype(np.int32)
    cv2.polylines(frame, [np.stack([xs, ys], 1).reshape(-1, 1, 2)], False, 200, 1, cv2.LINE_8)
    covered = _covered_by_marks(frame, text_marks(frame, np.zeros(frame.shape, bool)))
    ink = frame[20:110] > 0
    assert covered[20:110][ink].mean() > 0.9
    assert not covered[200:300][frame[200:300] > 0].any()


def test_thin_touching_capitals_are_print_not_a_trace() -> None:
    """"MINN" in 1 px strokes, 30 px tall, its letters touching: one open component without loops or bars, as
    thin as a trace, but standing on a stem every few pixels (see layout.TRACE_STEM_SHARE): still a mark."""
    frame = np.zeros((120, 200), np.uint8)
    corners = [(2, 35), (2, 5), (14, 25), (26, 5), (26, 35), (30, 35), (30, 5), (30, 35), (34, 35), (34, 5),
               (52, 35), (52, 5), (52, 35), (56, 35), (56, 5), (74, 35), (74, 5)]
    for start, end in zip(corners[:-1], corners[1:], strict=True):
        cv2.line(frame, (start[0] + 60, start[1] + 40), (end[0] + 60, end[1] + 40), 220, 1, cv2.LINE_8)
    covered = _covered_by_marks(frame, text_marks(frame, np.zeros(frame.shape, bool)))
    assert covered[frame > 0].mean() > 0.9


def _colour_marks_on_the_whole_frame(rgb: np.ndarray, max_height: int = 48) -> list:
    """`colour_text_marks` as it was before speed6: every step on the whole frame (the oracle for its boxed form)."""
    from deidcli.geometry import Rect
    from deidcli.ocr import layout
    from deidcli.pixels.fit import commonest_counts

    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    chroma = np.maximum(np.maximum(red, green), blue) - np.minimum(np.minimum(red, green), blue)
    coloured = (chroma >= layout.COLOUR_CHROMA).astype(np.uint8)
    if not coloured.any():
        return []
    _, labels, stats, _ = cv2.connectedComponentsWithStats(coloured, connectivity=8)
    widths, heights = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    candidate = layout._glyph_flags(stats, max_height) & (np.maximum(widths, heights) >= layout.MIN_COLOUR_GLYPH)
    if not candidate.any():
        return []
    count = len(candidate)
    chosen = candidate[labels]
    key = red[chosen].astype(np.int32) << 16 | green[chosen].astype(np.int32) << 8 | blue[chosen]
    drawn = commonest_counts(labels[chosen], key, count) >= layout.UNIFORM_INK_SHARE * np.maximum(stats[:, 4], 1)
    near = cv2.dilate(np.where(chosen, labels, 0).astype(np.float32), np.ones((5, 5), np.uint8)).astype(np.int64)
    ring = (near > 0) & ~chosen
    ring_all = np.bincount(near[ring], minlength=count)
    ring_grey = np.bincount(near[ring & (chroma < layout.COLOUR_CHROMA // 2)], minlength=count)
    kept = candidate & drawn & (ring_grey >= layout.GREY_RING_SHARE * np.maximum(ring_all, 1))
    kept[0] = False
    if np.count_nonzero(kept) < 2:
        return []
    frame_keys = red.astype(np.int32) << 16 | green.astype(np.int32) << 8 | blue
    kept &= layout.own_colour(labels[chosen], key, kept, frame_keys[coloured.astype(bool)])
    if np.count_nonzero(kept) < 2:
        return []
    gap = max(3, int(np.median(heights[kept]))) | 1
    joined = cv2.morphologyEx(kept[labels].astype(np.uint8), cv2.MORPH_CLOSE,
                              cv2.getStructuringElement(cv2.MORPH_RECT, (gap, 1)))
    _, line_labels, line_stats, _ = cv2.connectedComponentsWithStats(joined, connectivity=8)
    lines: dict = {}
    for index in np.flatnonzero(kept):
        x, y, w, h = (int(v) for v in stats[index, :4])
        inside = line_labels[y : y + h, x : x + w][labels[y : y + h, x : x + w] == index]
        lines.setdefault(int(inside[0]), []).append(Rect(x, y, x + w, y + h))
    return [rect for line, rects in lines.items()
            if line and len(rects) >= 2 and line_stats[line, cv2.CC_STAT_HEIGHT] <= max_height for rect in rects]


def test_colour_marks_found_on_their_box_are_those_found_on_the_whole_frame() -> None:
    """speed6: `colour_text_marks` works on the box around its candidates and joins lines on the box around its
    marks (25 ms less per ultrasound frame). Print at the frame's edges and corners (where OpenCV's closing meets
    the border), lines a gap apart, several colours, a real palette ultrasound (ALOKA's green "L0"): the same
    rectangles, in the same order, as every step on the whole frame."""
    import pydicom

    from deidcli.ocr.layout import colour_text_marks
    from deidcli.pixels.stage import palette_rgb8
    from tests.conftest import pydicom_file

    rng = np.random.default_rng(5)
    frames = []
    for trial in range(24):
        grey = rng.integers(20, 120, (150, 220), dtype=np.uint8)
        frame = np.repeat(grey[..., None], 3, axis=2)
        for _ in range(int(rng.integers(1, 5))):
            glyphs = np.zeros(grey.shape, np.uint8)
            origin = (int(rng.integers(-8, 200)), int(rng.integers(6, 160)))
            cv2.putText(glyphs, "AB 12", origin, cv2.FONT_HERSHEY_PLAIN, float(rng.choice([0.8, 1.0, 1.5])), 1,
                        int(rng.integers(1, 3)), cv2.LINE_8)
            frame[glyphs == 1] = ((0, 250, 0), (250, 200, 0), (0, 120, 255))[trial % 3]
        frames += [frame, np.ascontiguousarray(frame[::-1, ::-1])]
    ds = pydicom.dcmread(pydicom_file("gdcm-US-ALOKA-16.dcm"))
    frames.append(palette_rgb8(ds.pixel_array, ds))
    found = 0
    for frame in frames:
        marks = colour_text_marks(frame)
        assert marks == _colour_marks_on_the_whole_frame(frame)
        found += len(marks)
    assert found > 50
