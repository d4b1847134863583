"""Masks fitted to the print they cover (deidcli.pixels.fit): trimmed on a flat field or at the print's own
level, kept whole wherever the print could be faint on texture. Every glyph pixel stays inside."""

from __future__ import annotations

import cv2
import numpy as np
import pydicom
import pytest

from deidcli.geometry import Rect
from deidcli.pixels.fit import fit_to_ink


def _print(frame: np.ndarray, text: str, origin: tuple[int, int], value: int) -> np.ndarray:
    """Draw `text` at `value`; returns the glyph mask."""
    glyphs = np.zeros(frame.shape[:2], np.uint8)
    cv2.putText(glyphs, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 1.0, 1, 2, cv2.LINE_8)
    frame[glyphs == 1] = value
    return glyphs.astype(bool)


def _inside(rect: Rect, glyphs: np.ndarray) -> bool:
    ys, xs = np.nonzero(glyphs)
    return rect.x0 <= xs.min() and rect.y0 <= ys.min() and xs.max() < rect.x1 and ys.max() < rect.y1


def _flat_field() -> np.ndarray:
    return np.full((200, 400), 100, np.uint16)


def _tissue() -> np.ndarray:
    return np.random.default_rng(3).integers(200, 1800, (200, 400)).astype(np.uint16)


@pytest.mark.parametrize(("make_frame", "level"), [(_flat_field, 900), (_tissue, 4095)], ids=["flat", "tissue"])
def test_box_around_print_at_one_level_is_trimmed_to_the_print(make_frame, level: int) -> None:
    """On a flat field, or over tissue when the print is drawn at one level, the mask shrinks to the words."""
    frame = make_frame()
    glyphs = _print(frame, "DOE JANE", (60, 100), level)
    box = Rect(20, 50, 330, 140)
    fitted = fit_to_ink(frame, box)
    assert _inside(fitted, glyphs)
    assert fitted.area < 0.6 * box.area


def test_faint_print_over_tissue_keeps_the_whole_box() -> None:
    """No print level (lossy or blended print) on texture: nothing tells glyph from tissue, keep all."""
    rng = np.random.default_rng(4)
    frame = rng.integers(200, 1800, (200, 400)).astype(np.uint16)
    glyphs = _print(frame, "DOE JANE", (60, 100), 0)
    frame[glyphs] = rng.integers(1900, 2100, int(glyphs.sum())).astype(np.uint16)
    box = Rect(20, 50, 330, 140)
    assert fit_to_ink(frame, box) == box


def test_coloured_print_over_colour_texture_keeps_the_whole_box() -> None:
    """Yellow print mixes two samples at 255 with one at 0: no single neutral level to trust, nothing trimmed."""
    rng = np.random.default_rng(5)
    frame = rng.integers(0, 255, (200, 400, 3)).astype(np.uint8)
    glyphs = _print(frame[..., 0], "DOE JANE", (60, 100), 255)
    frame[glyphs] = (255, 255, 0)
    box = Rect(20, 50, 330, 140)
    assert fit_to_ink(frame, box) == box


def test_white_print_over_colour_texture_is_trimmed_to_the_print() -> None:
    """White print (every sample 255) over colour speckle: the glyphs are the core's white, the box their extent."""
    rng = np.random.default_rng(5)
    frame = rng.integers(0, 250, (200, 400, 3)).astype(np.uint8)
    glyphs = _print(frame[..., 0], "DOE JANE", (60, 100), 255)
    frame[glyphs] = 255
    box = Rect(20, 50, 330, 140)
    fitted = fit_to_ink(frame, box)
    assert _inside(fitted, glyphs) and fitted.area < 0.6 * box.area


def test_tissue_entering_from_the_border_is_not_print() -> None:
    """A strip of image under a header line (US1's "IM#2" box) is not this box's print: trimmed away."""
    frame = np.zeros((200, 400), np.uint8)
    glyphs = _print(frame, "IM#2", (40, 60), 230)
    rng = np.random.default_rng(6)
    frame[88:] = rng.integers(40, 200, (112, 400)).astype(np.uint8)
    box = Rect(20, 20, 160, 96)
    fitted = fit_to_ink(frame, box)
    assert _inside(fitted, glyphs)
    assert fitted.y1 <= 80


def test_glyph_cut_by_the_box_end_keeps_its_mask() -> None:
    """The detector fell short of the last glyph and the margin covers only part of it: that part is on the
    line's rows, so the fit keeps it (it was masked before the fit)."""
    frame = np.zeros((120, 400), np.uint8)
    glyphs = _print(frame, "1962-03-0", (20, 60), 230)
    last = int(np.flatnonzero(glyphs.any(axis=0))[-1]) + 8  # the "4", 8 columns after the rest
    glyphs |= _print(frame, "4", (last, 60), 230)
    box = Rect(5, 25, last + 5, 75)  # the margin reaches 5 columns into the "4", not the box's core
    fitted = fit_to_ink(frame, box)
    assert fitted.x1 == box.x1


