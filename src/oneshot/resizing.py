"""Steps 4 and 6 of :mod:`oneshot.preprocess`: ink images padded (or cropped to their ink)
to a centred square, and squares resized to a model's input, in batches. Imported from
:mod:`oneshot.preprocess`, which documents the whole chain."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["CROP_MARGIN", "fit_square", "resize_batch", "images_to_tensor", "squares_to_tensor"]

CROP_MARGIN = 0.15  # share of the side added around the ink's bounding box with crop=True
_CHUNK = 2048  # images resized at once


def fit_square(ink: np.ndarray, crop: bool = False) -> np.ndarray:
    """Pad (after cropping to the ink's bounding box if ``crop``) to a centred square."""
    if crop:
        rows = np.flatnonzero(ink.max(axis=1) > 0.5)
        cols = np.flatnonzero(ink.max(axis=0) > 0.5)
        if len(rows) and len(cols):
            ink = ink[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1]
        m = int(round(CROP_MARGIN * max(ink.shape)))
        ink = np.pad(ink, m)
    h, w = ink.shape
    s = max(h, w)
    top, left = (s - h) // 2, (s - w) // 2
    return np.pad(ink, ((top, s - h - top), (left, s - w - left)))


def resize_batch(x: torch.Tensor, size: int) -> torch.Tensor:
    """Resize float (B, 1, H, W) square images to (B, 1, size, size)."""
    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    if x.shape[-1] > size:
        return F.interpolate(x, size=(size, size), mode="area")
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def images_to_tensor(images: np.ndarray, size: int) -> torch.Tensor:
    """uint8/float (N, H, W) ink-1 images -> float32 (N, 1, size, size), resized in chunks."""
    out = torch.empty((len(images), 1, size, size), dtype=torch.float32)
    for i in range(0, len(images), _CHUNK):
        chunk = torch.from_numpy(np.ascontiguousarray(images[i: i + _CHUNK])).float()
        out[i: i + len(chunk)] = resize_batch(chunk[:, None], size)
    return out


def squares_to_tensor(squares: list[np.ndarray], size: int) -> torch.Tensor:
    """Square float ink images (each (S_i, S_i), any sizes) -> float32 (B, 1, size, size)."""
    return torch.stack([resize_batch(torch.from_numpy(sq)[None, None], size)[0]
                        for sq in squares])


def _resize(sq: np.ndarray, size: int) -> np.ndarray:
    return resize_batch(torch.from_numpy(np.ascontiguousarray(sq, np.float32))[None, None],
                        size)[0, 0].numpy()
