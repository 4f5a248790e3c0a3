"""Pair heads: two embeddings (..., D) -> a similarity logit (...). Broadcasting is allowed, so
``head(q[:, None], s[None])`` scores every query against every support image: (Q, N).

- ``l1``: Koch's weighted L1 distance, one logit: w . |a - b| + b.
- ``euclidean``: a metric head, -exp(log_scale) * ||a - b||^2 + bias (learned scale and bias), so
  the same logit ranks candidates like a nearest-neighbour rule and, through a sigmoid, estimates
  the probability of "same class".

Heads are created by name (``create_head(name, dim, **head_args)``); register your own with
``register_head``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..registry import Registry

__all__ = ["Head", "L1Head", "EuclideanHead", "register_head", "list_heads", "create_head"]

PAIRWISE_CHUNK_ELEMENTS = 1 << 24  # (rows x gallery x dim) elements per chunk for pairwise


class Head(nn.Module):
    """Base class: ``forward(a, b)`` maps broadcastable (..., D) embeddings to (...) logits
    (higher = more alike; sigmoid = probability of "same class")."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def pairwise(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Logits of every row of a (B, D) against every row of b (G, D): (B, G), in chunks."""
        step = max(1, PAIRWISE_CHUNK_ELEMENTS // max(1, b.shape[0] * b.shape[1]))
        return torch.cat([self(a[i: i + step, None, :], b[None]) for i in range(0, len(a), step)])


class L1Head(Head):
    def __init__(self, dim: int) -> None:
        super().__init__(dim)
        self.fc = nn.Linear(dim, 1)

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.fc((a - b).abs()).squeeze(-1)


class EuclideanHead(Head):
    def __init__(self, dim: int, init_scale: float = 1.0, init_bias: float = 0.0) -> None:
        super().__init__(dim)
        self.log_scale = nn.Parameter(torch.tensor(float(init_scale)).log())
        self.bias = nn.Parameter(torch.tensor(float(init_bias)))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        d2 = (a - b).pow(2).sum(-1)
        return self.bias - self.log_scale.exp() * d2

    def pairwise(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Logits of every row of a (B, D) against every row of b (G, D): (B, G), one matmul."""
        d2 = (a.pow(2).sum(1)[:, None] + b.pow(2).sum(1)[None, :] - 2 * a @ b.T).clamp_min(0)
        return self.bias - self.log_scale.exp() * d2


_HEADS = Registry("head")


def register_head(name: str, factory=None, *, replace: bool = False):
    """Make ``create_head(name, dim, **kwargs)`` build ``factory(dim, **kwargs)``, a
    :class:`Head`. Usable as a decorator; taken names need ``replace=True``."""
    return _HEADS.register(name, factory, replace=replace)


def list_heads() -> list[str]:
    """Names of the registered heads, sorted."""
    return _HEADS.names()


def create_head(name: str, dim: int, **kwargs) -> nn.Module:
    """Build a registered head for ``dim``-dimensional embeddings; unknown names are errors."""
    return _HEADS.create(name, dim, **kwargs)
