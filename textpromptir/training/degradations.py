"""Synthetic degradations, each exactly paired with its clean target.

Every function takes a clean float32 (H, W, 3) image in [0, 1] and a numpy
Generator and returns the degraded image; the same seed gives the same result.
`degrade` applies one or several in the order the physics suggests: the
scene (haze, rain) before the lens (blur), then the sensor (low light,
noise), then the file (JPEG).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from textpromptir.tasks import TASKS

Degradation = Callable[[np.ndarray, np.random.Generator], np.ndarray]
NOISE_SIGMAS = (15, 25, 50)  # of 255, the standard benchmark levels
ORDER = ("haze", "rain", "blur", "low_light", "noise", "jpeg")


def quantise(image: np.ndarray) -> np.ndarray:
    """Round to 8-bit levels, as a saved photo would be."""
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.float32) / 255.0


def convolve(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve every channel (or a 2-D map) with a normalised 2-D kernel, mirroring the edges."""
    planes = image[None] if image.ndim == 2 else image.transpose(2, 0, 1)
    x = torch.from_numpy(np.ascontiguousarray(planes, dtype=np.float32))[:, None]  # (C, 1, H, W)
    k = torch.from_numpy((kernel / kernel.sum()).astype(np.float32))[None, None]
    pad_y, pad_x = kernel.shape[0] // 2, kernel.shape[1] // 2
    mode = "reflect" if pad_y < x.shape[2] and pad_x < x.shape[3] else "replicate"
    x = F.pad(x, (pad_x, kernel.shape[1] - 1 - pad_x, pad_y, kernel.shape[0] - 1 - pad_y), mode=mode)
    out = F.conv2d(x, k)[:, 0].numpy()
    return out[0] if image.ndim == 2 else out.transpose(1, 2, 0)


