"""The conv encoder's ``crop``: each character cropped to its ink's bounding box in the model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from oneshot.augment import apply_affine
from oneshot.errors import ConfigError
from oneshot.models import create_encoder
from oneshot.models.encoders import crop_ink


def glyph(side: int = 56) -> torch.Tensor:
    """A character-like shape (an L with a diagonal), ink 1, centred, about half the frame."""
    x = torch.zeros(1, 1, side, side)
    a, b, w = side // 4, 3 * side // 4, max(2, side // 14)
    x[..., a:b, a:a + w] = 1
    x[..., b - w:b, a:b] = 1
    for i in range(a, b):
        x[..., i, max(a, i - w):i] = 1
    return x


def moved(x: torch.Tensor, scale: float, dx: float, dy: float) -> torch.Tensor:
    """x shrunk or grown by ``scale`` and shifted by (dx, dy) in [-1, 1] units."""
    theta = torch.tensor([[[1 / scale, 0.0, -dx / scale], [0.0, 1 / scale, -dy / scale]]])
    return apply_affine(x, theta)


def test_crop_undoes_size_and_position():
    x = glyph()
    a = crop_ink(x, 28)
    for scale, dx, dy in ((0.6, 0.3, -0.2), (1.2, -0.1, 0.05), (0.8, 0.0, 0.3)):
        y = moved(x, scale, dx, dy)
        assert (y - x).abs().mean() > 0.1  # the input did change (by far more)
        b = crop_ink(y, 28)
        assert b.shape == (1, 1, 28, 28)
        assert (a - b).abs().mean() < 0.05, (scale, dx, dy)  # the box is whole pixels


def test_crop_margin_and_blank_images():
    out = crop_ink(glyph(), 28)
    rows = (out[0, 0] > 0.5).any(1).nonzero().ravel()
    side = rows.max() - rows.min() + 1
    assert 19 <= side <= 23  # 28 / 1.3: the longer side plus 15 % on each side
    blank = crop_ink(torch.zeros(2, 1, 56, 56), 28)
    assert blank.shape == (2, 1, 28, 28) and not blank.any()
    speck = torch.zeros(1, 1, 56, 56)
    speck[..., 30, 30] = 1
    assert torch.isfinite(crop_ink(speck, 28)).all()  # a one-pixel "character" is not blown up


def test_encoder_with_crop_is_less_sensitive_to_size_and_place():
    torch.manual_seed(0)
    x = glyph()
    y = moved(x, 0.7, 0.25, -0.2)
    plain = create_encoder("conv", input_size=56, width=8, depth=3).eval()
    torch.manual_seed(0)
    cropped = create_encoder("conv", input_size=56, width=8, depth=3, crop=28).eval()
    assert cropped.input_size == 56 and cropped.embedding_dim == 8 * 4 * 4

    def change(enc):
        with torch.no_grad():
            e = enc(torch.cat([x, y]))
        return ((e[0] - e[1]).norm() / e[0].norm()).item()

    assert change(cropped) < 0.5 * change(plain)


def test_crop_option_errors():
    with pytest.raises(ConfigError, match="crop=4 is too small for depth=4"):
        create_encoder("conv", input_size=56, crop=4, depth=4)
    with pytest.raises(ConfigError, match="crop"):
        create_encoder("conv", input_size=56, crop=-3)
    enc = create_encoder("conv", input_size=40, width=4, depth=2, crop=20)
    assert enc(F.pad(glyph(36), (2, 2, 2, 2))).shape == (1, enc.embedding_dim)
