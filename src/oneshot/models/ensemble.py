"""Ensembles of Euclidean-head Siamese networks, as one ordinary SiameseNet.

For members with heads b_k - s_k * ||a_k - c_k||^2, the mean of their logits is

    mean_k(b_k) - || concat_k(sqrt(s_k / K) a_k) - concat_k(sqrt(s_k / K) c_k) ||^2,

a Euclidean head with scale 1 and bias mean_k(b_k) over the concatenated, weighted embeddings.
So an ensemble is a ``concat`` encoder plus a Euclidean head: the evaluation harness, the
classifier, galleries and the demo use it like any other model, and it is exact.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..errors import ConfigError
from .encoders import Encoder, create_encoder
from .heads import EuclideanHead
from .siamese import ModelSpec, SiameseNet, build_model

__all__ = ["ConcatEncoder", "check_ensemble_head", "ensemble"]


class ConcatEncoder(Encoder):
    """Member encoders side by side: embedding = concat_k(weights[k] * member_k(x)).

    members: [{"encoder": name, "encoder_args": {...}}, ...], all with the same input size.
    """

    def __init__(self, members: list[dict], weights: list[float]) -> None:
        super().__init__()
        if not members or len(members) != len(weights):
            raise ConfigError(f"{len(members)} members and {len(weights)} weights; "
                             "one weight per member (at least one) expected")
        self.members = nn.ModuleList(
            create_encoder(m["encoder"], **m.get("encoder_args", {})) for m in members)
        sizes = sorted({m.input_size for m in self.members})
        if len(sizes) != 1:
            raise ConfigError(f"ensemble members have input sizes {sizes}; one size expected")
        self.input_size = sizes[0]
        self.weights = [float(w) for w in weights]
        self.embedding_dim = sum(m.embedding_dim for m in self.members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        prepared: dict = {}  # members with equal prepare_key share one prepared input
        out = []
        for w, m in zip(self.weights, self.members):
            key = getattr(m, "prepare_key", None)  # a plugin encoder may lack it
            if key is None:
                out.append(w * m(x))
                continue
            if key not in prepared:
                prepared[key] = m.prepare(x)
            out.append(w * m.embed_prepared(prepared[key]))
        return torch.cat(out, dim=1)



def check_ensemble_head(head, what: str) -> None:
    """ConfigError unless ``head`` can be ensembled exactly (a Euclidean head)."""
    if type(head) is not EuclideanHead:  # a subclass may score otherwise (a cosine head)
        raise ConfigError(f"{what} has a {type(head).__name__}; only Euclidean-head models can "
                          "be ensembled exactly")


def ensemble(models: list[SiameseNet]) -> SiameseNet:
    """One SiameseNet whose logits are the mean of ``models``' logits (Euclidean heads only)."""
    if not models:
        raise ConfigError("an ensemble needs at least one model")
    for i, m in enumerate(models):
        if not isinstance(m, SiameseNet):  # e.g. an ONNX export: its weights are in a graph
            raise ConfigError(f"model {i} is a {type(m).__name__}; an ensemble is made of "
                              "PyTorch models (run folders or .pt files)")
        check_ensemble_head(m.head, f"model {i}")
    k = len(models)
    weights = [math.sqrt(float(m.head.log_scale.detach().exp()) / k) for m in models]
    members = [{"encoder": m.spec.encoder, "encoder_args": dict(m.spec.encoder_args)}
               for m in models]
    net = build_model(ModelSpec("concat", {"members": members, "weights": weights},
                                "euclidean"))
    for dst, src in zip(net.encoder.members, models):
        dst.load_state_dict(src.encoder.state_dict())
    with torch.no_grad():
        net.head.log_scale.zero_()
        net.head.bias.copy_(torch.stack([m.head.bias for m in models]).mean())
    return net.eval()
