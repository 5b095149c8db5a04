"""Degradation synthesis: paired, reproducible, and each one really degrades."""

import numpy as np
import pytest

from textpromptir.metrics import psnr
from textpromptir.training import degradations as d

from conftest import photo_like

CLEAN = photo_like(96, 128).astype(np.float32) / 255


@pytest.mark.parametrize("task", list(d.DEGRADATIONS))
def test_each_degradation_is_seeded_and_lowers_quality(task):
    first = d.degrade(CLEAN, [task], seed=7)
    assert first.shape == CLEAN.shape and first.dtype == np.float32
    assert first.min() >= 0.0 and first.max() <= 1.0
    assert np.array_equal(first, d.degrade(CLEAN, [task], seed=7))
    assert not np.array_equal(first, d.degrade(CLEAN, [task], seed=8))
    assert psnr(first, CLEAN, peak=1.0) < 35


def test_combinations_apply_in_physical_order_whatever_the_request_order():
    assert np.array_equal(d.degrade(CLEAN, ["noise", "haze"], 3), d.degrade(CLEAN, ["haze", "noise"], 3))
    both = d.degrade(CLEAN, ["rain", "haze"], 3)
    assert psnr(both, CLEAN, peak=1.0) < 30
    for single in ("rain", "haze"):
        assert not np.array_equal(both, d.degrade(CLEAN, [single], 3))


def test_unknown_degradations_are_refused():
    with pytest.raises(ValueError, match="snow"):
        d.degrade(CLEAN, ["snow"], 0)


@pytest.mark.parametrize("sigma", d.NOISE_SIGMAS)
def test_gaussian_noise_has_the_asked_sigma(sigma):
    grey = np.full((256, 256, 3), 0.5, np.float32)
    noisy = d.gaussian_noise(grey, np.random.default_rng(0), sigma=sigma)
    assert np.std(noisy - grey) * 255 == pytest.approx(sigma, rel=0.03)
    assert np.allclose(noisy * 255, np.round(noisy * 255), atol=1e-3)  # 8-bit levels


def test_haze_follows_the_scattering_model():
    depth = np.tile(np.linspace(0, 1, 128, dtype=np.float32), (96, 1))
    hazy = d.haze(CLEAN, np.random.default_rng(1), depth=depth)
    near, far = np.abs(hazy - CLEAN)[:, :8].mean(), np.abs(hazy - CLEAN)[:, -8:].mean()
    assert near < 0.02 < far  # depth 0: untouched; far away: washed out towards the airlight
    assert hazy[:, -8:].std() < CLEAN[:, -8:].std()  # contrast falls with distance


def test_rain_only_adds_light_along_one_angle():
    rainy = d.rain(CLEAN, np.random.default_rng(2))
    assert (rainy >= CLEAN - 1 / 255).all()  # screen blend never darkens
    assert (rainy - CLEAN).mean() > 0.005


def test_blur_kernels_are_normalised_streaks_and_disks():
    streak = d.line_kernel(9, 0.0)
    assert streak.sum() == 9 and (streak[:, 4] == 1).all()  # vertical at 0 degrees
    disk = d.disk_kernel(3.0)
    assert disk.shape == (7, 7) and disk[3, 3] == 1 and disk[0, 0] == 0
    flat = np.full((32, 32, 3), 0.25, np.float32)
    assert np.allclose(d.convolve(flat, disk), 0.25, atol=1e-6)


def test_low_light_darkens_and_jpeg_blocks():
    assert d.low_light(CLEAN, np.random.default_rng(3)).mean() < 0.5 * CLEAN.mean()
    blocky = d.jpeg(CLEAN, np.random.default_rng(4), quality=10)
    assert 20 < psnr(blocky, CLEAN, peak=1.0) < 40
