"""NAFNet's activation-free branches, the bodies of the NAF block (block.py).

NAFNet (Chen et al., 2022) replaces attention and GELU by a simple gate, the
product of two halves of the channels, and channel attention by one linear
map of the channel means. Its hidden maps are 2C wide where the GDFN's are
2 x 2.66 C, so a block reads and writes far less memory: on our CPUs memory,
not arithmetic, sets the pace (benchmarks/PROFILE.md). The text path stays the
paper's: both branches read the prompt-modulated features (block.py).
"""

import torch
from torch import nn

from .text_modulation import channel_means

EXPANSION = 2  # NAFNet's DW and FFN expansions


def simple_gate(x: torch.Tensor) -> torch.Tensor:
    """(B, 2C, H, W) -> (B, C, H, W): one half of the channels times the other."""
    content, gate = x.chunk(2, dim=1)
    return content * gate


class SimplifiedChannelAttention(nn.Module):
    """x * W GAP(x): channel weights from one linear map of the channel means, no squeeze, no sigmoid."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weights = nn.Linear(channels, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weights(channel_means(x))[:, :, None, None]  # (B, C, H, W) * (B, C, 1, 1)


class GatedConvMixer(nn.Module):
    """The spatial branch: 1x1 conv to 2C, 3x3 depth-wise conv, simple gate to C, channel attention, 1x1 conv."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = EXPANSION * channels
        self.expand = nn.Conv2d(channels, hidden, 1)
        self.local = nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden)
        self.attention = SimplifiedChannelAttention(hidden // 2)
        self.project = nn.Conv2d(hidden // 2, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(self.attention(simple_gate(self.local(self.expand(x)))))


class SimpleGateFeedForward(nn.Module):
    """The channel branch: 1x1 conv to 2C, simple gate to C, 1x1 conv back."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.expand = nn.Conv2d(channels, EXPANSION * channels, 1)
        self.project = nn.Conv2d(EXPANSION * channels // 2, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(simple_gate(self.expand(x)))
