"""Encoders, heads, distortions, pair and episode samplers."""

from __future__ import annotations

import pytest
import torch

from oneshot.models import (
    ModelSpec,
    build_model,
    create_encoder,
    create_head,
    list_encoders,
    list_heads,
)

SMALL_ARGS = {
    "conv": {"input_size": 28, "width": 8},
    "concat": {"members": [{"encoder": "conv", "encoder_args": {"input_size": 28, "width": 8}},
                           {"encoder": "conv", "encoder_args": {"input_size": 28, "width": 4,
                                                                "centre": True}}],
               "weights": [1.0, 0.5]},
    "views": {"inner": {"encoder": "conv", "encoder_args": {"input_size": 28, "width": 8,
                                                            "centre": True}},
              "views": "rot-scale"},
}


@pytest.mark.parametrize("name", list_encoders())
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


@pytest.mark.parametrize("head", list_heads())
def test_head_pairwise_equals_forward(head):
    torch.manual_seed(0)
    h = create_head(head, 16, **({"channels": 1} if head == "local" else {}))  # local: 4x4
    a, b = torch.randn(5, 16), torch.randn(7, 16)
    direct = h(a[:, None, :], b[None, :, :])
    assert direct.shape == (5, 7)
    assert torch.allclose(h.pairwise(a, b), direct, atol=1e-4)
    each = h(a[:, None, :].expand(5, 7, 16), b[None, :, :].expand(5, 7, 16))  # pair by pair
    assert torch.allclose(each, direct, atol=1e-4)


def test_seeded_build_is_reproducible():
    spec = ModelSpec("conv", {"input_size": 28, "width": 8}, "euclidean")
    a, b = build_model(spec, seed=3), build_model(spec, seed=3)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)


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


def test_ensemble_crops_once_for_members_that_crop_alike(monkeypatch):
    """Members with the same crop and centring share one prepared input: same embeddings as
    each member's own forward, a third of the crops; a member that crops otherwise (or not at
    all) still prepares its own."""
    from oneshot.models import encoders, ensemble

    specs = [{"input_size": 56, "width": 8, "centre": True, "crop": 28}] * 2 + \
            [{"input_size": 56, "width": 8, "depth": 3, "crop": 14}, {"input_size": 56,
                                                                        "width": 8}]
    members = [build_model(ModelSpec("conv", a, "euclidean"), seed=i).eval()
               for i, a in enumerate(specs)]
    net = ensemble(members)
    x = torch.zeros(6, 1, 56, 56)
    for i in range(6):  # ink boxes of different sizes and places
        x[i, 0, 3 + i: 12 + 5 * i, 2 + 2 * i: 9 + 6 * i] = 1.0
    calls = []
    real = encoders.crop_ink
    monkeypatch.setattr(encoders, "crop_ink", lambda x, size, *a: calls.append(size) or
                        real(x, size, *a))
    with torch.no_grad():
        got = net.encoder(x)
        assert calls == [28, 14]
        want = torch.cat([w * m.encoder(x) for w, m in zip(net.encoder.weights, members)], 1)
    assert torch.equal(got, want)


def test_dropout_acts_in_training_only_and_leaves_other_models_keys_alone():
    from oneshot.errors import ConfigError

    torch.manual_seed(0)
    plain = create_encoder("conv", input_size=28, width=8)
    dropped = create_encoder("conv", input_size=28, width=8, dropout=0.5)
    assert "features.4.weight" in plain.state_dict()  # the second conv: keys as before
    x = torch.rand(4, 1, 28, 28)
    dropped.train()
    assert not torch.equal(dropped(x), dropped(x))
    dropped.eval()
    assert torch.equal(dropped(x), dropped(x))
    for bad in (1.0, -0.1, True):
        with pytest.raises(ConfigError, match="dropout"):
            create_encoder("conv", dropout=bad)


def test_per_block_widths_build_that_network_and_bad_ones_are_named():
    from oneshot.errors import ConfigError

    same = create_encoder("conv", input_size=28, width=[8, 8, 8, 8])
    assert same.state_dict().keys() == create_encoder("conv", input_size=28, width=8
                                                      ).state_dict().keys()
    enc = create_encoder("conv", input_size=28, width=[4, 8, 16, 32], depth=4)
    convs = [m for m in enc.features if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 8, 16, 32]
    assert enc.embedding_dim == 32 * 2 * 2 and enc.map_shape == (32, 2, 2)
    assert enc(torch.rand(3, 1, 28, 28)).shape == (3, 128)
    for bad in ([8, 8], [8, 0, 8, 8], [8, 8.5, 8, 8], "64", True):
        with pytest.raises(ConfigError, match="width=.*one per block"):
            create_encoder("conv", width=bad, depth=4)
