"""Scorers: anything that says how alike two images are.

A scorer embeds each distinct image once (``embed``: images -> a cache, indexable by image
position) and then scores pairs of cache positions (``score``: higher = more alike). Baselines and
trained Siamese networks share this interface, so the same evaluation code scores them all.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import torch

from ..embedding import DEFAULT_BATCH, Embedder
from ..models.heads import checked_logits

__all__ = ["Scorer", "EncoderScorer", "RandomScorer", "ConstantScorer", "score_pairs"]

PAIR_BATCH = 8192


class Scorer(Protocol):
    """images: uint8 or float (M, H, W), ink = 1. ``score`` returns float (P,) for index pairs."""

    name: str

    def embed(self, images: np.ndarray) -> Any: ...

    def score(self, cache: Any, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor: ...


def score_pairs(scorer: Scorer, cache: Any, a: np.ndarray, b: np.ndarray,
                batch: int = PAIR_BATCH) -> torch.Tensor:
    """Score index pairs (a[i], b[i]) into ``cache`` in batches; float32 (P,)."""
    a = torch.as_tensor(a, dtype=torch.long)
    b = torch.as_tensor(b, dtype=torch.long)
    out = torch.empty(len(a), dtype=torch.float32)
    for i in range(0, len(a), batch):
        out[i: i + batch] = scorer.score(cache, a[i: i + batch], b[i: i + batch]).float().cpu()
    return out


class RandomScorer:
    """Scores each pair uniformly at random (seeded): chance accuracy, 1/N."""

    def __init__(self, seed: int = 0):
        self.name = "random"
        self.gen = torch.Generator().manual_seed(seed)

    def embed(self, images: np.ndarray) -> int:
        return len(images)

    def score(self, cache: Any, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.rand(len(a), generator=self.gen)


class ConstantScorer:
    """Gives every pair the same score: must get chance accuracy (ties never favour the match)."""

    name = "constant"

    def embed(self, images: np.ndarray) -> int:
        return len(images)

    def score(self, cache: Any, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(a))


class EncoderScorer:
    """A Siamese network: encoder embeddings (through :class:`oneshot.embedding.Embedder`)
    scored by its pair head (logits). ``embedder`` overrides device, amp and batch."""

    def __init__(self, model: torch.nn.Module, name: str = "siamese", device: str = "cpu",
                 batch: int = DEFAULT_BATCH, amp: bool = False,
                 embedder: Embedder | None = None):
        self.model = model
        self.name = name
        self.embedder = embedder or Embedder(model.encoder, device, amp=amp, batch=batch)

    def embed(self, images: np.ndarray) -> torch.Tensor:
        return self.embedder.embed_images(images)

    @torch.no_grad()
    def score(self, cache: torch.Tensor, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        a, b = a.to(cache.device), b.to(cache.device)
        return checked_logits(self.model.head(cache[a], cache[b]), self.model.head).float()
