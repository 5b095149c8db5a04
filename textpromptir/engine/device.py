"""Which device runs the model, and in which precision: one policy for inference and training."""

from __future__ import annotations

import torch

from textpromptir.errors import DeviceError


def pick_device(requested: str = "auto") -> torch.device:
    """cuda, then mps, then cpu for "auto"; a named device must be usable."""
    cuda = torch.cuda.is_available()
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if requested == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if requested == "cuda" and not cuda:
        raise DeviceError(
            "CUDA was requested but PyTorch sees no CUDA GPU: check the NVIDIA driver, "
            "or that the CUDA build of torch is installed; --device cpu always works."
        )
    if requested == "mps" and not mps:
        raise DeviceError("MPS (Apple GPU) was requested but is not available here; use --device cpu.")
    if requested not in ("cpu", "cuda", "mps"):
        raise DeviceError(f"Unknown device {requested!r}: use auto, cpu, cuda or mps.")
    return torch.device(requested)


def half_precision(device: torch.device) -> torch.dtype | None:
    """The reduced precision that is safe on this device, if any.

    bf16 has float32's range, so the attention's dot products cannot
    overflow; fp16 only where bf16 is missing (pre-Ampere NVIDIA GPUs).
    """
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
