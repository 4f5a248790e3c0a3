"""Pair heads: two embeddings (..., D) -> a similarity logit (...). Broadcasting is allowed, so
``head(q[:, None], s[None])`` scores every query against every support image: (Q, N).

- ``l1``: Koch's weighted L1 distance, one logit: w . |a - b| + b.
- ``euclidean``: a metric head, -exp(log_scale) * ||a - b||^2 + bias (learned scale and bias), so
  the same logit ranks candidates like a nearest-neighbour rule and, through a sigmoid, estimates
  the probability of "same class".
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["L1Head", "EuclideanHead", "HEADS", "create_head"]


PAIRWISE_CHUNK_ELEMENTS = 1 << 24  # (rows x gallery x dim) elements per chunk for L1


class L1Head(nn.Module):
    def __init__(self, dim: int) -> None:
        super().__init__()
        self.fc = nn.Linear(dim, 1)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.fc((a - b).abs()).squeeze(-1)

    def pairwise(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Logits of every row of a (B, D) against every row of b (G, D): (B, G), in chunks."""
        step = max(1, PAIRWISE_CHUNK_ELEMENTS // max(1, b.shape[0] * b.shape[1]))
        return torch.cat([self(a[i: i + step, None, :], b[None]) for i in range(0, len(a), step)])


class EuclideanHead(nn.Module):
    def __init__(self, dim: int, init_scale: float = 1.0, init_bias: float = 0.0) -> None:
        super().__init__()
        self.dim = dim
        self.log_scale = nn.Parameter(torch.tensor(float(init_scale)).log())
        self.bias = nn.Parameter(torch.tensor(float(init_bias)))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        d2 = (a - b).pow(2).sum(-1)
        return self.bias - self.log_scale.exp() * d2

    def pairwise(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Logits of every row of a (B, D) against every row of b (G, D): (B, G), one matmul."""
        d2 = (a.pow(2).sum(1)[:, None] + b.pow(2).sum(1)[None, :] - 2 * a @ b.T).clamp_min(0)
        return self.bias - self.log_scale.exp() * d2


HEADS: dict[str, Callable[[int], nn.Module]] = {"l1": L1Head, "euclidean": EuclideanHead}


def create_head(name: str, dim: int) -> nn.Module:
    if name not in HEADS:
        raise ValueError(f"unknown head {name!r}; expected one of {sorted(HEADS)}")
    return HEADS[name](dim)
