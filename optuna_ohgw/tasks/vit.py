"""A small vision transformer: patch embedding, pre-norm blocks, mean-pooled head.

Attention is written out (``softmax(q k^T / sqrt(d)) v``) so the look-ahead differentiates it
twice with any backend; GELU keeps it smooth for finite differences.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class _Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp), nn.GELU(), nn.Linear(mlp, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(n, t, 3, self.heads, d // self.heads).unbind(2)
        q, k, v = (z.transpose(1, 2) for z in (q, k, v))  # (n, heads, t, d / heads)
        att = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(n, t, d))
        return x + self.mlp(self.norm2(x))


class SmallViT(nn.Module):
    """``depth`` pre-norm transformer blocks over ``patch x patch`` patches of a square image.

    Args:
        image: Image side in pixels.
        patch: Patch side (divides ``image``).
        channels: Input channels.
        dim: Token width.
        depth: Blocks.
        heads: Attention heads (divide ``dim``).
        mlp: Hidden width of each block's MLP.
        n_classes: Outputs.
    """

    def __init__(
        self,
        *,
        image: int = 28,
        patch: int = 4,
        channels: int = 1,
        dim: int = 64,
        depth: int = 2,
        heads: int = 4,
        mlp: int = 128,
        n_classes: int = 10,
    ) -> None:
        super().__init__()
        self.embed = nn.Conv2d(channels, dim, patch, stride=patch)
        self.pos = nn.Parameter(torch.randn(1, (image // patch) ** 2, dim) * 0.02)
        self.blocks = nn.Sequential(*(_Block(dim, heads, mlp) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.embed(x).flatten(2).transpose(1, 2) + self.pos
        return self.head(self.norm(self.blocks(tokens)).mean(1))
