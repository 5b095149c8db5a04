"""Multi-head transposed attention: attention across channels, not pixels."""

import torch
from torch import nn

NORM_EPS = 1e-12  # as F.normalize


class TransposedAttention(nn.Module):
    """Restormer's MDTA, the attention inside the paper's IMTA.

    Queries, keys and values come from a 1x1 conv followed by a 3x3
    depth-wise conv (local context). Each head attends over its channels with
    a (C/heads x C/heads) map of cosine similarities between whole channel
    images, so the cost grows linearly with the number of pixels.

    Computed for the CPU's sake without moving pixels around: on a
    channels_last map the pixels form a free (B, H*W, C) matrix, so
    - the cosine map comes from one GEMM, [Q K]^T [Q K]: its off-diagonal
      block is Q^T K and its diagonal the squared channel norms, so no
      normalised copies of Q and K are made (and no slow pixel reductions);
    - the heads' maps go into one block-diagonal (C x C) matrix A, and the
      attention output and the 1x1 projection W become one GEMM,
      V (W A)^T, which writes the result in channels_last order directly.
    The Gram matrix and norms are accumulated in float32: sums over a whole
    tile would overflow float16.
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
        qk, v = self.split_pixels(self.local_qkv(x))
        combined = self.channel_mixing(qk.transpose(1, 2) @ qk)
        out = v @ combined.transpose(1, 2).to(v.dtype)  # attention and projection in one GEMM, (B, N, C)
        return out.view(b, h, w, c).permute(0, 3, 1, 2)

    def local_qkv(self, x: torch.Tensor) -> torch.Tensor:
        """The 1x1 conv then the 3x3 depth-wise conv, (B, C, H, W) -> (B, 3C, H, W)."""
        return self.qkv_local(self.qkv(x))

    @staticmethod
    def split_pixels(qkv: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """[Q K] in float32 as (B, N, 2C) and V as (B, N, C) from (B, 3C, H, W): free views for channels_last."""
        b, c3, h, w = qkv.shape
        pixels = qkv.permute(0, 2, 3, 1).reshape(b, h * w, c3)
        c = c3 // 3
        return pixels[..., : 2 * c].float(), pixels[..., 2 * c :]

    def channel_mixing(self, gram: torch.Tensor) -> torch.Tensor:
        """The projection times the heads' attention maps, W A (B, C, C), from [Q K]^T [Q K] (B, 2C, 2C).

        The Gram matrix's off-diagonal block is Q^T K and its diagonal the
        squared channel norms, so no normalised copies of Q and K are made.
        Diagonals are read and the block-diagonal A is built by multiplying
        with identity masks, not through diagonal views: the exporters to ONNX
        and OpenVINO convert neither diagonal views nor writes into them
        (benchmarks/runtime_study.py). The matrices are tiny, and the result
        is the same to the bit.
        """
        b, c = gram.shape[0], gram.shape[1] // 2
        heads, d = self.heads, c // self.heads
        squared_norms = (gram * torch.eye(2 * c, dtype=gram.dtype, device=gram.device)).sum(dim=-1)  # (B, 2C)
        norms = squared_norms.sqrt().clamp_min(NORM_EPS)
        q_norm, k_norm = norms[:, :c].reshape(b, heads, d, 1), norms[:, c:].reshape(b, heads, 1, d)
        same_head = torch.eye(heads, dtype=gram.dtype, device=gram.device).view(1, heads, 1, heads, 1)
        cross = gram[:, :c, c:].reshape(b, heads, d, heads, d)  # Q^T K, split by head
        per_head = (cross * same_head).sum(dim=3)  # the heads' diagonal blocks, (B, heads, d, d)
        attention = (per_head / (q_norm * k_norm) * self.temperature).softmax(dim=-1)
        mixing = (attention.unsqueeze(3) * same_head).reshape(b, c, c)  # block-diagonal A
        return self.project.weight.view(c, c).float() @ mixing
