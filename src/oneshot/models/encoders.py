"""Encoders: (B, 1, S, S) float images, ink = 1 -> (B, D) embeddings. Created by name.

- ``koch``: Koch, Zemel & Salakhutdinov (2015), exactly: 105x105 input, conv 64@10 -> pool ->
  128@7 -> pool -> 128@4 -> pool -> 256@4 -> fc 4096 + sigmoid, the paper's initialisation.
  ReLU and 2x2 max-pooling commute (ReLU is monotone), so pooling runs first: same output, a quarter
  of the ReLU work.
- ``conv``: a compact CPU family: ``depth`` blocks of conv 3x3 (padding 1) + batch norm + ReLU +
  max-pool 2 (ceil mode, so no border row is dropped), ``width`` channels, flattened
  (Vinyals/Snell's "Conv-4" at 28x28 with depth 4, width 64). Optionally it first crops each
  character to its ink's bounding box (``crop``) and centres its ink (``centre``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..augment import apply_affine
from ..errors import ConfigError, ModelError
from ..registry import Registry
from ..resizing import CROP_MARGIN

__all__ = ["Encoder", "KochEncoder", "ConvEncoder", "create_encoder", "register_encoder",
           "list_encoders", "centre_ink", "crop_ink", "koch_layer_macs"]


class Encoder(nn.Module):
    """Base class: ``forward`` maps float (B, 1, S, S) images, ink = 1, to (B, D) embeddings;
    subclasses set ``input_size`` (S, pixels, square) and ``embedding_dim`` (D).

    ``bf16_eval``: evaluation under bf16 autocast was measured to be as accurate as fp32 for
    this encoder, so ``--precision auto`` uses it where the hardware computes bf16.

    An encoder whose forward starts with a parameter-free input transform may expose it as
    ``prepare(x)`` and the rest as ``embed_prepared(x)``, with a hashable ``prepare_key`` (equal
    keys: equal transforms), so that an ensemble prepares each input once for all members.

    ``map_shape``: (C, H, W) when the embedding is a flattened feature map (for heads that
    compare maps cell by cell), else None."""

    input_size: int
    embedding_dim: int
    bf16_eval: bool = False
    prepare_key: object = None
    map_shape: tuple[int, int, int] | None = None


class KochEncoder(Encoder):
    """Koch et al. (2015) encoder; 38,947,648 parameters (38,951,745 with the L1 head)."""

    # bf16 evaluation measured as accurate as fp32 (docs/tutorial_run.md): the tutorial preset
    # at 5,000 steps scored the same on 3,000 validation tasks (paired +0.0 [-0.1, +0.1]
    # points), 3,000 test tasks, 3,000 tasks of the tutorial's setting and Lake's 400 trials
    bf16_eval = True

    def __init__(self, fc_std: float = 0.2) -> None:
        super().__init__()
        self.fc_std = fc_std
        self.input_size = 105
        self.embedding_dim = 4096
        self.features = nn.Sequential(
            nn.Conv2d(1, 64, 10), nn.MaxPool2d(2), nn.ReLU(inplace=True),     # 96 -> 48
            nn.Conv2d(64, 128, 7), nn.MaxPool2d(2), nn.ReLU(inplace=True),    # 42 -> 21
            nn.Conv2d(128, 128, 4), nn.MaxPool2d(2), nn.ReLU(inplace=True),   # 18 -> 9
            nn.Conv2d(128, 256, 4), nn.ReLU(inplace=True),                    # 6
        )
        self.fc = nn.Linear(256 * 6 * 6, 4096)
        self.reset_parameters()

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Paper initialisation: conv weights N(0, 1e-2), biases N(0.5, 1e-2), fc weights
        N(0, fc_std): 0.2 is the paper's stated value; the tutorial's Keras code uses 1e-2."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.normal_(m.weight, 0.0, 1e-2, generator=generator)
                nn.init.normal_(m.bias, 0.5, 1e-2, generator=generator)
        nn.init.normal_(self.fc.weight, 0.0, self.fc_std, generator=generator)
        nn.init.normal_(self.fc.bias, 0.5, 1e-2, generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc(self.features(x).flatten(1)))


def koch_layer_macs() -> dict[str, int]:
    """Multiply-accumulates of one 105x105 image through :class:`KochEncoder` (convs and fc
    only; pooling, ReLU and sigmoid are < 0.1 % and left out): out_h * out_w * c_out * k * k *
    c_in per conv, in_features * out_features for fc."""
    layers = {  # name: (output side, c_out, kernel, c_in)
        "conv1": (96, 64, 10, 1), "conv2": (42, 128, 7, 64),
        "conv3": (18, 128, 4, 128), "conv4": (6, 256, 4, 128),
    }
    macs = {n: s * s * co * k * k * ci for n, (s, co, k, ci) in layers.items()}
    macs["fc"] = 256 * 6 * 6 * 4096
    return macs


def _zoom(x: torch.Tensor, scale: torch.Tensor | float, cx: torch.Tensor, cy: torch.Tensor,
          size: int | None = None) -> torch.Tensor:
    """Sample each image of x at the square of half-side ``scale`` centred at (cx, cy), in
    [-1, 1] units (scale 1, centre 0: the frame itself), ``size`` pixels a side (default S)."""
    theta = torch.zeros(x.shape[0], 2, 3, dtype=x.dtype, device=x.device)  # not len(x):
    # the ONNX export keeps the batch dynamic only through x.shape
    theta[:, 0, 0] = theta[:, 1, 1] = scale
    theta[:, 0, 2], theta[:, 1, 2] = cx, cy
    return apply_affine(x, theta, size)


def centre_ink(x: torch.Tensor) -> torch.Tensor:
    """Translate each image of float (B, 1, S, S) so that its ink's centre of mass sits at the
    image centre (bilinear, zero padding); blank images are left as they are."""
    _, _, h, w = x.shape
    mass = x.sum(dim=(1, 2, 3)).clamp_min(1e-6)
    ys = (torch.arange(h, dtype=x.dtype, device=x.device) * 2 + 1) / h - 1
    xs = (torch.arange(w, dtype=x.dtype, device=x.device) * 2 + 1) / w - 1
    cy = (x.sum(dim=(1, 3)) * ys).sum(1) / mass
    cx = (x.sum(dim=(1, 2)) * xs).sum(1) / mass
    return _zoom(x, 1.0, cx, cy)


def crop_ink(x: torch.Tensor, size: int, margin: float = CROP_MARGIN) -> torch.Tensor:
    """Crop each image of float (B, 1, S, S) to the square around its ink's bounding box (pixels
    above 0.5; the longer side plus ``margin`` of it on each side, as ``preprocess`` with
    ``crop=True``, centred on the box) and resample it to (B, 1, size, size): bilinear at twice
    ``size``, then 2x2 means (so shrinking does not alias). Blank images are only resized."""
    _, _, h, w = x.shape
    ink = x[:, 0] > 0.5

    def extent(hit: torch.Tensor, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Centre and half-extent in [-1, 1] units; (0, -1) for a blank image."""
        i = torch.arange(n, device=x.device)
        lo = torch.where(hit, i, n).amin(1).to(x.dtype)
        hi = torch.where(hit, i, -1).amax(1).to(x.dtype) + 1
        return (lo + hi) / n - 1, (hi - lo) / n

    cy, hy = extent(ink.any(dim=2), h)
    cx, hx = extent(ink.any(dim=1), w)
    half = (torch.maximum(hx, hy) * (1 + 2 * margin)).clamp_min(4.0 / max(h, w))
    half = torch.where(hy < 0, torch.ones_like(half), half)  # blank: the whole frame
    return F.avg_pool2d(_zoom(x, half, cx, cy, 2 * size), 2)


