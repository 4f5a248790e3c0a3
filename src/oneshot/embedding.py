"""The one way to turn images into embeddings: device, dtype (bf16), memory layout, batching.

Evaluation (the embedding cache), validation during training, the one-shot classifier and the
demo all embed through :class:`Embedder`, so a model sees the same input and the same numerics
wherever it runs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .errors import ConfigError
from .preprocess import images_to_tensor

__all__ = ["Embedder", "resolve_device", "resolve_precision", "native_bf16", "PRECISIONS",
           "DEFAULT_BATCH"]

DEFAULT_BATCH = 64  # images per forward pass; 64 ran 1.3-1.6x faster than 256 on the 2-core CPU
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "bf16")


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> cuda when available, else cpu; ``"cpu"``; ``"cuda"`` or ``"cuda:N"``.

    ConfigError for unknown names or for CUDA on a machine without it.
    """
    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    if isinstance(name, str) and (name == "cuda" or name.startswith("cuda:")):
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r} requested but no CUDA device is available; "
                              "use --device cpu (or auto)")
        return torch.device(name)
    raise ConfigError(f"unknown device {name!r}; expected one of {list(DEVICES)} or cuda:N")


def native_bf16(device: str | torch.device = "cpu") -> bool:
    """Whether ``device`` computes in bf16 in hardware: a CUDA device that supports it, or a
    CPU with AVX-512 BF16 or AMX. Elsewhere bf16 is emulated, and slower than fp32."""
    device = resolve_device(device)
    if device.type == "cuda":
        with torch.cuda.device(device):
            return torch.cuda.is_bf16_supported(including_emulation=False)
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(cpu, name, lambda: False)()) for name in checks)


def resolve_precision(precision: str, encoder: nn.Module,
                      device: str | torch.device = "cpu") -> bool:
    """Whether to embed under bf16 autocast: ``"fp32"`` no, ``"bf16"`` yes, ``"auto"`` when the
    encoder's ``bf16_eval`` says bf16 was measured to be as accurate for it and ``device``
    computes bf16 in hardware (:func:`native_bf16`); ensembles and models with test-time
    views are fp32 under "auto" (not measured). ConfigError for other names."""
    if precision not in PRECISIONS:
        raise ConfigError(f"precision {precision!r}; expected one of {list(PRECISIONS)}")
    encoder = getattr(encoder, "encoder", encoder)
    if not getattr(encoder, "autocast", True):  # an ONNX graph (onnx.runtime.OnnxEncoder)
        if precision == "bf16":
            raise ConfigError("precision bf16 applies to PyTorch models; an ONNX model runs as "
                              "exported (fp32, or its --int8 quantisation)")
        return False
    if precision != "auto":
        return precision == "bf16"
    return bool(getattr(encoder, "bf16_eval", False)) and native_bf16(device)


class Embedder:
    """Embeds images with ``encoder`` (an :class:`~oneshot.models.Encoder`, or a model with an
    ``encoder``) without gradients, in eval mode (restored afterwards), in batches of ``batch``,
    under bf16 autocast with ``amp``, channels-last with ``channels_last``.

    Results are float32 on ``device`` (``embed_tensor``) or on the CPU (``embed_images`` with
    ``cpu=True``).
    """

    def __init__(self, encoder: nn.Module, device: str | torch.device = "cpu",
                 amp: bool = False, channels_last: bool = False,
                 batch: int = DEFAULT_BATCH) -> None:
        self.encoder = getattr(encoder, "encoder", encoder)
        self.device = resolve_device(device)
        self.amp = amp
        self.channels_last = channels_last
        if batch < 1:
            raise ConfigError(f"embedding batch={batch}; at least 1 expected")
        self.batch = batch

    @property
    def input_size(self) -> int:
        """Side S of the square input, in pixels."""
        return self.encoder.input_size

    @property
    def embedding_dim(self) -> int:
        return self.encoder.embedding_dim

    @torch.no_grad()
    def embed_tensor(self, x: torch.Tensor, cpu: bool = False) -> torch.Tensor:
        """float (B, 1, S, S) model inputs, ink = 1 -> float32 (B, D) embeddings."""
        enc = self.encoder
        was_training = enc.training
        enc.eval()
        out = []
        try:
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                for i in range(0, len(x), self.batch):
                    xb = x[i: i + self.batch].to(self.device)
                    if self.channels_last:
                        xb = xb.contiguous(memory_format=torch.channels_last)
                    e = enc(xb).float()
                    out.append(e.cpu() if cpu else e)
        finally:
            enc.train(was_training)
        if not out:
            return torch.empty(0, self.embedding_dim)
        return torch.cat(out)

    def embed_images(self, images: np.ndarray, cpu: bool = False) -> torch.Tensor:
        """uint8/float (N, H, W) ink-1 images (e.g. a Dataset's) -> float32 (N, D), resized to
        the input size as :func:`oneshot.preprocess.images_to_tensor` does."""
        return self.embed_tensor(images_to_tensor(images, self.input_size), cpu=cpu)
