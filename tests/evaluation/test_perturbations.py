"""The robustness suite's perturbations: seeded, shape- and range-preserving, each doing what its
name says."""

from __future__ import annotations

import numpy as np
import pytest
from support import glyph

from oneshot.errors import ConfigError
from oneshot.evaluation.perturbations import (
    get_perturbation,
    list_perturbations,
    perturbation_rng,
    register_perturbation,
    to_user_image,
)
from oneshot.imageops import stroke_width

RANDOM = {"gaussian-0.05", "gaussian-0.1", "gaussian-0.2", "salt-pepper-1%", "salt-pepper-5%",
          "rotate-10", "shift-5", "gradient-background", "ruled-paper", "ruled-slanted",
          "squared-paper", "shadow"}


def _bold_glyph() -> np.ndarray:
    """A cross with 6-px strokes, like Omniglot's."""
    g = np.zeros((105, 105), np.float32)
    g[20:85, 50:56] = 1
    g[50:56, 20:85] = 1
    return g


@pytest.mark.parametrize("name", list_perturbations())
def test_seeded_shape_range_and_dtype(name):
    x = _bold_glyph()
    p = get_perturbation(name)
    a = p(x, perturbation_rng(0, name, 7))
    b = p(x, perturbation_rng(0, name, 7))
    c = p(x, perturbation_rng(1, name, 7))
    assert a.shape == x.shape and a.dtype == np.float32
    assert a.min() >= 0 and a.max() <= 1
    assert np.array_equal(a, b)
    if name in RANDOM - {"rotate-10"}:  # rotation draws only a sign: seeds may agree
        assert not np.array_equal(a, c)
    if name not in RANDOM:
        assert np.array_equal(a, c)
    assert np.array_equal(x, _bold_glyph())  # the input is left alone


def _apply(name: str, x: np.ndarray, image_id: int = 0) -> np.ndarray:
    return get_perturbation(name)(x, perturbation_rng(0, name, image_id))


def test_noise_levels():
    x = np.full((200, 200), 0.5, np.float32)
    for s in (0.05, 0.1, 0.2):
        assert (_apply(f"gaussian-{s:g}", x) - x).std() == pytest.approx(s, rel=0.05)
    for frac in (1, 5):
        y = _apply(f"salt-pepper-{frac}%", x)
        assert (y == 1).mean() == pytest.approx(frac / 200, rel=0.15)
        assert (y == 0).mean() == pytest.approx(frac / 200, rel=0.15)
        assert ((y == 0.5) | (y == 0) | (y == 1)).all()


def test_stroke_and_geometry_perturbations():
    x = _bold_glyph()
    w = stroke_width(x > 0.5)
    assert stroke_width(_apply("dilate-1", x) > 0.5) == pytest.approx(w + 2, abs=0.5)
    assert stroke_width(_apply("dilate-2", x) > 0.5) == pytest.approx(w + 4, abs=0.8)
    assert stroke_width(_apply("erode-1", x) > 0.5) == pytest.approx(w - 2, abs=0.5)
    assert _apply("erode-2", x).sum() < _apply("erode-1", x).sum() < x.sum()
    assert _apply("blur", x).sum() == pytest.approx(x.sum(), rel=1e-3)

    def centroid(im):
        r, c = np.nonzero(im > 0.5)
        return np.array([r.mean(), c.mean()])

    assert np.linalg.norm(centroid(_apply("shift-5", x)) - centroid(x)) == pytest.approx(5, abs=0.6)
    assert _apply("scale-0.8", x).sum() == pytest.approx(0.64 * x.sum(), rel=0.1)
    assert _apply("scale-1.2", x).sum() == pytest.approx(1.44 * x.sum(), rel=0.1)
    r = _apply("rotate-10", x)
    assert r.sum() == pytest.approx(x.sum(), rel=0.05) and not np.array_equal(r > 0.5, x > 0.5)
    wide = np.zeros((105, 105), np.float32)
    wide[40:60, 30:70] = 1  # 20 x 40 px: spans the width, 52 px high, centred
    t = _apply("tight-crop", wide) > 0.5
    rows, cols = np.flatnonzero(t.any(1)), np.flatnonzero(t.any(0))
    assert (cols[0], cols[-1]) == (0, 104) and abs(len(rows) - 52) <= 2
    assert abs(rows[0] - (104 - rows[-1])) <= 1


def test_paper_and_file_perturbations():
    x = _bold_glyph()
    assert np.array_equal(_apply("invert", x), 1 - x)
    grey = _apply("grey-background", x)
    assert grey[0, 0] == pytest.approx(0.4) and grey[x == 1].min() == 1
    grad = _apply("gradient-background", x)
    assert grad[x == 0].min() == pytest.approx(0, abs=1e-6)
    assert grad[x == 0].max() == pytest.approx(0.5, abs=1e-6)
    for k in range(20):  # paper in light or shade, 20-80 % of it shaded; the ink stays black
        shade = _apply("shadow", x, k)
        assert shade[x == 1].min() == 1
        paper = shade[x == 0]
        assert paper.min() == 0 and paper.max() == pytest.approx(0.4)
        assert 0.15 <= (paper > 0.2).mean() <= 0.85
    frame = _apply("border-line", x)
    assert frame[3:5, 3:-3].min() == 1 and frame[:3].max() == 0 and frame[5:19, 5:-5].max() == 0
    jpeg = _apply("jpeg-20", x)
    assert 0 < np.abs(jpeg - x).mean() < 0.05
    assert np.array_equal(_apply("clean", x), x)


def test_user_image_and_registry():
    u = to_user_image(glyph("bar"))
    assert u.dtype == np.uint8 and u[0, 0] == 255 and u.min() == 0
    with pytest.raises(ConfigError, match="unknown perturbation 'nope'"):
        get_perturbation("nope")
    with pytest.raises(ConfigError, match="already registered"):
        register_perturbation("invert", lambda x, rng: x)
    p = register_perturbation("test-half", lambda x, rng: 0.5 * x, "halves the ink")
    try:
        assert list_perturbations()[-1] == "test-half"
        assert np.array_equal(get_perturbation("test-half")(glyph("bar"), None),
                              0.5 * glyph("bar"))
        assert p.description == "halves the ink"
    finally:  # out of the table again (the registry keeps it: names are never reused here)
        from oneshot.evaluation import perturbations as mod

        mod.PERTURBATIONS.remove("test-half")
