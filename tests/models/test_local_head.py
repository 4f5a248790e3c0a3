"""The ``local`` head: Euclidean on feature maps, tolerant of strokes moved by a cell."""

from __future__ import annotations

import pytest
import torch

from oneshot.errors import ConfigError
from oneshot.models import ModelSpec, build_model, create_head, ensemble
from oneshot.models import heads as heads_module


def _maps(n: int, c: int = 8, side: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, c, side, side, generator=torch.Generator().manual_seed(seed))


def test_radius_zero_is_the_euclidean_head():
    a, b = _maps(5).flatten(1), _maps(7, seed=1).flatten(1)
    local = create_head("local", 128, channels=8, radius=0)
    euclid = create_head("euclidean", 128)
    assert torch.allclose(local.pairwise(a, b), euclid.pairwise(a, b), rtol=1e-5, atol=1e-4)


def test_a_map_moved_by_one_cell_is_nearly_itself_and_by_two_cells_is_not():
    a = _maps(1)[0]
    moved1 = torch.roll(a, 1, dims=-1)
    moved1[..., 0] = a[..., 0]  # the column that wrapped round: keep the original
    moved2 = torch.roll(a, 2, dims=-1)
    moved2[..., :2] = a[..., :2]
    local = create_head("local", 128, channels=8, radius=1)
    euclid = create_head("euclidean", 128)
    with torch.no_grad():
        same, near, far = (float(local(a.flatten(), m.flatten())) for m in (a, moved1, moved2))
        plain = float(euclid(a.flatten(), moved1.flatten()))
    assert same == pytest.approx(0.0, abs=1e-4)
    # one cell: all but the column that left the map find their partner within reach
    assert -near < 0.2 * -plain
    assert -far > 2 * -near  # two cells: out of reach


def test_chunked_pairwise_and_bf16_autocast_give_the_same_logits(monkeypatch):
    a, b = _maps(9).flatten(1), _maps(6, seed=2).flatten(1)
    h = create_head("local", 128, channels=8)
    whole = h.pairwise(a, b)
    monkeypatch.setattr(heads_module, "PAIRWISE_CHUNK_ELEMENTS", 6 * 16 * 16 * 2)  # 2 rows
    assert torch.allclose(h.pairwise(a, b), whole, atol=1e-5)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # distances stay in float32
        got = h(a[:, None], b[None])
    assert got.dtype == torch.float32 and torch.allclose(got, whole, atol=1e-5)


def test_gradients_reach_both_sides_and_are_finite():
    a = _maps(4).flatten(1).requires_grad_()
    b = _maps(3, seed=3).flatten(1).requires_grad_()
    h = create_head("local", 128, channels=8)
    h(a[:, None], b[None]).sum().backward()
    for g in (a.grad, b.grad, h.log_scale.grad, h.bias.grad):
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0


def test_bad_shapes_are_named():
    with pytest.raises(ConfigError, match="head 'local'.*100 values.*channels=8"):
        create_head("local", 100, channels=8)
    with pytest.raises(ConfigError, match="radius=-1"):
        create_head("local", 128, channels=8, radius=-1)


def test_a_local_head_model_embeds_as_a_map_and_is_not_ensembled_as_euclidean():
    spec = ModelSpec("conv", {"input_size": 28, "width": 8, "depth": 3}, "local",
                     {"channels": 8})
    net = build_model(spec, seed=0).eval()
    x = torch.rand(3, 1, 28, 28)
    with torch.no_grad():
        assert net.encoder(x).shape == (3, 8 * 4 * 4)
        assert net(x, x).shape == (3,)
    with pytest.raises(ValueError, match="Euclidean"):
        ensemble([net, net])
