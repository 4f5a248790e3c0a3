"""SiameseNet: one encoder applied to both images (shared weights) and a pair head."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import torch
from torch import nn

from ..errors import ConfigError
from .encoders import create_encoder
from .heads import create_head

__all__ = ["ModelSpec", "SiameseNet", "build_model"]


@dataclass(frozen=True)
class ModelSpec:
    """What a checkpoint needs to rebuild the network: registered encoder and head names and
    their keyword arguments."""

    encoder: str
    encoder_args: dict = field(default_factory=dict)
    head: str = "euclidean"
    head_args: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain dict; ``head_args`` only when set, so older model files keep their spec (and
        fingerprint) unchanged."""
        d = {"encoder": self.encoder, "encoder_args": dict(self.encoder_args),
             "head": self.head}
        if self.head_args:
            d["head_args"] = dict(self.head_args)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelSpec:
        """From a dict with the keys of :meth:`to_dict`; unknown or missing keys are errors."""
        if not isinstance(d, dict):
            raise ConfigError(f"model spec must be a dict, got {type(d).__name__}")
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown model spec keys {unknown}; known: {sorted(names)}")
        if "encoder" not in d:
            raise ConfigError("model spec names no encoder")
        for key in ("encoder_args", "head_args"):
            if not isinstance(d.get(key, {}), dict):
                raise ConfigError(f"model spec {key} must be a dict, got {d[key]!r}")
        return cls(**d)


class SiameseNet(nn.Module):
    """forward(x1, x2): float (B, 1, S, S) each -> logits (B,) of "same character";
    forward(x1) alone: the embeddings (B, D) (so that a DDP wrapper sees every encoder call)."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        self.encoder = create_encoder(spec.encoder, **spec.encoder_args)
        self.head = create_head(spec.head, self.encoder.embedding_dim, **spec.head_args)
        self.head.check_encoder(self.encoder)

    def forward(self, x1: torch.Tensor, x2: torch.Tensor | None = None) -> torch.Tensor:
        if x2 is None:
            return self.encoder(x1)
        e = self.encoder(torch.cat([x1, x2]))
        a, b = e.split(len(x1))
        return self.head(a, b)


def build_model(spec: ModelSpec | dict, seed: int | None = None) -> SiameseNet:
    """Build a SiameseNet from its spec; ``seed`` makes the initialisation reproducible (the
    global torch RNG is forked, so the caller's stream is left as it was)."""
    if isinstance(spec, dict):
        spec = ModelSpec.from_dict(spec)
    if seed is None:
        return SiameseNet(spec)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SiameseNet(spec)
        if hasattr(model.encoder, "reset_parameters"):
            model.encoder.reset_parameters(torch.Generator().manual_seed(seed))
    return model
