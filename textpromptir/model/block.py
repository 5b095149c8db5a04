"""The integrated transformer block: IMTA then IGFN, both reading the prompt."""

import torch
from torch import nn

from .attention import TransposedAttention
from .feedforward import GatedDconvFeedForward
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
        self.imta = PromptConditioned(channels, prompt_dim, TransposedAttention(channels, heads))
        self.igfn = PromptConditioned(channels, prompt_dim, GatedDconvFeedForward(channels, expansion))

    def forward(self, x: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
        if x.device.type == "cpu" and not torch.is_grad_enabled():
            # CPU inference: the same result, computed in cache-sized strips of rows.
            return feedforward_in_strips(self.igfn, attention_in_strips(self.imta, x, prompt), prompt)
        x = x + self.imta(x, prompt)
        return x + self.igfn(x, prompt)


class Stage(nn.Module):
    """A run of blocks at one resolution, all reading the same prompt."""

    def __init__(self, depth: int, channels: int, heads: int, expansion: float, prompt_dim: int) -> None:
        super().__init__()
        self.blocks = nn.ModuleList(
            IntegratedTransformerBlock(channels, heads, expansion, prompt_dim) for _ in range(depth)
        )

    def forward(self, x: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x, prompt)
        return x