def test_a_level_filling_most_of_the_box_is_the_field_not_the_print() -> None:
    """Mid-grey print over tissue beside a black hole that fills most of the box's core: the black is the
    field the print stands on; trimmed to it, the box would leave the print's far end uncovered."""
    frame = _tissue()
    frame[60:130, 20:230] = 0
    glyphs = _print(frame, "DOE JANE 1962", (30, 100), 1000)
    box = Rect(10, 50, 300, 140)
    assert _inside(fit_to_ink(frame, box), glyphs)


def test_resampled_white_print_over_colour_texture_is_trimmed_to_the_print() -> None:
    """White print shrunk with its picture (antialiased: 180-250, no single level) over colour speckle: the
    pixels near the whitest are the glyphs, and every glyph pixel stays inside the fitted box."""
    rng = np.random.default_rng(8)
    big = np.zeros((400, 800), np.uint8)
    cv2.putText(big, "DOE JANE", (120, 200), cv2.FONT_HERSHEY_SIMPLEX, 2.0, 255, 4, cv2.LINE_AA)
    shown = cv2.resize(big, (400, 200), interpolation=cv2.INTER_AREA)
    frame = rng.integers(0, 120, (200, 400, 3)).astype(np.uint8)
    frame = np.maximum(frame, shown[..., None])
    glyphs = shown > 60
    ys, xs = np.nonzero(glyphs)
    box = Rect(int(xs.min()) - 12, int(ys.min()) - 12, int(xs.max()) + 13, int(ys.max()) + 13)  # the scanner's margin
    fitted = fit_to_ink(frame, box)
    assert _inside(fitted, glyphs) and fitted.area < 0.7 * box.area


def test_white_word_beside_a_coloured_one_keeps_the_whole_box() -> None:
    """A white word and a yellow one in one box over colour texture: the white level does not reach across the
    box, so the box is not trimmed to it (the yellow word would be left uncovered)."""
    rng = np.random.default_rng(9)
    frame = rng.integers(0, 200, (200, 400, 3)).astype(np.uint8)
    white = _print(frame[..., 0], "DOE", (40, 100), 255)
    frame[white] = 255
    yellow = _print(frame[..., 0], "JANE 1962", (150, 100), 255)
    frame[yellow] = (255, 255, 0)
    box = Rect(20, 60, 340, 120)
    fitted = fit_to_ink(frame, box)
    assert _inside(fitted, white | yellow)


def test_print_above_a_band_does_not_take_the_band() -> None:
    """A line of print one black row above a grey band (ALOKA's "9123 5.0 R15" over its "3:PELVIS" band): the
    band crossing the box is a structure, and the mask ends at the print instead of blacking out the band."""
    frame = np.zeros((200, 400), np.uint16)
    frame[112:] = 45088
    glyphs = _print(frame, "9123 5.0", (40, 110), 48160)
    box = Rect(20, 80, 330, 128)
    fitted = fit_to_ink(frame, box)
    assert _inside(fitted, glyphs)
    assert fitted.y1 <= 113


def test_print_on_a_plate_inside_the_box_is_fitted_against_the_plate() -> None:
    """A toolbar label: the box's rim is the black around the toolbar, the core lies on the grey plate. Against
    the black, the plate (with the print) was one structure and the mask shrank onto nothing of the print."""
    frame = np.zeros((200, 400), np.uint8)
    frame[90:140] = 40
    glyphs = _print(frame, "Sector", (60, 125), 150)
    box = Rect(40, 80, 200, 150)
    fitted = fit_to_ink(frame, box)
    assert _inside(fitted, glyphs)


def test_tissue_under_lossy_print_is_not_kept_by_ringing() -> None:
    """Lossy print on black with the image's edge entering the box from below: single pixels of ringing
    scattered over the box and the textured image are not print (US1_UNCI's "IM#2": 10 rows of image kept)."""
    rng = np.random.default_rng(6)
    frame = np.zeros((200, 400), np.int32)
    frame[150:] = rng.integers(20, 120, (50, 400))
    glyphs = _print(frame, "IM#2", (60, 130), 250)
    frame[glyphs] += rng.integers(-6, 6, int(glyphs.sum()))
    specks = rng.integers(0, 2, (200, 400)) * (rng.random((200, 400)) < 0.03) * rng.integers(1, 12, (200, 400))
    frame[:150] += specks[:150]
    frame = frame.clip(0, 255).astype(np.uint8)
    box = Rect(40, 90, 200, 165)
    fitted = fit_to_ink(frame, box)
    assert _inside(fitted, glyphs)
    assert fitted.y1 <= 150


