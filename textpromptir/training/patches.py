"""Training batches: photo patches, degraded on the fly, each with an instruction's embedding."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .config import TrainConfig
from .data import read_manifest
from .degradations import degrade
from .prompts import PromptBank

HAZE_CONTEXT = 3  # haze patches are cut this many times larger and shrunk: haze is a global effect


def load_photos(root: Path, longest_side: int) -> list[np.ndarray]:
    photos = []
    for entry in read_manifest(root, "train"):
        with Image.open(root / entry.path) as image:
            image = image.convert("RGB")
            image.thumbnail((longest_side, longest_side), Image.LANCZOS)
            photos.append(np.asarray(image))
    if not photos:
        raise RuntimeError(f"no training photos in {root}: run `textpromptir data fetch --root {root}`")
    return photos


def sample_pair(
    photos: list[np.ndarray], labels: tuple[str, ...], config: TrainConfig, rng: random.Random
) -> tuple[np.ndarray, np.ndarray]:
    """A clean patch and its degraded twin, (patch, patch, 3) float32 each."""
    patch = config.patch
    photo = rng.choice(photos)
    side = patch * HAZE_CONTEXT if "haze" in labels else patch
    side = min(side, *photo.shape[:2])
    top, left = rng.randrange(photo.shape[0] - side + 1), rng.randrange(photo.shape[1] - side + 1)
    crop = Image.fromarray(photo[top : top + side, left : left + side])
    if side != patch:
        crop = crop.resize((patch, patch), Image.LANCZOS)
    clean = np.asarray(crop, np.float32) / 255
    clean = np.rot90(clean, rng.randrange(4))
    if rng.random() < 0.5:
        clean = clean[:, ::-1]
    clean = np.ascontiguousarray(clean)
    return clean, degrade(clean, labels, seed=rng.getrandbits(32), realistic_share=config.realistic_share)


def batches(photos, bank: PromptBank, config: TrainConfig, rng: random.Random) -> Iterator[tuple]:
    while True:
        clean, degraded, texts = [], [], []
        for _ in range(config.batch):
            labels, embedding = bank.draw(rng, config.combination_share)
            target, source = sample_pair(photos, labels, config, rng)
            clean.append(target)
            degraded.append(source)
            texts.append(embedding)
        to_tensor = lambda images: torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)  # noqa: E731
        yield to_tensor(degraded), to_tensor(clean), torch.stack(texts)


class PatchStream(torch.utils.data.IterableDataset):
    """Endless batches for a DataLoader; every loader worker draws from a random stream of its own."""

    def __init__(self, photos: list[np.ndarray], bank: PromptBank, config: TrainConfig, seed: int) -> None:
        self.photos, self.bank, self.config, self.seed = photos, bank, config, seed

    def __iter__(self) -> Iterator[tuple]:
        worker = torch.utils.data.get_worker_info()
        seed = self.seed if worker is None else self.seed * 1009 + worker.id + 1
        return batches(self.photos, self.bank, self.config, random.Random(seed))


def batch_loader(photos: list[np.ndarray], bank: PromptBank, config: TrainConfig, seed: int, pin: bool) -> Iterator:
    stream = PatchStream(photos, bank, config, seed)
    if config.loader_workers == 0:
        return iter(stream)
    loader = torch.utils.data.DataLoader(
        stream, batch_size=None, num_workers=config.loader_workers, pin_memory=pin, prefetch_factor=4
    )
    return iter(loader)
