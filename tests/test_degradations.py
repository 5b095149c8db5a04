"""Degradation synthesis: paired, reproducible, and each one really degrades."""

import dataclasses

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


@pytest.mark.parametrize("settings", [d.TRAINING, d.HELD_OUT], ids=["training", "held-out"])
@pytest.mark.parametrize("task", list(d.REALISTIC))
def test_each_realistic_generator_is_seeded_and_lowers_quality(task, settings):
    generate = d.REALISTIC[task]
    first = generate(CLEAN, np.random.default_rng(7), settings)
    assert first.shape == CLEAN.shape and first.dtype == np.float32
    assert first.min() >= 0.0 and first.max() <= 1.0
    assert np.array_equal(first, generate(CLEAN, np.random.default_rng(7), settings))
    assert not np.array_equal(first, generate(CLEAN, np.random.default_rng(8), settings))
    assert psnr(first, CLEAN, peak=1.0) < 36


def covers(intervals: d.Intervals, value: float) -> bool:
    return any(low < value < high for low, high in intervals)


def test_held_out_settings_are_never_drawn_in_training():
    for field in dataclasses.fields(d.Generators):
        training, held_out = getattr(d.TRAINING, field.name), getattr(d.HELD_OUT, field.name)
        for low, high in held_out:
            inside = np.linspace(low, high, 50)[1:-1]
            assert not any(covers(training, value) for value in inside), field.name
    rng = np.random.default_rng(0)
    draws = [d.draw(rng, d.TRAINING.rain_angle) for _ in range(2000)]
    assert max(draws) > 55 and min(draws) < -55  # up to +-60 degrees
    assert not any(30 < abs(angle) < 40 for angle in draws)


def test_classic_only_degradation_is_the_validation_pools_synthesis():
    classic = d.degrade(CLEAN, ["rain"], seed=5, settings=None)
    assert np.array_equal(classic, d.rain(CLEAN.astype(np.float32), np.random.default_rng(5)))


def test_training_mixes_realistic_and_classic_generators():
    classic = [np.array_equal(d.degrade(CLEAN, ["haze"], s, None), d.degrade(CLEAN, ["haze"], s)) for s in range(20)]
    assert 3 <= sum(classic) <= 17


@pytest.mark.parametrize("share, classic_count", [(0.0, 20), (1.0, 0)])
def test_realistic_share_chooses_the_family_per_degradation(share, classic_count):
    shares = {"haze": share}
    classic = [
        np.array_equal(d.degrade(CLEAN, ["haze"], s, None), d.degrade(CLEAN, ["haze"], s, realistic_share=shares))
        for s in range(20)
    ]
    assert sum(classic) == classic_count


def test_camera_noise_is_correlated_across_neighbours_by_demosaicing():
    grey = np.full((128, 128, 3), 0.5, np.float32)
    settings = dataclasses.replace(d.TRAINING, jpeg_quality=((95.0, 95.0),))
    residual = (d.camera_noise(grey, np.random.default_rng(0), settings) - grey).mean(axis=-1)
    residual -= residual.mean()
    neighbours = np.mean(residual[:, 1:] * residual[:, :-1]) / residual.var()
    white = (d.gaussian_noise(grey, np.random.default_rng(0), sigma=10) - grey).mean(axis=-1)
    assert neighbours > 0.3 > abs(np.mean(white[:, 1:] * white[:, :-1]) / white.var())


@pytest.mark.parametrize("angle", [-55.0, 45.0])
def test_rain_streaks_run_along_the_wind_angle(angle):
    grey = np.full((160, 160, 3), 0.3, np.float32)
    settings = dataclasses.replace(d.TRAINING, rain_angle=((angle, angle),), rain_cover=((0.1, 0.1),))
    streaks = (d.rain_storm(grey, np.random.default_rng(1), settings) - grey).mean(axis=-1)
    assert streaks.min() >= -1 / 255 and streaks.mean() > 0.01  # light rain only brightens
    radians = np.radians(angle)
    along = (round(-4 * np.cos(radians)), round(4 * np.sin(radians)))
    across = (round(4 * np.sin(radians)), round(4 * np.cos(radians)))

    def correlation(dy: int, dx: int) -> float:
        return float(np.mean(streaks * np.roll(streaks, (dy, dx), axis=(0, 1))))

    assert correlation(*along) > 3 * correlation(*across)


def test_heavy_rain_veils_and_leaves_drops():
    black = np.zeros((128, 128, 3), np.float32)
    settings = dataclasses.replace(d.TRAINING, rain_cover=((0.3, 0.3),), rain_opacity=((0.0, 0.0),))
    veiled = d.rain_storm(black, np.random.default_rng(2), settings)
    assert veiled.min() > 0.02  # no streak drawn at all, yet everything is lighter: the veil


def test_camera_shake_is_a_normalised_curved_path():
    kernel = d.shake_kernel(20.0, np.random.default_rng(3))
    assert kernel.sum() == pytest.approx(80, rel=1e-3)  # one unit per step of the path
    spread = np.argwhere(kernel > 0)
    assert np.ptp(spread[:, 0]) + np.ptp(spread[:, 1]) >= 12
    blurred = d.camera_blur(CLEAN, np.random.default_rng(3))
    assert np.abs(np.diff(blurred, axis=1)).mean() < 0.8 * np.abs(np.diff(CLEAN, axis=1)).mean()


def test_low_light_casts_a_colour():
    settings = dataclasses.replace(d.TRAINING, colour_cast=((0.3, 0.3),))
    grey = np.full((64, 64, 3), 0.6, np.float32)
    dark = d.dim_with_cast(grey, np.random.default_rng(4), settings)
    means = dark.reshape(-1, 3).mean(axis=0)
    assert means.max() < 0.35 and means.max() / means.min() > 1.2


def test_double_jpeg_compression_is_worse_than_its_last_pass():
    settings = dataclasses.replace(d.TRAINING, jpeg_quality=((30.0, 30.0),))
    once = [psnr(d.save_as_jpeg(CLEAN, np.random.default_rng(s), settings, double=False), CLEAN, 1.0) for s in range(6)]
    maybe_twice = [psnr(d.save_as_jpeg(CLEAN, np.random.default_rng(s), settings), CLEAN, 1.0) for s in range(6)]
    assert np.mean(maybe_twice) < np.mean(once)