def test_antialiased_print_over_tissue_is_trimmed_to_the_print() -> None:
    """Print blended into tissue holds the frame's top value only at stroke centres (generated mr_multiframe):
    the near-top level stands for it, and the mask shrinks to the words."""
    rng = np.random.default_rng(8)
    frame = rng.integers(0, 300, (200, 400)).astype(np.float64)
    glyphs = np.zeros((200, 400), np.uint8)
    cv2.putText(glyphs, "DOB 03/07/1957", (40, 110), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 255, 2, cv2.LINE_AA)
    alpha = glyphs / 255.0
    top = 499.0
    frame = (frame * (1 - alpha) + top * alpha * 0.97).round()
    frame[glyphs == 255] = top
    frame = frame.astype(np.uint16)
    box = Rect(20, 70, 330, 140)
    fitted = fit_to_ink(frame, box)
    assert _inside(fitted, glyphs >= 128)
    assert fitted.area < 0.7 * box.area


#: The box over "12/0" of a 6 px date drawn antialiased over a CT body (generated ct128_tiny, stored values
#: 896-2191; the frame's range is 2063).
CT_TINY_DATE = np.array([
    [895, 908, 918, 888, 882, 900, 911, 920, 920, 939, 953, 952, 939, 937, 929, 945, 948, 922, 939, 990, 1000],
    [902, 910, 929, 925, 935, 942, 934, 924, 909, 905, 905, 920, 939, 960, 969, 990, 991, 959, 977, 1016, 1012],
    [977, 968, 957, 925, 914, 915, 924, 924, 914, 916, 922, 920, 921, 933, 952, 983, 978, 948, 951, 951, 939],
    [985, 972, 948, 918, 912, 908, 914, 916, 904, 917, 922, 910, 913, 916, 922, 939, 922, 892, 889, 895, 906],
    [956, 936, 933, 935, 928, 917, 912, 905, 884, 898, 913, 915, 931, 926, 920, 936, 928, 905, 912, 922, 936],
    [924, 908, 913, 921, 915, 919, 933, 935, 905, 902, 917, 911, 897, 880, 889, 917, 930, 926, 937, 1259, 1168],
    [907, 908, 929, 937, 937, 936, 939, 954, 1546, 1517, 907, 885, 1251, 1849, 1816, 1241, 881, 879, 894, 1893, 1003],
    [923, 926, 928, 929, 934, 938, 989, 1846, 1895, 1764, 956, 1083, 2046, 1127, 1179, 2118, 1010, 952, 1216, 1721, 1140],
    [933, 928, 943, 959, 944, 945, 965, 1269, 1307, 1773, 956, 1062, 1277, 940, 960, 2046, 1076, 937, 1737, 1194, 1473],
    [971, 934, 917, 903, 878, 899, 914, 927, 1296, 1770, 940, 922, 917, 920, 1629, 1743, 921, 1016, 1881, 887, 1526],
    [923, 915, 917, 915, 903, 908, 891, 880, 1247, 1747, 922, 945, 937, 1662, 1817, 977, 955, 1539, 1404, 912, 1486],
    [902, 902, 911, 932, 942, 942, 913, 908, 1281, 1760, 921, 917, 1656, 1822, 937, 910, 927, 1938, 971, 926, 1270],
    [936, 930, 931, 948, 952, 950, 1056, 1986, 2044, 2122, 1986, 1571, 2191, 2022, 1985, 1984, 1508, 1606, 931, 923, 921],
    [938, 945, 941, 932, 934, 944, 930, 924, 926, 930, 934, 946, 945, 950, 943, 936, 1588, 1093, 950, 943, 930],
    [960, 957, 928, 924, 936, 945, 929, 955, 967, 954, 952, 954, 939, 938, 937, 949, 954, 957, 953, 929, 939]], np.uint16)


def test_antialiased_word_cut_by_the_box_keeps_its_mask() -> None:
    """Small antialiased print over a CT body, the box ending inside the word: the cut word enters the box
    from its border and is textured like tissue, yet it is print (generated ct128_tiny's date lost its "1":
    the box shrank to a few pixels at the frame's top value)."""
    glyphs = CT_TINY_DATE >= 1200
    fitted = fit_to_ink(CT_TINY_DATE, Rect(0, 0, 21, 15), span=2063.0)
    assert _inside(fitted, glyphs)


