"""Multi-head transposed attention: attention across channels, not pixels."""

import torch
import torch.nn.functional as F
from torch import nn


class TransposedAttention(nn.Module):
    """Restormer's MDTA, the attention inside the paper's IMTA.

    Queries, keys and values come from a 1x1 conv followed by a 3x3
    depth-wise conv (local context). Each head attends over its channels with
    a (C/heads x C/heads) map of cosine similarities between whole channel
    images, so the cost grows linearly with the number of pixels.
    """

    def __init__(self, channels: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(channels, 3 * channels, 1, bias=False)
        self.qkv_local = nn.Conv2d(3 * channels, 3 * channels, 3, padding=1, groups=3 * channels, bias=False)
        self.project = nn.Conv2d(channels, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        qkv = self.qkv_local(self.qkv(x)).reshape(b, 3, self.heads, c // self.heads, h * w)
        q, k, v = qkv.unbind(dim=1)  # (B, heads, C/heads, H*W) each
        q = F.normalize(q, dim=-1)
        k = F.normalize(k, dim=-1)
        attention = (q @ k.transpose(-2, -1)) * self.temperature  # (B, heads, C/heads, C/heads)
        out = attention.softmax(dim=-1) @ v
        return self.project(out.reshape(b, c, h, w))
