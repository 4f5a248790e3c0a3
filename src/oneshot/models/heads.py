"""Pair heads: two embeddings (..., D) -> a similarity logit (...). Broadcasting is allowed, so
``head(q[:, None], s[None])`` scores every query against every support image: (Q, N).

- ``l1``: Koch's weighted L1 distance, one logit: w . |a - b| + b.
- ``euclidean``: a metric head, -exp(log_scale) * ||a - b||^2 + bias (learned scale and bias), so
  the same logit ranks candidates like a nearest-neighbour rule and, through a sigmoid, estimates
  the probability of "same class".
- ``local``: the same on spatial embeddings (a flattened (C, H, W) feature map), with each cell
  of one map matched to its nearest cell of the other within ``radius`` cells, both ways: a
  metric that tolerates strokes displaced by a cell.

Heads are created by name (``create_head(name, dim, **head_args)``); register your own with
``register_head``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..errors import ConfigError, ModelError
from ..registry import Registry

__all__ = ["Head", "L1Head", "DistanceHead", "EuclideanHead", "LocalHead", "register_head",
           "list_heads", "create_head", "checked_logits"]

PAIRWISE_CHUNK_ELEMENTS = 1 << 24  # (rows x gallery x dim) elements per chunk for pairwise


class Head(nn.Module):
    """Base class: ``forward(a, b)`` maps broadcastable (..., D) embeddings to (...) logits
    (higher = more alike; sigmoid = probability of "same class")."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dim = dim

    def check_encoder(self, encoder: nn.Module) -> None:
        """Raise ConfigError if this head cannot score ``encoder``'s embeddings (beyond their
        size); called when a model is built."""

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


class DistanceHead(Head):
    """Base of the metric heads: logit = bias - exp(log_scale) * distance, with a learned scale
    and bias, so the logit ranks like a nearest-neighbour rule and its sigmoid estimates the
    probability of "same class"."""

    def __init__(self, dim: int, init_scale: float = 1.0, init_bias: float = 0.0) -> None:
        super().__init__(dim)
        self.log_scale = nn.Parameter(torch.tensor(float(init_scale)).log())
        self.bias = nn.Parameter(torch.tensor(float(init_bias)))

    def logit(self, distance: torch.Tensor) -> torch.Tensor:
        return self.bias - self.log_scale.exp() * distance


