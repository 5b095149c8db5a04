"""Synthetic degradations, each exactly paired with its clean target.

Every function takes a clean float32 (H, W, 3) image in [0, 1] and a numpy
Generator and returns the degraded image; the same seed gives the same result.
`degrade` applies one or several in the order the physics suggests: the
scene (haze, rain) before the lens (blur), then the sensor (low light,
noise), then the file (JPEG).

Two families of generators. The classic ones (`noise`, `rain`, ...) make the
validation pool of `textpromptir evaluate` and stay exactly as they were, so
its rows remain comparable across versions. The realistic ones (`camera_noise`,
`rain_storm`, ...) draw every setting from a `Generators` of ranges: training
uses TRAINING, and a second validation pool uses HELD_OUT, whose ranges
training never draws from (the gaps between and the values beyond them), so
that pool measures whether the network learnt the degradation or our
synthesis of it. Training mixes both families (`degrade`).
"""

from __future__ import annotations

import io
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

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


def haze(
    image: np.ndarray, rng: np.random.Generator, depth: np.ndarray | None = None, beta: float | None = None
) -> np.ndarray:
    """Atmospheric scattering: I = J t + A (1 - t), with t = exp(-beta d); beta drawn when not given."""
    height, width = image.shape[:2]
    depth = depth_proxy(height, width, rng) if depth is None else depth
    drawn = rng.uniform(0.6, 2.5)  # drawn even when given, so the airlight is the same for every beta
    beta = drawn if beta is None else beta
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


Intervals = tuple[tuple[float, float], ...]


@dataclass(frozen=True)
class Generators:
    """The ranges the realistic generators draw from, each a union of (low, high) intervals."""

    rain_angle: Intervals  # degrees from vertical, either side
    rain_width: Intervals  # streak width, pixels
    rain_length: Intervals  # pixels
    rain_opacity: Intervals  # how bright a streak is at its core
    rain_cover: Intervals  # share of the image the streaks of a layer cover
    photons: Intervals  # photons per photosite at white: fewer is grainier
    read_noise: Intervals  # of 255, per photosite
    shake_length: Intervals  # pixels the camera travels during the exposure
    defocus_radius: Intervals  # pixels
    jpeg_quality: Intervals
    colour_cast: Intervals  # spread of the channel gains
    haze_density: Intervals  # the scattering coefficient beta


TRAINING = Generators(
    rain_angle=((-60.0, -40.0), (-30.0, 30.0), (40.0, 60.0)),
    rain_width=((1.0, 2.5),),
    rain_length=((8.0, 50.0),),
    rain_opacity=((0.25, 0.85),),
    rain_cover=((0.03, 0.25),),
    photons=((25.0, 60.0), (100.0, 1000.0)),
    read_noise=((0.5, 4.0), (6.0, 10.0)),
    shake_length=((5.0, 15.0), (21.0, 28.0)),
    defocus_radius=((1.5, 3.0), (4.0, 5.5)),
    jpeg_quality=((10.0, 25.0), (35.0, 60.0)),
    colour_cast=((0.0, 0.12), (0.22, 0.3)),
    haze_density=((0.5, 1.2), (1.8, 2.8)),
)
HELD_OUT = Generators(
    rain_angle=((-40.0, -30.0), (30.0, 40.0)),
    rain_width=((3.0, 4.0),),
    rain_length=((55.0, 80.0),),
    rain_opacity=((0.85, 0.95),),
    rain_cover=((0.25, 0.35),),
    photons=((60.0, 100.0),),
    read_noise=((4.0, 6.0),),
    shake_length=((15.0, 21.0),),
    defocus_radius=((3.0, 4.0),),
    jpeg_quality=((25.0, 35.0),),
    colour_cast=((0.12, 0.22),),
    haze_density=((1.2, 1.8),),
)


def draw(rng: np.random.Generator, intervals: Intervals) -> float:
    """Uniform over the union of the intervals."""
    lengths = np.array([high - low for low, high in intervals]) + 1e-9
    low, high = intervals[rng.choice(len(intervals), p=lengths / lengths.sum())]
    return float(rng.uniform(low, high))


def gaussian_kernel(sigma: float) -> np.ndarray:
    radius = max(1, math.ceil(3 * sigma))
    taps = np.exp(-(np.arange(-radius, radius + 1) ** 2) / (2 * sigma**2))
    return np.outer(taps, taps).astype(np.float32)


