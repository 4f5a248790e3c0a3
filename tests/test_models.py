"""Encoders, heads, distortions, pair and episode samplers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from oneshot.augment import Distortion, distort, random_affine
from oneshot.models import ModelSpec, build_model, create_encoder, encoder_names
from oneshot.models.heads import HEADS, create_head
from oneshot.sampling import EpisodeSampler, PairSampler

SMALL_ARGS = {
    "conv": {"input_size": 28, "width": 8},
    "concat": {"members": [{"encoder": "conv", "encoder_args": {"input_size": 28, "width": 8}},
                           {"encoder": "conv", "encoder_args": {"input_size": 28, "width": 4,
                                                                "centre": True}}],
               "weights": [1.0, 0.5]},
}


@pytest.mark.parametrize("name", encoder_names())
def test_every_registered_encoder(name):
    torch.manual_seed(0)
    enc = create_encoder(name, **SMALL_ARGS.get(name, {}))
    x = torch.rand(3, 1, enc.input_size, enc.input_size)
    e = enc(x)
    assert e.shape == (3, enc.embedding_dim)
    assert torch.isfinite(e).all()
    e.sum().backward()
    grads = [p.grad for p in enc.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_koch_parameter_count():
    m = build_model(ModelSpec("koch", {}, "l1"))
    assert sum(p.numel() for p in m.parameters()) == 38_951_745


def test_koch_pool_before_relu_is_exact():
    torch.manual_seed(0)
    x = torch.randn(2, 64, 20, 20)
    assert torch.equal(torch.relu(torch.max_pool2d(x, 2)), torch.max_pool2d(torch.relu(x), 2))


def test_unknown_encoder_and_args():
    with pytest.raises(ValueError, match="unknown encoder"):
        create_encoder("resnet9000")
    with pytest.raises(ValueError, match="does not accept"):
        create_encoder("conv", colour=True)


@pytest.mark.parametrize("head", sorted(HEADS))
def test_head_pairwise_equals_forward(head):
    torch.manual_seed(0)
    h = create_head(head, 16)
    a, b = torch.randn(5, 16), torch.randn(7, 16)
    direct = h(a[:, None, :], b[None, :, :])
    assert direct.shape == (5, 7)
    assert torch.allclose(h.pairwise(a, b), direct, atol=1e-4)


def test_seeded_build_is_reproducible():
    spec = ModelSpec("conv", {"input_size": 28, "width": 8}, "euclidean")
    a, b = build_model(spec, seed=3), build_model(spec, seed=3)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


def test_distortion_ranges():
    d = Distortion()
    _, p = random_affine(20000, d, torch.Generator().manual_seed(0))
    assert p["rotation_deg"].abs().max() <= 10.0
    assert p["shear_x"].abs().max() <= 0.3 and p["shear_y"].abs().max() <= 0.3
    assert p["scale_x"].min() >= 0.8 and p["scale_x"].max() <= 1.2
    assert p["translate_x_px"].abs().max() <= 2.0 + 1e-4
    for key, identity in (("rotation_deg", 0.0), ("shear_x", 0.0), ("scale_x", 1.0),
                          ("translate_x_px", 0.0)):
        share = (p[key] == identity).float().mean().item()
        assert 0.47 < share < 0.53, (key, share)  # each component on with probability 0.5


def test_distortion_identity_and_batch():
    x = torch.zeros(4, 1, 28, 28)
    x[:, :, 8:20, 10:14] = 1
    same = distort(x, Distortion(p=0.0), torch.Generator().manual_seed(0))
    assert torch.allclose(same, x, atol=1e-5)
    y = distort(x, Distortion(p=1.0), torch.Generator().manual_seed(0))
    assert y.shape == x.shape and not torch.allclose(y[0], y[1])  # per-image parameters
    with pytest.raises(ValueError):
        Distortion(p=2.0)


def test_pair_sampler_invariants(splits):
    ds = splits["background"]
    s = PairSampler(ds, same_alphabet=0.5, seed=0)
    a, b, t = s.sample(4000)
    pos, neg = t == 1, t == 0
    assert pos.sum() == neg.sum() == 2000
    assert (ds.labels[a[pos]] == ds.labels[b[pos]]).all()
    assert (a[pos] != b[pos]).all()  # never the same image twice
    assert (ds.labels[a[neg]] != ds.labels[b[neg]]).all()
    same_alpha = (ds.image_alphabet[a[neg]] == ds.image_alphabet[b[neg]]).mean()
    assert 0.45 < same_alpha < 0.56
    # drawer restriction: only drawers 1..12 appear
    d12 = ds.select(drawers=range(1, 13))
    a, b, _ = PairSampler(d12, seed=1).sample(1000)
    assert set(d12.drawers[np.concatenate([a, b])]) <= set(range(1, 13))
    # the same seed gives the same pairs
    x1 = PairSampler(ds, seed=5).sample(64)
    x2 = PairSampler(ds, seed=5).sample(64)
    assert all(np.array_equal(u, v) for u, v in zip(x1, x2))


def test_pair_sampler_alphabet_balance(splits):
    ds = splits["background"]
    a, _, _ = PairSampler(ds, balance="alphabet", seed=0).sample(30000)
    per_alpha = np.bincount(ds.image_alphabet[a], minlength=30) / len(a)
    assert per_alpha.min() > 0.8 / 30 and per_alpha.max() < 1.2 / 30


def test_episode_sampler(splits):
    ds = splits["background"]
    s = EpisodeSampler(ds, ways=20, queries=3, seed=0)
    sup, q, y = s.sample()
    assert sup.shape[1] == 1 and len(q) == 3 * len(sup) and len(y) == len(q)
    assert len(set(ds.image_alphabet[np.concatenate([sup.ravel(), q])])) == 1
    assert (ds.labels[q] == ds.labels[sup[y, 0]]).all()
    assert not set(q) & set(sup.ravel())


def test_ensemble_is_the_mean_of_member_logits():
    from oneshot.models import ensemble

    spec = ModelSpec("conv", {"input_size": 28, "width": 8, "centre": True}, "euclidean")
    members = [build_model(spec, seed=s).eval() for s in (0, 1, 2)]
    with torch.no_grad():
        for i, m in enumerate(members):  # distinct head parameters
            m.head.log_scale.fill_(0.1 * i - 0.2)
            m.head.bias.fill_(float(i))
    net = ensemble(members)
    x1, x2 = torch.rand(5, 1, 28, 28), torch.rand(5, 1, 28, 28)
    with torch.no_grad():
        want = torch.stack([m(x1, x2) for m in members]).mean(0)
        assert torch.allclose(net(x1, x2), want, rtol=1e-4, atol=1e-4)
    rebuilt = build_model(net.spec)  # the spec alone rebuilds it (as a model file does)
    rebuilt.load_state_dict(net.state_dict())
    with torch.no_grad():
        assert torch.allclose(rebuilt.eval()(x1, x2), want, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="Euclidean"):
        ensemble([build_model(ModelSpec("conv", {"input_size": 28, "width": 8}, "l1"))])
