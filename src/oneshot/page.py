"""The page around a character: shade, ruled lines, a large page with a small character.

Steps 3a-3c of :mod:`oneshot.preprocess`, on the ink image of step 3 (float (H, W), ink bright;
3a before the paper's plane is subtracted, 3b and 3c after) at full resolution; each finds what
it removes on the image reduced to about ``RULES_SIDE`` pixels, where it is cheap, and applies
it at full resolution.

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
from .imageops import erode, otsu_threshold, plane_design, remove_small
from .paper_lines import thin_rules

__all__ = ["RULES_SIDE", "ZOOM_BELOW", "broad_levels", "remove_shade", "clear_rules", "zoom_to_ink"]

RULES_SIDE = 210  # twice Omniglot's 105: lines, shade and a small character are found at this
ZOOM_BELOW = 0.2  # a character whose ink's box is under this much of the image is cut out
# Shade: a level above the paper's in a region that holds a square of SHADE_WINDOW of the reduced
# image's longer side (most strokes are narrower), less than SHADE_CAP of the ink's level (a
# region at the ink's level is a filled shape, not shade), and over SHADE_MIN of it, with
# the pixels themselves at that level, on at least SHADE_AREA of the image (smaller or
# fainter: left to the plane).
SHADE_WINDOW, SHADE_CAP, SHADE_MIN, SHADE_AREA = 0.15, 0.7, 0.1, 0.05
_FLOOR = 0.2  # the ink's contrast in the deepest shade is divided by at most 1 / _FLOOR


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
