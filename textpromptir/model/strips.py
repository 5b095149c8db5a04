"""Inference of a block's two branches one strip of rows at a time, so that
their wide intermediates stay in the CPU's cache.

At full resolution the hidden maps of a 512 px tile are tens of megabytes
(74-148 channels), so every 1x1 conv, depth-wise conv and GELU streams them
through main memory, and memory, not arithmetic, sets the pace on a laptop
CPU. Both branches are local except for two statistics over the whole map:
the channel means the prompt modulation reads, and the attention's Gram
matrix. So each branch runs in strips of rows that overlap by the 3x3
depth-wise convs' one-row halo, with the statistics gathered over the whole
map. Same arithmetic, same result up to float rounding order.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import torch

from .text_modulation import channel_means

if TYPE_CHECKING:
    from .block import PromptConditioned

# Bytes of a strip's widest intermediate: a few MB keeps it in the L2 cache
# (benchmarks/PROFILE.md: 3-4 MB timed best of 1-8 MB).
STRIP_BYTES = 4 * 2**20
HALO = 1  # rows a 3x3 depth-wise conv reads beyond its strip


def strip_rows(width: int, channels: int, element_size: int) -> int:
    """Rows per strip so that a (channels, rows, width) intermediate fits STRIP_BYTES."""
    return max(4 * HALO, STRIP_BYTES // (width * channels * element_size))


def strips(height: int, rows: int) -> Iterator[tuple[int, int]]:
    """(start, stop) of consecutive strips of `rows` rows covering `height`."""
    for start in range(0, height, rows):
        yield start, min(start + rows, height)


def with_halo(x: torch.Tensor, start: int, stop: int) -> tuple[torch.Tensor, int]:
    """Rows start..stop of x with up to HALO extra rows each side, and where row `start` sits in it."""
    low, high = max(start - HALO, 0), min(stop + HALO, x.shape[2])
    return x[:, :, low:high], start - low


def modulated_strips(
    branch: PromptConditioned, x: torch.Tensor, prompt: torch.Tensor, channels: int
) -> Iterator[tuple[int, int, torch.Tensor, int]]:
    """(start, stop, normalised and modulated strip with halo, offset of row `start`) for the branch's body."""
    normed = branch.norm(x)  # narrow (C channels): cheap to keep whole
    scale, shift = branch.modulation.coefficients(channel_means(normed), prompt)
    rows = strip_rows(x.shape[3], channels, x.element_size())
    for start, stop in strips(x.shape[2], rows):
        part, offset = with_halo(normed, start, stop)
        yield start, stop, torch.addcmul(shift, part, scale), offset


def feedforward_in_strips(branch: PromptConditioned, x: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
    """x + branch(x, prompt) for the IGFN branch, strip by strip."""
    out = torch.empty_like(x)
    hidden = branch.body.local.out_channels
    for start, stop, modulated, offset in modulated_strips(branch, x, prompt, hidden):
        updates = branch.body(modulated)[:, :, offset : offset + stop - start]
        torch.add(x[:, :, start:stop], updates, out=out[:, :, start:stop])
    return out


def attention_in_strips(branch: PromptConditioned, x: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
    """x + branch(x, prompt) for the IMTA branch: Q, K, V strip by strip, the Gram matrix summed over strips."""
    attention = branch.body
    b, c, h, w = x.shape
    gram = x.new_zeros(b, 2 * c, 2 * c, dtype=torch.float32)
    values = x.new_empty(b, h, w, c)  # V in channels_last order, as the final GEMM wants it
    for start, stop, modulated, offset in modulated_strips(branch, x, prompt, 3 * c):
        qkv = attention.local_qkv(modulated)[:, :, offset : offset + stop - start]  # (B, 3C, rows, W)
        qk, v = attention.split_pixels(qkv)
        gram.baddbmm_(qk.transpose(1, 2), qk)
        values[:, start:stop] = v.view(b, stop - start, w, c)
    combined = attention.channel_mixing(gram).transpose(1, 2).to(x.dtype)  # (W A)^T
    # x + V (W A)^T in one GEMM pass; the view of x is free for channels_last.
    out = torch.baddbmm(x.permute(0, 2, 3, 1).reshape(b, h * w, c), values.view(b, h * w, c), combined)
    return out.view(b, h, w, c).permute(0, 3, 1, 2)