#: The box over "2/1967" of the same date (the line runs across the box and out of its right side).
CT_TINY_YEAR = np.array([
    [921, 933, 952, 983, 978, 948, 951, 951, 939, 969, 963, 958, 978, 987, 997, 988, 1001, 1014, 1042, 1066, 1095, 1081, 1068, 1083, 1076, 1079, 1083, 1089, 1072, 1067, 1072, 1079, 1096, 1082, 1079, 1076, 1056, 1056, 1058, 1055, 1047],
    [913, 916, 922, 939, 922, 892, 889, 895, 906, 933, 920, 915, 918, 929, 940, 944, 993, 1015, 1013, 1025, 1057, 1072, 1068, 1077, 1090, 1097, 1086, 1074, 1051, 1058, 1077, 1075, 1071, 1061, 1070, 1080, 1079, 1083, 1087, 1079, 1067],
    [931, 926, 920, 936, 928, 905, 912, 922, 936, 962, 965, 956, 951, 941, 930, 942, 978, 981, 969, 960, 967, 990, 992, 987, 1001, 1008, 1010, 1050, 1079, 1091, 1090, 1067, 1048, 1037, 1032, 1039, 1058, 1087, 1103, 1103, 1090],
    [897, 880, 889, 917, 930, 926, 937, 1259, 1168, 945, 938, 942, 950, 936, 913, 884, 880, 908, 930, 939, 943, 1283, 1197, 949, 940, 956, 975, 999, 1012, 1018, 1015, 1008, 1015, 1025, 1030, 1026, 1003, 986, 984, 994, 999],
    [1251, 1849, 1816, 1241, 881, 879, 894, 1893, 1003, 1358, 1867, 1918, 1353, 915, 1283, 1860, 1827, 1283, 921, 899, 893, 1894, 1017, 939, 1540, 1527, 947, 938, 1416, 1878, 1842, 1282, 957, 962, 1066, 1760, 960, 1120, 1866, 1868, 1870],
    [2046, 1127, 1179, 2118, 1010, 952, 1216, 1721, 1140, 2046, 1181, 1795, 2191, 1177, 2041, 1101, 1160, 2117, 979, 921, 1190, 1712, 961, 1839, 1886, 1747, 889, 1230, 1950, 1064, 1165, 2046, 1122, 933, 1825, 1415, 956, 974, 1102, 1100, 1168],
    [1277, 940, 960, 2046, 1076, 937, 1737, 1194, 1473, 1674, 939, 1684, 1732, 1467, 1267, 911, 932, 2045, 1073, 945, 1743, 1211, 968, 1260, 1287, 1754, 934, 1525, 1587, 958, 957, 1776, 1332, 1473, 2083, 1478, 1072, 939, 941, 932, 1477],
    [917, 920, 1629, 1743, 921, 1016, 1881, 887, 1526, 1526, 1305, 1303, 1598, 1473, 940, 928, 1624, 1745, 928, 1030, 1892, 942, 951, 971, 1316, 1764, 951, 1207, 2002, 1220, 1285, 2067, 1188, 2092, 1490, 1470, 2035, 1109, 970, 977, 2005],
    [937, 1662, 1817, 977, 955, 1539, 1404, 912, 1486, 1589, 1688, 937, 1671, 1433, 933, 1665, 1809, 953, 938, 1524, 1393, 924, 935, 945, 1300, 1752, 897, 901, 1247, 1703, 2126, 1506, 1448, 1665, 915, 940, 1594, 1487, 921, 1301, 1808],
    [1656, 1822, 937, 910, 927, 1938, 971, 926, 1270, 2132, 1566, 962, 2004, 1181, 1656, 1821, 932, 912, 931, 1932, 945, 925, 917, 902, 1285, 1753, 914, 936, 946, 1361, 1855, 921, 1285, 1866, 956, 944, 1802, 1353, 934, 1843, 1265],
    [2191, 2022, 1985, 1984, 1508, 1606, 931, 923, 921, 1961, 2156, 2060, 1638, 1326, 2191, 2022, 1988, 1990, 1533, 1610, 919, 917, 1032, 1980, 2044, 2122, 1990, 1324, 1069, 2010, 1052, 913, 937, 1630, 1949, 1934, 1682, 959, 1097, 1971, 948],
    [945, 950, 943, 936, 1588, 1093, 950, 943, 930, 934, 983, 972, 933, 942, 944, 940, 926, 919, 1592, 1089, 921, 909, 913, 904, 913, 909, 916, 939, 948, 948, 962, 941, 938, 942, 955, 967, 925, 909, 900, 923, 920],
    [939, 938, 937, 949, 954, 957, 953, 929, 939, 951, 956, 936, 923, 937, 945, 938, 909, 909, 920, 924, 916, 923, 942, 941, 954, 951, 925, 928, 928, 928, 948, 946, 938, 926, 913, 935, 939, 942, 918, 912, 899]], np.uint16)


def test_antialiased_line_across_the_box_is_print_not_tissue() -> None:
    """The cut line spans most of the box's width and is textured like tissue; it lies on the print's rows and
    does not cross the box from top to bottom, so it keeps its mask ("1967" was left legible at one point)."""
    glyphs = CT_TINY_YEAR >= 1200
    fitted = fit_to_ink(CT_TINY_YEAR, Rect(0, 0, 41, 13), span=2063.0)
    assert _inside(fitted, glyphs)


