"""The preview: one tile of the full run's grid, cropped inside its core, equals the full run there; strength blends."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from textpromptir.engine import tiling
from textpromptir.engine.restore import Restorer, blend
from textpromptir.errors import ImageError
from textpromptir.metrics import psnr

from conftest import photo_like

PROMPT = "remove the noise"


@pytest.mark.parametrize("length", [200, 512, 600, 1000, 1700, 6001])
def test_preview_crop_lies_where_only_its_tile_is_blended(length: int) -> None:
    spans = tiling.spans(length, 512, tiling.OVERLAP, 8)
    for centre in range(0, length, 37):
        tile, crop = tiling.preview_crop(length, length, (centre, centre), 320, 512, tiling.OVERLAP, 8)
        assert (tile.top, tile.bottom) in spans and tile.top <= crop.top and crop.bottom <= tile.bottom
        assert min(320, length) >= crop.bottom - crop.top >= min(256, length)
        others = [span for span in spans if span != (tile.top, tile.bottom)]
        assert all(stop <= crop.top or start >= crop.bottom for start, stop in others)
        weights = tiling.blend_weights(tile, length, length, tiling.OVERLAP)[crop.rows, crop.cols]
        assert np.all(weights == 1.0)


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return photo_like(600, 560, seed=5)


@pytest.fixture(scope="module")
def full_run(restorer: Restorer, photo: np.ndarray) -> np.ndarray:
    return restorer.restore(photo, PROMPT)


@pytest.mark.parametrize("centre", [(280, 300), (0, 0), (559, 599)])
def test_preview_matches_the_full_run_on_its_crop(
    restorer: Restorer, photo: np.ndarray, full_run: np.ndarray, centre: tuple[int, int]
) -> None:
    crop, pixels = restorer.preview(photo, PROMPT, centre)
    assert pixels.shape[:2] == (crop.bottom - crop.top, crop.right - crop.left)
    assert min(pixels.shape[:2]) >= 256
    final = full_run[crop.rows, crop.cols]
    assert psnr(pixels, final) >= 45
    assert np.abs(pixels.astype(int) - final.astype(int)).max() <= 1
    assert np.abs(final.astype(int) - photo[crop.rows, crop.cols].astype(int)).mean() > 2  # it did restore


def test_a_crop_restored_on_its_own_does_not_match(restorer: Restorer, photo: np.ndarray, full_run: np.ndarray) -> None:
    """Why the preview restores the whole tile: the backbone sees all of it, so less context changes the result."""
    crop, _ = restorer.preview(photo, PROMPT, (280, 300))
    alone = restorer.restore(np.ascontiguousarray(photo[crop.rows, crop.cols]), PROMPT)
    assert psnr(alone, full_run[crop.rows, crop.cols]) < 45


def test_a_window_around_the_centre_gives_the_same_preview(restorer: Restorer, photo: np.ndarray) -> None:
    crop, pixels = restorer.preview(photo, PROMPT, (400, 420))
    window = photo[60:, 90:]
    same_crop, same = restorer.preview(window, PROMPT, (400, 420), origin=(90, 60), shape=photo.shape[:2])
    assert same_crop == crop and np.array_equal(same, pixels)
    with pytest.raises(ImageError, match="The preview needs the pixels"):
        restorer.preview(photo[300:], PROMPT, (400, 420), origin=(0, 300), shape=photo.shape[:2])


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_strength_blends_restored_and_original_exactly(restorer: Restorer, dtype: type) -> None:
    scale = {np.uint8: 1, np.uint16: 257, np.float32: 1 / 255}[dtype]
    alpha = np.full((96, 128, 1), 200 * scale)
    image = np.concatenate([photo_like(96, 128, seed=2) * scale, alpha], axis=-1).astype(dtype)
    restored = restorer.restore(image, PROMPT)
    for strength in (0.0, 0.37, 0.6):
        expected = restored[..., :3].astype(np.float64) * strength + image[..., :3].astype(np.float64) * (1 - strength)
        if dtype != np.float32:
            expected = np.rint(expected)
        blended = restorer.restore(image, PROMPT, strength=strength)
        assert blended.dtype == dtype
        assert np.array_equal(blended[..., :3], expected.astype(dtype)) and np.array_equal(
            blended[..., 3], image[..., 3]
        )
    assert np.array_equal(restorer.restore(image, PROMPT, strength=0.0), image)
    with pytest.raises(ValueError, match="strength"):
        blend(image, restored, 1.5)


def test_preview_applies_the_strength(restorer: Restorer, photo: np.ndarray, full_run: np.ndarray) -> None:
    crop, pixels = restorer.preview(photo, PROMPT, (280, 300), strength=0.6)
    expected = blend(photo, full_run, 0.6)[crop.rows, crop.cols]
    assert np.abs(pixels.astype(int) - expected.astype(int)).max() <= 1


def test_cores_of_neighbours_never_overlap() -> None:
    for length in (513, 1000, 4000):
        spans = tiling.spans(length, 512, tiling.OVERLAP, 8)
        for (_, stop), (start, _) in itertools.pairwise(tiling.cores(spans)):
            assert stop <= start
