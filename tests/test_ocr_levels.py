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
