"""Named, seeded perturbations of images as a user would give them, for the robustness suite.

Each perturbation is a function ``f(ink, rng) -> ink`` of one float32 image (H, W) in [0, 1],
ink = 1, background = 0 (an Omniglot image at its full 105x105 resolution) and a
``numpy.random.Generator``; it returns a float32 image of the same shape in [0, 1], ink = 1.
:func:`to_user_image` then renders it as a user's file would be: 8-bit grey, dark ink on white.

``PERTURBATIONS`` lists the built-in ones in table order; ``register_perturbation`` adds more.
:func:`perturbation_rng` gives each (perturbation, image) its own generator, so a perturbed image
does not depend on which other images are perturbed, or in what order.
"""

from __future__ import annotations

import io
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ..imageops import dilate, erode, gaussian_blur
from ..registry import Registry

__all__ = ["Perturbation", "PERTURBATIONS", "register_perturbation", "list_perturbations",
           "get_perturbation", "perturbation_rng", "to_user_image"]

PerturbFn = Callable[[np.ndarray, np.random.Generator], np.ndarray]

BLUR_SIGMA = 1.5  # px at 105: a slightly out-of-focus photo of a ~5 px stroke
ROTATION_DEG = 10.0  # sign drawn per image
SHIFT_PX = 5.0  # direction drawn per image
JPEG_QUALITY = 20
GREY_PAPER = 0.4  # ink-1 level of grey paper: 60 % reflectance
GRADIENT = 0.5  # ink-1 level rising from 0 to this across the image, direction drawn per image
FRAME_INSET, FRAME_WIDTH = 3, 2  # px: a box drawn round the character
RULE_GAP, RULE_LEVEL, RULE_SKEW = 18, 0.6, 2.0  # px apart, ink-1 level, degrees (sign drawn)
SHADOW, SHADOW_EDGE = 0.4, 2.0  # a shadow takes 40 % of the light; its edge blurs over ~4 px


