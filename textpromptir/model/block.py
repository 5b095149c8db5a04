"""The blocks of the backbone, each two residual branches that read the prompt.

The integrated transformer block (the paper's: IMTA then IGFN) and the NAF
block (NAFNet's branches, naf.py, behind the same text modulation).
"""

import torch
from torch import nn

from .attention import TransposedAttention
from .feedforward import GatedDconvFeedForward
from .naf import GatedConvMixer, SimpleGateFeedForward
from .norm import LayerNorm2d
from .strips import attention_in_strips, feedforward_in_strips
from .text_modulation import TextModulation


class PromptConditioned(nn.Module):
    """Normalise, modulate by the prompt, then apply `body` (pre-norm residual branch)."""

    def __init__(self, channels: int, prompt_dim: int, body: nn.Module) -> None:
        super().__init__()
        self.norm = LayerNorm2d(channels)
        self.modulation = TextModulation(channels, prompt_dim)
        self.body = body

    def forward(self, x: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
        return self.body(self.modulation(self.norm(x), prompt))


class IntegratedTransformerBlock(nn.Module):
    def __init__(self, channels: int, heads: int, expansion: float, prompt_dim: int) -> None:
        super().__init__()
        # Set by TextPromptIR.run_in_strips for CPU inference: the same result, computed in
        # cache-sized strips of rows (strips.py). Whole maps otherwise, and always in training.
        self.in_strips = False
        self.imta = PromptConditioned(channels, prompt_dim, TransposedAttention(channels, heads))
        self.igfn = PromptConditioned(channels, prompt_dim, GatedDconvFeedForward(channels, expansion))

    def forward(self, x: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
        if self.in_strips:
            if torch.is_grad_enabled():
                raise RuntimeError("The strip path is for inference: call run_in_strips(False) before training.")
            return feedforward_in_strips(self.igfn, attention_in_strips(self.imta, x, prompt), prompt)
        x = x + self.imta(x, prompt)
        return x + self.igfn(x, prompt)


class NAFBlock(nn.Module):
    """NAFNet's block with the paper's text path: both branches read prompt-modulated features, as IMTA/IGFN do.

    (B, C, H, W) -> (B, C, H, W): x + mixer(x), then + feed-forward; no attention, no GELU.
    """

    def __init__(self, channels: int, prompt_dim: int) -> None:
        super().__init__()
        self.mixer = PromptConditioned(channels, prompt_dim, GatedConvMixer(channels))
        self.feedforward = PromptConditioned(channels, prompt_dim, SimpleGateFeedForward(channels))

    def forward(self, x: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
        x = x + self.mixer(x, prompt)
        return x + self.feedforward(x, prompt)


class Stage(nn.Module):
    """A run of blocks at one resolution, all reading the same prompt: transformer blocks, or NAF blocks."""

    def __init__(
        self, depth: int, channels: int, heads: int, expansion: float, prompt_dim: int, attention: bool = True
    ) -> None:
        super().__init__()

        def block() -> nn.Module:
            if attention:
                return IntegratedTransformerBlock(channels, heads, expansion, prompt_dim)
            return NAFBlock(channels, prompt_dim)

        self.blocks = nn.ModuleList(block() for _ in range(depth))

    def forward(self, x: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, prompt)
        return x
