"""Test-time views: identity, weights and head carried over, saved and reloaded, errors, and
less sensitivity to a small rotation than the bare model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from oneshot.augment import apply_affine
from oneshot.checkpoint import default_model_path, export_model, load_model
from oneshot.errors import ConfigError
from oneshot.models import ModelSpec, build_model, create_encoder, with_views
from oneshot.models.views import _theta

CONV = {"encoder": "conv", "encoder_args": {"input_size": 28, "width": 8, "centre": True}}


def test_identity_view_is_the_inner_encoder():
    net = build_model(ModelSpec(CONV["encoder"], CONV["encoder_args"]), seed=0).eval()
    wrapped = with_views(net, "none")
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(wrapped.encoder(x), net.encoder(x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(wrapped(x[:2], x[2:]), net(x[:2], x[2:]),
                                   rtol=1e-5, atol=1e-5)


def test_mean_of_views_and_round_trip(tmp_path):
    net = build_model(ModelSpec(CONV["encoder"], CONV["encoder_args"]), seed=0).eval()
    wrapped = with_views(net, "rot-scale")
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        want = []
        for v in wrapped.encoder.views:  # one view at a time, the plain way
            want.append(net.encoder(apply_affine(x, torch.tensor([_theta(v)]).expand(3, 2, 3))))
        torch.testing.assert_close(wrapped.encoder(x), torch.stack(want).mean(0))
    export_model(wrapped, tmp_path / "m.pt", {"views": "rot-scale"})
    again, record = load_model(tmp_path / "m.pt")
    assert again.spec.encoder == "views" and record == {"views": "rot-scale"}
    with torch.no_grad():
        torch.testing.assert_close(again.encoder(x), wrapped.encoder(x))


@pytest.mark.parametrize("views, message", [
    ("spin", "unknown view set 'spin'"),
    ([], "non-empty list"),
    ([[0.0, 0.0, 0.0]], "scale > 0"),
    ([[0.0, 1.0]], "rotation degrees"),
    ([[float("nan"), 1.0, 0.0]], "views="),
])
def test_bad_views_are_named(views, message):
    with pytest.raises(ConfigError, match=message):
        create_encoder("views", inner=CONV, views=views)
    with pytest.raises(ConfigError, match="inner="):
        create_encoder("views", inner={"encoder_args": {}}, views="rot")


def test_views_make_the_shipped_model_less_sensitive_to_rotation(splits):
    """The mean distance between a character and its 8-degree rotation, relative to the mean
    distance between different characters, is smaller with the views (20 test characters)."""
    model, _ = load_model(default_model_path())
    ds = splits["test"]
    idx = np.random.default_rng(0).choice(len(ds.images), 20, replace=False)
    x = torch.from_numpy(ds.images[idx]).float().unsqueeze(1)
    x = torch.nn.functional.interpolate(x, size=model.encoder.input_size, mode="area")
    rotated = apply_affine(x, torch.tensor([_theta([8.0, 1.0, 0.0])]).expand(20, 2, 3))

    def ratio(encoder) -> float:
        with torch.no_grad():
            a, b = encoder(x), encoder(rotated)
        same = (a - b).pow(2).sum(1).mean()
        other = torch.cdist(a, a).pow(2).sum() / (20 * 19)
        return float(same / other)

    bare, viewed = ratio(model.encoder), ratio(with_views(model, "rot-scale").encoder)
    assert viewed < 0.8 * bare, (viewed, bare)
