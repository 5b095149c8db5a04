"""How the semantic prompt enters the image features (the paper's IMTA/IGFN input)."""

import torch
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
        stats = x.mean(dim=(2, 3))  # (B, C)
        gate = torch.sigmoid(self.channel_gate(stats.unsqueeze(1)).squeeze(1))
        e = self.prompt_to_channels(prompt) * gate  # (B, C)
        gamma, beta = self.film(e)[:, :, None, None].chunk(2, dim=1)  # (B, C, 1, 1) each
        return torch.addcmul(beta, x, 1 + gamma)
