"""Recipe options of a training run: the loss, an average of the weights, reduced precision on the CPU.

Each is a TrainConfig switch, so that `textpromptir study` can measure it
against the plain recipe (L1, the raw weights, float32).
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import torch

from textpromptir.engine.weights import load_model, save_weights
from textpromptir.model import TextPromptIR

LOSSES = ("l1", "charbonnier", "psnr")
CHARBONNIER_EPS = 1e-3
EMA_FILE = "ema.safetensors"  # beside the run's state


def pixel_loss(kind: str, restored: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """L1; Charbonnier (a smooth L1, SwinIR's and Restormer's choice); or PSNR loss (NAFNet's: the
    mean over images of -PSNR, so every image counts by its log error, dark and flat ones included)."""
    if kind == "charbonnier":
        return torch.sqrt((restored - clean) ** 2 + CHARBONNIER_EPS**2).mean()
    if kind == "psnr":
        mse = ((restored - clean) ** 2).mean(dim=(1, 2, 3))
        return (10 / math.log(10) * torch.log(mse + 1e-8)).mean()
    return (restored - clean).abs().mean()


def frequency_loss(restored: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """L1 between the 2-D spectra (real and imaginary parts), as MIMO-UNet's for deblurring: every
    frequency counts alike, so the fine detail that blur and JPEG take away, whose pixel errors are
    small and spread out, weighs far more than in a pixel loss."""
    difference = torch.fft.rfft2(restored.float()) - torch.fft.rfft2(clean.float())
    return torch.view_as_real(difference).abs().mean()


def restoration_loss(kind: str, frequency_weight: float, restored: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    loss = pixel_loss(kind, restored, clean)
    if frequency_weight:
        loss = loss + frequency_weight * frequency_loss(restored, clean)
    return loss


class WeightAverage:
    """An exponential moving average of a model's weights (and buffers), kept beside it on the same device."""

    def __init__(self, model: TextPromptIR, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: TextPromptIR) -> None:
        averaged, current = self.model.state_dict().values(), model.state_dict().values()
        for average, value in zip(averaged, current, strict=True):
            if average.is_floating_point():
                average.lerp_(value.to(average.dtype), 1 - self.decay)
            else:
                average.copy_(value)


def save_average(average: WeightAverage | None, step: int, run_dir: Path) -> None:
    if average is not None:
        save_weights(average.model, run_dir / "ema.tmp", trained_steps=str(step))
        (run_dir / "ema.tmp").replace(run_dir / EMA_FILE)


def load_average(average: WeightAverage, path: Path) -> None:
    """Resume the average from its file, when there is one."""
    if path.is_file():
        average.model.load_state_dict(load_model(path).state_dict())


def cpu_has_native_bf16() -> bool:
    """Whether the CPU computes bf16 in hardware (avx512_bf16 or AMX): only there can bf16 autocast
    make a training step faster; elsewhere it is emulated and slower than float32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " avx512_bf16" in flags or " amx_bf16" in flags
