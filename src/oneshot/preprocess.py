"""One documented preprocessing from any image to the model's input.

Steps, for a file, a PIL image or an array:

1. grey: colour is converted to luminance; transparent pixels are composited onto white;
2. polarity: the median of the border pixels is the background; if it is light, the image is
   inverted, so that ink = 1 and background = 0 whatever the input's polarity;
3. contrast: background level -> 0, strongest ink -> 1, clipped to [0, 1];
4. square: padded with background to a square, centred (``crop=True`` first crops to the ink's
   bounding box and adds a margin, for photos with a lot of empty space);
5. size: resized to the encoder's input size (area averaging when shrinking, bilinear when
   growing), giving float32 (1, S, S).

Omniglot images (105x105, binary, black on white) come out exactly as the evaluation harness's
``images_to_tensor`` makes them from the decoded dataset, so a model sees the same input either way.

A folder of the user's images becomes a Dataset through the same steps (:func:`stored_image`):
steps 1-4, resized to the stored size (105, Omniglot's), then binarised at 0.5 (ink = 1), the
convention of every Dataset (uint8, ink 1, background 0). Drawn or printed symbols keep their
shape; a photo keeps only its silhouette at that threshold.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .data.images import MAX_PIXELS, ImageError, read_grey

__all__ = [
    "ImageError",
    "ImageLike",
    "to_ink",
    "fit_square",
    "resize_batch",
    "images_to_tensor",
    "squares_to_tensor",
    "ink_squares",
    "preprocess",
    "stored_image",
    "STORED_SIZE",
    "STORED_PREPARE_ID",
]

ImageLike = Any  # str | os.PathLike | PIL.Image.Image | np.ndarray
CROP_MARGIN = 0.15  # share of the side added around the ink's bounding box with crop=True
_MIN_CONTRAST = 1e-3
_CHUNK = 2048
STORED_SIZE = 105  # side of a Dataset's images: Omniglot's, and the Koch encoder's input
STORED_THRESHOLD = 0.5
STORED_PREPARE_ID = f"oneshot.preprocess.stored_image/1 size={STORED_SIZE} threshold=0.5"


def _as_grey(img: ImageLike, name: str) -> np.ndarray:
    if isinstance(img, (str, os.PathLike, Image.Image)):
        return read_grey(img, name if isinstance(img, Image.Image) else None)
    a = np.asarray(img)
    if a.ndim == 3 and a.shape[-1] in (3, 4):
        a = a[..., :3].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        a = a / (255.0 if np.asarray(img).dtype == np.uint8 else 1.0)
    elif a.ndim == 2:
        a = a.astype(np.float32) / (255.0 if a.dtype == np.uint8 else 1.0)
    else:
        raise ImageError(f"{name}: array of shape {a.shape}; (H, W) or (H, W, 3|4) expected")
    if a.size > MAX_PIXELS:
        raise ImageError(f"{name}: array of {a.size / 1e6:.1f} megapixels, over the limit of "
                         f"{MAX_PIXELS / 1e6:.0f}")
    if not np.isfinite(a).all():
        raise ImageError(f"{name}: array holds NaN or infinite values")
    return a


def to_ink(img: ImageLike, name: str = "image") -> np.ndarray:
    """float32 (H, W) in [0, 1], ink = 1, background = 0 (steps 1-3 above).

    Raises ImageError for unreadable input, an empty image, or an image with no contrast.
    """
    g = _as_grey(img, name)
    if g.size == 0 or min(g.shape) < 2:
        raise ImageError(f"{name}: image of size {g.shape} is too small")
    border = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
    if np.median(border) > 0.5:
        g = 1.0 - g
        border = 1.0 - border
    bg = float(np.median(border))
    peak = float(g.max())
    if peak - bg < _MIN_CONTRAST:
        raise ImageError(f"{name}: image is blank (no ink distinguishable from the background)")
    return np.clip((g - bg) / (peak - bg), 0.0, 1.0).astype(np.float32)


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


def ink_squares(images: ImageLike | list, crop: bool = False,
                names: list[str] | None = None) -> list[np.ndarray]:
    """Steps 1-4: any image(s) -> square float32 ink images (S_i, S_i), not yet resized (the
    demo shows them as thumbnails). ``names`` label the images in errors (default: the path,
    or "image K")."""
    if not isinstance(images, (list, tuple)):
        images = [images]
    if not images:
        raise ImageError("no images given")
    if names is None:
        names = [str(img) if isinstance(img, (str, Path)) else f"image {k}"
                 for k, img in enumerate(images)]
    return [fit_square(to_ink(img, name), crop) for img, name in zip(images, names)]


def preprocess(images: ImageLike | list, size: int, crop: bool = False) -> torch.Tensor:
    """Any image(s) -> float32 (B, 1, size, size), ink = 1 (the steps in the module docstring)."""
    return squares_to_tensor(ink_squares(images, crop), size)


def stored_image(grey: np.ndarray, name: str = "image") -> np.ndarray:
    """A decoded image float (H, W) in [0, 1] -> the stored form of a Dataset image: uint8
    (105, 105), ink = 1 (steps 1-5, then binarised at 0.5). ``STORED_PREPARE_ID`` names this
    rule in cache keys: change it when the rule changes."""
    sq = fit_square(to_ink(grey, name))
    x = resize_batch(torch.from_numpy(np.ascontiguousarray(sq))[None, None], STORED_SIZE)
    return (x[0, 0].numpy() >= STORED_THRESHOLD).astype(np.uint8)
