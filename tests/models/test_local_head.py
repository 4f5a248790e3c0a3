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
    with torch.autocast("cpu", dtype=torch.bfloat16):  # distances stay in float32, both paths
        got = h(a[:, None], b[None])
        each = h(a[:, None].expand(9, 6, 128), b[None].expand(9, 6, 128))
    assert got.dtype == each.dtype == torch.float32
    assert torch.allclose(got, whole, atol=1e-5) and torch.allclose(each, whole, atol=1e-4)


@pytest.mark.parametrize("expand", [False, True])  # the one-product path and the general one
def test_gradients_reach_both_sides_and_are_finite(expand):
    a = _maps(4).flatten(1).requires_grad_()
    b = _maps(3, seed=3).flatten(1).requires_grad_()
    h = create_head("local", 128, channels=8)
    x, y = a[:, None], b[None]
    if expand:
        x, y = x.expand(4, 3, 128), y.expand(4, 3, 128)
    h(x, y).sum().backward()
    for g in (a.grad, b.grad, h.log_scale.grad, h.bias.grad):
        assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0


def test_empty_sides_give_empty_scores_and_wrong_sizes_are_named():
    h = create_head("local", 128, channels=8)
    a = _maps(3).flatten(1)
    assert h.pairwise(a, a[:0]).shape == (3, 0) and h.pairwise(a[:0], a).shape == (0, 3)
    with pytest.raises(ValueError, match="embeddings of 64 and 128 values; 128 expected"):
        h(a[:, :64], a)


@pytest.mark.parametrize("args, word", [
    ({"channels": 8}, "100 values is not a map of channels=8"), ({"channels": 0}, "channels=0"),
    ({"channels": 4.0}, "channels=4.0"), ({"channels": True}, "channels=True"),
    ({"channels": 4, "radius": -1}, "radius=-1"), ({"channels": 4, "radius": 1.5}, "radius=1.5")])
def test_bad_arguments_are_named(args, word):
    with pytest.raises(ConfigError, match=f"head 'local': .*{word}"):
        create_head("local", 100, **args)


@pytest.mark.parametrize("encoder, args, got", [
    ("koch", {}, "not a map"),
    ("conv", {"input_size": 28, "width": 8, "depth": 3, "pool": "avg"}, "not a map"),
    ("conv", {"input_size": 28, "width": 8, "depth": 3, "dim": 128}, "not a map"),
    ("conv", {"input_size": 28, "width": 32, "depth": 4}, r"a map of shape \(32, 2, 2\)")])
def test_an_encoder_whose_embedding_is_not_that_map_is_refused(encoder, args, got):
    """Koch's 4,096-value vector would pass as a 64x8x8 map by its size alone, a 32x2x2 map
    as 8x4x4, a pooled or projected vector as a 1x1 or 4x4 map: refused when the model is
    built, naming both shapes."""
    channels = 64 if encoder == "koch" else 8
    with pytest.raises(ConfigError, match=f"head 'local' compares feature maps of shape.*{got}"):
        build_model(ModelSpec(encoder, args, "local", {"channels": channels}))


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


def test_onnx_export_keeps_the_head_arguments(tmp_path):
    """channels and radius define what the head computes (not its weights): the ONNX model's
    head must be rebuilt with them."""
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    from oneshot.onnx import export_onnx, load_onnx_model

    spec = ModelSpec("conv", {"input_size": 28, "width": 4, "depth": 2}, "local",
                     {"channels": 4, "radius": 2})  # a 7x7 map, two cells of reach
    model = build_model(spec, seed=0).eval()
    net = load_onnx_model(export_onnx(model, tmp_path / "m.onnx", {}), threads=1)
    assert (net.head.channels, net.head.radius) == (4, 2)
    x = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(net(x, x.flip(0)), model(x, x.flip(0)), rtol=1e-4, atol=1e-3)
