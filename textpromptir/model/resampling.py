"""Changing resolution between the levels of the U-Net.

Pixel-shuffle upsampling (Restormer's) learns a separate 3x3 kernel for each
of the four sub-pixel positions of every output pixel. Where those four
disagree, the output carries a period-2 pattern; three such levels stacked
print a grid of period 8, which flat skies show (the shipped `lite`'s haze
results, resources/weights/README.md). ICNR initialisation makes the four
kernels equal at the start only; training moves them apart again. Bilinear
upsampling after a 3x3 conv at the low resolution has no per-position
weights at all: every output pixel is the same fixed blend of its low-
resolution neighbours, so it cannot print a grid whatever it learns, and its
conv runs on a quarter of the pixels (a quarter of pixel-shuffle's MACs).
Detail at the fine resolution comes from the encoder's skip connection.
"""

import torch.nn.functional as F
from torch import Tensor, nn

UPSAMPLINGS = ("pixel_shuffle", "bilinear")


class Downsample(nn.Sequential):
    """Halve the resolution, double the channels: conv to C/2, pixel-unshuffle. (B, C, H, W) -> (B, 2C, H/2, W/2)."""

    def __init__(self, channels: int) -> None:
        super().__init__(nn.Conv2d(channels, channels // 2, 3, padding=1, bias=False), nn.PixelUnshuffle(2))


class Upsample(nn.Sequential):
    """Double the resolution, halve the channels: conv to 2C, pixel-shuffle. (B, C, H, W) -> (B, C/2, 2H, 2W)."""

    def __init__(self, channels: int) -> None:
        super().__init__(nn.Conv2d(channels, channels * 2, 3, padding=1, bias=False), nn.PixelShuffle(2))


class BilinearUpsample(nn.Module):
    """Conv to C/2 at the low resolution, then bilinear 2x: (B, C, H, W) -> (B, C/2, 2H, 2W), no grid possible."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels // 2, 3, padding=1, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(self.conv(x), scale_factor=2, mode="bilinear", align_corners=False)


def make_upsample(kind: str, channels: int) -> nn.Module:
    if kind == "bilinear":
        return BilinearUpsample(channels)
    return Upsample(channels)
