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


