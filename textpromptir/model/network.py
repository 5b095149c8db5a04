"""The TextPromptIR backbone: a 4-level encoder-decoder of integrated blocks."""

from __future__ import annotations

import torch
from torch import nn

from .block import IntegratedTransformerBlock, Stage
from .config import LEVELS, ModelConfig
from .resampling import Downsample, make_upsample
from .text_modulation import PromptProjector


class TextPromptIR(nn.Module):
    """Restores an image as steered by a sentence embedding.

    image (B, 3, H, W) in [0, 1], H and W multiples of `config.size_multiple`;
    text (B, text_dim). Returns the restored image, image + predicted residual.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        width, blocks, heads = config.width, config.blocks, config.heads
        channels = [width * 2**level for level in range(LEVELS)]  # e.g. 48, 96, 192, 384

        def stage(depth: int, level: int, level_heads: int, level_channels: int | None = None) -> Stage:
            attention = level >= config.attention_from
            level_channels = channels[level] if level_channels is None else level_channels
            return Stage(depth, level_channels, level_heads, config.expansion, config.prompt_dim, attention)

        self.prompt_projector = PromptProjector(config.text_dim, config.prompt_dim)
        self.embed = nn.Conv2d(3, width, 3, padding=1, bias=False)

        self.encoders = nn.ModuleList(stage(blocks[i], i, heads[i]) for i in range(LEVELS - 1))
        self.downsamples = nn.ModuleList(Downsample(channels[i]) for i in range(LEVELS - 1))
        self.latent = stage(blocks[-1], LEVELS - 1, heads[-1])

        # Decoder, deepest level first. Each level concatenates the upsampled
        # features with the encoder's skip; levels below the top fuse the pair
        # back to the level's width, the top keeps both (2 * width), as in Restormer.
        decoder_levels = range(LEVELS - 2, -1, -1)  # 2, 1, 0
        self.upsamples = nn.ModuleList(make_upsample(config.upsample, channels[level + 1]) for level in decoder_levels)
        self.fusions = nn.ModuleList(
            nn.Conv2d(2 * channels[level], channels[level], 1, bias=False) if level > 0 else nn.Identity()
            for level in decoder_levels
        )
        self.decoders = nn.ModuleList(
            stage(blocks[level], level, heads[level], channels[max(level, 1)]) for level in decoder_levels
        )
        self.refinement = stage(config.refinement_blocks, 0, heads[0], channels[1])
        self.output = nn.Conv2d(channels[1], 3, 3, padding=1, bias=False)
        # Start as the identity map (zero residual): training begins from
        # "change nothing" instead of from random noise added to every photo.
        nn.init.zeros_(self.output.weight)

    def run_in_strips(self, enabled: bool = True) -> TextPromptIR:
        """Inference only: every transformer block computes in cache-sized strips of rows (strips.py).

        The same result as whole maps, faster on a CPU, where the Restorer turns it on; training
        and exports run on whole maps.
        """
        for module in self.modules():
            if isinstance(module, IntegratedTransformerBlock):
                module.in_strips = enabled
        return self

    def forward(self, image: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
        prompt = self.prompt_projector(text)
        x = self.embed(image)
        skips = []
        for encoder, downsample in zip(self.encoders, self.downsamples, strict=True):
            x = encoder(x, prompt)
            skips.append(x)
            x = downsample(x)
        x = self.latent(x, prompt)
        for upsample, fusion, decoder in zip(self.upsamples, self.fusions, self.decoders, strict=True):
            x = fusion(torch.cat([upsample(x), skips.pop()], dim=1))
            x = decoder(x, prompt)
        x = self.refinement(x, prompt)
        return image + self.output(x)
