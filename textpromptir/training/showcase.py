"""The README's before/after picture: validation photos degraded by our synthesis, restored by the given weights.

    textpromptir showcase --data-root data [--weights W] [--out resources/readme/before-after.jpg]

Photos from scikit-image's data (public domain or CC0), never used in
training; each is degraded with a fixed seed, restored with a plain prompt,
and shown as a before | after pair with the prompt underneath.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from textpromptir.engine.restore import Restorer
from textpromptir.engine.weights import SHIPPED_WEIGHTS
from textpromptir.resources import resource

from . import degradations
from .evaluate import centre

SIDE = 256
CAPTION = 22
# (photo in the validation pool, degradation, prompt)
PANELS = (
    (
        "skimage__data__coffee.png",
        lambda image, rng: degradations.gaussian_noise(image, rng, sigma=25),
        "remove the noise",
    ),
    ("skimage__data__chelsea.png", degradations.rain, "get rid of the rain streaks"),
    ("skimage__data__rocket.jpg", degradations.haze, "it's all hazy, fix it"),
    ("skimage__data__astronaut.png", degradations.low_light, "brighten this dark photo"),
)


def find_photo(root: Path, name: str) -> np.ndarray:
    matches = sorted(root.glob(f"photos/val/*/{name}"))
    if not matches:
        raise SystemExit(f"{name} is not in {root}/photos/val: run `textpromptir data fetch --root {root}` first.")
    with Image.open(matches[0]) as photo:
        return np.asarray(photo.convert("RGB"), np.float32) / 255


def to_picture(image: np.ndarray) -> Image.Image:
    return Image.fromarray(np.clip(np.rint(image * 255), 0, 255).astype(np.uint8))


def showcase(root: Path, weights: Path) -> Image.Image:
    restorer = Restorer.load(weights, device="cpu")
    canvas = Image.new("RGB", (4 * SIDE, 2 * (SIDE + CAPTION)), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=15)
    for index, (name, degrade, prompt) in enumerate(PANELS):
        clean = centre(find_photo(root, name), SIDE)
        degraded = degrade(clean, np.random.default_rng(index))
        restored = restorer.restore(degraded.astype(np.float32), prompt)
        left, top = (index % 2) * 2 * SIDE, (index // 2) * (SIDE + CAPTION)
        canvas.paste(to_picture(degraded), (left, top))
        canvas.paste(to_picture(restored), (left + SIDE, top))
        draw.text((left + 6, top + SIDE + 3), f'before | after: "{prompt}"', fill="black", font=font)
    return canvas


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="textpromptir showcase", description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=Path("data"))
    parser.add_argument("--weights", type=Path, default=SHIPPED_WEIGHTS)
    parser.add_argument("--out", type=Path, default=resource("readme", "before-after.jpg"))
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    showcase(args.data_root, args.weights).save(args.out, quality=88, optimize=True)
    print(f"wrote {args.out}")
    return 0