def test_commonest_counts_equal_a_unique_per_component() -> None:
    """The one-sort count (a np.unique per component cost 0.6 s per mammogram) gives, for every wanted
    component, the pixel count of its commonest sample tuple, and 0 elsewhere: gray and colour samples."""
    from deidcli.pixels.fit import commonest_counts

    rng = np.random.default_rng(20261201)
    for _ in range(200):
        pixels, samples, components = int(rng.integers(1, 300)), int(rng.integers(1, 4)), int(rng.integers(1, 7))
        values = rng.integers(0, int(rng.integers(1, 6)), (pixels, samples)).astype(np.float64)
        labels = rng.integers(0, components, pixels)
        wanted = rng.random(components) < 0.6
        chosen = wanted[labels]
        counts = commonest_counts(labels[chosen], values[chosen], components)
        for label in range(components):
            mine = labels == label
            expected = np.unique(values[mine], axis=0, return_counts=True)[1].max() if wanted[label] and mine.any() else 0
            assert counts[label] == expected


def test_commonest_row_is_the_row_np_unique_along_an_axis_gives() -> None:
    """The field of a rim (fit.commonest_row: a flat sort, or a lexsort for colour) is the row that
    `np.unique(axis=0)` and the first largest count pick, ties included (the lowest tied row), for gray and
    colour samples, integer-valued and fractional; the distances from it are those of the reduction it replaced."""
    from deidcli.pixels.fit import _distance, commonest_row

    rng = np.random.default_rng(20261202)
    for _ in range(300):
        pixels, samples = int(rng.integers(1, 200)), int(rng.integers(1, 4))
        values = rng.integers(-3, int(rng.integers(1, 5)), (pixels, samples)).astype(np.float64)
        if rng.random() < 0.3:
            values += rng.random((pixels, samples)).round(1)
        found, counts = np.unique(values, axis=0, return_counts=True)
        expected = found[int(np.argmax(counts))]
        field, count = commonest_row(values)
        assert field.shape == expected.shape and np.array_equal(field, expected)
        assert count == counts.max()
        assert np.array_equal(_distance(values, field), np.abs(values - expected).max(axis=1))
        integers = values.astype(np.int64).astype(np.uint16)  # stored samples (mask.field_fill)
        found, counts = np.unique(integers, axis=0, return_counts=True)
        stored, count = commonest_row(integers)
        assert np.array_equal(stored, found[int(np.argmax(counts))]) and stored.dtype == np.uint16
        assert count == counts.max()


def test_print_crossing_from_the_padding_onto_the_field_of_view_keeps_both_parts() -> None:
    """A line of print that starts on a CT's black padding and runs onto the grey disc of its field of view:
    the disc's noisy air crosses the box as a plate, and a fit to the ink on the plate alone dropped the words
    on the padding (red team 4's planted ct_letterspaced, bench/redteam: `C I A R A N` left legible)."""
    from tests.conftest import pydicom_file

    stored = pydicom.dcmread(pydicom_file("693_UNCI.dcm")).pixel_array
    cover = np.zeros(stored.shape, np.uint8)  # antialiased, as the planted line (and most burned-in print)
    cv2.putText(cover, "C I A R A N  F I T Z", (4, 13), cv2.FONT_HERSHEY_PLAIN, 0.67, 255, 1, cv2.LINE_AA)
    share = cover / 255.0
    frame = np.rint(stored * (1 - share) + float(stored.max()) * share).astype(stored.dtype)
    glyphs = share > 0.25
    padding = frame[16:24, 0:40]
    # one value under the line's start, the field of view's noisy air under its end
    assert (padding == padding[0, 0]).all() and frame[16:24, 100:160].std() > 5
    fitted = fit_to_ink(frame, Rect(0, 0, 164, 24))
    assert _inside(fitted, glyphs)


def test_standing_name_beside_tissue_is_fitted_along_its_length() -> None:
    """A name written bottom to top along a CT's left edge, its lower word touching the head's outline: fitted
    upright, the word joined to the tissue was taken for tissue lying off the print's rows and dropped, and the
    mask kept only the upper word (red team 4's planted ct_vertical, bench/redteam: `ZHANG` left legible)."""
    from tests.conftest import pydicom_file

    stored = pydicom.dcmread(pydicom_file("693_UNCI.dcm")).pixel_array
    lying = np.zeros((24, 100), np.uint8)
    (_, cap), _ = cv2.getTextSize("H", cv2.FONT_HERSHEY_DUPLEX, 1.0, 1)
    cv2.putText(lying, "ZHANG WEI", (2, 18), cv2.FONT_HERSHEY_DUPLEX, 12 / cap, 255, 1, cv2.LINE_AA)
    ys, xs = np.nonzero(lying)
    standing = np.rot90(lying[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])  # read bottom to top
    cover = np.zeros(stored.shape, np.uint8)
    cover[120 : 120 + standing.shape[0], 2 : 2 + standing.shape[1]] = standing
    share = cover / 255.0
    frame = np.rint(stored * (1 - share) + float(stored.max()) * share).astype(stored.dtype)
    glyphs = share > 0.25
    fitted = fit_to_ink(frame, Rect(0, 94, 26, 209))
    assert _inside(fitted, glyphs)