def _whole(v) -> bool:
    return not isinstance(v, bool) and isinstance(v, int) and v >= 1


class ConvEncoder(Encoder):
    """``depth`` x [conv3x3(width) + BN + ReLU + maxpool2], then ``pool``: "flatten" keeps the
    spatial map (width * r * r, r = input_size halved, rounding up, ``depth`` times), "max" or
    "avg" pool it globally (width); optional linear to ``dim``. ``centre`` first moves each
    character's centre of mass to the middle of the frame (part of the model, so training,
    evaluation and the classifier all see it). ``crop`` (pixels; 0: off) first crops each
    character to its ink's bounding box resampled to ``crop`` x ``crop``, the size the convolutions
    then work at (give an ``input_size`` larger than ``crop``, so the crop keeps detail).
    ``width`` is one number for every block or a list of ``depth`` numbers, one per block (the
    deep blocks work on small maps, so widening them is cheap; "width" in the text above is
    the last block's). ``dropout`` (0: off) zeroes that share of each block's outputs in
    training, a regulariser (on a GPU it draws from the CUDA generator, which checkpoints do
    not save: a resumed run is then not bit-identical to an uninterrupted one)."""

    def __init__(self, input_size: int = 28, width: int | list[int] = 64, depth: int = 4,
                 dim: int | None = None, pool: str = "flatten", centre: bool = False,
                 crop: int = 0, dropout: float = 0.0) -> None:
        super().__init__()
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or \
                not 0 <= dropout < 1:
            raise ConfigError(f"encoder 'conv': dropout={dropout!r}; a number in [0, 1) "
                              "expected")
        for name, v in (("input_size", input_size), ("depth", depth), ("dim", dim or 1),
                        ("crop", crop or 1)):
            if not _whole(v):
                raise ConfigError(f"encoder 'conv': {name}={v!r}; a whole number >= 1 expected")
        widths = [width] * depth if _whole(width) else width
        if not isinstance(widths, (list, tuple)) or len(widths) != depth or \
                not all(_whole(w) for w in widths):
            raise ConfigError(f"encoder 'conv': width={width!r}; a whole number >= 1, or a list "
                              f"of {depth} of them (one per block) expected")
        conv_size = crop or input_size
        if conv_size >> depth < 1:
            raise ConfigError(f"encoder 'conv': {'crop' if crop else 'input_size'}="
                              f"{conv_size} is too small for depth={depth}")
        if pool not in ("flatten", "max", "avg"):
            raise ConfigError(f"encoder 'conv': pool={pool!r}; expected 'flatten', 'max' or "
                              "'avg'")
        self.input_size = input_size
        self.pool = pool
        self.centre = centre
        self.crop = crop
        layers: list[nn.Module] = []
        c = 1
        for w in widths:
            layers += [nn.Conv2d(c, w, 3, padding=1, bias=False), nn.BatchNorm2d(w),
                       nn.MaxPool2d(2, ceil_mode=True), nn.ReLU(inplace=True)]
            layers += [nn.Dropout(dropout)] if dropout else []  # no module: old keys unchanged
            c = w
        self.features = nn.Sequential(*layers)
        r = conv_size
        for _ in range(depth):
            r = (r + 1) // 2  # ceil-mode pooling keeps the border rows
        flat = c * r * r if pool == "flatten" else c
        self.proj = nn.Linear(flat, dim) if dim else nn.Identity()
        self.embedding_dim = dim or flat
        self.map_shape = (c, r, r) if pool == "flatten" and not dim else None

    @property
    def prepare_key(self) -> tuple | None:
        return ("conv", self.crop, self.centre) if self.crop or self.centre else None

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        """The crop and the centring (no parameters, no gradient)."""
        with torch.no_grad():
            if self.crop:
                x = crop_ink(x, self.crop)
            if self.centre:
                x = centre_ink(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed_prepared(self.prepare(x))

    def embed_prepared(self, x: torch.Tensor) -> torch.Tensor:
        f = self.features(x)
        if self.pool == "max":
            f = f.amax(dim=(2, 3))
        elif self.pool == "avg":
            f = f.mean(dim=(2, 3))
        return self.proj(f.flatten(1))


_ENCODERS = Registry("encoder")
MAX_INPUT_SIZE = 1024  # px: an input of 100,000 px (a hand-edited model file) needs 40 GB


def register_encoder(name: str, factory=None, *, replace: bool = False):
    """Make ``create_encoder(name, **kwargs)`` build ``factory(**kwargs)``, an :class:`Encoder`.

    Usable as a decorator (``@register_encoder("mine")``); taken names need ``replace=True``.
    """
    return _ENCODERS.register(name, factory, replace=replace)


def list_encoders() -> list[str]:
    """Names of the registered encoders, sorted."""
    return _ENCODERS.names()


def create_encoder(name: str, **kwargs) -> Encoder:
    """Build a registered encoder; unknown names and arguments are ConfigErrors. The encoder
    is tried on two blank images at once: embeddings other than (2, embedding_dim) of the
    images' float type are a ModelError naming it (a plugin's mistake, found here rather than
    at enrolment or in an ONNX file that cannot be loaded)."""
    enc = _ENCODERS.create(name, **kwargs)
    if not isinstance(enc, nn.Module):
        raise ConfigError(f"encoder {name!r}: its factory returned a {type(enc).__name__}; a "
                          "torch.nn.Module (oneshot.models.encoders.Encoder) expected")
    for attr in ("input_size", "embedding_dim"):
        v = getattr(enc, attr, None)
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise ConfigError(f"encoder {name!r} sets {attr}={v!r}; a whole number of at "
                              "least 1 expected")
    if not 1 <= enc.input_size <= MAX_INPUT_SIZE:  # a model file can say anything
        raise ConfigError(f"encoder {name!r}: input_size={enc.input_size}; 1 to "
                          f"{MAX_INPUT_SIZE} px expected")
    _try_encoder(name, enc)
    return enc


def _try_encoder(name: str, enc: nn.Module) -> None:
    """ModelError unless ``enc`` maps two blank images to (2, embedding_dim) of their own float
    type (float32, unless torch's default was changed); in eval mode (batch norm's statistics
    untouched), on the parameters' device. Not on the meta device: a skeleton only counts
    parameters (a model file's spec is bounded before it is built), and the real build that
    follows is tried."""
    side, was = enc.input_size, enc.training
    device = next(iter(enc.parameters()), torch.empty(0)).device
    if device.type == "meta":
        return
    x = torch.zeros(2, 1, side, side, device=device)  # torch's default float type (float32)
    try:
        with torch.no_grad():
            out = enc.eval()(x)
    except (RuntimeError, ValueError, TypeError, IndexError, NotImplementedError) as e:
        raise ModelError(f"encoder {name!r} fails on two blank {side}x{side} images: "
                         f"{type(e).__name__}: {e}") from e
    finally:
        enc.train(was)
    shape = tuple(out.shape) if isinstance(out, torch.Tensor) else None
    if shape != (2, enc.embedding_dim) or out.dtype != x.dtype:
        got = f"{shape} {out.dtype}" if shape else type(out).__name__
        raise ModelError(f"encoder {name!r} returns {got} for two {x.dtype} images; "
                         f"{x.dtype} (2, {enc.embedding_dim}) expected (its embedding_dim)")
