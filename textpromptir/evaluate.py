"""Evaluate restoration weights on the validation pool: `textpromptir evaluate`.

For every degradation (noise at each benchmark sigma separately), each
validation photo is centre-cropped, degraded with a fixed seed and restored
with a plain prompt for that degradation. Printed per degradation: PSNR and
SSIM of the degraded input and of the restored result, and seconds per
megapixel; plus the steering check, noisy photos restored with a rain prompt.
Output: a Markdown table, and JSON with --json.
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

from . import degradations
from .data import read_manifest
from .metrics import psnr
from .restore import Restorer

CROP = 512  # validation crops keep CPU evaluation to minutes
PROMPTS = {
    "noise": "remove the noise",
    "rain": "remove the rain streaks",
    "haze": "remove the haze",
    "blur": "deblur this photo",
    "low_light": "brighten this dark photo",
    "jpeg": "remove the JPEG artifacts",
}
WRONG_PROMPT = ("noise sigma 25", "remove the rain streaks")


@dataclass
class Row:
    case: str
    prompt: str
    photos: int
    input_psnr: float
    input_ssim: float
    psnr: float
    ssim: float
    seconds_per_mp: float


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


def cases() -> dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]]:
    noise_levels = {
        f"noise sigma {sigma}": (lambda s: lambda image, rng: degradations.gaussian_noise(image, rng, sigma=s))(sigma)
        for sigma in degradations.NOISE_SIGMAS
    }
    others = {task: fn for task, fn in degradations.DEGRADATIONS.items() if task != "noise"}
    return {**noise_levels, **others}


def load_validation(root: Path) -> list[np.ndarray]:
    crops = []
    for entry in read_manifest(root, "val"):
        with Image.open(root / entry.path) as image:
            rgb = np.asarray(image.convert("RGB"), np.float32) / 255
        top, left = max((rgb.shape[0] - CROP) // 2, 0), max((rgb.shape[1] - CROP) // 2, 0)
        crops.append(np.ascontiguousarray(rgb[top : top + CROP, left : left + CROP]))
    return crops


def evaluate_case(restorer: Restorer, photos: list[np.ndarray], case: str, prompt: str) -> Row:
    degrade = cases()[case]
    scores, seconds, pixels = [], 0.0, 0
    for index, clean in enumerate(photos):
        degraded = degrade(clean, np.random.default_rng(index))
        started = time.perf_counter()
        restored = np.clip(restorer.restore(degraded, prompt), 0, 1)
        seconds += time.perf_counter() - started
        pixels += clean.shape[0] * clean.shape[1]
        scores.append(
            (psnr(degraded, clean, 1.0), ssim(degraded, clean), psnr(restored, clean, 1.0), ssim(restored, clean))
        )
    means = np.mean(scores, axis=0)
    return Row(case, prompt, len(photos), *map(float, means), seconds / (pixels / 1e6))


def evaluate(weights: Path, data_root: Path, device: str = "auto") -> list[Row]:
    restorer = Restorer.load(weights, device)
    photos = load_validation(data_root)
    if not photos:
        raise RuntimeError(f"no validation photos in {data_root}: run `textpromptir data fetch`")
    rows = [evaluate_case(restorer, photos, case, PROMPTS[case.split(" ")[0]]) for case in cases()]
    rows.append(evaluate_case(restorer, photos, *WRONG_PROMPT))
    return rows


def markdown(rows: list[Row]) -> str:
    lines = [
        "| degradation | prompt | photos | input PSNR / SSIM | restored PSNR / SSIM | s/MP |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row.case} | {row.prompt} | {row.photos} | {row.input_psnr:.2f} / {row.input_ssim:.3f} "
            f"| {row.psnr:.2f} / {row.ssim:.3f} | {row.seconds_per_mp:.2f} |"
        )
    return "\n".join(lines)


def to_json(rows: list[Row]) -> str:
    return json.dumps([asdict(row) for row in rows], indent=2)
