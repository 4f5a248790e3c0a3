"""oneshot.imageops: morphology, blur, components, Otsu, the border plane, stroke width and edge
rules, against brute-force references and synthetic glyphs."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest
from support import glyph

from oneshot.imageops import (
    border_plane,
    dilate,
    disk_offsets,
    erode,
    gaussian_blur,
    label_components,
    otsu_threshold,
    remove_small,
    stroke_width,
)
from oneshot.paper_lines import edge_rules, long_runs


def _bar(width: int, size: int = 105) -> np.ndarray:
    m = np.zeros((size, size), bool)
    m[20:85, 50: 50 + width] = True
    return m


def _components_reference(mask: np.ndarray, connectivity: int) -> list[set]:
    """Breadth-first search, one pixel at a time."""
    steps = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
             if (dy or dx) and (connectivity == 8 or dy == 0 or dx == 0)]
    seen, comps = np.zeros_like(mask), []
    for y, x in zip(*np.nonzero(mask)):
        if seen[y, x]:
            continue
        comp, todo = set(), deque([(y, x)])
        seen[y, x] = True
        while todo:
            cy, cx = todo.popleft()
            comp.add((cy, cx))
            for dy, dx in steps:
                ny, nx = cy + dy, cx + dx
                if (0 <= ny < mask.shape[0] and 0 <= nx < mask.shape[1] and mask[ny, nx]
                        and not seen[ny, nx]):
                    seen[ny, nx] = True
                    todo.append((ny, nx))
        comps.append(comp)
    return comps


@pytest.mark.parametrize("connectivity", [4, 8])
@pytest.mark.parametrize("density", [0.3, 0.55])
def test_components_match_a_brute_force_search(connectivity, density):
    rng = np.random.default_rng(int(density * 100) + connectivity)
    mask = rng.random((40, 37)) < density
    lab, n = label_components(mask, connectivity)
    ref = _components_reference(mask, connectivity)
    assert n == len(ref)
    assert {frozenset(c) for c in ref} == {
        frozenset(zip(*np.nonzero(lab == k))) for k in range(1, n + 1)}
    assert (lab[~mask] == 0).all()


def test_morphology_uses_a_disk_and_matches_a_loop():
    assert sorted(disk_offsets(1)) == [(-1, 0), (0, -1), (0, 0), (0, 1), (1, 0)]
    assert len(disk_offsets(2)) == 13
    rng = np.random.default_rng(0)
    x = rng.random((20, 23)).astype(np.float32)
    p = np.pad(x, 2)
    ref_d = np.max([p[2 + dy: 22 + dy, 2 + dx: 25 + dx] for dy, dx in disk_offsets(2)], axis=0)
    ref_e = np.min([p[2 + dy: 22 + dy, 2 + dx: 25 + dx] for dy, dx in disk_offsets(2)], axis=0)
    assert np.array_equal(dilate(x, 2), ref_d)
    assert np.array_equal(erode(x, 2), ref_e)
    assert np.array_equal(dilate(x, 0), x)
    bar = _bar(6)
    assert dilate(bar, 1)[50].sum() == 8 and dilate(bar, 2)[50].sum() == 10
    assert erode(bar, 1)[50].sum() == 4 and erode(bar, 1)[21:84, 51].all()


def test_blur_keeps_mass_and_constants():
    g = glyph("cross")
    b = gaussian_blur(g, 1.5)
    assert b.dtype == np.float32 and b.shape == g.shape
    assert b.sum() == pytest.approx(g.sum(), rel=1e-4)
    assert 0 < b[g == 0].max() < 1 and np.allclose(gaussian_blur(np.full((9, 9), 0.3), 2.0), 0.3)


def test_remove_small_drops_specks_only():
    m = glyph("eq").astype(bool)
    noisy = m.copy()
    noisy[[3, 3, 100], [3, 4, 50]] = True  # a 2-pixel speck and a single one
    out = remove_small(noisy, 12)
    assert np.array_equal(out, m)
    assert np.array_equal(remove_small(noisy, 0), noisy)


def test_otsu_splits_two_levels_and_a_noisy_glyph():
    x = glyph("bar")
    t = otsu_threshold(x)
    assert 0 < t < 1 and np.array_equal(x > t, x > 0.5)
    rng = np.random.default_rng(1)
    noisy = np.clip(x + 0.2 * rng.standard_normal(x.shape), 0, 1)
    assert 0.3 < otsu_threshold(noisy) < 0.7


def test_border_plane_is_zero_for_clean_images_and_finds_shading():
    g = glyph("cross")
    g[:, 0] = 1  # ink touching the border
    assert np.array_equal(border_plane(g), np.zeros_like(g))
    rr, cc = np.mgrid[0:105, 0:105]
    shade = (0.1 + 0.3 * rr / 104 + 0.1 * cc / 104).astype(np.float32)
    est = border_plane(np.maximum(glyph("cross"), shade))
    assert np.abs(est - shade).max() < 1e-4


def test_stroke_width_of_rings_and_bars():
    """Within 15 % without stroke ends (a ring: its digital edge is a staircase); a bar's two
    ends make it w L / (L + w)."""
    rr, cc = np.mgrid[0:105, 0:105]
    dist = np.hypot(rr - 52, cc - 52)
    for w in (3, 5, 9):
        assert stroke_width((dist >= 30) & (dist < 30 + w)) == pytest.approx(w, rel=0.15)
        assert stroke_width(_bar(w)) == pytest.approx(w * 65 / (65 + w), rel=0.05)
    assert stroke_width(np.zeros((9, 9), bool)) == 0


def test_edge_rules_find_a_frame_not_the_character():
    m = glyph("cross").astype(bool)
    framed = m.copy()
    framed[3:5, 3:-3] = framed[-5:-3, 3:-3] = framed[3:-3, 3:5] = framed[3:-3, -5:-3] = True
    rules = edge_rules(framed)
    assert np.array_equal(framed & ~rules, m)
    assert not edge_rules(m).any()
    runs = long_runs(np.array([[1, 1, 1, 0, 1], [1, 1, 0, 1, 1]], bool), 3)
    assert runs.tolist() == [[True, True, True, False, False], [False] * 5]