def rain_storm(image: np.ndarray, rng: np.random.Generator, settings: Generators = TRAINING) -> np.ndarray:
    """Rain as cameras see it: layers of streaks at one wind angle, nearer layers longer, wider and softer.

    Heavy rain also leaves drops on the lens (blurred, brightened discs) and a
    veil of scattered light over the scene, as haze does.
    """
    height, width = image.shape[:2]
    angle, cover = draw(rng, settings.rain_angle), draw(rng, settings.rain_cover)
    streaks = np.zeros((height, width), np.float32)
    for nearness in np.linspace(0.6, 1.0, int(rng.integers(1, 4))):
        length = max(3, round(draw(rng, settings.rain_length) * nearness))
        thickness = max(1, round(draw(rng, settings.rain_width) * nearness))
        drops = rng.random((height, width)) < cover * rng.uniform(0.4, 1.0) / (length * thickness)
        kernel = line_kernel(length, angle + rng.uniform(-3.0, 3.0), thickness)
        layer = convolve(drops * rng.uniform(0.6, 1.0, (height, width)), kernel) * kernel.sum()
        layer = convolve(layer, gaussian_kernel(rng.uniform(0.3, 1.2) * nearness))  # motion and defocus soften
        streaks = np.maximum(streaks, np.clip(layer * draw(rng, settings.rain_opacity), 0.0, 1.0))
    rainy = image + (1.0 - image) * streaks[..., None]  # screen blend: streaks only brighten
    if cover > 0.15:  # heavy rain
        rainy = lens_drops(rainy, rng)
        veil = rng.uniform(0.05, 0.25) * cover / 0.35
        rainy = rainy * (1.0 - veil) + rng.uniform(0.7, 0.95) * veil
    return quantise(rainy)


def lens_drops(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A few drops on the lens: discs that show a blurred, brighter view of what lies behind them."""
    height, width = image.shape[:2]
    mask = np.zeros((height, width), np.float32)
    y, x = np.mgrid[:height, :width]
    for _ in range(int(rng.integers(2, 8))):
        radius = rng.uniform(2.0, 0.04 * min(height, width) + 3.0)
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        mask = np.maximum(mask, ((y - cy) ** 2 + (x - cx) ** 2 <= radius**2).astype(np.float32))
    mask = convolve(mask, gaussian_kernel(1.0))[..., None]
    behind = np.clip(convolve(image, gaussian_kernel(3.0)) * 1.1 + 0.05, 0.0, 1.0)
    return image * (1.0 - mask) + behind * mask


def srgb_to_linear(image: np.ndarray) -> np.ndarray:
    return np.power(np.clip(image, 0.0, 1.0), 2.2)


def linear_to_srgb(image: np.ndarray) -> np.ndarray:
    return np.power(np.clip(image, 0.0, 1.0), 1 / 2.2)


def bayer_masks(height: int, width: int) -> np.ndarray:
    """(H, W, 3) 0/1 masks of an RGGB colour filter array: which channel each photosite measures."""
    masks = np.zeros((height, width, 3), np.float32)
    masks[0::2, 0::2, 0] = 1.0
    masks[0::2, 1::2, 1] = masks[1::2, 0::2, 1] = 1.0
    masks[1::2, 1::2, 2] = 1.0
    return masks


def demosaic(raw: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """Bilinear demosaicing: each channel interpolated from its own photosites (normalised convolution)."""
    kernel = np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], np.float32)
    measured = convolve(raw[..., None] * masks, kernel)
    return measured / np.maximum(convolve(masks, kernel), 1e-6)


def camera_noise(image: np.ndarray, rng: np.random.Generator, settings: Generators = TRAINING) -> np.ndarray:
    """A phone's noise: shot and read noise per photosite of the raw mosaic, demosaiced (so the
    noise is correlated and coloured), back to sRGB, then saved as JPEG."""
    height, width = image.shape[:2]
    masks = bayer_masks(height, width)
    raw = (srgb_to_linear(image) * masks).sum(axis=-1)
    photons = draw(rng, settings.photons)
    raw = rng.poisson(raw * photons) / photons + rng.normal(0.0, draw(rng, settings.read_noise) / 255.0, raw.shape)
    return save_as_jpeg(linear_to_srgb(demosaic(raw.astype(np.float32), masks)), rng, settings, double=False)


def shake_kernel(length: float, rng: np.random.Generator) -> np.ndarray:
    """A camera-shake trajectory: a random walk with momentum, `length` pixels long, drawn into a kernel."""
    steps = max(8, round(4 * length))
    turns = np.cumsum(rng.normal(0.0, 0.35, steps)) + rng.uniform(0, 2 * math.pi)
    path = np.cumsum(np.stack([np.sin(turns), np.cos(turns)], axis=1), axis=0) * (length / steps)
    path -= path.mean(axis=0)
    size = 2 * math.ceil(np.abs(path).max()) + 3
    kernel = np.zeros((size, size), np.float32)
    for dy, dx in path:  # bilinear splat: the camera spends equal time at every point of the path
        y, x = dy + size // 2, dx + size // 2
        y0, x0 = int(y), int(x)
        fy, fx = y - y0, x - x0
        kernel[y0 : y0 + 2, x0 : x0 + 2] += np.array([[(1 - fy) * (1 - fx), (1 - fy) * fx], [fy * (1 - fx), fy * fx]])
    return kernel


def camera_blur(image: np.ndarray, rng: np.random.Generator, settings: Generators = TRAINING) -> np.ndarray:
    """Camera shake along a curved trajectory, or defocus with a soft-edged disc."""
    if rng.random() < 0.6:
        kernel = shake_kernel(draw(rng, settings.shake_length), rng)
    else:
        kernel = convolve(disk_kernel(draw(rng, settings.defocus_radius)), gaussian_kernel(0.5))
    return quantise(convolve(image, kernel))


def save_as_jpeg(image: np.ndarray, rng: np.random.Generator, settings: Generators, double: bool = True) -> np.ndarray:
    """JPEG as files meet it: chroma subsampled or not, and often saved twice (a shared photo re-shared)."""
    qualities = [round(draw(rng, settings.jpeg_quality))]
    if double and rng.random() < 0.5:
        qualities.insert(0, round(draw(rng, settings.jpeg_quality)) + int(rng.integers(5, 30)))
    pixels = np.round(np.clip(image, 0, 1) * 255).astype(np.uint8)
    for quality in qualities:
        buffer = io.BytesIO()
        subsampling = int(rng.choice([0, 1, 2]))  # 4:4:4, 4:2:2, 4:2:0
        Image.fromarray(pixels).save(buffer, "JPEG", quality=min(quality, 95), subsampling=subsampling)
        pixels = np.asarray(Image.open(buffer).convert("RGB"))
    return pixels.astype(np.float32) / 255.0


def jpeg_files(image: np.ndarray, rng: np.random.Generator, settings: Generators = TRAINING) -> np.ndarray:
    return save_as_jpeg(image, rng, settings)


def dim_with_cast(image: np.ndarray, rng: np.random.Generator, settings: Generators = TRAINING) -> np.ndarray:
    """Low light under coloured light: darker, a colour cast (warm lamps, blue dusk), and the sensor's noise."""
    gains = np.exp(rng.normal(0.0, 1.0, 3) * draw(rng, settings.colour_cast)).astype(np.float32)
    dark = np.power(np.clip(image, 0.0, 1.0), rng.uniform(1.2, 2.5)) * rng.uniform(0.08, 0.35) * gains
    photons = draw(rng, settings.photons) * 0.2  # little light: few photons
    shot = rng.poisson(np.clip(dark, 0.0, 1.0) * photons * 10) / (photons * 10)
    return quantise(shot + rng.normal(0.0, draw(rng, settings.read_noise) / 255.0, image.shape))


