"""Koch et al.'s affine distortions, batched on tensors.

Each image gets its own random affine map; every component (rotation, shear, scale, translation)
is applied with probability ``p`` (0.5 in the paper), otherwise left at identity. Ranges follow the
paper: rotation [-10, 10] degrees, shear [-0.3, 0.3], scale [0.8, 1.2] per axis, translation
[-2, 2] pixels of a 105-pixel frame (scaled with the image, so the same at any input size).

``thickness`` (off by default, not in the paper): with that probability an image's ink is
thickened or thinned (equally likely) by about half a pixel at the model's input size (the mean
of the image and its 3 x 3 maximum or minimum filter): strokes drawn with another pen or typeset
in another weight, or a silhouette's edge moved, without wiping out one-pixel strokes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["Distortion", "make_distortion", "random_affine", "apply_affine", "distort",
           "random_thickness", "apply_thickness"]

KOCH_FRAME = 105.0


@dataclass(frozen=True)
class Distortion:
    rotation_deg: float = 10.0
    shear: float = 0.3
    scale: tuple[float, float] = (0.8, 1.2)
    translate_px: float = 2.0
    p: float = 0.5
    thickness: float = 0.0

    def __post_init__(self) -> None:
        for name in ("p", "thickness"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"distortion {name}={getattr(self, name)}; a probability in "
                                 "[0, 1] expected")
        if not 0 < self.scale[0] <= self.scale[1]:
            raise ValueError(f"distortion scale={self.scale}; 0 < low <= high expected")


def make_distortion(p: float = 0.5, thickness: float = 0.0, ranges: dict | None = None
                    ) -> Distortion:
    """A :class:`Distortion` with probabilities ``p`` and ``thickness`` and the paper's ranges,
    any of them replaced by ``ranges`` (``rotation_deg``, ``shear``, ``scale`` as [low, high],
    ``translate_px``); ValueError naming an unknown or bad range."""
    ranges = dict(ranges or {})
    known = ("rotation_deg", "shear", "scale", "translate_px")
    unknown = sorted(set(ranges) - set(known))
    if unknown:
        raise ValueError(f"unknown distortion ranges {unknown}; known: {list(known)}")
    def number(a) -> bool:
        return isinstance(a, (int, float)) and not isinstance(a, bool) and math.isfinite(a) \
            and a >= 0

    for name, v in ranges.items():
        if name == "scale":
            if not (isinstance(v, (list, tuple)) and len(v) == 2 and all(map(number, v))):
                raise ValueError(f"distortion scale={v!r}; [low, high] expected")
            ranges["scale"] = (float(v[0]), float(v[1]))
        elif not number(v):
            raise ValueError(f"distortion {name}={v!r}; a finite number >= 0 expected")
    return Distortion(p=p, thickness=thickness, **ranges)


def random_affine(n: int, d: Distortion, generator: torch.Generator) -> tuple[torch.Tensor, dict]:
    """(n, 2, 3) affine matrices in normalised coordinates, and the sampled parameters."""

    def u(lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(n, generator=generator)

    def on() -> torch.Tensor:
        return torch.rand(n, generator=generator) < d.p

    theta = torch.where(on(), u(-d.rotation_deg, d.rotation_deg), 0.0) * (math.pi / 180)
    shear_on = on()
    sx_, sy_ = u(-d.shear, d.shear), u(-d.shear, d.shear)
    shx, shy = torch.where(shear_on, sx_, 0.0), torch.where(shear_on, sy_, 0.0)
    scale_on = on()
    scx = torch.where(scale_on, u(*d.scale), 1.0)
    scy = torch.where(scale_on, u(*d.scale), 1.0)
    t_on = on()
    t = 2.0 * d.translate_px / KOCH_FRAME
    tx, ty = torch.where(t_on, u(-t, t), 0.0), torch.where(t_on, u(-t, t), 0.0)
    c, s = torch.cos(theta), torch.sin(theta)
    rot = torch.stack([torch.stack([c, -s], -1), torch.stack([s, c], -1)], -2)
    shear = torch.stack([torch.stack([torch.ones(n), shx], -1),
                         torch.stack([shy, torch.ones(n)], -1)], -2)
    scale = torch.diag_embed(torch.stack([scx, scy], -1))
    a = rot @ shear @ scale
    mat = torch.cat([a, torch.stack([tx, ty], -1)[..., None]], -1)
    params = {"rotation_deg": theta * 180 / math.pi, "shear_x": shx, "shear_y": shy,
              "scale_x": scx, "scale_y": scy, "translate_x_px": tx * KOCH_FRAME / 2,
              "translate_y_px": ty * KOCH_FRAME / 2}
    return mat, params


def apply_affine(x: torch.Tensor, mat: torch.Tensor, size: int | None = None) -> torch.Tensor:
    """Warp float (B, 1, S, S) images by (B, 2, 3) affine matrices, sampled at ``size`` x
    ``size`` (default S); background stays 0."""
    shape = list(x.shape) if size is None else [*x.shape[:2], size, size]
    grid = F.affine_grid(mat.to(x.dtype), shape, align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def distort(x: torch.Tensor, d: Distortion, generator: torch.Generator) -> torch.Tensor:
    """Distort a batch float (B, 1, S, S), ink = 1; background stays 0 (zero padding)."""
    return apply_affine(x, random_affine(len(x), d, generator)[0])


def random_thickness(n: int, p: float, generator: torch.Generator) -> torch.Tensor:
    """int64 (n,): +1 thicken, -1 thin (each with probability p / 2), 0 leave."""
    on = torch.rand(n, generator=generator) < p
    sign = torch.where(torch.rand(n, generator=generator) < 0.5, 1, -1)
    return torch.where(on, sign, 0)


def apply_thickness(x: torch.Tensor, change: torch.Tensor) -> torch.Tensor:
    """Thicken (+1) or thin (-1) the ink of float (B, 1, S, S) by about half a pixel: the mean
    of each image and its 3 x 3 maximum (minimum) filter."""
    if not bool(change.any()):
        return x
    thick = 0.5 * (x + F.max_pool2d(x, 3, 1, 1))
    thin = 0.5 * (x - F.max_pool2d(-x, 3, 1, 1))
    c = change.to(x.device).view(-1, 1, 1, 1)
    return torch.where(c > 0, thick, torch.where(c < 0, thin, x))
