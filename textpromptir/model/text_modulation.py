"""How the semantic prompt enters the image features (the paper's IMTA/IGFN input)."""

import torch
import torch.nn.functional as F
from torch import nn


class PromptProjector(nn.Module):
    """Maps the sentence embedding once per image to the prompt every block reads."""

    def __init__(self, text_dim: int, prompt_dim: int) -> None:
        super().__init__()
        hidden = (text_dim + prompt_dim) // 2
        self.mlp = nn.Sequential(
            nn.Linear(text_dim, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, prompt_dim),
        )

    def forward(self, text: torch.Tensor) -> torch.Tensor:
        return self.mlp(text)  # (B, text_dim) -> (B, prompt_dim)


class TextModulation(nn.Module):
    """FiLM of normalised features by the prompt, gated by the image itself.

    e = W t * sigmoid(ECA(GAP(X)))  -- the image's channel statistics decide
    how much of the prompt each channel takes; then X' = X (1 + gamma) + beta
    with gamma, beta linear in e. (1 + gamma) keeps the features intact at
    initialisation, where a plain gamma would scale them towards zero.
    """

    def __init__(self, channels: int, prompt_dim: int, gate_kernel: int = 3) -> None:
        super().__init__()
        self.prompt_to_channels = nn.Linear(prompt_dim, channels)
        # Efficient channel attention: a 1-D conv across neighbouring channels.
        self.channel_gate = nn.Conv1d(1, 1, gate_kernel, padding=gate_kernel // 2, bias=False)
        self.film = nn.Linear(channels, 2 * channels)

    def forward(self, x: torch.Tensor, prompt: torch.Tensor) -> torch.Tensor:
        scale, shift = self.coefficients(channel_means(x), prompt)
        return torch.addcmul(shift, x, scale)

    def coefficients(self, means: torch.Tensor, prompt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(1 + gamma, beta), each (B, C, 1, 1), from the channel means (B, C) of the features."""
        gate = torch.sigmoid(self._eca(means))  # (B, C)
        e = self.prompt_to_channels(prompt) * gate  # (B, C)
        gamma, beta = self.film(e)[:, :, None, None].chunk(2, dim=1)
        return 1 + gamma, beta

    def _eca(self, stats: torch.Tensor) -> torch.Tensor:
        """The 1-D conv across channels as one tiny matmul (PyTorch's conv1d path costs milliseconds here)."""
        taps = self.channel_gate.kernel_size[0]
        padded = F.pad(stats, (taps // 2, taps // 2))  # (B, C + taps - 1)
        return padded.unfold(1, taps, 1) @ self.channel_gate.weight.view(taps)  # (B, C)


def channel_means(x: torch.Tensor) -> torch.Tensor:
    """Mean of every channel over the pixels, (B, C, H, W) -> (B, C).

    On a channels_last map the pixels are the rows of a free (B, H*W, C)
    view, and a matrix-vector product averages them several times faster than
    a reduction over H and W. The weights 1 / (H*W) come from a tensor
    division, not a Python float, so that an exported graph keeps the size
    dynamic (benchmarks/runtime_study.py).
    """
    b, c, h, w = x.shape
    pixels = x.permute(0, 2, 3, 1).reshape(b, h * w, c)
    weights = x.new_ones(b, 1, h * w) / (h * w)
    return (weights @ pixels).view(b, c)