def test_vertical_print_touching_the_field_of_view_keeps_the_glyphs_that_touch_it() -> None:
    """Vertical print along a CT's left edge whose first word touches the noisy edge of the field of view: that
    word and the tissue join into one textured component entering the box, which was dropped whole, and the mask
    fitted to the other word left `ZHANG` of `ZHANG WEI` legible (red team 4's planted ct_vertical)."""
    from tests.conftest import pydicom_file

    stored = pydicom.dcmread(pydicom_file("693_UNCI.dcm")).pixel_array
    (_, cap), _ = cv2.getTextSize("H", cv2.FONT_HERSHEY_DUPLEX, 1.0, 1)
    line = np.zeros((30, 110), np.uint8)  # capitals 12 px tall, as bench/redteam/make_planted.py draws them
    cv2.putText(line, "ZHANG WEI", (5, 20), cv2.FONT_HERSHEY_DUPLEX, 12 / cap, 255, 1, cv2.LINE_AA)
    ys, xs = np.nonzero(line > 5)
    turned = np.rot90(line[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])  # reads bottom to top
    cover = np.zeros(stored.shape, np.uint8)
    cover[120 : 120 + turned.shape[0], 2 : 2 + turned.shape[1]] = turned  # where the planted case has it
    share = cover / 255.0
    frame = np.rint(stored * (1 - share) + float(stored.max()) * share).astype(stored.dtype)
    glyphs = share > 0.25
    ys, xs = np.nonzero(glyphs)
    assert (np.abs(frame[ys.max() - 8 : ys.max() + 1, xs.max() + 1 : xs.max() + 6] - stored.min()) > 100).any()  # touching
    fitted = fit_to_ink(frame, Rect(0, 94, 26, 209))
    assert _inside(fitted, glyphs)


def _toolbar() -> np.ndarray:
    """A grey toolbar plate (rows 90-140) on black, with its lighter top edge across the whole width."""
    frame = np.zeros((200, 400, 3), np.uint8)
    frame[90:140] = (40, 44, 52)
    frame[90] = (90, 92, 96)
    return frame