class EuclideanHead(DistanceHead):
    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.logit((a - b).pow(2).sum(-1))

    def pairwise(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """Logits of every row of a (B, D) against every row of b (G, D): (B, G), one matmul."""
        d2 = (a.pow(2).sum(1)[:, None] + b.pow(2).sum(1)[None, :] - 2 * a @ b.T).clamp_min(0)
        return self.logit(d2)


class LocalHead(DistanceHead):
    """-exp(log_scale) * D(a, b) + bias, where a and b are (C, side, side) maps flattened to
    ``dim = channels * side^2`` and D the mean, over both directions, of the sum over the cells
    of one map of the squared distance to the nearest cell of the other within ``radius`` cells
    (Chebyshev). ``radius=0`` is the ``euclidean`` head."""

    def __init__(self, dim: int, channels: int = 64, radius: int = 1, init_scale: float = 1.0,
                 init_bias: float = 0.0) -> None:
        super().__init__(dim, init_scale, init_bias)
        for name, v, low in (("channels", channels, 1), ("radius", radius, 0)):
            if isinstance(v, bool) or not isinstance(v, int) or v < low:
                raise ConfigError(f"head 'local': {name}={v!r}; a whole number >= {low} "
                                  "expected")
        side = round((dim // channels) ** 0.5)
        if channels * side * side != dim:
            raise ConfigError(f"head 'local': an embedding of {dim} values is not a map of "
                              f"channels={channels} x a square")
        self.channels, self.side, self.radius = channels, side, radius
        cell = torch.stack(torch.meshgrid(torch.arange(side), torch.arange(side),
                                          indexing="ij")).flatten(1)  # (2, side^2)
        apart = (cell[:, :, None] - cell[:, None, :]).abs().amax(0)   # Chebyshev, cell to cell
        # pairs of cells further apart than radius: never matched (a constant, no gradient)
        self.register_buffer("far", (apart > radius).float() * 1e9, persistent=False)

    def check_encoder(self, encoder: nn.Module) -> None:
        want = (self.channels, self.side, self.side)
        got = getattr(encoder, "map_shape", None)
        if got != want:
            raise ConfigError(f"head 'local' compares feature maps of shape {want}; encoder "
                              f"{type(encoder).__name__}'s embedding is "
                              f"{'a map of shape ' + str(got) if got else 'not a map'} (use "
                              "the conv encoder with pool='flatten', no dim, and channels = "
                              "its width)")

    def _check(self, a: torch.Tensor, b: torch.Tensor) -> None:
        if a.shape[-1] != self.dim or b.shape[-1] != self.dim:
            raise ValueError(f"head 'local': embeddings of {a.shape[-1]} and {b.shape[-1]} "
                             f"values; {self.dim} expected")

    def _logit(self, d2: torch.Tensor) -> torch.Tensor:
        """Logits from cell-to-cell squared distances (..., P, P) (far pairs masked)."""
        d2 = d2.clamp_min(0) + self.far
        return self.logit(0.5 * (d2.amin(-1).sum(-1) + d2.amin(-2).sum(-1)))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        self._check(a, b)
        if a.dim() == b.dim() == 3 and a.shape[1] == 1 and b.shape[0] == 1:
            return self.pairwise(a[:, 0], b[0])  # every row against every row: one product
        with torch.autocast(a.device.type, enabled=False):  # distances in float32
            a = a.float().unflatten(-1, (self.channels, -1))  # (..., C, P)
            b = b.float().unflatten(-1, (self.channels, -1))
            return self._logit(a.pow(2).sum(-2)[..., :, None] + b.pow(2).sum(-2)[..., None, :]
                               - 2 * a.transpose(-1, -2) @ b)

    def pairwise(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """(B, D) against (G, D): (B, G), one matrix product of cells per chunk of rows."""
        self._check(a, b)
        if not len(a) or not len(b):
            return a.new_zeros(len(a), len(b), dtype=torch.float32)
        with torch.autocast(a.device.type, enabled=False):
            p = self.side * self.side
            a = a.float().unflatten(-1, (self.channels, p)).transpose(-1, -2)  # (B, P, C)
            b = b.float().unflatten(-1, (self.channels, p)).transpose(-1, -2)  # (G, P, C)
            bb, step = b.pow(2).sum(-1), max(1, PAIRWISE_CHUNK_ELEMENTS // (len(b) * p * p))
            out = []
            for i in range(0, len(a), step):
                ai = a[i: i + step]
                d2 = (ai.pow(2).sum(-1)[:, :, None, None] + bb[None, None]  # (b, P, G, P)
                      - 2 * (ai.flatten(0, 1) @ b.flatten(0, 1).T).view(len(ai), p, len(b), p))
                out.append(self._logit(d2.permute(0, 2, 1, 3)))
            return torch.cat(out)


_HEADS = Registry("head")


def register_head(name: str, factory=None, *, replace: bool = False):
    """Make ``create_head(name, dim, **kwargs)`` build ``factory(dim, **kwargs)``, a
    :class:`Head`. Usable as a decorator; taken names need ``replace=True``."""
    return _HEADS.register(name, factory, replace=replace)


def list_heads() -> list[str]:
    """Names of the registered heads, sorted."""
    return _HEADS.names()


def create_head(name: str, dim: int, **kwargs) -> nn.Module:
    """Build a registered head for ``dim``-dimensional embeddings; unknown names are errors,
    and so is a factory that does not return a :class:`Head`."""
    head = _HEADS.create(name, dim, **kwargs)
    if not isinstance(head, Head):
        raise ConfigError(f"head {name!r}: its factory returned a {type(head).__name__}; a "
                          "subclass of oneshot.models.heads.Head expected")
    return head


def checked_logits(logits: torch.Tensor, head: nn.Module) -> torch.Tensor:
    """``logits`` themselves, or ModelError if any is NaN (a decision on NaN scores would be
    silently arbitrary: the first candidate wins, a probability prints as nan)."""
    if torch.isnan(logits).any():
        raise ModelError(f"the model's head ({type(head).__name__}) gave NaN scores for "
                         f"{int(torch.isnan(logits).sum())} of {logits.numel()} pairs; "
                         "the model or its embeddings are broken")
    return logits
