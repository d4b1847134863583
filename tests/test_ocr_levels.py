"""deidcli.ocr.levels: medians and percentiles of 8-bit pictures from histograms are numpy's, value for value."""

from __future__ import annotations

import numpy as np
import pytest

from deidcli.ocr import levels


def _pictures():
    rng = np.random.default_rng(20261203)
    for _ in range(150):
        rows, cols = int(rng.integers(1, 40)), int(rng.integers(1, 40))
        spread = int(rng.integers(1, 256))
        picture = rng.integers(0, spread, (rows, cols), dtype=np.int64).astype(np.uint8)
        mask = rng.random((rows, cols)) < rng.random()
        yield picture, mask


def test_median_from_a_histogram_is_numpys_for_odd_and_even_counts() -> None:
    seen = set()
    for picture, mask in _pictures():
        if not mask.any():
            continue
        seen.add(int(mask.sum()) % 2)
        assert levels.median(levels.histogram(picture, mask)) == float(np.median(picture[mask]))
        assert levels.median(levels.histogram(picture)) == float(np.median(picture))
    assert seen == {0, 1}


@pytest.mark.parametrize("q", [0, 1, 33.3, 50, 90, 99.5, 99.9, 100, [1, 99.5], [0, 100]])
def test_percentile_from_a_histogram_is_numpys_to_the_bit(q) -> None:
    for picture, mask in _pictures():
        if mask.any():
            got, expected = levels.percentile(levels.histogram(picture, mask), q), np.percentile(picture[mask], q)
            assert np.shape(got) == np.shape(expected)
            assert np.array_equal(np.asarray(got).view(np.int64), np.asarray(expected).view(np.int64))


def test_histogram_under_a_mask_counts_the_masked_pixels_only() -> None:
    for picture, mask in _pictures():
        assert np.array_equal(levels.histogram(picture, mask), np.bincount(picture[mask], minlength=256))


def test_histogram_of_an_empty_mask_counts_nothing_and_its_median_is_refused() -> None:
    picture = np.full((5, 7), 9, np.uint8)
    counts = levels.histogram(picture, np.zeros(picture.shape, bool))
    assert counts.shape == (256,) and not counts.any()
    with pytest.raises(ValueError):
        levels.median(counts)


def _float_samples(large: bool = False):
    """Stroke-response-like float32 samples: magnitudes of real top-hats (few levels, many ties), fine noise,
    tiny and huge values, infinities, odd and even counts; and what must go to numpy (negatives, NaN). `large`:
    sizes from FLOAT_MEDIAN_MIN_SIZE on, where the radix selection is used."""
    rng = np.random.default_rng(20261201)
    for trial in range(70 if large else 600):
        size = int(rng.integers(levels.FLOAT_MEDIAN_MIN_SIZE, 3 * levels.FLOAT_MEDIAN_MIN_SIZE) if large
                   else rng.integers(1, 5000))
        kind = trial % 7
        if kind == 0:
            values = np.abs(rng.standard_normal(size) * 30).astype(np.float32)
        elif kind == 1:
            values = rng.integers(0, 4, size).astype(np.float32)  # heavy ties, zeros
        elif kind == 2:
            values = (np.abs(rng.standard_normal(size)) * 1e-40).astype(np.float32)  # subnormals
        elif kind == 3:
            values = np.abs(rng.standard_normal(size) * 1e30).astype(np.float32)
            values[rng.integers(0, size, max(1, size // 10))] = np.inf
        elif kind == 4:
            values = np.abs(rng.standard_normal(size).astype(np.float32) - np.float32(0.5)) * np.float32(65535)
        elif kind == 5:
            values = rng.standard_normal(size).astype(np.float32)  # negatives: numpy's own path
        else:
            values = np.abs(rng.standard_normal(size)).astype(np.float32)
            values[int(rng.integers(0, size))] = np.nan
        yield values


@pytest.mark.parametrize("large", [True, False], ids=["radix sizes", "small sizes, radix forced"])
def test_float_median_by_radix_selection_is_numpys_to_the_bit(large: bool, monkeypatch) -> None:
    """The stroke floors of `scan.stroke_mask` and `scan.tissue_windows` are taken this way: a different median
    would move a floor, and with it which strokes count as print."""
    if not large:
        monkeypatch.setattr(levels, "FLOAT_MEDIAN_MIN_SIZE", 1)  # the radix path on every size
    sizes = set()
    for values in _float_samples(large):
        sizes.add(values.size % 2)
        got, expected = levels.float_median(values), float(np.median(values))
        assert got == expected or (np.isnan(got) and np.isnan(expected))
    assert sizes == {0, 1}


def test_median_of_a_ring_is_numpys_for_uint8_float32_and_colour_samples() -> None:
    """`scan.blank` fills found text with the median of a ring around it (8-bit views, float32 stored values,
    colour samples): the same fill value as np.median's, whatever the path."""
    rng = np.random.default_rng(7)
    for values in _float_samples():
        assert np.array_equal(np.asarray(levels.median_of(values)).astype(np.float32),
                              np.asarray(np.median(values, axis=0)).astype(np.float32), equal_nan=True)
    for picture, mask in _pictures():
        if mask.any():
            assert np.asarray(levels.median_of(picture[mask])).astype(np.uint8) == np.median(picture[mask]).astype(
                np.uint8)
            assert levels.median_of(picture[mask]) == float(np.median(picture[mask]))
    colour = rng.integers(0, 256, (101, 3)).astype(np.uint8)
    assert np.array_equal(levels.median_of(colour), np.median(colour, axis=0))