def _icon(frame: np.ndarray, x0: int, y0: int, size: int, colour: tuple[int, int, int]) -> np.ndarray:
    """An outlined cone-like icon (a triangle), `size` px tall; returns its pixel mask."""
    mask = np.zeros(frame.shape[:2], np.uint8)
    points = np.array([[x0 + size // 2, y0], [x0, y0 + size - 1], [x0 + size - 1, y0 + size - 1]], np.int32)
    cv2.polylines(mask, [points], True, 1, 2)
    frame[mask == 1] = colour
    return mask.astype(bool)


@pytest.mark.parametrize("touching", [False, True], ids=["apart", "touching"])
def test_name_touching_an_oversized_mark_keeps_it_in_its_mask(touching: bool) -> None:
    """A mark drawn in the print's own grey, almost twice its height, at the end of a line: apart from the line it
    is a graphic and stays visible; an attacker's name glued to it makes one mark with it, masked whole."""
    frame = _toolbar()
    glyphs = _print(frame[..., 0], "DOE", (86, 128), 1)
    frame[glyphs] = (113, 117, 123)
    mark = _icon(frame, 20, 96, 40, (113, 117, 123))
    if touching:
        frame[118:121, 55:90] = (113, 117, 123)  # a stroke joining the mark to the "D"
    fitted = fit_to_ink(frame, Rect(14, 86, 170, 142))
    assert _inside(fitted, glyphs)
    assert _inside(fitted, mark) == touching


def test_a_word_with_capitals_and_descenders_beside_digits_is_all_print() -> None:
    """"Page 1/3": the word is ~1.35 times as tall as the digits (capital and descender): not an end graphic."""
    frame = _toolbar()
    glyphs = _print(frame[..., 0], "Page 1/3", (50, 125), 1)
    frame[glyphs] = (113, 117, 123)
    fitted = fit_to_ink(frame, Rect(40, 86, 260, 142))
    assert _inside(fitted, glyphs)


def test_rule_lines_are_whole_thin_lines_not_strokes_or_noise() -> None:
    """A grid line across the box is a rule; a glyph's bar is not, nor a full row of noise under glyphs."""
    from deidcli.pixels.fit import rule_lines

    ink = np.zeros((30, 100), bool)
    ink[:, 50] = True  # a grid line from border to border
    ink[12:22, 20:30] = True  # a glyph-sized block of strokes
    ink[5, :] = True  # a rule across the box
    ink[25, :] = True  # a full row of noise ...
    ink[24, :70] = True  # ... right under glyph ink
    lines = rule_lines(ink)
    assert lines[:, 50].all() and lines[5].all()
    assert not lines[12:22, 20:30].any() and not lines[25, :49].any()



def _script_name_over_mr(second_line: bool = False) -> tuple[np.ndarray, np.ndarray, Rect]:
    """pydicom-data's emri_small (64x64 MR) last frame enlarged to 320x320, a thin antialiased script name drawn at
    its top value near the bottom, and the box the scanner gives it, three times the name's height (red team 4's
    mr_multiframe_last). Returns (frame, the pixels the name changed, the box)."""
    from tests.pixel_helpers import sample_file

    mr = pydicom.dcmread(sample_file("emri_small.dcm")).pixel_array[-1].astype(np.float32)
    frame = np.clip(cv2.resize(mr, (320, 320), interpolation=cv2.INTER_CUBIC), 0, None).astype(np.float64)
    alpha = np.zeros(frame.shape, np.uint8)
    cv2.putText(alpha, "Featherstonehaugh Ottoline", (6, 309), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 0.5, 255, 1,
                cv2.LINE_AA)
    if second_line:  # a line below, cut by the box's lower edge
        cv2.putText(alpha, "Featherstonehaugh", (6, 326), cv2.FONT_HERSHEY_SCRIPT_SIMPLEX, 0.5, 255, 1, cv2.LINE_AA)
    a = alpha / 255.0
    top = float(frame.max())
    drawn = (frame * (1 - a) + top * a).round().astype(np.uint16)
    return drawn, np.abs(drawn.astype(np.float64) - frame.round()) > 2, Rect(0, 285, 170, 320)


def test_thin_print_over_tissue_is_trimmed_to_the_detector_box_not_kept_whole() -> None:
    """A thin script name over MR tissue fills 2-5 % of a box padded to three times its height: under the print
    level's share, and the tissue's dark gaps (more of the rim than of the core) passed for dark print, so the
    whole box was blacked out (3.6 % of mr_multiframe_last's text-free pixels). The scanner's margin, where no
    pixel of the print's level lies, is trimmed; every pixel the name changed stays inside."""
    frame, glyphs, box = _script_name_over_mr()
    fitted = fit_to_ink(frame, box)
    assert _inside(fitted, glyphs & box_mask(box, frame.shape))
    assert fitted.area < 0.8 * box.area


def test_thin_print_whose_level_reaches_the_box_rim_keeps_the_whole_box() -> None:
    """The same name with a line below it cut by the box's lower edge: the print's level on the rim, nothing
    tells where the print ends; the box stays whole."""
    frame, _, box = _script_name_over_mr(second_line=True)
    assert fit_to_ink(frame, box) == box


def box_mask(box: Rect, shape: tuple[int, ...]) -> np.ndarray:
    inside = np.zeros(shape[:2], bool)
    inside[box.y0 : box.y1, box.x0 : box.x1] = True
    return inside


def test_print_on_a_plate_entering_from_one_side_is_fitted_on_the_plate_and_filled_with_it() -> None:
    """A name on a blue label plate on black, noisy chrome, in a box that holds black on three sides and the plate
    on the fourth (red team 4's us_label_boxes): no field held the rim, the box was kept whole and filled black, the
    plate's left part and the black around it with it. Fitted against the plate, the mask keeps to the plate's
    rows, every glyph pixel inside, and takes the plate's colour."""
    from deidcli.pixels.mask import field_fill

    rng = np.random.default_rng(12)
    frame = np.repeat(rng.integers(1, 6, (60, 300), dtype=np.uint8)[..., None], 3, axis=2)
    frame[4:30, 10:215] = (30, 60, 160)
    glyphs = np.zeros(frame.shape[:2], np.uint8)
    cv2.putText(glyphs, "WOJCIK HALINA", (15, 21), cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1, 1, cv2.LINE_8)
    frame[glyphs == 1] = 255
    box = Rect(5, 0, 133, 36)
    fitted = fit_to_ink(frame, box)
    assert _inside(fitted, glyphs.astype(bool) & (np.arange(300) < 133)[None, :])
    assert fitted.y0 >= 4 and fitted.y1 <= 30 and fitted.x0 >= 10
    assert field_fill(frame, fitted) == (30, 60, 160)


def test_print_crossing_the_edge_of_its_flat_plate_keeps_its_first_digits() -> None:
    """693_UNCI's flat plate with a bold antialiased date 20 levels above it, its first digits over the plate's
    shaded edge, drawn as the red team's variants draw it (tissue_693_unci_30px_+20): the plate is the box's
    commonest value, so the print's level is the commonest of the rest. The fit cut the mask at the edge (x 192)
    and left "19" legible."""
    import sys
    from pathlib import Path

    from tests.conftest import pydicom_file

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench" / "redteam"))
    from make_planted import Canvas, Style

    canvas = Canvas(pydicom.dcmread(pydicom_file("693_UNCI.dcm")).pixel_array.astype(np.float64)[None].copy())
    canvas.draw("1956-07-01", "date", 151, 247, 30, 1076.0, Style("triplex", thick=3))
    frame = canvas.pixels[0].astype(np.int16)
    x0, _, x1, _ = canvas.boxes[0]["box"]
    fitted = fit_to_ink(frame, Rect(136, 225, 375, 295))  # the scanner's rectangle on the variant
    assert fitted.x0 <= x0 + 2 and fitted.x1 >= x1


def _real_boxes():
    """Ink masks of boxes on real frames (ultrasound with chrome and print, MR, CT), at several tolerances:
    flat fields, print, noise, plates and textures crossing the box; with each box's distance from its field."""
    from deidcli.pixels import fit
    from tests.conftest import pydicom_file

    rng = np.random.default_rng(12)
    for name in ("US1_UNCR.dcm", "MR_small.dcm", "CT_small.dcm", "gdcm-US-ALOKA-16.dcm"):
        frame = pydicom.dcmread(pydicom_file(name)).pixel_array
        frame = frame[0] if frame.ndim == 4 or (frame.ndim == 3 and frame.shape[-1] != 3) else frame
        rows, cols = frame.shape[:2]
        for _ in range(40):
            height, width = int(rng.integers(8, min(60, rows))), int(rng.integers(8, min(200, cols)))
            y, x = int(rng.integers(0, rows - height)), int(rng.integers(0, cols - width))
            crop = frame[y : y + height, x : x + width].astype(np.float64)
            crop = crop if crop.ndim == 3 else crop[..., None]
            field, _, tolerance = fit.field_of(crop[fit.rim_of(crop.shape[:2])], 1.0)
            distance = fit._distance(crop, field)
            for scale in (0.5, 1.0, 3.0):
                yield distance > tolerance * scale, distance


def test_fit_shortcuts_give_what_the_plain_computations_give_on_real_boxes() -> None:
    """The fit skips work where the answer is known without it (speed6): `structures` labels only when ink reaches
    two opposite borders, `solid_plate` only when the core is half inked, and `without_specks` flags components
    with a strong pixel instead of taking each one's peak. Each must answer what the full computation answers."""
    from deidcli.pixels import fit

    def plain_structures(ink):
        count, labels, stats = fit.components_of(ink)
        if count <= 1:
            return np.zeros(ink.shape, bool)
        x, y, w, h, area = (stats[:, i] for i in range(5))
        rows, cols = ink.shape
        found = ((((x == 0) & (x + w == cols)) | ((y == 0) & (y + h == rows)))
                 & ((area >= fit.SOLID_SHARE * w * h) | (np.minimum(w, h) <= fit.THIN_LINE)))
        found[0] = False
        return found[labels]

    def plain_specks(ink, deviation):
        count, labels, stats = fit.components_of(ink)
        small = stats[:, cv2.CC_STAT_AREA] <= fit.SPECK_AREA
        small[0] = False
        if count <= 1 or not small.any():
            return ink
        peak = np.zeros(count)
        np.maximum.at(peak, labels[ink], deviation[ink])
        specks = small & (peak < fit.SPECK_CONTRAST * float(deviation[ink].max()))
        return ink & ~specks[labels]

    def plain_plate(ink, edge):
        opened = cv2.morphologyEx(ink.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
        count, labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
        core = labels[edge:-edge, edge:-edge]
        if count <= 1 or core.size == 0:
            return None
        covered = np.bincount(core.ravel(), minlength=count)
        covered[0] = 0
        best = int(np.argmax(covered))
        x, y, w, h, area = (int(v) for v in stats[best, :5])
        if covered[best] < fit.PLATE_SHARE * core.size or area < fit.SOLID_SHARE * w * h:
            return None
        return labels == best

    boxes = plates = crossing = specks = 0
    for ink, distance in _real_boxes():
        boxes += 1
        expected = plain_structures(ink)
        crossing += bool(expected.any())
        assert np.array_equal(fit.structures(ink), expected)
        assert np.array_equal(fit.structures(ink, fit.components_of(ink)), expected)
        kept = fit.without_specks(ink, distance)
        specks += int(np.count_nonzero(ink & ~kept))
        assert np.array_equal(kept, plain_specks(ink, distance))
        edge = max(1, round(fit.CORE_SHARE * min(ink.shape)))
        plate, plain = fit.solid_plate(ink, edge), plain_plate(ink, edge)
        assert (plate is None) == (plain is None) and (plate is None or np.array_equal(plate, plain))
        plates += plate is not None
    assert boxes > 400 and crossing and plates and specks  # every branch met on real frames
