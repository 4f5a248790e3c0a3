"""Step 5's stroke-width normalisation (:mod:`oneshot.preprocess`): a binary ink mask's strokes
thickened or thinned to a target width, with anti-aliased edges."""

from __future__ import annotations

import numpy as np
import torch

from .imageops import dilate, erode, fill_holes, gaussian_blur, remove_small, stroke_width

__all__ = ["normalise_strokes", "STROKE_RANGE"]

STROKE_RANGE = (4.5, 7.0)  # px: widths left alone (all but 0.2 % of the test alphabets')
STROKE_SIGMA = 1.0  # px: the blur that moves stroke edges by fractions of a pixel
PINHOLE = 4  # px: holes in ink up to this size (a scan's dropouts) are filled before thinning
_EPS = 1e-6


def _thin_parts(mask: np.ndarray, k: int) -> np.ndarray:
    """The parts of ``mask`` that thinning by ``k`` px would erase though they are more than
    edge roughness (a filled shape's stem, a bold face's hairline, an H's thin bar): what an
    opening by ``k`` removes, in pieces of at least 2k + 1 px (as long as the opening is wide),
    grown ``k`` px back into the mask to meet the thinned rest. Empty for ``k`` = 0."""
    if k < 1:
        return np.zeros_like(mask)
    thin = remove_small(mask & ~dilate(erode(mask, k), k), 2 * k + 1)
    return dilate(thin, k) & mask


def normalise_strokes(mask: np.ndarray, target: float,
                      keep: tuple[float, float] = STROKE_RANGE) -> np.ndarray:
    """Strokes of a binary mask thickened or thinned to ``target`` px when their width
    (:func:`~oneshot.imageops.stroke_width`) is outside ``keep``; else the mask itself.

    Each edge moves by d = (target - width) / 2 px: the whole pixels by a disk (dilation or
    erosion), the fraction f by blurring (Gaussian, ``STROKE_SIGMA`` px), which makes a straight
    edge's profile Phi(x / sigma): a pixel at blurred level b lies at x = sigma Phi^-1(b) inside
    the edge and, once the edge has moved, covers clip(x + f + 1/2, 0, 1) of ink. So the result
    is float32 in [0, 1] with anti-aliased edges. Thinning keeps what it would erase whole."""
    w = stroke_width(mask)
    if keep[0] <= w <= keep[1]:
        return mask
    d = (target - w) / 2
    n = int(np.trunc(d))
    mask = fill_holes(mask, PINHOLE) if d < 0 else mask  # else erosion opens them up
    if n < 0:  # an erosion that would leave nothing leaves the mask as it was
        m = erode(mask, -n)
        m = m if m.any() else mask
    else:
        m = dilate(mask, n) if n > 0 else mask
    b = np.clip(gaussian_blur(m.astype(np.float32), STROKE_SIGMA), _EPS, 1 - _EPS)
    x = STROKE_SIGMA * torch.special.ndtri(torch.from_numpy(b)).numpy()
    out = np.clip(x + (d - n) + 0.5, 0.0, 1.0).astype(np.float32)
    if d < 0:  # thinning: what it would erase stays whole, at its own width
        out = np.maximum(out, _thin_parts(mask, int(np.ceil(-d))))
    return out if (out > 0.5).any() else m.astype(np.float32)
