"""Episode classes chosen to be test-like or hard: the options of the ``episodes`` objective.

- ``rotation_pools``: with rotated characters as extra classes, an alphabet's pool mixes its
  characters in four orientations, so a 20-way training episode holds about five characters
  of each; the test's 20 characters all stand upright. Split each alphabet's pool by rotation,
  and every episode keeps one orientation, as a test task does.
- :class:`HardClasses`: a share of the episodes is built around an anchor class and classes
  the network currently embeds near it (from its own pool), found from one embedding per
  class, refreshed every ``refresh`` steps.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.dataset import Dataset
from ..errors import ConfigError
from ..sampling import EpisodeSampler

__all__ = ["rotation_pools", "HardClasses"]

EMBED_BATCH = 512


def rotation_of(name: str) -> int:
    """Quarter turns of a class named as ``Dataset.with_rotations`` names them ("...@rot90")."""
    head, sep, tail = name.rpartition("@rot")
    return int(tail) // 90 if sep and tail in ("90", "180", "270") else 0


def rotation_pools(ds: Dataset, pools: list[np.ndarray]) -> list[np.ndarray]:
    """Each pool of class indices split by the classes' rotation (empty parts dropped)."""
    turns = np.array([rotation_of(c) for c in ds.characters])
    return [p[turns[p] == k] for p in pools for k in range(4) if (turns[p] == k).any()]


class HardClasses:
    """Draws an episode's classes for ``sampler``: with probability ``share``, an anchor class
    of a random pool and ``ways - 1`` classes drawn from the ``2 (ways - 1)`` of its pool the
    network embeds nearest to it (squared L2 between one embedding per class, of the class's
    first image, refreshed every ``refresh`` steps); otherwise the sampler's uniform draw.

    The embeddings are recomputed at the first step after a resume, so a resumed run follows
    the same stream only when resumed at a refresh step."""

    def __init__(self, sampler: EpisodeSampler, share: float, refresh: int) -> None:
        if not 0 <= share <= 1:
            raise ConfigError(f"objective_args hard={share}; a share in [0, 1] expected")
        if refresh < 1:
            raise ConfigError(f"objective_args refresh={refresh}; at least 1 expected")
        self.sampler, self.share, self.refresh = sampler, share, refresh
        self.protos: torch.Tensor | None = None
        self.steps = 0

    def step(self, net: torch.nn.Module, images) -> None:
        """Call once per training step, before drawing: refreshes the class embeddings when
        due (``net`` in eval mode, without gradients; ``images(idx)`` gives model inputs)."""
        if self.share and self.steps % self.refresh == 0:
            cls = self.sampler.cls
            first = cls.at(np.arange(len(cls)), np.zeros(len(cls), dtype=np.int64))
            was = net.training
            net.eval()
            try:
                with torch.no_grad():
                    self.protos = torch.cat([net(images(first[i: i + EMBED_BATCH])).float().cpu()
                                             for i in range(0, len(first), EMBED_BATCH)])
            finally:
                net.train(was)
        self.steps += 1

    def characters(self) -> np.ndarray:
        s = self.sampler
        if self.protos is None or not self.share or s.rng.random() >= self.share:
            return s.characters()
        pool = s.pools[s.rng.integers(len(s.pools))]
        n = min(s.ways, len(pool))
        anchor = pool[s.rng.integers(len(pool))]
        others = pool[pool != anchor]
        d = (self.protos[others] - self.protos[anchor]).pow(2).sum(1).numpy()
        near = others[np.argsort(d, kind="stable")[: 2 * (n - 1)]]
        chosen = s.rng.choice(near, size=n - 1, replace=False)
        return s.rng.permutation(np.concatenate([[anchor], chosen]))
