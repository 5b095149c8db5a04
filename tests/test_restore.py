"""The restore engine's contract: shapes, dtypes, alpha, progress, cancel, prompts."""

import numpy as np
import pytest
import torch

from textpromptir.engine.device import pick_device
from textpromptir.engine.restore import Restorer
from textpromptir.engine.weights import initialise_weights
from textpromptir.errors import Cancelled, DeviceError, ImageError, PromptError, WeightsError
from textpromptir.metrics import psnr

from conftest import photo_like

PROMPT = "remove the noise"


@pytest.mark.parametrize("height, width", [(1, 1), (3, 5), (17, 33), (1, 200), (129, 70)])
def test_any_size_comes_back_the_same_size(restorer, height, width):
    image = photo_like(height, width)
    out = restorer.restore(image, PROMPT)
    assert out.shape == image.shape and out.dtype == np.uint8


def test_dtypes_round_trip_and_agree(restorer):
    image8 = photo_like(48, 64)
    image16 = image8.astype(np.uint16) * 257
    image32 = image8.astype(np.float32) / 255
    out8 = restorer.restore(image8, PROMPT)
    out16 = restorer.restore(image16, PROMPT)
    out32 = restorer.restore(image32, PROMPT)
    assert (out8.dtype, out16.dtype, out32.dtype) == (np.uint8, np.uint16, np.float32)
    assert psnr(out16 / 257.0, out8) > 45
    assert psnr(np.clip(out32, 0, 1) * 255.0, out8) > 45  # float output is not clipped


def test_sixteen_bit_keeps_its_precision(restorer):
    image = photo_like(32, 32).astype(np.uint16) * 257 + 100  # values between 8-bit steps
    out = restorer.restore(image, PROMPT)
    assert np.any(out % 257 != 0)


def test_alpha_is_passed_through_untouched(restorer):
    rgb = photo_like(40, 56)
    alpha = np.random.default_rng(1).integers(0, 256, (40, 56, 1), dtype=np.uint8)
    out = restorer.restore(np.concatenate([rgb, alpha], axis=2), PROMPT)
    assert out.shape == (40, 56, 4)
    assert np.array_equal(out[:, :, 3:], alpha)
    assert np.array_equal(out[:, :, :3], restorer.restore(rgb, PROMPT))


def test_the_prompt_changes_the_result(restorer):
    image = photo_like(64, 64).astype(np.float32) / 255
    rain = restorer.restore(image, "remove the rain streaks")
    haze = restorer.restore(image, "this photo is hazy, clear it up")
    assert np.abs(rain - haze).mean() > 2e-5  # untrained, so small; float noise is ~1e-7
    assert np.array_equal(rain, restorer.restore(image, "remove the rain streaks"))


def test_progress_reports_every_tile(restorer):
    calls = []
    restorer.restore(photo_like(300, 300), PROMPT, tile=128, progress=lambda done, total: calls.append((done, total)))
    total = calls[-1][1]
    assert total > 1 and calls == [(i, total) for i in range(1, total + 1)]


def test_cancel_stops_between_tiles(restorer):
    done = []
    with pytest.raises(Cancelled, match="left as it was"):
        restorer.restore(
            photo_like(300, 300), PROMPT, tile=128, progress=lambda d, t: done.append(d), cancel=lambda: len(done) >= 2
        )
    assert done == [1, 2]


@pytest.mark.parametrize("prompt", ["", "   \n\t "])
def test_an_empty_prompt_is_refused(restorer, prompt):
    with pytest.raises(PromptError, match="empty"):
        restorer.restore(photo_like(8, 8), prompt)


@pytest.mark.parametrize(
    "image, message",
    [
        (np.zeros((8, 8), np.uint8), "RGB or RGBA"),
        (np.zeros((8, 8, 2), np.uint8), "RGB or RGBA"),
        (np.zeros((8, 8, 3), np.int32), "uint8, uint16 or float32"),
        (np.zeros((0, 8, 3), np.uint8), "empty"),
    ],
)
def test_bad_images_are_refused(restorer, image, message):
    with pytest.raises(ImageError, match=message):
        restorer.restore(image, PROMPT)


def test_untrained_weights_give_back_the_input(tmp_path):
    path = tmp_path / "init.safetensors"
    initialise_weights(path, "lite", seed=3)
    image = photo_like(40, 40)
    assert np.array_equal(Restorer.load(path, device="cpu").restore(image, PROMPT), image)


def test_missing_and_damaged_weights_are_explained(tmp_path, weights_file):
    with pytest.raises(WeightsError, match="not found"):
        Restorer.load(tmp_path / "nothing.safetensors")
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(weights_file.read_bytes()[:5000])
    with pytest.raises(WeightsError, match="truncated"):
        Restorer.load(damaged)


def test_weights_of_another_model_are_explained(tmp_path):
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(3)}, str(other))
    with pytest.raises(WeightsError, match="does not hold TextPromptIR"):
        Restorer.load(other)


def test_auto_device_is_the_cpu_here_and_missing_gpus_are_explained():
    if not torch.cuda.is_available():
        assert pick_device("auto").type in ("cpu", "mps")
        with pytest.raises(DeviceError, match="CUDA"):
            pick_device("cuda")


def test_colours_that_are_not_numbers_are_refused_with_where_they_are(restorer):
    """One NaN would spread over the whole result through the network; alpha is passed through untouched."""
    image = np.concatenate([photo_like(20, 30), np.full((20, 30, 1), 255, np.uint8)], axis=2).astype(np.float32) / 255
    image[4, 7, 2] = np.nan
    image[9, 1, 0] = -np.inf
    image[0, 0, 3] = np.nan
    with pytest.raises(ImageError, match=r"2 pixel\(s\) .* not a number .* x=7, y=4"):
        restorer.restore(image, "remove the noise")
    image[4, 7, 2] = image[9, 1, 0] = 0.5
    restored = restorer.restore(image, "remove the noise")
    assert np.isfinite(restored[..., :3]).all() and np.isnan(restored[0, 0, 3])
