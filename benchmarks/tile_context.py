"""How much of the picture a tile must see, per degradation (a benchmark, not a test).

The engine restores 512 px tiles, each with only its own pixels as context,
and the network was trained on 96 px patches. Issue 19 asks that hazy skies
come out smooth on big photos. Two measurements:

1. Validation crops (512 px, the first --crops photos of the pool) restored
   as one tile and in tiles of 256 and 160 px: PSNR per degradation. Where
   smaller tiles lose, the restoration reads context beyond a tile.
2. Large hazy photos: the shipped way (tiles of 512) against larger tiles,
   the whole photo as one tile, and two training-free ways to give every
   tile the same whole-image estimate:
   - overview: the photo shrunk to one tile, restored once, enlarged back;
   - overview low band: the tiles' result with its low frequencies (those
     the shrunk copy keeps) replaced by the restored overview's.

The large photos are the first --photos (in a seeded draw) of the training
pool's photos with a side of 2,000 px or more (the validation photos are all
smaller than that; the comparison is between ways of running one network,
not of its training), each shrunk to --side, hazed by
`degradations.haze` with a depth map as smooth as a scene's (a 512 px depth
proxy enlarged) and a density (beta) spread evenly over the classic
generator's range, light to heavy, and restored with "remove the haze".
Printed per way and per third of that range: PSNR, and the low-band error
spread: the mean distance of the error, averaged in 64 px blocks, from its
mean over the photo (in 1/255), which is what a blotchy sky looks like when
the mean error is not.

    python benchmarks/tile_context.py [--weights PATH] [--crops 6] [--photos 12] [--side 2048] [--data-root data]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from PIL import Image  # noqa: E402

from textpromptir.engine.restore import DEFAULT_TILE, Restorer  # noqa: E402
from textpromptir.metrics import psnr  # noqa: E402
from textpromptir.training import degradations  # noqa: E402
from textpromptir.training.evaluate import degrade_all, load_validation, prompt_for  # noqa: E402

PROMPT = "remove the haze"
LARGE = 2000  # photos with a side at least this long
BLOCK = 64  # the low-band error is measured in blocks of this many pixels
CROP_CASES = ("haze", "held-out haze", "low_light", "held-out low_light", "rain", "noise sigma 25")
CROP_TILES = (0, 256, 160)  # 0: the whole crop as one tile
DENSITIES = (0.6, 2.5)  # the classic haze generator's range of beta
THIRDS = ("light", "medium", "heavy")


def resized(image: np.ndarray, size: tuple[int, int], mode: str) -> np.ndarray:
    """(h, w, 3) float32 to `size` (h, w); antialiased when shrinking."""
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None]
    shrinking = size[0] < image.shape[0]
    y = F.interpolate(x, size=size, mode=mode, antialias=shrinking, align_corners=False)
    return y[0].permute(1, 2, 0).numpy()


def large_photos(root: Path, count: int, seed: int = 0) -> list[Path]:
    found = sorted(
        p for p in (root / "photos" / "train").rglob("*") if p.is_file() and max(Image.open(p).size) >= LARGE
    )
    picked = np.random.default_rng(seed).choice(len(found), min(count, len(found)), replace=False)
    return [found[i] for i in picked]


def hazy_pair(path: Path, side: int, beta: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(clean, hazy) float32 in [0, 1], the longest side `side`, haze of density beta with a scene-smooth depth."""
    image = Image.open(path).convert("RGB")
    scale = side / max(image.size)
    image = image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
    clean = np.asarray(image, np.float32) / 255
    height, width = clean.shape[:2]
    rng = np.random.default_rng(seed)
    coarse = degradations.depth_proxy(max(height * 512 // side, 2), max(width * 512 // side, 2), rng)
    depth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BICUBIC))
    return clean, degradations.haze(clean, rng, depth=depth, beta=beta).astype(np.float32)


