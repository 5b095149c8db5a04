"""Evaluate restoration weights on the validation pool: `textpromptir evaluate`.

For every degradation (noise at each benchmark sigma separately), each
validation photo is centre-cropped, degraded with a fixed seed and restored
with a plain prompt for that degradation. Printed per degradation: PSNR and
SSIM of the degraded input and of the restored result, and seconds per
megapixel; plus the steering check, noisy photos restored with a rain prompt.

Then the held-out pool: the same photos degraded by the realistic generators
of `degradations` with HELD_OUT settings, which training never draws (its
rows are named "held-out <degradation>"). It shows whether the network learnt
the degradation or only our synthesis of it. The first pool's synthesis is
unchanged, so its rows stay comparable with earlier figures.

With peers (the CLI's default), the same degraded photos are also restored by
the comparison peers of `textpromptir.training.peers`, one row each under the row of
their degradation: FFDNet colour and BM3D for noise (both given the true
sigma), the dark channel prior for haze, the best of a few median and opening
filters for rain (named in the row, the others' PSNR in its note), Zero-DCE++
for low light. BM3D is slow (about 90 s/MP on one core), so it runs only when
asked (`--bm3d`) and then only on the centre 256x256 of the first 8 validation
crops: its row says so, and its input PSNR/SSIM are those of that subset. A
peer whose optional package is missing is listed as skipped, with what to
install. Output: a Markdown table, and JSON with --json (a list of rows; peer
rows carry `method` and `note`, skipped ones null figures).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from textpromptir.engine.restore import Restorer
from textpromptir.metrics import psnr
from textpromptir.tasks import EVALUATION_PROMPTS

from . import degradations, peers
from .data import read_manifest

CROP = 512  # validation crops keep CPU evaluation to minutes
WRONG_PROMPT = ("noise sigma 25", "remove the rain streaks")
OURS = "TextPromptIR"
BM3D_CROP, BM3D_PHOTOS = 256, 8  # BM3D's fixed subset: the centre 256x256 of the first 8 crops

Restore = Callable[[np.ndarray], np.ndarray]


@dataclass
class Row:
    case: str
    prompt: str
    photos: int
    input_psnr: float | None
    input_ssim: float | None
    psnr: float | None
    ssim: float | None
    seconds_per_mp: float | None
    method: str = OURS  # or the peer's name
    note: str = ""  # peers: the subset, the filters tried, or why the peer was skipped


@dataclass(frozen=True)
class Peer:
    name: str
    restore: Restore
    crop: int | None = None  # evaluate on the centre crop x crop only
    photos: int | None = None  # evaluate on the first n photos only


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM over RGB channels, 11x11 Gaussian window (sigma 1.5), images in [0, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(a, np.float32)).permute(2, 0, 1)[:, None]
    y = torch.from_numpy(np.ascontiguousarray(b, np.float32)).permute(2, 0, 1)[:, None]
    coords = torch.arange(11, dtype=torch.float32) - 5
    gauss = torch.exp(-(coords**2) / (2 * 1.5**2))
    window = (gauss[:, None] * gauss[None, :] / gauss.sum() ** 2)[None, None]
    blur = lambda t: F.conv2d(t, window)  # noqa: E731
    mu_x, mu_y = blur(x), blur(y)
    var_x, var_y, cov = blur(x * x) - mu_x**2, blur(y * y) - mu_y**2, blur(x * y) - mu_x * mu_y
    c1, c2 = 0.01**2, 0.03**2
    score = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    return float(score.mean())


HELD_OUT = "held-out "  # the prefix of the held-out pool's cases
Synthesis = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def grid_excess(restored: np.ndarray, clean: np.ndarray, period: int) -> float:
    """How far the error's power at the frequencies of a `period`-pixel grid stands above the
    neighbouring frequencies, in dB, averaged over both axes: about 0 without a grid.

    Pixel-shuffle upsampling can print grids of periods 2, 4 and 8 (model/resampling.py); in PSNR
    a faint grid is lost among the other errors, in the spectrum it stands out.
    """
    error = (restored - clean).mean(axis=2)
    power = np.abs(np.fft.fft2(error - error.mean())) ** 2
    excess = []
    for profile in (power.sum(axis=0), power.sum(axis=1)):  # over x, over y
        size = len(profile)
        peaks = [k * size // period for k in range(1, period)]
        floor = np.mean([profile[(peak + step) % size] for peak in peaks for step in (-2, -1, 1, 2)])
        excess.append(10 * np.log10(np.mean(profile[peaks]) / floor))
    return float(np.mean(excess))


def cases() -> dict[str, Synthesis]:
    """The validation pool of the classic generators, as it has always been synthesised."""
    noise_levels = {
        f"noise sigma {sigma}": (lambda s: lambda image, rng: degradations.gaussian_noise(image, rng, sigma=s))(sigma)
        for sigma in degradations.NOISE_SIGMAS
    }
    others = {task: fn for task, fn in degradations.DEGRADATIONS.items() if task != "noise"}
    return {**noise_levels, **others}


def held_out_cases() -> dict[str, Synthesis]:
    """The held-out pool: each degradation's realistic generator with settings training never draws."""

    def with_held_out_settings(generate: degradations.RealisticDegradation) -> Synthesis:
        return lambda image, rng: generate(image, rng, degradations.HELD_OUT)

    return {HELD_OUT + task: with_held_out_settings(fn) for task, fn in degradations.REALISTIC.items()}


