"""Training images as model inputs, with Koch's affine distortions drawn from a seeded stream."""

from __future__ import annotations

import numpy as np
import torch

from ..augment import Distortion, apply_affine, random_affine
from ..data.dataset import Dataset
from ..preprocess import images_to_tensor

__all__ = ["TrainingImages"]


class TrainingImages:
    """A dataset's images resized once to the encoder's input size: float32 (N, 1, S, S);
    with ``rotations``, followed by their rotations by 90, 180 and 270 degrees (4N in all).

    ``images(idx, mine)`` returns this rank's share ``idx[mine]`` of a global batch on
    ``device``; distortion parameters are drawn for the whole global batch from ``generator``,
    so every rank's stream matches one process's.
    """

    def __init__(self, dataset: Dataset, size: int, device: torch.device,
                 distortion: Distortion | None, generator: torch.Generator,
                 channels_last: bool = False, rotations: bool = False) -> None:
        x = images_to_tensor(dataset.images, size)
        if rotations:  # as Dataset.with_rotations orders them, rotated after resizing (small)
            x = torch.cat([x] + [torch.rot90(x, k, dims=(2, 3)) for k in (1, 2, 3)])
        self.x = x
        self.device = device
        self.distortion = distortion
        self.generator = generator
        self.channels_last = channels_last

    def images(self, idx: np.ndarray, mine: np.ndarray | slice = slice(None)) -> torch.Tensor:
        idx = np.asarray(idx).ravel()
        x = self.x[torch.from_numpy(idx[mine])]
        if self.distortion is not None:
            params = random_affine(len(idx), self.distortion, self.generator)[0]
            x = apply_affine(x, params[mine])
        x = x.to(self.device)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x