def line_kernel(length: int, angle_degrees: float, width: int = 1) -> np.ndarray:
    """A straight streak of `length` pixels at `angle_degrees`, `width` pixels thick."""
    size = length if length % 2 else length + 1
    kernel = np.zeros((size, size), np.float32)
    centre = size // 2
    angle = math.radians(angle_degrees)
    for step in np.linspace(-(length - 1) / 2, (length - 1) / 2, 2 * length):
        y = round(centre - step * math.cos(angle))
        x = round(centre + step * math.sin(angle))
        kernel[max(y - width // 2, 0) : y + (width + 1) // 2, max(x - width // 2, 0) : x + (width + 1) // 2] = 1.0
    return kernel


def disk_kernel(radius: float) -> np.ndarray:
    size = 2 * math.ceil(radius) + 1
    y, x = np.mgrid[:size, :size] - size // 2
    return (x**2 + y**2 <= radius**2 + 0.5).astype(np.float32)


def gaussian_noise(image: np.ndarray, rng: np.random.Generator, sigma: float | None = None) -> np.ndarray:
    """Additive white Gaussian noise; sigma (of 255) from the benchmark levels unless given."""
    sigma = float(rng.choice(NOISE_SIGMAS)) if sigma is None else sigma
    return quantise(image + rng.normal(0.0, sigma / 255.0, image.shape))


def poisson_gaussian_noise(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Sensor noise: photon shot noise (signal-dependent) plus read noise."""
    photons = rng.uniform(20.0, 200.0)  # photons at white: fewer means grainier
    shot = rng.poisson(np.clip(image, 0.0, 1.0) * photons) / photons
    read = rng.normal(0.0, rng.uniform(2.0, 10.0) / 255.0, image.shape)
    return quantise(shot + read)


def noise(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return gaussian_noise(image, rng) if rng.random() < 0.7 else poisson_gaussian_noise(image, rng)


def rain(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One or two layers of rain streaks: sparse drops smeared along a shared wind angle."""
    height, width = image.shape[:2]
    angle = rng.uniform(-30.0, 30.0)
    streaks = np.zeros((height, width), np.float32)
    for _ in range(rng.integers(1, 3)):
        density = rng.uniform(0.002, 0.02)
        drops = (rng.random((height, width)) < density).astype(np.float32) * rng.uniform(0.5, 1.0, (height, width))
        length = int(rng.integers(10, 41))
        kernel = line_kernel(length, angle + rng.uniform(-5.0, 5.0), int(rng.integers(1, 3)))
        layer = convolve(drops, kernel) * length * rng.uniform(0.3, 0.8)
        streaks = np.maximum(streaks, np.clip(layer, 0.0, 1.0))
    streaks = convolve(streaks, disk_kernel(0.8))  # soften, as out-of-focus drops are
    return quantise(image + (1.0 - image) * streaks[..., None])  # screen blend: streaks only brighten


def depth_proxy(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """Plausible relative depth in [0, 1]: farther towards the top, with smooth random relief."""
    ramp = np.linspace(1.0, 0.0, height, dtype=np.float32)[:, None].repeat(width, axis=1)
    coarse = rng.random((max(height // 64, 2), max(width // 64, 2))).astype(np.float32)
    relief = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC))
    depth = 0.7 * ramp + 0.3 * relief
    return (depth - depth.min()) / max(float(depth.max() - depth.min()), 1e-6)


def haze(image: np.ndarray, rng: np.random.Generator, depth: np.ndarray | None = None) -> np.ndarray:
    """Atmospheric scattering: I = J t + A (1 - t), with t = exp(-beta d)."""
    height, width = image.shape[:2]
    depth = depth_proxy(height, width, rng) if depth is None else depth
    beta = rng.uniform(0.6, 2.5)
    airlight = rng.uniform(0.7, 1.0) * np.array([1.0, 1.0, 1.0]) + rng.uniform(-0.05, 0.05, 3)
    transmission = np.exp(-beta * depth)[..., None]
    return quantise(image * transmission + np.clip(airlight, 0, 1).astype(np.float32) * (1.0 - transmission))


def blur(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Camera shake (a straight motion streak) or defocus (a disk)."""
    if rng.random() < 0.5:
        kernel = line_kernel(int(rng.integers(5, 22)), rng.uniform(0.0, 180.0))
    else:
        kernel = disk_kernel(rng.uniform(1.5, 5.0))
    return quantise(convolve(image, kernel))


def low_light(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Underexposure: a darker tone curve, less light, and the noise that comes with it."""
    dark = np.power(np.clip(image, 0.0, 1.0), rng.uniform(1.2, 2.5)) * rng.uniform(0.08, 0.35)
    return quantise(dark + rng.normal(0.0, rng.uniform(1.0, 6.0) / 255.0, image.shape))


def jpeg(image: np.ndarray, rng: np.random.Generator, quality: int | None = None) -> np.ndarray:
    """Heavy JPEG compression, quality 10-40 unless given."""
    quality = int(rng.integers(10, 41)) if quality is None else quality
    buffer = io.BytesIO()
    Image.fromarray(np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)).save(buffer, "JPEG", quality=quality)
    return np.asarray(Image.open(buffer), dtype=np.float32) / 255.0


# One synthesiser per task of the registry, in its order.
DEGRADATIONS: dict[str, Degradation] = dict(zip(TASKS, (noise, rain, haze, blur, low_light, jpeg), strict=True))


def degrade(clean: np.ndarray, tasks: Sequence[str], seed: int) -> np.ndarray:
    """Apply `tasks` (one or several names of DEGRADATIONS) to a clean image, reproducibly."""
    unknown = set(tasks) - set(DEGRADATIONS)
    if unknown or not tasks:
        raise ValueError(f"unknown or no degradations {sorted(unknown)}: choose from {list(DEGRADATIONS)}")
    rng = np.random.default_rng(seed)
    image = clean.astype(np.float32)
    for task in sorted(set(tasks), key=ORDER.index):
        image = DEGRADATIONS[task](image, rng)
    return image