def restorations(restorer: Restorer, hazy: np.ndarray) -> dict[str, np.ndarray]:
    height, width = hazy.shape[:2]
    scale = DEFAULT_TILE / max(height, width)
    small = (round(height * scale), round(width * scale))
    tiled = restorer.restore(hazy, PROMPT)
    overview = resized(restorer.restore(resized(hazy, small, "bilinear"), PROMPT, tile=0), (height, width), "bicubic")
    tiles_low_band = resized(resized(tiled, small, "bilinear"), (height, width), "bicubic")
    return {
        f"tiles of {DEFAULT_TILE} (shipped)": tiled,
        f"tiles of {2 * DEFAULT_TILE}": restorer.restore(hazy, PROMPT, tile=2 * DEFAULT_TILE),
        "one tile: the whole photo": restorer.restore(hazy, PROMPT, tile=0),
        "overview": overview,
        "overview low band": tiled - tiles_low_band + overview,
    }


def low_band_spread(restored: np.ndarray, clean: np.ndarray) -> float:
    height, width = clean.shape[:2]
    error = resized(restored - clean, (max(height // BLOCK, 1), max(width // BLOCK, 1)), "bilinear")
    return float(np.abs(error - error.mean(axis=(0, 1))).mean() * 255)


def crop_table(restorer: Restorer, root: Path, crops: int) -> str:
    photos = load_validation(root, photos=crops)
    lines = ["| degradation | " + " | ".join(f"tiles of {t}" if t else "one tile (512)" for t in CROP_TILES) + " |"]
    lines.append("| --- " * (len(CROP_TILES) + 1) + "|")
    for case in CROP_CASES:
        pairs = degrade_all(photos, case)
        scores = [
            np.mean([psnr(restorer.restore(bad, prompt_for(case), tile=tile), clean, 1.0) for clean, bad in pairs])
            for tile in CROP_TILES
        ]
        lines.append(f"| {case} | " + " | ".join(f"{score:.2f}" for score in scores) + " |")
    return "\n".join(lines)


def large_photo_table(restorer: Restorer, root: Path, photos: int, side: int) -> str:
    """Per way, PSNR and low-band spread in each third of the density range (light, medium, heavy haze)."""
    paths = large_photos(root, photos)
    betas = np.linspace(*DENSITIES, len(paths))
    thirds = np.minimum((betas - DENSITIES[0]) / (DENSITIES[1] - DENSITIES[0]) * 3, 2).astype(int)
    scores: dict[str, list[tuple[float, float]]] = {"input (hazy)": []}
    for seed, (path, beta) in enumerate(zip(paths, betas, strict=True)):
        clean, hazy = hazy_pair(path, side, beta, seed)
        scores["input (hazy)"].append((psnr(hazy * 255, clean * 255), low_band_spread(hazy, clean)))
        for name, restored in restorations(restorer, hazy).items():
            restored = np.clip(restored, 0.0, 1.0)
            scores.setdefault(name, []).append((psnr(restored * 255, clean * 255), low_band_spread(restored, clean)))
    counts = [int(np.sum(thirds == third)) for third in range(3)]
    present = [third for third in range(3) if counts[third]]
    header = " | ".join(f"{THIRDS[third]} ({counts[third]})" for third in present)
    lines = [
        f"{len(paths)} hazy photos of {side} px, beta {DENSITIES[0]}-{DENSITIES[1]}: PSNR dB / low-band spread 1/255\n",
        f"| way | {header} | all |",
        "| --- " * (len(present) + 2) + "|",
    ]
    for name, rows in scores.items():
        rows = np.asarray(rows)
        cells = [rows[thirds == third].mean(axis=0) for third in present] + [rows.mean(axis=0)]
        lines.append(f"| {name} | " + " | ".join(f"{cell[0]:.2f} / {cell[1]:.1f}" for cell in cells) + " |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=None, help="restoration weights (default: the shipped ones)")
    parser.add_argument("--crops", type=int, default=6, help="validation crops for the first table (0: skip it)")
    parser.add_argument("--photos", type=int, default=12, help="large photos for the second table (0: skip it)")
    parser.add_argument("--side", type=int, default=2048)
    parser.add_argument("--data-root", type=Path, default=Path("data"))
    args = parser.parse_args()
    restorer = Restorer.load(args.weights)
    print(f"weights: {args.weights or 'shipped'}\n")
    if args.crops:
        print(crop_table(restorer, args.data_root, args.crops), "\n", flush=True)
    if args.photos:
        print(large_photo_table(restorer, args.data_root, args.photos, args.side))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
