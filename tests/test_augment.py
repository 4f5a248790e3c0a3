"""Encoders, heads, distortions, pair and episode samplers."""

from __future__ import annotations

import pytest
import torch

from oneshot.augment import Distortion, distort, random_affine


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




def test_thickness_jitter():
    from oneshot.augment import apply_thickness, random_thickness

    x = torch.zeros(3, 1, 9, 9)
    x[:, :, 4, 2:7] = 1  # a one-pixel stroke
    y = apply_thickness(x, torch.tensor([1, 0, -1]))
    assert y[0].sum() > x[0].sum() and torch.equal(y[1], x[1])
    assert 0 < y[2].sum() < x[2].sum()  # thinner, not wiped out
    assert y.min() >= 0 and y.max() <= 1
    change = random_thickness(4000, 0.3, torch.Generator().manual_seed(0))
    assert abs((change != 0).float().mean() - 0.3) < 0.03
    assert abs((change == 1).float().mean() - 0.15) < 0.03
    with pytest.raises(ValueError, match="thickness=2"):
        Distortion(thickness=2)


def test_make_distortion_ranges_and_errors():
    from oneshot.augment import make_distortion

    d = make_distortion(0.8, 0.0, {"rotation_deg": 20, "scale": [0.7, 1.3]})
    assert (d.p, d.rotation_deg, d.scale, d.shear) == (0.8, 20, (0.7, 1.3), 0.3)
    _, p = random_affine(4000, d, torch.Generator().manual_seed(0))
    assert 15 < p["rotation_deg"].abs().max() <= 20
    for bad, msg in (({"rot": 5}, "unknown distortion ranges"), ({"scale": 0.8}, "low, high"),
                     ({"shear": -1}, "shear=-1"), ({"scale": [1.3, 0.7]}, "low <= high"),
                     ({"translate_px": True}, "translate_px")):
        with pytest.raises(ValueError, match=msg):
            make_distortion(0.5, 0.0, bad)