def task_of(case: str) -> str:
    """The degradation a case restores: "noise sigma 25" and "held-out noise" are both noise."""
    return case.removeprefix(HELD_OUT).split(" ")[0]


def prompt_for(case: str) -> str:
    return EVALUATION_PROMPTS[task_of(case)]


def load_validation(root: Path, crop: int = CROP, photos: int | None = None) -> list[np.ndarray]:
    """Centre crops of the validation photos (the first `photos` of them when given)."""
    crops = []
    for entry in read_manifest(root, "val")[:photos]:
        with Image.open(root / entry.path) as image:
            rgb = np.asarray(image.convert("RGB"), np.float32) / 255
        crops.append(centre(rgb, crop))
    return crops


def centre(image: np.ndarray, size: int) -> np.ndarray:
    top, left = max((image.shape[0] - size) // 2, 0), max((image.shape[1] - size) // 2, 0)
    return np.ascontiguousarray(image[top : top + size, left : left + size])


def degrade_all(photos: list[np.ndarray], case: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """(clean, degraded) pairs; photo i is degraded with seed i, so every method sees the same input."""
    degrade = {**cases(), **held_out_cases()}[case]
    return [(clean, degrade(clean, np.random.default_rng(index))) for index, clean in enumerate(photos)]


def measure(pairs: list[tuple[np.ndarray, np.ndarray]], restore: Restore) -> tuple[float, ...]:
    """Mean input PSNR and SSIM, restored PSNR and SSIM, and seconds per megapixel of `restore`."""
    scores, seconds, pixels = [], 0.0, 0
    for clean, degraded in pairs:
        started = time.perf_counter()
        restored = np.clip(restore(degraded), 0, 1)
        seconds += time.perf_counter() - started
        pixels += clean.shape[0] * clean.shape[1]
        scores.append(
            (psnr(degraded, clean, 1.0), ssim(degraded, clean), psnr(restored, clean, 1.0), ssim(restored, clean))
        )
    return (*map(float, np.mean(scores, axis=0)), seconds / (pixels / 1e6))


def evaluate_case(
    restorer: Restorer, photos: list[np.ndarray], case: str, prompt: str, pairs: list | None = None
) -> Row:
    pairs = degrade_all(photos, case) if pairs is None else pairs
    return Row(case, prompt, len(pairs), *measure(pairs, lambda image: restorer.restore(image, prompt)))


def peers_for(case: str, device: str = "cpu", bm3d: bool = False) -> list[Peer | list[Peer] | Row]:
    """The peers of one degradation case: a Peer, a list of candidates (the best is kept), or a skipped Row."""
    if case.startswith("noise sigma "):
        sigma = float(case.rsplit(" ", 1)[1])
        found: list[Peer | list[Peer] | Row] = [
            Peer("FFDNet colour (true sigma)", lambda image: peers.ffdnet(image, sigma, device))
        ]
        subset = f"centre {BM3D_CROP}x{BM3D_CROP} of the first {BM3D_PHOTOS} photos"
        if bm3d:
            found.append(
                Peer(f"BM3D (true sigma; {subset})", lambda image: peers.bm3d(image, sigma), BM3D_CROP, BM3D_PHOTOS)
            )
        else:
            found.append(skipped(case, "BM3D", "not run: slow (about 90 s/MP), pass --bm3d to run it on " + subset))
        return found
    if task_of(case) == "haze":
        return [Peer("dark channel prior", peers.dark_channel_prior)]
    if task_of(case) == "rain":
        return [
            [
                Peer(f"median {size}x{size}", lambda image, size=size: peers.median_filter(image, size))
                for size in (3, 5)
            ]
            + [Peer(f"opening {size}x{size}", lambda image, size=size: peers.opening(image, size)) for size in (3, 5)]
        ]
    if task_of(case) == "low_light":
        return [Peer("Zero-DCE++", lambda image: peers.zero_dce(image, device))]
    return []


def skipped(case: str, name: str, why: str) -> Row:
    return Row(case, "", 0, None, None, None, None, None, method=name, note=why)


def evaluate_peer(case: str, peer: Peer, pairs: list[tuple[np.ndarray, np.ndarray]]) -> Row:
    if peer.photos is not None:
        pairs = pairs[: peer.photos]
    if peer.crop is not None:
        pairs = [(centre(clean, peer.crop), centre(degraded, peer.crop)) for clean, degraded in pairs]
    try:
        peer.restore(pairs[0][1][:32, :32])  # loads the peer's weights before the clock starts
    except peers.PeerUnavailable as error:
        return skipped(case, peer.name, f"skipped: {error}")
    return Row(case, "", len(pairs), *measure(pairs, peer.restore), method=peer.name)


def evaluate_peers(case: str, pairs: list[tuple[np.ndarray, np.ndarray]], device: str, bm3d: bool) -> list[Row]:
    rows = []
    for peer in peers_for(case, device, bm3d):
        if isinstance(peer, Row):
            rows.append(peer)
        elif isinstance(peer, Peer):
            rows.append(evaluate_peer(case, peer, pairs))
        else:  # candidates: keep the best by PSNR, list the others in the note
            tried = sorted((evaluate_peer(case, candidate, pairs) for candidate in peer), key=lambda r: -(r.psnr or 0))
            best = tried[0]
            others = ", ".join(f"{row.method} {row.psnr:.2f} dB" for row in tried[1:] if row.psnr is not None)
            best.method, best.note = f"{best.method} (best simple filter)", f"also tried: {others}"
            rows.append(best)
    return rows


def evaluate(
    weights: Path, data_root: Path, device: str = "auto", with_peers: bool = False, bm3d: bool = False
) -> list[Row]:
    """Both pools' rows (see evaluate_pools) for the weights on the validation photos of data_root."""
    restorer = Restorer.load(weights, device)
    photos = load_validation(data_root)
    if not photos:
        raise RuntimeError(f"no validation photos in {data_root}: run `textpromptir data fetch`")
    return evaluate_pools(restorer, photos, with_peers, bm3d)


def evaluate_pools(
    restorer: Restorer, photos: list[np.ndarray], with_peers: bool = False, bm3d: bool = False
) -> list[Row]:
    """Our rows in the order of cases(), then the steering row, then the held-out pool's rows.

    with_peers puts each case's peers under it (the held-out noise has no true sigma to tell them).
    """
    rows = []
    for case in cases():
        rows += evaluate_with_peers(restorer, photos, case, with_peers, bm3d)
    rows.append(evaluate_case(restorer, photos, *WRONG_PROMPT))
    for case in held_out_cases():
        rows += evaluate_with_peers(restorer, photos, case, with_peers and task_of(case) != "noise", bm3d)
    return rows


def evaluate_with_peers(
    restorer: Restorer, photos: list[np.ndarray], case: str, with_peers: bool, bm3d: bool
) -> list[Row]:
    pairs = degrade_all(photos, case)
    rows = [evaluate_case(restorer, photos, case, prompt_for(case), pairs)]
    if with_peers:
        rows += evaluate_peers(case, pairs, str(restorer.device), bm3d)
    return rows


def markdown(rows: list[Row]) -> str:
    lines = [
        "| degradation | prompt | photos | input PSNR / SSIM | restored PSNR / SSIM | s/MP |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        prompt = row.prompt if row.method == OURS else f"peer: {row.method}" + (f"; {row.note}" if row.note else "")
        lines.append(
            f"| {row.case} | {prompt} | {row.photos} | {_pair(row.input_psnr, row.input_ssim)} "
            f"| {_pair(row.psnr, row.ssim)} | {'—' if row.seconds_per_mp is None else f'{row.seconds_per_mp:.2f}'} |"
        )
    return "\n".join(lines)


def _pair(psnr_value: float | None, ssim_value: float | None) -> str:
    return "—" if psnr_value is None or ssim_value is None else f"{psnr_value:.2f} / {ssim_value:.3f}"


def to_json(rows: list[Row]) -> str:
    return json.dumps([asdict(row) for row in rows], indent=2)
