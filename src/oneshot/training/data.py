"""Training data: which datasets a config trains and validates on (Omniglot splits or a folder
split into parts), and their images as model inputs with Koch's affine distortions drawn from a
seeded stream."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from ..augment import Distortion, apply_affine, apply_thickness, random_affine, random_thickness
from ..data.dataset import Dataset
from ..data.partition import ClassSplit, shared_pictures
from ..data.splits import shares_alphabets
from ..datasets import folder_split, load_data, load_folder_dataset
from ..preprocess import images_to_tensor
from ..sampling import max_ways

if TYPE_CHECKING:
    from .config import TrainConfig

__all__ = ["TrainingImages", "load_training_data", "fit_ways"]

log = logging.getLogger("oneshot.training")


class TrainingImages:
    """A dataset's images resized once to the encoder's input size: float32 (N, 1, S, S);
    with ``rotations``, positions N..4N-1 are their rotations by 90, 180 and 270 degrees, made
    for each batch (exact, so the same as stored copies, in a quarter of the memory); with
    ``flips``, mirror images too, ordered as ``Dataset.with_flips().with_rotations()`` orders
    them (M = 2N with flips: position i is image i % N, mirrored if (i % M) >= N, then turned
    i // M quarter turns).

    ``images(idx, mine)`` returns this rank's share ``idx[mine]`` of a global batch on
    ``device``; distortion parameters are drawn for the whole global batch from ``generator``,
    so every rank's stream matches one process's (``distort=False``: the images as they are).
    """

    def __init__(self, dataset: Dataset, size: int, device: torch.device,
                 distortion: Distortion | None, generator: torch.Generator,
                 channels_last: bool = False, rotations: bool = False,
                 flips: bool = False) -> None:
        self.x = images_to_tensor(dataset.images, size)
        self.rotations, self.flips = rotations, flips
        self.device = device
        self.distortion = distortion
        self.generator = generator
        self.channels_last = channels_last

    def images(self, idx: np.ndarray, mine: np.ndarray | slice = slice(None),
               distort: bool = True) -> torch.Tensor:
        idx = np.asarray(idx).ravel()
        x = self._fetch(idx[mine])
        if self.distortion is not None and distort:  # distort=False: no draw from the stream
            params = random_affine(len(idx), self.distortion, self.generator)[0]
            x = apply_affine(x, params[mine])
            if self.distortion.thickness:  # drawn only when asked: other streams unchanged
                change = random_thickness(len(idx), self.distortion.thickness, self.generator)
                x = apply_thickness(x, change[mine])
        x = x.to(self.device)
        return x.contiguous(memory_format=torch.channels_last) if self.channels_last else x


    def _fetch(self, idx: np.ndarray) -> torch.Tensor:
        n = len(self.x)
        m = 2 * n if self.flips else n
        x = self.x[torch.from_numpy(idx % n if self.flips or self.rotations else idx)]
        if self.flips:
            sel = torch.from_numpy(np.flatnonzero(idx % m >= n))
            if len(sel):
                x[sel] = torch.flip(x[sel], dims=(3,))
        if self.rotations:
            turns = idx // m
            for k in (1, 2, 3):
                sel = torch.from_numpy(np.flatnonzero(turns == k))
                if len(sel):
                    x[sel] = torch.rot90(x[sel], k, dims=(2, 3))
        return x


def load_training_data(cfg: TrainConfig, data_dir=None, cache=None, progress: bool = False,
                       saved_split: Path | None = None
                       ) -> tuple[Dataset, Dataset, ClassSplit | None]:
    """(training data, validation data, class split or None) as ``cfg`` says: the splits
    ``train_split`` / ``val_split`` (names or folders), or with ``cfg.data`` that folder's
    train and validation parts (``saved_split``, a resumed run's, wins over drawing again).
    ``drawers`` applies to the training data; ``rotations`` are the trainer's to make (after
    resizing, :class:`TrainingImages`)."""
    split = None
    if cfg.data:
        full = load_folder_dataset(cfg.data, cache, progress)  # a folder, even one named "test"
        if saved_split is not None and saved_split.exists():
            split = ClassSplit.load(saved_split, full)
        else:
            split = folder_split(full, cfg.data_split or None, cfg.split_seed, cfg.split_by)
        ds, val = split.select(full, "train"), split.select(full, "validation")
        if same := shared_pictures(split, full):
            log.warning("%s: the same pictures are in classes of different parts of the split "
                        "(%s%s): the test part is not new to this model; remove the duplicates",
                        cfg.data, "; ".join(same[:3]), ", ..." if len(same) > 3 else "")
        if cfg.drawers is not None:
            ds = ds.select(drawers=cfg.drawers)
    else:
        if shares_alphabets(cfg.val_split, "test"):
            log.warning("val_split=%r holds test alphabets (Lake's): checkpoints chosen on them "
                        "make every test figure optimistic; 'validation' is held out for this",
                        cfg.val_split)
        ds = load_data(cfg.train_split, data_dir, cache, drawers=cfg.drawers, progress=progress)
        val = load_data(cfg.val_split, data_dir, cache, progress=progress)
    return ds, val, split


def fit_ways(ds: Dataset, ways: int, mode: str) -> int:
    """``ways``, or fewer when ``ds`` has fewer classes (in one alphabet, within-alphabet)."""
    most = max_ways(ds, mode)
    if most < ways:
        log.info("validation: %d-way tasks instead of %d (%s has at most %d classes %s)",
                 most, ways, ds.name, most, "in a group" if mode == "within-alphabet" else "")
    return min(ways, most)
