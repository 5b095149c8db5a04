"""Shared fixtures. Until trained weights ship, tests use weights they initialise themselves."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from textpromptir.engine.restore import Restorer
from textpromptir.engine.weights import save_weights
from textpromptir.model import SIZES, TextPromptIR


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `gpu` need a real CUDA device; without one (CI, these machines) they are skipped, never mocked."""
    if torch.cuda.is_available():
        return
    no_gpu = pytest.mark.skip(reason="needs a CUDA GPU (run `pytest -m gpu` on one)")
    for item in items:
        if item.get_closest_marker("gpu"):
            item.add_marker(no_gpu)


def untrained_model(seed: int = 0, size: str = "lite") -> TextPromptIR:
    """A model whose every layer is randomly initialised.

    The shipped initialisation zeroes the output conv, which makes the whole
    network the identity; tests that must see the network at work give that
    layer PyTorch's default initialisation again.
    """
    torch.manual_seed(seed)
    model = TextPromptIR(SIZES[size])
    model.output.reset_parameters()
    return model.eval()


@pytest.fixture(scope="session")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "untrained-lite.safetensors"
    save_weights(untrained_model(), path, dtype=torch.float32)
    return path


@pytest.fixture(scope="session")
def restorer(weights_file: Path) -> Restorer:
    return Restorer.load(weights_file, device="cpu")


def photo_like(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A smooth colour image with edges and texture, (H, W, 3) uint8."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    base = np.stack(
        [
            0.5 + 0.4 * np.sin(x / 37.0 + y / 53.0),
            0.5 + 0.4 * np.cos(y / 29.0),
            0.5 + 0.3 * np.sin((x + 2 * y) / 71.0),
        ],
        axis=-1,
    )
    base += ((x // 64 + y // 64) % 2)[..., None] * 0.1  # hard edges
    base += rng.normal(0, 0.03, base.shape)  # fine texture
    return np.clip(np.rint(base * 255), 0, 255).astype(np.uint8)
