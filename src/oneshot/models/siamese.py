"""SiameseNet: one encoder applied to both images (shared weights) and a pair head."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .encoders import create_encoder
from .heads import create_head

__all__ = ["ModelSpec", "SiameseNet", "build_model"]


@dataclass(frozen=True)
class ModelSpec:
    """What a checkpoint needs to rebuild the network: encoder name and arguments, head name."""

    encoder: str = "koch"
    encoder_args: dict = field(default_factory=dict)
    head: str = "l1"

    def to_dict(self) -> dict:
        return asdict(self)


class SiameseNet(nn.Module):
    """forward(x1, x2): float (B, 1, S, S) each -> logits (B,) of "same character";
    forward(x1) alone: the embeddings (B, D) (so that a DDP wrapper sees every encoder call)."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        self.encoder = create_encoder(spec.encoder, **spec.encoder_args)
        self.head = create_head(spec.head, self.encoder.embedding_dim)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor | None = None) -> torch.Tensor:
        if x2 is None:
            return self.encoder(x1)
        e = self.encoder(torch.cat([x1, x2]))
        a, b = e.split(len(x1))
        return self.head(a, b)


def build_model(spec: ModelSpec | dict, seed: int | None = None) -> SiameseNet:
    """Build a SiameseNet from its spec; ``seed`` makes the initialisation reproducible."""
    if isinstance(spec, dict):
        unknown = set(spec) - {"encoder", "encoder_args", "head"}
        if unknown:
            raise ValueError(f"unknown model spec keys {sorted(unknown)}")
        spec = ModelSpec(**spec)
    if seed is None:
        return SiameseNet(spec)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SiameseNet(spec)
        if hasattr(model.encoder, "reset_parameters"):
            model.encoder.reset_parameters(torch.Generator().manual_seed(seed))
    return model
