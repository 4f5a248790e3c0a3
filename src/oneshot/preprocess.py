"""One documented preprocessing from any image to the model's input. Steps, for a file, a PIL
image or an array (``Preprocessing``'s options; defaults in brackets):

1. grey: colour is converted to luminance; transparent pixels are composited onto white; an
   image longer than ``MAX_SIDE`` [2048 px] is box-averaged by an integer factor to fit (later
   steps work at 105 px; a 32-megapixel photo then needs 0.3 GB, not 2.4);
2. [``background="shade"``] a page photographed on a dark table: a dark, even region along
   the image's edge, round a convex light page that holds the writing, is set to the page's
   level (:func:`~oneshot.page.fill_surround`; writing under a shadow keeps it);
   polarity: the paper's level is the border's where the border is paper, else the image's
   median (:func:`~oneshot.imageops.paper_level`: a bold character cropped with a thin margin
   is mostly ink); if there is more ink below it than above (levels summed beyond
   ``INK_MARGIN`` of it; with ``background="shade"``, where more is above, both are counted
   again only where they are narrower than a stroke can be, and narrow dark ink decides if it
   outweighs narrow light and ``THIN_SHARE`` of the light: lit paper beside a shadow over most
   of the page is broad, not light ink), the ink is dark and the image is inverted: ink = 1,
   background = 0 whatever the input's polarity (black ink on dark grey paper, white on light
   grey paper);
3. background and contrast: [``background="shade"``] a shadow across part of the page (paper
   darker than the rest, lighter than the ink, over a region broader than any stroke) is
   set to the paper's level and the ink under it brought to the contrast of the rest
   (:func:`~oneshot.page.remove_shade`); then the paper's level, a plane fitted robustly to
   the border pixels ["shade", "plane"; "median": one level, the border's median], is
   subtracted, the strongest ink scaled to 1, clipped to [0, 1] (grey paper, shading and
   shadows go). Then ruled and squared paper
   [``clear_rules=True``]: lines across the whole image (85 % of it, straight or slanted up
   to 5 degrees), thinner than 0.6 times the other strokes, and evenly spaced or running on
   past the rest of the ink at both ends, are set to paper, but where a stroke meets them (a
   character's own bar is as thick as its strokes, or ends with it in a tight crop, and
   stays). Then a character small in a large image (its ink's box under a fifth of the longer
   side) is cut out at full resolution, in twice its box [``zoom=True``] (steps 3a-3c:
   :mod:`oneshot.page`);
4. square: padded with background to a square, centred;
5. clean, at Omniglot's resolution [``work_size=105``]: resized there, then binarised
   [``threshold="otsu"``: Otsu's level; a number: that level], a frame or a line on its own
   along the image's edge removed [``clear_frame=True``; a tight crop's bars stay], specks of
   fewer than ``min_ink`` [12] pixels removed (noise: no part of an Omniglot character is that
   small), and the strokes thickened or thinned to ``stroke_width`` [5.5 px, Omniglot's
   median] when their width is outside ``stroke_range`` [4.5-7 px], by whole pixels (a disk)
   and the fraction by a blur that moves the edges (:mod:`oneshot.strokes`); thinning keeps
   what it would erase (a stem, a hairline) whole. ``crop=True``
   then crops to the cleaned ink's bounding box with a margin and resizes back to
   ``work_size``, for photos with much empty space (off: docs/robustness.md);
6. size: resized to the encoder's input size (area averaging when shrinking, bilinear when
   growing), giving float32 (1, S, S).

Omniglot images (105x105, binary, black on white) pass steps 3 and 5 unchanged (their border is
paper, their strokes 5-6.5 px wide), so they come out exactly as the evaluation harness's
``images_to_tensor`` makes them from the decoded dataset: a model sees the same input either way.
``LEGACY`` turns steps 3 and 5 back into the earlier preprocessing (border median, no cleaning).

A folder of the user's images becomes a Dataset by :func:`stored_image`: steps 1-5 (``DEFAULT``,
as the classifier), at 105 px, binarised at 0.5: the Dataset convention (uint8, ink 1,
background 0).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from .data.images import (
    DRAFT_SIDE,
    ImageError,
    array_to_grey,
    check_thin,
    each_image,
    read_grey,
    shrink_grey,
)
from .errors import ConfigError
from .imageops import border_plane, edge_values, otsu_threshold, paper_level, remove_small
from .page import broad_levels, clear_rules, fill_surround, remove_shade, zoom_to_ink
from .paper_lines import edge_rules
from .resizing import (  # steps 4 and 6, re-exported here
    _resize,
    fit_square,
    images_to_tensor,
    resize_batch,
    squares_to_tensor,
)
from .strokes import STROKE_RANGE, normalise_strokes

__all__ = ["ImageError", "ImageLike", "Preprocessing", "DEFAULT", "LEGACY", "to_ink",
           "clear_rules", "zoom_to_ink", "fit_square", "resize_batch", "images_to_tensor",
           "squares_to_tensor", "ink_squares", "clean_square", "normalise_strokes", "preprocess",
           "stored_image", "STORED_SIZE", "STORED_PREPARE_ID"]

ImageLike = Any  # str | os.PathLike | PIL.Image.Image | np.ndarray
INK_MARGIN = 0.1  # polarity: levels this close to the paper's are not counted as ink
BORDER_PAPER, PAPER_SHARE = 0.9, 0.25  # polarity: see imageops.paper_level
THIN_SHARE = 0.01  # polarity: narrow dark ink outweighs broad light above this share of it
_MIN_CONTRAST, _EPS = 1e-3, 1e-6
MAX_SIDE = DRAFT_SIDE  # 2048 px: longer images are reduced on reading (step 1)
VERSION = 7  # galleries record it; CHANGES says what each version changed
CHANGES = {2: "photos with an EXIF orientation, images over 2048 px and 16-bit images",
           3: "images on ruled or squared paper, or on mid-grey paper",
           4: "bold images with thin parts (a filled shape's stem, a bold face's hairlines)",
           5: "tight crops, frames along the edge, white ink on a transparent sheet, a "
              "small character on a large canvas",
           6: "a shadow across part of the page",
           7: "a page photographed on a dark table"}
BACKGROUNDS = ("shade", "plane", "median")  # step 3: what is taken for the paper's level
WORK_SIZE = 105  # Omniglot's side: the resolution at which images are cleaned (step 5)
OMNIGLOT_STROKE = 5.5  # px at 105: the median stroke width of Omniglot (5.0-6.3 for 98 %)
FRAME_BAND, FRAME_SPAN = 0.08, 0.6  # a frame or rule: within 8 % of the edge, 60 % of a side


@dataclass(frozen=True)
class Preprocessing:
    """Options of steps 3 and 5 (module docstring). ``threshold``: "otsu", a level in (0, 1),
    or None (no binarising); ``min_ink`` 0 and ``stroke_width`` None turn those steps off."""

    background: str = "shade"
    work_size: int = WORK_SIZE
    threshold: str | float | None = "otsu"
    min_ink: int = 12
    clear_frame: bool = True
    clear_rules: bool = True
    zoom: bool = True
    stroke_width: float | None = OMNIGLOT_STROKE
    stroke_range: tuple[float, float] = STROKE_RANGE

    def __post_init__(self) -> None:
        if self.background not in BACKGROUNDS:
            raise ConfigError(f"background={self.background!r}; expected {list(BACKGROUNDS)}")
        t = self.threshold
        if not (t is None or t == "otsu" or (isinstance(t, (int, float)) and 0 < t < 1)):
            raise ConfigError(f"threshold={t!r}; expected 'otsu', a level in (0, 1) or None")
        if t is None and (self.min_ink > 1 or self.clear_frame or self.stroke_width is not None):
            raise ConfigError("min_ink, clear_frame and stroke_width clean a binary image: "
                              "they need a threshold")
        if self.work_size < 8:
            raise ConfigError(f"work_size={self.work_size}; at least 8 px expected")

    @property
    def cleans(self) -> bool:
        """Whether step 5 does anything (everything in it starts from the binarised image)."""
        return self.threshold is not None


DEFAULT = Preprocessing()
LEGACY = Preprocessing(background="median", threshold=None, min_ink=0, clear_frame=False,
                       clear_rules=False, zoom=False, stroke_width=None)

STORED_SIZE = 105  # side of a Dataset's images: Omniglot's, and the Koch encoder's input
STORED_THRESHOLD, MIN_STORED_INK = 0.5, 4  # fewer ink pixels at 105: refused, not stored blank
STORED_PREPARE_ID = f"oneshot.preprocess.stored_image/8 size={STORED_SIZE} threshold=0.5"


def _as_grey(img: ImageLike, name: str) -> np.ndarray:
    if isinstance(img, (str, os.PathLike)):
        return read_grey(img, max_side=MAX_SIDE)  # errors name the path
    if isinstance(img, (Image.Image, bytes, bytearray)) or hasattr(img, "read"):
        return read_grey(img, name, max_side=MAX_SIDE)  # a PIL image, encoded bytes, a file
    g = array_to_grey(img, name)
    check_thin(g.shape[1], g.shape[0], name, MAX_SIDE)
    return shrink_grey(g, MAX_SIDE)


def to_ink(img: ImageLike, name: str = "image", background: str = "shade") -> np.ndarray:
    """float32 (H, W) in [0, 1], ink = 1, background = 0 (steps 1-3a above); ``background``:
    "shade" (a dark table round the page and shade over part of it removed, then a robust
    plane fitted to the border subtracted), "plane" (the plane only) or "median" (the
    border's median level).

    Raises ImageError for unreadable input, an image under 2 px either way (also once
    reduced), or an image with no contrast.
    """
    g = _as_grey(img, name)  # at least 2 x 2 (check_thin)
    if background == "shade":
        g = fill_surround(g)
    border = edge_values(g)
    step = max(1, max(g.shape) // 512)  # a sample is enough for the median
    paper = paper_level(g[::step, ::step], border, BORDER_PAPER, PAPER_SHARE)
    dark = float(np.maximum(paper - g - INK_MARGIN, 0).sum())  # ink darker than the paper
    light = float(np.maximum(g - paper - INK_MARGIN, 0).sum())  # and lighter than it
    if background == "shade" and light > dark:  # count what is as narrow as a stroke
        opened, closed = broad_levels(g)
        thin_dark = float(np.maximum(np.minimum(paper - g, closed - g) - INK_MARGIN, 0).sum())
        thin_light = float(np.maximum(np.minimum(g - paper, g - opened) - INK_MARGIN, 0).sum())
        if thin_dark > max(thin_light, THIN_SHARE * light):  # dark strokes on lit paper
            dark, light = thin_dark, thin_light
    if dark > light:
        g, border, paper = 1.0 - g, 1.0 - border, 1.0 - paper
    if background == "shade":
        g = remove_shade(g, paper, dark_ink=dark > light)
    if background in ("shade", "plane"):
        g = g - border_plane(g, start=paper)
        bg = 0.0
    elif background == "median":
        bg = float(np.median(border))
    else:
        raise ConfigError(f"background={background!r}; expected {list(BACKGROUNDS)}")
    peak = float(g.max())
    if peak - bg < _MIN_CONTRAST:
        raise ImageError(f"{name}: image is blank (no ink distinguishable from the background)")
    return np.clip((g - bg) / (peak - bg), 0.0, 1.0).astype(np.float32)


def _unless_empty(new: np.ndarray, old: np.ndarray) -> np.ndarray:
    """A cleaning step never removes all the ink: then the image stays as it was."""
    return new if new.any() else old


def clean_square(sq: np.ndarray, options: Preprocessing = DEFAULT,
                 crop: bool = False) -> np.ndarray:
    """Step 5 (and the crop of step 4, on the cleaned ink, after the strokes are normalised): a
    square ink image -> float32 (W, W) at ``options.work_size``, in {0, 1} but for the edges of
    normalised strokes and of a resized crop."""
    o = options
    x = _resize(sq, o.work_size)
    t = otsu_threshold(x) if o.threshold == "otsu" else float(o.threshold)
    mask = x > t
    if o.clear_frame:
        mask = _unless_empty(mask & ~edge_rules(mask, FRAME_BAND, FRAME_SPAN), mask)
    if o.min_ink > 1:
        mask = _unless_empty(remove_small(mask, o.min_ink), mask)
    out = mask.astype(np.float32)
    if o.stroke_width is not None:  # at the image's own scale, before a crop enlarges it
        out = normalise_strokes(mask, o.stroke_width, o.stroke_range).astype(np.float32)
    if crop:
        out = np.clip(_resize(fit_square(out, crop=True), o.work_size), 0.0, 1.0)
    return out


def ink_squares(images: ImageLike | list, crop: bool = False,
                names: list[str] | None = None,
                options: Preprocessing | None = None) -> list[np.ndarray]:
    """Steps 1-5: any image(s) -> square float32 ink images (S_i, S_i), not yet resized to the
    model's input (the demo shows them as thumbnails). ``names`` label the images in errors
    (default: the path, or "image K"); ``options`` default to ``DEFAULT``."""
    o = DEFAULT if options is None else options
    if not isinstance(images, (list, tuple)):
        images = [images]
    if not images:
        raise ImageError("no images given")
    if names is None:
        names = [str(img) if isinstance(img, (str, Path)) else f"image {k}"
                 for k, img in enumerate(images)]
    def square(img: ImageLike, name: str) -> np.ndarray:
        ink = to_ink(img, name, o.background)
        if o.clear_rules:
            ink = clear_rules(ink)
        if o.zoom:
            ink = zoom_to_ink(ink)
        return clean_square(fit_square(ink), o, crop) if o.cleans else fit_square(ink, crop)
    return each_image(square, images, names)  # every unusable image named in one error


def preprocess(images: ImageLike | list, size: int, crop: bool = False,
               options: Preprocessing | None = None) -> torch.Tensor:
    """Any image(s) -> float32 (B, 1, size, size), ink = 1 (the steps in the module docstring;
    ``options`` default to ``DEFAULT``). ConfigError for a ``size`` that is not a whole number
    of pixels from 1 to ``MAX_SIDE``."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) \
            or not 1 <= size <= MAX_SIDE:
        raise ConfigError(f"size={size!r}; a whole number of pixels from 1 to {MAX_SIDE} "
                          "expected (the encoder's input side)")
    return squares_to_tensor(ink_squares(images, crop, options=options), int(size))


def stored_image(grey: np.ndarray, name: str = "image") -> np.ndarray:
    """A decoded image float (H, W) in [0, 1] -> the stored form of a Dataset image: uint8
    (105, 105), ink = 1: steps 1-5 with the ``DEFAULT`` options, the very preprocessing that
    ``classify``, ``enrol`` and ``verify`` apply, so that what a model trains and is evaluated
    on in a folder is what it meets there (with ``LEGACY`` steps, a folder of filled shapes
    scored 100 % in ``evaluate --data`` and 8 % in ``classify``), then binarised at 0.5.
    ImageError when no ink is left (all of it was taken for paper or specks: the image would
    be stored blank). ``STORED_PREPARE_ID`` names this rule in cache keys: change it when the
    rule changes."""
    sq = ink_squares([grey], names=[name], options=DEFAULT)[0]
    x = resize_batch(torch.from_numpy(np.ascontiguousarray(sq))[None, None], STORED_SIZE)
    out = (x[0, 0].numpy() >= STORED_THRESHOLD).astype(np.uint8)
    if out.sum() < MIN_STORED_INK:
        raise ImageError(f"{name}: no ink left after cleaning ({int(out.sum())} pixels at "
                         f"{STORED_SIZE} px): too faint, too small or the same level as the paper")
    return out
