"""Koch et al.'s affine distortions, batched on tensors.

Each image gets its own random affine map; every component (rotation, shear, scale, translation)
is applied with probability ``p`` (0.5 in the paper), otherwise left at identity. Ranges follow the
paper: rotation [-10, 10] degrees, shear [-0.3, 0.3], scale [0.8, 1.2] per axis, translation
[-2, 2] pixels of a 105-pixel frame (scaled with the image, so the same at any input size).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

__all__ = ["Distortion", "random_affine", "apply_affine", "distort"]

KOCH_FRAME = 105.0


@dataclass(frozen=True)
class Distortion:
    rotation_deg: float = 10.0
    shear: float = 0.3
    scale: tuple[float, float] = (0.8, 1.2)
    translate_px: float = 2.0
    p: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"distortion p={self.p}; a probability in [0, 1] expected")
        if not 0 < self.scale[0] <= self.scale[1]:
            raise ValueError(f"distortion scale={self.scale}; 0 < low <= high expected")


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


def apply_affine(x: torch.Tensor, mat: torch.Tensor) -> torch.Tensor:
    """Warp float (B, 1, S, S) images by (B, 2, 3) affine matrices; background stays 0."""
    grid = F.affine_grid(mat.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def distort(x: torch.Tensor, d: Distortion, generator: torch.Generator) -> torch.Tensor:
    """Distort a batch float (B, 1, S, S), ink = 1; background stays 0 (zero padding)."""
    return apply_affine(x, random_affine(len(x), d, generator)[0])
