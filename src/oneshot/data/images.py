"""The one image decoder: files, bytes or PIL images -> grey float arrays, with a pixel limit.

Every image the project reads (Omniglot's PNGs, Lake's runs, users' files through
:mod:`oneshot.preprocess`, uploads to the demo) is decoded here. The pixel count is checked from
the header, before any pixel is decoded, against ``MAX_PIXELS`` (documented in
docs/reliability.md); JPEGs larger than the limit's side are reduced while they are decoded.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import OneshotError

T = TypeVar("T")

__all__ = ["ImageError", "ImageTooLargeError", "MAX_PIXELS", "read_grey", "read_binary",
           "pil_to_grey", "shrink_grey", "each_image", "unit_range", "array_to_grey",
           "check_array_size", "check_square", "check_thin"]

MAX_PIXELS = 40_000_000  # 40 megapixels: about 160 MB as RGBA while decoding
DRAFT_SIDE = 2048  # JPEGs are decoded at a reduced scale to about this side when larger (and
# oneshot.preprocess.MAX_SIDE, folders' images too, are reduced to it right after decoding)
_ORIENTATION = 0x0112  # the EXIF orientation tag
MAX_LISTED = 20  # unusable images named in one error


class ImageError(OneshotError, ValueError):
    """An input image cannot be read, is too large, or holds no usable character."""


class ImageTooLargeError(ImageError):
    """An image has more pixels than allowed."""


def pil_to_grey(img: Image.Image, max_side: int | None = None) -> np.ndarray:
    """A PIL image -> float32 (H, W) luminance in [0, 1], upright as viewers show it (its EXIF
    orientation applied: phones store photos turned); transparency composited onto white (onto
    black when what is opaque is light: white ink on a transparent sheet);
    with ``max_side``, reduced (box filter, integer factor) while still one byte per pixel
    until its longer side is at most ``max_side``."""
    if img.getexif().get(_ORIENTATION, 1) != 1:
        img = ImageOps.exif_transpose(img)
    if img.mode in ("I", "F") or img.mode.startswith("I;16"):  # 16-bit scans, float TIFFs:
        grey = unit_range(np.asarray(img))  # convert("L") would clip them to 0-255
        return shrink_grey(grey, max_side) if max_side else grey
    if img.mode in ("RGBA", "LA", "PA") or "transparency" in img.info:
        rgba = img.convert("RGBA")
        small = np.asarray(rgba.reduce(_factor(rgba.size, 512)), np.float32) / 255.0
        level = 255 * _backdrop_level(small[..., :3] @ _LUMA, small[..., 3])
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (level,) * 3 + (255,)), rgba)
    grey = img.convert("L")
    if max_side and max(grey.size) > max_side:
        grey = grey.reduce(_factor(grey.size, max_side))
    return np.asarray(grey, dtype=np.float32) / 255.0


_LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def unit_range(a: np.ndarray) -> np.ndarray:
    """Grey levels as float32 in [0, 1]: uint8 / 255; booleans and values already within
    [0, 1] as they are; anything else (16-bit scans, 0-255 floats, signed data) stretched from
    its minimum to its maximum, so that the polarity test (border against 0.5) holds."""
    if a.dtype == np.uint8:
        return a.astype(np.float32) / 255.0
    f = a.astype(np.float32)
    lo, hi = (float(f.min()), float(f.max())) if f.size else (0.0, 0.0)
    if a.dtype == bool or (lo >= 0.0 and hi <= 1.0):
        return f
    return (f - lo) / (hi - lo) if hi > lo else np.zeros_like(f)


def array_to_grey(img: Any, name: str) -> np.ndarray:
    """An image array -> float32 (H, W) in [0, 1], as :func:`pil_to_grey` does for images:
    (H, W), (H, W, 1) or colour (H, W, 3|4), alpha composited as there; levels by
    :func:`unit_range`. ImageError for other shapes, non-real or non-finite values, or an
    array over the size limits."""
    a = np.asarray(img)
    if not (a.dtype == bool or np.issubdtype(a.dtype, np.integer)
            or np.issubdtype(a.dtype, np.floating)):
        raise ImageError(f"{name}: array of {a.dtype}; real numbers expected")
    a = a[..., 0] if a.ndim == 3 and a.shape[-1] == 1 else a
    if not (a.ndim == 2 or (a.ndim == 3 and a.shape[-1] in (3, 4))):
        raise ImageError(f"{name}: array of shape {a.shape}; (H, W) or (H, W, 3|4) expected")
    check_array_size(a, name)
    if not np.isfinite(a).all():
        raise ImageError(f"{name}: array holds NaN or infinite values")
    if a.ndim == 2:
        return unit_range(a)
    grey = unit_range(a[..., :3]) @ _LUMA
    alpha = a[..., 3] if a.shape[-1] == 4 else None
    if alpha is not None and alpha.min() != alpha.max():  # constant alpha: opaque
        cover = unit_range(alpha)
        grey = grey * cover + _backdrop_level(grey, cover) * (1.0 - cover)
    return grey.astype(np.float32)


def _backdrop_level(grey: np.ndarray, cover: np.ndarray) -> int:
    """What transparent pixels are composited onto: white (1), or black (0) when what is
    opaque is light all over, 95 % of it (white strokes on a transparent sheet, as icons are
    exported: on white they would vanish; a light card with dark ink on it, on a transparent
    margin, as a screenshot with a shadow, stays on white)."""
    seen = float(cover.sum())
    return 0 if seen > 0 and float((cover * (grey > 0.5)).sum()) >= 0.95 * seen else 1


def each_image(fn: Callable[[Any, str], T], items: Iterable, names: Iterable[str]) -> list[T]:
    """[fn(item, name)] for every item, all tried: an ImageError names every image that failed
    (up to ``MAX_LISTED``), not only the first, so that a folder is fixed in one pass. With one
    failure, its own error is raised."""
    out, bad = [], []
    for item, name in zip(items, names):
        try:
            out.append(fn(item, name))
        except ImageError as e:
            bad.append(e)
    if len(bad) == 1:
        raise bad[0]
    if bad:
        more = f"\n  ... and {len(bad) - MAX_LISTED} more" if len(bad) > MAX_LISTED else ""
        raise ImageError(f"{len(bad)} of {len(out) + len(bad)} images cannot be used (fix or "
                         "remove them):\n  " + "\n  ".join(map(str, bad[:MAX_LISTED])) + more)
    return out


def _factor(shape: tuple[int, ...], max_side: int) -> int:
    return -(-max(shape) // max_side)


def shrink_grey(a: np.ndarray, max_side: int) -> np.ndarray:
    """A grey float (H, W) array reduced as :func:`pil_to_grey` reduces images (the mean of
    k x k boxes, k the smallest integer bringing the longer side to at most ``max_side``)."""
    if max(a.shape) <= max_side:
        return a
    return np.asarray(Image.fromarray(np.asarray(a, np.float32)).reduce(_factor(a.shape, max_side)))


def read_grey(source: str | os.PathLike | bytes | Image.Image | io.IOBase, name: str | None = None,
              max_pixels: int = MAX_PIXELS, formats: tuple[str, ...] | None = None,
              max_side: int | None = None, exact_side: int | None = None) -> np.ndarray:
    """Decode ``source`` (a path, encoded bytes or a PIL image) to float32 (H, W) in [0, 1].

    ImageError naming ``name`` (default: the path) for unreadable data (or a format not in
    ``formats``, when given), ImageTooLargeError for images over ``max_pixels`` (checked from
    the header, before decoding). ``max_side`` reduces large images right after decoding, before
    the float conversion (JPEGs already while decoding). ``exact_side``: the image must be that
    square (checked from the header too).
    """
    if isinstance(source, Image.Image):
        _check_size(source.size, name or "image", max_pixels)
        check_thin(*source.size, name or "image", max_side)
        return pil_to_grey(source, max_side)
    name = name or (str(source) if isinstance(source, (str, os.PathLike)) else "image")
    if isinstance(source, (str, os.PathLike)) and os.path.exists(source) \
            and not os.path.isfile(source):  # a pipe would be read forever
        raise ImageError(f"{name}: not a regular file (a folder, a pipe or a device)")
    fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else source
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fp, formats=formats) as im:
                if exact_side and im.size != (exact_side, exact_side):
                    raise ImageError(f"{name}: image is {im.size[0]}x{im.size[1]}, "
                                     f"{exact_side}x{exact_side} expected")
                side = min(DRAFT_SIDE, max_side or DRAFT_SIDE)
                if im.format == "JPEG" and max(im.size) > side:  # decoded at 1/2 to 1/8 size:
                    im.draft("L", (side, side))  # a 48-megapixel photo needs no more memory
                _check_size(im.size, name, max_pixels)  # the size it will be decoded at
                check_thin(*im.size, name, max_side)
                im.load()
                return pil_to_grey(im, max_side)
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageTooLargeError(f"{name}: image is over the limit of {max_pixels / 1e6:g} "
                                 f"megapixels (Pillow refuses it too: {e}); reduce it first") from e
    except UnidentifiedImageError as e:
        accepted = f"; {', '.join(formats)} accepted" if formats else ""
        raise ImageError(f"{name}: not a readable image{accepted}") from e
    except FileNotFoundError as e:  # missing, not broken
        raise ImageError(f"{name}: no such file") from e
    except (OSError, ValueError, SyntaxError, EOFError) as e:
        raise ImageError(f"{name}: not a readable image (broken file: {e})") from e


def _check_size(size: tuple[int, int], name: str, max_pixels: int) -> None:
    w, h = size
    if w * h > max_pixels:
        raise ImageTooLargeError(f"{name}: image is {w}x{h} = {w * h / 1e6:.1f} megapixels, "
                                 f"over the limit of {max_pixels / 1e6:g} megapixels; reduce it "
                                 "first")
    check_square(w, h, name, max_pixels)


def check_array_size(a: np.ndarray, name: str) -> None:
    """An image array (H, W[, C]) within the limits a file's header is held to."""
    _check_size((a.shape[1], a.shape[0]), name, MAX_PIXELS)


