"""The page around a character: a dark table, shade, ruled lines, a large page with a small
character.

Step 2a of :mod:`oneshot.preprocess` on the grey image, before its polarity is decided; steps
3a-3c on the ink image of step 3 (float (H, W), ink bright; 3a before the paper's plane is
subtracted, 3b and 3c after); all at full resolution. Each finds what it changes on the image
reduced to about ``RULES_SIDE`` pixels, where it is cheap, and applies it at full resolution.

- :func:`fill_surround`: a page photographed on a dark table (or a scanner's black margin, a
  deep shadow along the edge with no writing in it): the dark surround set to the page's level;
- :func:`remove_shade`: a shadow across part of the page (a hand's or a phone's, the edge of a
  book): with the ink bright, a level above the paper's over a region broader than any stroke;
- :func:`clear_rules`: the lines of ruled and squared paper;
- :func:`zoom_to_ink`: a character small in a large image, cut out at full resolution.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from .data.images import shrink_grey
from .imageops import (
    dilate,
    edge_values,
    erode,
    label_components,
    otsu_threshold,
    plane_design,
    remove_small,
    solidity,
)
from .paper_lines import thin_rules

__all__ = ["RULES_SIDE", "ZOOM_BELOW", "fill_surround", "broad_levels", "remove_shade",
           "clear_rules", "zoom_to_ink"]

RULES_SIDE = 210  # twice Omniglot's 105: lines, shade and a small character are found at this
ZOOM_BELOW = 0.2  # a character whose ink's box is under this much of the image is cut out
# Shade: a level above the paper's in a region that holds a square of SHADE_WINDOW of the reduced
# image's longer side (most strokes are narrower), less than SHADE_CAP of the ink's level (a
# region at the ink's level is a filled shape, not shade), and over SHADE_MIN of it, with
# the pixels themselves at that level, on at least SHADE_AREA of the image (smaller or
# fainter: left to the plane).
SHADE_WINDOW, SHADE_CAP, SHADE_MIN, SHADE_AREA = 0.15, 0.7, 0.1, 0.05
_FLOOR = 0.2  # the ink's contrast in the deepest shade is divided by at most 1 / _FLOOR
# A dark surround: Otsu's dark side, broad (it holds the shade window's square), along at least
# SURROUND_BORDER of the image's edge, at most SURROUND_LEVEL of the page's paper level (a table;
# a vignette's corners are lighter), even inside (under SURROUND_STROKES of it darker than
# STROKE_RATIO of its level: writing in a shadow keeps its ratio to the paper, a table has
# none), round a page of at least SURROUND_PAGE of the image that is convex (SURROUND_SOLID of
# its hull: a page is a quadrilateral, a tight crop's gaps between bold strokes are not), is
# mostly paper (SURROUND_PAPER: a light ring drawn on a dark board, with the dark inside it, is
# not a page) and holds SURROUND_INK pixels of dark ink (a character; a bold glyph alone is
# refused), none of it as broad as the surround (a tight crop's bold bars, as in a Greek Xi).
SURROUND_BORDER, SURROUND_LEVEL, STROKE_RATIO, SURROUND_STROKES = 0.3, 0.5, 0.6, 0.003
SURROUND_PAGE, SURROUND_SOLID, SURROUND_PAPER, SURROUND_INK = 0.2, 0.85, 0.6, 12


def _reduced(ink: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """(ink reduced to about ``RULES_SIDE``, its ink above half Otsu's level (fainter lines
    count too), the reduction factor): where lines and a small character's box are found."""
    small = shrink_grey(ink, RULES_SIDE)
    return small, small > 0.5 * otsu_threshold(small), -(-max(ink.shape) // RULES_SIDE)


def _opening(x: np.ndarray, size: int) -> np.ndarray:
    """Grey opening by a ``size`` x ``size`` square (a minimum filter, then a maximum filter,
    each separable): what is narrower than the square (strokes) goes, broad regions (shade)
    keep their level and their edges."""
    t = torch.tensor(np.asarray(x, np.float32))[None, None]
    pad = size // 2
    for sign in (-1, 1):  # padding never wins: it is -inf to max_pool2d
        for k, p in (((size, 1), (pad, 0)), ((1, size), (0, pad))):
            t = sign * F.max_pool2d(sign * t, k, stride=1, padding=p)
    return t[0, 0].numpy()


def _window(small: np.ndarray) -> int:
    return max(3, int(SHADE_WINDOW * max(small.shape)) | 1)


def _full(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The reduced ``x`` brought back to ``shape`` (bilinear)."""
    if x.shape == shape:
        return x
    return F.interpolate(torch.tensor(np.asarray(x, np.float32))[None, None],
                         size=shape, mode="bilinear", align_corners=False)[0, 0].numpy()


def _surround(small: np.ndarray, dark: np.ndarray) -> np.ndarray | None:
    """The dark surround of the reduced image (a mask), or None: the dark components that hold
    a broad region along ``SURROUND_BORDER`` of the edge, narrow wedges included."""
    edge = edge_values(dark)
    if edge.mean() < SURROUND_BORDER:  # the quick way out: a light border
        return None
    broad = _opening(dark.astype(np.float32), _window(small)) > 0.5
    lab, _ = label_components(broad, 4)
    edge = edge_values(lab)
    if (edge > 0).mean() < SURROUND_BORDER:
        return None
    whole, _ = label_components(dark, 8)
    return np.isin(whole, np.unique(whole[np.isin(lab, edge[edge > 0])]))


def fill_surround(g: np.ndarray) -> np.ndarray:
    """Step 2a: a page photographed on a dark table. ``g``: the grey image (H, W), either
    polarity. Where a dark surround passes the tests of ``SURROUND_*`` (the constants' comment),
    it and a 2-px seam (at the reduced size) are set to the page's paper level, so that the
    border is paper again for the steps that follow; else ``g`` itself. A deep shadow along the
    edge with no writing in it goes the same way; writing under a shadow, chalk on a board, a
    tight crop of a bold glyph, a vignette and every perturbation of the robustness suite are
    left alone (docs/robustness.md)."""
    small = shrink_grey(g, RULES_SIDE)
    t = otsu_threshold(small)
    region = _surround(small, small < t)
    if region is None:
        return g
    level, inner = float(np.median(small[region])), erode(region, 2)
    if (inner & (small < STROKE_RATIO * level)).sum() > SURROUND_STROKES * \
            max(int(inner.sum()), 1):
        return g  # writing inside: shade's, not a table's
    lab, n = label_components(~dilate(region, 1), 4)
    if not n:
        return g
    page = lab == np.bincount(lab.ravel())[1:].argmax() + 1  # the largest region left
    paper, ink = page & (small >= t), page & (small < t) & ~dilate(region, 3)  # off the edge
    level_of_paper = float(np.median(small[paper])) if paper.any() else 0.0
    a_page = (page.mean() >= SURROUND_PAGE and level <= SURROUND_LEVEL * level_of_paper
              and paper.sum() >= SURROUND_PAPER * page.sum() and ink.sum() >= SURROUND_INK
              and solidity(page) >= SURROUND_SOLID)
    # a page holds writing, not ink as broad as the surround (a bold glyph's bar, cropped
    # tight: along the edge, where the opening's window is cut, half the window's breadth passes)
    if not a_page or (_opening(ink.astype(np.float32), _window(small) // 2 | 1) > 0.5).any():
        return g
    fill = _full(dilate(region, 2).astype(np.float32), g.shape) > 0.5
    return np.where(fill, np.float32(level_of_paper), g).astype(np.float32)


def broad_levels(g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(opened, closed): the level of ``g`` (H, W) with its bright strokes opened away, and
    with its dark strokes closed away (:func:`_opening` of the reduced image, and of its
    negative, brought back to full size): what a region broader than any stroke has.
    Polarity uses them: lit paper beside a shadow that covers most of the page is lighter
    than the page's median level, but broad, so it is not light ink."""
    small = shrink_grey(g, RULES_SIDE)
    size = _window(small)
    return _full(_opening(small, size), g.shape), -_full(_opening(-small, size), g.shape)


def _planar(shade: np.ndarray, level: float) -> bool:
    """Whether ``shade`` is a plane but for SHADE_MIN of ``level`` (95 % of its pixels): an
    even slope of light, which the plane fitted next removes exactly (the opening is not
    exact within half its window of the image's edge)."""
    h, w = shade.shape
    rows, cols = np.mgrid[0:h, 0:w]
    a = plane_design(rows.ravel(), cols.ravel(), h, w)
    coef, *_ = np.linalg.lstsq(a, shade.ravel().astype(np.float64), rcond=None)
    return float(np.percentile(np.abs(shade.ravel() - a @ coef), 95)) < SHADE_MIN * level


def remove_shade(ink: np.ndarray, paper: float = 0.0, dark_ink: bool = True) -> np.ndarray:
    """Step 3a: shade over part of the page set to paper (``ink``: ink bright, ``paper`` the
    paper's level, before the plane: a plane fitted to a tight crop's border may dim its ink).
    The level above the paper's is estimated by a grey opening of the reduced image (strokes
    go, a shadow's region stays, with its sharp edge); where that level is between
    ``SHADE_MIN`` and ``SHADE_CAP`` of the ink's, and the paper is at that level, on at least
    ``SHADE_AREA`` of the image, it is subtracted, and (``dark_ink``: the image was dark ink
    on light paper, which a shadow darkens by a factor) the ink's contrast under it divided
    by that factor, so a character half in shade comes out even. Else ``ink`` itself (a
    clean image, a filled shape, noise, an even slope: nothing here for the plane to miss)."""
    small = shrink_grey(ink, RULES_SIDE) - paper
    level = float(np.percentile(small, 99.5))
    if level <= 0:
        return ink
    between = (small > SHADE_MIN * level) & (small < (SHADE_CAP + SHADE_MIN) * level)
    if between.mean() < SHADE_AREA:  # too few pixels at a shade's level: the quick way out
        return ink
    size = _window(small)
    shade = _opening(small, size)
    shade = np.where(shade < SHADE_CAP * level, np.maximum(shade, 0), 0).astype(np.float32)
    # shaded paper is at the broad level itself; a stroke about as wide as the window opens to
    # a level between its ink and the paper that no pixel of it has (a tight crop's stems)
    flat = (shade > SHADE_MIN * level) & (np.abs(small - shade) < SHADE_MIN * level)
    if erode(flat, max(1, size // 6)).mean() < SHADE_AREA or _planar(shade, level):
        return ink  # (eroded: broad, not a stroke's edge) (planar: the plane's to remove)
    shade = _full(shade, ink.shape)
    out = ink - paper - shade
    if dark_ink:
        out = out / np.maximum(1.0 - shade / level, _FLOOR)
    return (out + paper).astype(np.float32)


def clear_rules(ink: np.ndarray) -> np.ndarray:
    """Step 3b: the lines of ruled or squared paper (:func:`~oneshot.paper_lines.thin_rules`,
    found on the ink above half Otsu's level, so fainter lines count too) set to paper."""
    small, mask, k = _reduced(ink)
    rules = thin_rules(mask, small)
    if not rules.any():
        return ink
    rules = np.repeat(np.repeat(rules, k, axis=0), k, axis=1)[: ink.shape[0], : ink.shape[1]]
    return np.where(rules, np.float32(0), ink)


def zoom_to_ink(ink: np.ndarray) -> np.ndarray:
    """Step 3c: a character small in a large image (its ink's box, specks aside, under
    ``ZOOM_BELOW`` of the image's longer side: a glyph at one end of a wide strip, a mark on a
    whole page) cut out at full resolution, centred in twice its box (clipped to the image),
    so that it is not a few pixels wide at the work size; else ``ink`` itself."""
    _, mask, k = _reduced(ink)
    # the quick test first: what an erosion keeps lies in components of 5 px or more, so a
    # box it finds too large to cut out is so without the specks too
    for quick in (True, False):
        m = erode(mask, 1) if quick else remove_small(mask, 4)
        rows, cols = np.flatnonzero(m.any(1)) * k, np.flatnonzero(m.any(0)) * k
        if not len(rows):
            if quick:
                continue
            return ink
        box = max(rows[-1] - rows[0], cols[-1] - cols[0]) + k
        if box >= ZOOM_BELOW * max(ink.shape):
            return ink
    cy, cx = (rows[0] + rows[-1] + k) // 2, (cols[0] + cols[-1] + k) // 2
    return ink[max(cy - box, 0): cy + box, max(cx - box, 0): cx + box]