@dataclass(frozen=True)
class Perturbation:
    """``name`` (table row), ``fn`` (see the module docstring), ``description`` (one line)."""

    name: str
    fn: PerturbFn
    description: str

    def __call__(self, ink: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raw = np.asarray(self.fn(np.asarray(ink, np.float32), rng), np.float32)
        if raw.shape != np.shape(ink):
            raise ValueError(f"perturbation {self.name!r} changed the shape {np.shape(ink)} "
                             f"to {raw.shape}")
        if not np.isfinite(raw).all():  # NaN would pass the clip and read as a blank image
            raise ValueError(f"perturbation {self.name!r} gave {int((~np.isfinite(raw)).sum())}"
                             " NaN or infinite pixels")
        return np.clip(raw, 0.0, 1.0)


_REGISTRY = Registry("perturbation")


def register_perturbation(name: str, fn: PerturbFn, description: str = "",
                          replace: bool = False) -> Perturbation:
    """Add a perturbation (listed after the built-in ones); returns it."""
    p = Perturbation(name, fn, description or name)
    _REGISTRY.register(name, lambda: p, replace=replace)
    if name not in PERTURBATIONS:
        PERTURBATIONS.append(name)
    return p


def list_perturbations() -> list[str]:
    """Registered names, in table order."""
    return list(PERTURBATIONS)


def get_perturbation(name: str) -> Perturbation:
    """The perturbation ``name``; ConfigError naming the registered ones if unknown."""
    return _REGISTRY.create(name)


def perturbation_rng(seed: int, name: str, image_id: int) -> np.random.Generator:
    """The generator of perturbation ``name`` on image ``image_id`` under ``seed``."""
    return np.random.default_rng([seed, zlib.crc32(name.encode()), int(image_id)])


def to_user_image(ink: np.ndarray) -> np.ndarray:
    """float ink-1 (H, W) -> uint8 (H, W), dark ink on white, as a scan or a PNG would hold it."""
    return np.round(255.0 * (1.0 - np.clip(ink, 0.0, 1.0))).astype(np.uint8)


# --- the perturbations ---
def _gaussian(sigma: float) -> PerturbFn:
    return lambda x, rng: x + sigma * rng.standard_normal(x.shape, dtype=np.float32)


def _salt_pepper(frac: float) -> PerturbFn:
    def f(x, rng):
        u = rng.random(x.shape)
        return np.where(u < frac / 2, 1.0, np.where(u < frac, 0.0, x))
    return f


def _affine(x: np.ndarray, angle_deg: float = 0.0, scale: float = 1.0,
            shift: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """Rotate by ``angle_deg`` and scale by ``scale`` about the centre, then shift by (dy, dx)
    px; bilinear; what leaves the frame is lost, what enters it is background."""
    h, w = x.shape
    cy, cx = (h - 1) / 2, (w - 1) / 2
    t = math.radians(angle_deg)
    cos, sin = math.cos(t) / scale, math.sin(t) / scale
    dy, dx = shift
    # PIL maps each output pixel (u, v) to the input pixel (a u + b v + c, d u + e v + f)
    a, b, d, e = cos, sin, -sin, cos
    c = cx - a * (cx + dx) - b * (cy + dy)
    f = cy - d * (cx + dx) - e * (cy + dy)
    img = Image.fromarray(np.asarray(x, np.float32), mode="F")
    out = img.transform((w, h), Image.AFFINE, (a, b, c, d, e, f), resample=Image.BILINEAR)
    return np.asarray(out, np.float32)


def _rotate(x, rng):
    return _affine(x, angle_deg=ROTATION_DEG * rng.choice([-1.0, 1.0]))


def _shift(x, rng):
    t = rng.uniform(0, 2 * math.pi)
    return _affine(x, shift=(SHIFT_PX * math.sin(t), SHIFT_PX * math.cos(t)))


def _jpeg(x, rng):
    buf = io.BytesIO()
    Image.fromarray(to_user_image(x)).save(buf, format="JPEG", quality=JPEG_QUALITY)
    return 1.0 - np.asarray(Image.open(buf).convert("L"), np.float32) / 255.0


def _on_paper(level: np.ndarray | float, x: np.ndarray) -> np.ndarray:
    """Ink on paper of ``level`` (ink-1 units): the ink stays 1, the paper becomes ``level``."""
    return level + (1.0 - level) * x


def _gradient(x, rng):
    h, w = x.shape
    t = rng.uniform(0, 2 * math.pi)
    rr, cc = np.mgrid[0:h, 0:w]
    ramp = (rr - (h - 1) / 2) * math.sin(t) / (h - 1) + (cc - (w - 1) / 2) * math.cos(t) / (w - 1)
    ramp = (ramp - ramp.min()) / max(ramp.max() - ramp.min(), 1e-6)
    return _on_paper(GRADIENT * ramp.astype(np.float32), x)


def _shadow(x, rng):
    """A shadow with a straight edge across the image (a hand's, a phone's): the light falls
    by ``SHADOW`` on one side of a line in a drawn direction through a point drawn within a
    quarter of the side from the centre (20-80 % of the image in shade); the ink is black in
    light and shade alike."""
    h, w = x.shape
    t = rng.uniform(0, 2 * math.pi)
    off = rng.uniform(-0.25, 0.25) * min(h, w)
    rr, cc = np.mgrid[0:h, 0:w].astype(np.float32)
    d = (rr - (h - 1) / 2) * math.sin(t) + (cc - (w - 1) / 2) * math.cos(t) - off
    return _on_paper(SHADOW * np.clip(0.5 + d / (2 * SHADOW_EDGE), 0, 1), x)


def _frame(x, rng):
    out = x.copy()
    i, k = FRAME_INSET, FRAME_INSET + FRAME_WIDTH
    out[i:k, i:-i] = out[-k:-i, i:-i] = out[i:-i, i:k] = out[i:-i, -k:-i] = 1.0
    return out


def _tight(x, rng):
    """Cropped to the ink's box, as a user crops a character: scaled so that its longer side
    spans the image, the shorter side centred on paper (what squaring a tight crop gives)."""
    rows, cols = np.flatnonzero(x.max(1) > 0.5), np.flatnonzero(x.max(0) > 0.5)
    if not len(rows):
        return x
    box = x[rows[0]: rows[-1] + 1, cols[0]: cols[-1] + 1]
    h, w = x.shape
    k = min(h / box.shape[0], w / box.shape[1])
    size = (max(1, round(box.shape[1] * k)), max(1, round(box.shape[0] * k)))
    big = np.asarray(Image.fromarray(box, mode="F").resize(size, Image.BILINEAR), np.float32)
    out = np.zeros_like(x)
    top, left = (h - big.shape[0]) // 2, (w - big.shape[1]) // 2
    out[top: top + big.shape[0], left: left + big.shape[1]] = big
    return np.clip(out, 0.0, 1.0)


def _ruled(skew: float, squared: bool = False) -> PerturbFn:
    """Paper ruled every ``RULE_GAP`` px (and across, if ``squared``) with anti-aliased lines
    about 1.5 px wide, slanted by ``skew`` degrees (sign drawn), at a drawn offset."""
    def f(x, rng):
        h, w = x.shape
        rr, cc = np.mgrid[0:h, 0:w].astype(np.float32)
        slope = math.tan(math.radians(skew * rng.choice([-1.0, 1.0])))
        paper = np.zeros_like(x)
        for d in ((rr - slope * cc, cc + slope * rr) if squared else (rr - slope * cc,)):
            d = (d - rng.uniform(0, RULE_GAP)) % RULE_GAP
            paper = np.maximum(paper, np.clip(1.25 - np.minimum(d, RULE_GAP - d), 0, 1))
        return np.maximum(x, RULE_LEVEL * paper)
    return f


_BUILTIN: list[tuple[str, PerturbFn, str]] = [
    ("clean", lambda x, rng: x, "no perturbation"),
    ("gaussian-0.05", _gaussian(0.05), "additive Gaussian noise, sigma 0.05, clipped to [0, 1]"),
    ("gaussian-0.1", _gaussian(0.1), "additive Gaussian noise, sigma 0.1, clipped"),
    ("gaussian-0.2", _gaussian(0.2), "additive Gaussian noise, sigma 0.2, clipped"),
    ("salt-pepper-1%", _salt_pepper(0.01), "1 % of pixels set to ink or paper (half each)"),
    ("salt-pepper-5%", _salt_pepper(0.05), "5 % of pixels set to ink or paper (half each)"),
    ("blur", lambda x, rng: gaussian_blur(x, BLUR_SIGMA), f"Gaussian blur, sigma {BLUR_SIGMA} px"),
    ("dilate-1", lambda x, rng: dilate(x, 1), "strokes 2 px wider (disk of radius 1)"),
    ("dilate-2", lambda x, rng: dilate(x, 2), "strokes 4 px wider (disk of radius 2)"),
    ("erode-1", lambda x, rng: erode(x, 1), "strokes 2 px thinner (disk of radius 1)"),
    ("erode-2", lambda x, rng: erode(x, 2), "strokes 4 px thinner (disk of radius 2)"),
    ("rotate-10", _rotate, f"rotated by +-{ROTATION_DEG:g} degrees (sign drawn per image)"),
    ("scale-0.8", lambda x, rng: _affine(x, scale=0.8), "scaled by 0.8 about the centre"),
    ("scale-1.2", lambda x, rng: _affine(x, scale=1.2), "scaled by 1.2 about the centre"),
    ("shift-5", _shift, f"shifted by {SHIFT_PX:g} px in a direction drawn per image"),
    ("invert", lambda x, rng: 1.0 - x, "inverted polarity (light ink on dark paper)"),
    ("jpeg-20", _jpeg, f"JPEG at quality {JPEG_QUALITY}"),
    ("grey-background", lambda x, rng: _on_paper(GREY_PAPER, x),
     f"grey paper (ink-1 level {GREY_PAPER})"),
    ("gradient-background", _gradient,
     f"paper shading from 0 to {GRADIENT} across the image, direction drawn per image"),
    ("shadow", _shadow, f"a shadow across 20-80 % of the image (paper at ink-1 level "
     f"{SHADOW}; the ink black), a straight edge in a drawn direction"),
    ("border-line", _frame, f"a {FRAME_WIDTH}-px box {FRAME_INSET} px inside the image edge"),
    ("tight-crop", _tight, "cropped to the ink's box and scaled to span the image (a tight "
     "crop, squared)"),
    ("ruled-paper", _ruled(0.0), f"lines every {RULE_GAP} px across the image (level "
     f"{RULE_LEVEL}, about 1.5 px wide), as on ruled paper"),
    ("ruled-slanted", _ruled(RULE_SKEW), f"ruled paper turned by +-{RULE_SKEW:g} degrees"),
    ("squared-paper", _ruled(0.0, squared=True), f"lines every {RULE_GAP} px both ways"),
]

PERTURBATIONS: list[str] = []
for _name, _fn, _desc in _BUILTIN:
    register_perturbation(_name, _fn, _desc)
