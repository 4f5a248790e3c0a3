"""Test-time views: an encoder that embeds each image as the mean of a few transformed copies.

A handwritten character drawn again is a little rotated, scaled or slanted. Embedding each
image as the mean embedding of the image and a few such copies (``ViewsEncoder``, registered as
``views``) makes the embedding vary less with those changes. The views are part of the model
(its spec names them), so evaluation, the classifier, galleries, the demo and the ONNX export
all see them, and a model file says what it computes.

A view is ``[rotation in degrees, scale, shear]``, applied about the image centre to the
encoder's input (bilinear, zero padding) before the inner encoder (which may then centre the
ink). Cost: one inner embedding per view.
"""

from __future__ import annotations

import math

import torch

from ..augment import apply_affine
from ..errors import ConfigError
from .encoders import Encoder, create_encoder
from .siamese import ModelSpec, SiameseNet, build_model

__all__ = ["VIEW_SETS", "ViewsEncoder", "with_views"]

# Named sets; "rot-scale" was chosen on the validation alphabets (docs/MODEL_CARD.md)
VIEW_SETS: dict[str, list[list[float]]] = {
    "none": [[0.0, 1.0, 0.0]],
    "rot": [[0.0, 1.0, 0.0], [6.0, 1.0, 0.0], [-6.0, 1.0, 0.0]],
    "rot-scale": [[0.0, 1.0, 0.0], [6.0, 1.0, 0.0], [-6.0, 1.0, 0.0], [0.0, 1.1, 0.0],
                  [0.0, 0.9, 0.0]],
}


def _theta(view: list[float]) -> list[list[float]]:
    """affine_grid's matrix (output -> input coordinates) for one view."""
    rot, scale, shear = view
    t = math.radians(rot)
    c, s = math.cos(t) / scale, math.sin(t) / scale
    return [[c, -s + shear, 0.0], [s, c, 0.0]]


class ViewsEncoder(Encoder):
    """embedding(x) = mean over ``views`` of inner(view(x)); ``inner`` is
    {"encoder": name, "encoder_args": {...}}, ``views`` a list of [rotation, scale, shear] or
    the name of one of ``VIEW_SETS``."""

    def __init__(self, inner: dict, views: list | str) -> None:
        super().__init__()
        if isinstance(views, str):
            if views not in VIEW_SETS:
                raise ConfigError(f"encoder 'views': unknown view set {views!r}; expected one "
                                  f"of {sorted(VIEW_SETS)} or a list of [rotation, scale, "
                                  "shear]")
            views = VIEW_SETS[views]
        if not isinstance(views, list) or not views or not all(
                isinstance(v, (list, tuple)) and len(v) == 3
                and all(isinstance(a, (int, float)) and math.isfinite(a) for a in v)
                and v[1] > 0 for v in views):
            raise ConfigError(f"encoder 'views': views={views!r}; a non-empty list of "
                              "[rotation degrees, scale > 0, shear] expected")
        if not isinstance(inner, dict) or "encoder" not in inner:
            raise ConfigError(f"encoder 'views': inner={inner!r}; "
                              "{'encoder': NAME, 'encoder_args': {...}} expected")
        self.inner = create_encoder(inner["encoder"], **inner.get("encoder_args", {}))
        self.input_size, self.embedding_dim = self.inner.input_size, self.inner.embedding_dim
        self.map_shape = self.inner.map_shape  # a mean of maps is a map
        self.views = [[float(a) for a in v] for v in views]
        self.register_buffer("thetas", torch.tensor([_theta(v) for v in self.views]),
                             persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, v = x.shape[0], len(self.views)
        theta = self.thetas[:, None].expand(v, b, 2, 3).reshape(v * b, 2, 3)
        xs = x[None].expand(v, *x.shape).reshape(v * b, *x.shape[1:])     # view-major
        return self.inner(apply_affine(xs, theta)).unflatten(0, (v, b)).mean(0)


def with_views(model: SiameseNet, views: list | str) -> SiameseNet:
    """``model`` with its encoder wrapped in a :class:`ViewsEncoder` (same weights and head)."""
    spec = model.spec
    inner = {"encoder": spec.encoder, "encoder_args": dict(spec.encoder_args)}
    net = build_model(ModelSpec("views", {"inner": inner, "views": views}, spec.head,
                                dict(spec.head_args)))
    net.encoder.inner.load_state_dict(model.encoder.state_dict())
    net.head.load_state_dict(model.head.state_dict())
    return net.eval()
