"""Tiles cover the image, overlap enough, and blend back without seams."""

import itertools

import numpy as np
import pytest

from textpromptir.engine import tiling
from textpromptir.metrics import psnr

from conftest import photo_like


@pytest.mark.parametrize("length", [1, 7, 512, 513, 1000, 1024, 4000, 6001])
def test_spans_cover_with_enough_overlap(length):
    spans = tiling.spans(length, tile=512, overlap=32, multiple=8)
    assert spans[0][0] == 0 and spans[-1][1] == length
    sizes = {stop - start for start, stop in spans}
    assert len(sizes) == 1 and max(sizes) <= max(512, length if length <= 512 else 0)
    for (_, stop), (start, _) in itertools.pairwise(spans):
        assert stop - start >= 32
    if len(spans) > 1:
        assert sizes.pop() % 8 == 0


def test_no_tiling_means_one_span():
    assert tiling.spans(5000, tile=0, overlap=32, multiple=8) == [(0, 5000)]


def test_tile_must_exceed_overlap():
    with pytest.raises(ValueError, match="overlap"):
        tiling.spans(1000, tile=32, overlap=32, multiple=8)


def test_blend_weights_are_positive_and_one_in_the_interior():
    tiles = tiling.grid(1000, 700, 512, 32, 8)
    total = np.zeros((1000, 700, 1), np.float32)
    for tile in tiles:
        weights = tiling.blend_weights(tile, 1000, 700, 32)
        assert weights.shape == (tile.bottom - tile.top, tile.right - tile.left, 1)
        assert weights.min() > 0 and weights.max() == 1
        total[tile.rows, tile.cols] += weights
    assert total.min() > 0.5  # every pixel is well covered


def test_tiled_and_untiled_results_agree_on_a_megapixel(restorer):
    image = photo_like(1024, 1024)
    whole = restorer.restore(image, "remove the noise", tile=0)
    assert psnr(whole, image) < 30  # the network really changes the image
    tiled = restorer.restore(image, "remove the noise", tile=512)
    assert psnr(tiled, whole) >= 45
    # No seam: the pixels along tile borders agree as well as the rest.
    borders = sorted(
        {edge for tile in tiling.grid(1024, 1024, 512, 32, 8) for edge in (tile.top, tile.bottom)} - {0, 1024}
    )
    band = np.zeros(1024, bool)
    for edge in borders:
        band[max(edge - 8, 0) : edge + 8] = True
    assert psnr(tiled[band], whole[band]) >= 45
    assert psnr(tiled[:, band], whole[:, band]) >= 45
