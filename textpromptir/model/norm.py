"""Layer normalisation over the channels of a feature map."""

import torch
import torch.nn.functional as F
from torch import nn


class LayerNorm2d(nn.Module):
    """LayerNorm across channels at every pixel of a (B, C, H, W) map.

    The network runs channels_last, where (B, H, W, C) is a free view of the
    same memory: the norm runs there with the native kernel, no copies.
    """

    def __init__(self, channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pixels_last = x.permute(0, 2, 3, 1)  # (B, H, W, C)
        normed = F.layer_norm(pixels_last, self.weight.shape, self.weight, self.bias, self.eps)
        return normed.permute(0, 3, 1, 2)