def check_square(w: int, h: int, name: str, max_pixels: int = MAX_PIXELS) -> None:
    """Refuse a long thin image whose padded square (``oneshot.preprocess``, step 4) would be
    over twice ``max_pixels``: a 1 kB 20000x40 strip would take gigabytes. Any image within the
    limit and at most twice as long as it is wide passes."""
    side = max(w, h)
    if side * side > 2 * max_pixels:
        raise ImageTooLargeError(f"{name}: image of {w}x{h} pixels would be padded to a "
                                 f"{side}x{side} square, over the limit of "
                                 f"{2 * max_pixels / 1e6:g} megapixels; crop or split it")


def check_thin(w: int, h: int, name: str, max_side: int | None) -> None:
    """Refuse an image whose shorter side, reduced with the longer to ``max_side`` (step 1 of
    ``oneshot.preprocess``), would be under 2 px, naming its own size (a 5000x3 strip)."""
    k = _factor((w, h), max_side) if max_side and max(w, h) > max_side else 1
    if min(-(-w // k), -(-h // k)) < 2:
        then = f" (reduced to at most {max_side} px: {-(-w // k)}x{-(-h // k)})" if k > 1 else ""
        raise ImageError(f"{name}: image of {w}x{h} pixels is too small or thin{then}; at "
                         "least 2 px each way needed")


def read_binary(data: bytes, name: str, size: int | None = None) -> np.ndarray:
    """A black-on-white binary image (Omniglot's and Lake's PNGs) -> bool (H, W), ink = True.

    ImageError unless it decodes, is ``size`` x ``size`` (when given) and has only black and
    white pixels.
    """
    g = read_grey(data, name, formats=("PNG",), exact_side=size)
    if not np.isin(g, (0.0, 1.0)).all():
        raise ImageError(f"{name}: image is not binary (grey levels other than black and white)")
    return g == 0.0
