"""Check the engine on a CUDA GPU: precision, agreement with the CPU, speed, memory.

For a lent GPU machine (it has none of our data; only this checkout). Prints,
for each size: the reduced precision chosen, PSNR of the GPU result against
float32 on the CPU (must be >= 45 dB), seconds per megapixel and peak GPU
memory, untiled and tiled. Exits 1 when no CUDA device is visible, 2 when
the GPU result disagrees with the CPU.

    python benchmarks/cuda_check.py
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from textpromptir.engine.restore import Restorer
from textpromptir.metrics import psnr
from textpromptir.model import SIZES, TextPromptIR

PROMPT = "remove the noise"
MIN_PSNR = 45.0


def random_model(size: str) -> TextPromptIR:
    """Untrained weights with a live output layer, so the network's work shows in the result."""
    torch.manual_seed(0)
    model = TextPromptIR(SIZES[size])
    model.output.reset_parameters()
    return model.eval()


def timed(restorer: Restorer, image: np.ndarray, tile: int) -> tuple[np.ndarray, float]:
    restorer.restore(image[:256, :256], PROMPT, tile=tile)  # warm up kernels
    torch.cuda.synchronize()
    started = time.perf_counter()
    out = restorer.restore(image, PROMPT, tile=tile)
    torch.cuda.synchronize()
    return out, time.perf_counter() - started


def main() -> int:
    if not torch.cuda.is_available():
        print("no CUDA device is visible to PyTorch: nothing to check", file=sys.stderr)
        return 1
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}")
    image = np.random.default_rng(0).integers(0, 256, (1024, 1024, 3), dtype=np.uint8)
    ok = True
    for size in ("lite", "paper"):
        model = random_model(size)
        reference = Restorer(model, torch.device("cpu")).restore(image[:512, :512], PROMPT, tile=0)
        gpu = Restorer(random_model(size), torch.device("cuda"))
        agreement = psnr(gpu.restore(image[:512, :512], PROMPT, tile=0), reference)
        ok &= agreement >= MIN_PSNR
        for tile in (0, 512):
            torch.cuda.reset_peak_memory_stats()
            _, seconds = timed(gpu, image, tile)
            peak = torch.cuda.max_memory_allocated() / 2**30
            print(
                f"{size:6} {gpu.precision} vs CPU float32 {agreement:6.1f} dB | tile {tile:4}: "
                f"{seconds / (image.shape[0] * image.shape[1] / 1e6):.3f} s/MP, peak {peak:.2f} GiB"
            )
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