def coloured_haze(image: np.ndarray, rng: np.random.Generator, settings: Generators = TRAINING) -> np.ndarray:
    """Haze by the scattering model with a tinted airlight (smog, dusk) and the density drawn from settings."""
    height, width = image.shape[:2]
    transmission = np.exp(-draw(rng, settings.haze_density) * depth_proxy(height, width, rng))[..., None]
    airlight = np.clip(rng.uniform(0.6, 1.0) + rng.normal(0.0, 0.06, 3), 0.0, 1.0).astype(np.float32)
    return quantise(image * transmission + airlight * (1.0 - transmission))


RealisticDegradation = Callable[[np.ndarray, np.random.Generator, Generators], np.ndarray]
REALISTIC: dict[str, RealisticDegradation] = {
    "noise": camera_noise,
    "rain": rain_storm,
    "haze": coloured_haze,
    "blur": camera_blur,
    "low_light": dim_with_cast,
    "jpeg": jpeg_files,
}
REALISTIC_SHARE = 0.5  # of training samples per degradation; the rest come from the classic generator


def degrade(
    clean: np.ndarray,
    tasks: Sequence[str],
    seed: int,
    settings: Generators | None = TRAINING,
    realistic_share: Mapping[str, float] | None = None,
) -> np.ndarray:
    """Apply `tasks` (one or several names of DEGRADATIONS) to a clean image, reproducibly.

    Each degradation comes from its realistic generator drawing from `settings`
    (its `realistic_share`, REALISTIC_SHARE where not given) or else from the
    classic one; `settings=None` uses the classic generators only.
    """
    unknown = set(tasks) - set(DEGRADATIONS)
    if unknown or not tasks:
        raise ValueError(f"unknown or no degradations {sorted(unknown)}: choose from {list(DEGRADATIONS)}")
    rng = np.random.default_rng(seed)
    ordered = sorted(set(tasks), key=ORDER.index)
    # Which family each degradation comes from is drawn apart, so a classic pick matches settings=None.
    shares = [(realistic_share or {}).get(task, REALISTIC_SHARE) for task in ordered]
    realistic = np.random.default_rng((seed, 1)).random(len(ordered)) < shares
    image = clean.astype(np.float32)
    for task, from_settings in zip(ordered, realistic, strict=True):
        if settings is not None and from_settings:
            image = REALISTIC[task](image, rng, settings)
        else:
            image = DEGRADATIONS[task](image, rng)
    return image
