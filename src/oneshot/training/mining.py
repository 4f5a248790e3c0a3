"""Episode classes chosen to be test-like or hard: the options of the ``episodes`` objective.

- ``rotation_pools``: with rotated characters as extra classes, an alphabet's pool mixes its
  characters in four orientations, so a 20-way training episode holds about five characters
  of each; the test's 20 characters all stand upright. Split each alphabet's pool by rotation
  (and by mirroring, with ``flips``), and every episode keeps one orientation, as a test task
  does.
- :class:`HardClasses`: a share of the episodes is built around an anchor class and classes
  the network currently finds alike to it (from its own pool), found from one embedding per
  class, refreshed every ``refresh`` steps.

An alphabet with fewer characters than ``ways`` gives smaller episodes (as without these
options); with ``same_rotation`` its pools are a quarter the size, so that happens more often.
"""

from __future__ import annotations

import numpy as np
import torch

from ..data.dataset import Dataset
from ..errors import ConfigError
from ..sampling import EpisodeSampler

__all__ = ["rotation_of", "orientation_of", "rotation_pools", "HardClasses"]

EMBED_BATCH = 512


TURNS = {"rot90": 1, "rot180": 2, "rot270": 3}


def rotation_of(name: str) -> int:
    """Quarter turns of a class named as ``Dataset.with_rotations`` names them ("...@rot90",
    also after "@flip", in either order)."""
    return sum(TURNS.get(tag, 0) for tag in name.split("@")[1:]) % 4


def orientation_of(name: str) -> tuple[bool, int]:
    """(mirrored, quarter turns) of a class named by ``Dataset.with_flips`` / ``with_rotations``."""
    return "flip" in name.split("@")[1:], rotation_of(name)


def rotation_pools(ds: Dataset, pools: list[np.ndarray]) -> list[np.ndarray]:
    """Each pool of class indices split by the classes' orientation: rotation, and mirrored or
    not (empty parts dropped)."""
    key = np.array([int(f) * 4 + t for f, t in map(orientation_of, ds.characters)])
    return [p[key[p] == k] for p in pools for k in range(8) if (key[p] == k).any()]


class HardClasses:
    """Draws an episode's classes for ``sampler``: with probability ``share``, an anchor class
    of a random pool and ``ways - 1`` classes drawn from the ``2 (ways - 1)`` of its pool that
    the network's head scores most alike to it, on one embedding per class (its first image,
    undistorted), refreshed at every ``refresh``-th step (and saved in checkpoints, so a
    resumed run draws what an uninterrupted one draws); otherwise the sampler's uniform draw.
    With several processes, rank 0's embeddings are broadcast, so every rank draws alike."""

    def __init__(self, sampler: EpisodeSampler, share: float, refresh: int) -> None:
        if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share <= 1:
            raise ConfigError(f"objective_args hard={share!r}; a share in [0, 1] expected")
        if isinstance(refresh, bool) or not isinstance(refresh, int) or refresh < 1:
            raise ConfigError(f"objective_args refresh={refresh!r}; a whole number of steps "
                              ">= 1 expected")
        self.sampler, self.share, self.refresh = sampler, float(share), refresh
        self.protos: torch.Tensor | None = None
        self.head: torch.nn.Module | None = None
        self.device = torch.device("cpu")

    def state_dict(self) -> dict:
        return {} if self.protos is None else {"hard_protos": self.protos.cpu()}

    def load_state_dict(self, state: dict) -> None:
        self.protos = state.get("hard_protos")

    def step(self, ctx) -> None:
        """Call at each training step (a ``StepContext``), before drawing: refreshes the class
        embeddings when due (the network in eval mode, without gradients)."""
        if not self.share:
            return
        self.head, self.device = ctx.head, ctx.device
        if self.protos is not None and ctx.step % self.refresh:
            return
        cls, net = self.sampler.cls, ctx.net
        first = cls.at(np.arange(len(cls)), np.zeros(len(cls), dtype=np.int64))
        was = net.training
        net.eval()
        try:
            with torch.no_grad():
                protos = torch.cat([net(ctx.images(first[i: i + EMBED_BATCH], distort=False))
                                    .float() for i in range(0, len(first), EMBED_BATCH)])
        finally:
            net.train(was)
        if ctx.world > 1 and torch.distributed.is_initialized():
            torch.distributed.broadcast(protos, 0)
        self.protos = protos

    def characters(self) -> np.ndarray:
        s = self.sampler
        if self.protos is None or not self.share or s.rng.random() >= self.share:
            return s.characters()
        pool = s.pools[s.rng.integers(len(s.pools))]
        n = min(s.ways, len(pool))
        anchor = pool[s.rng.integers(len(pool))]
        others = pool[pool != anchor]
        protos = self.protos.to(self.device)
        with torch.no_grad():
            alike = self.head(protos[int(anchor)][None], protos[torch.from_numpy(others)])
        alike = alike.float().cpu().numpy()
        near = others[np.argsort(-alike, kind="stable")[: 2 * (n - 1)]]
        chosen = s.rng.choice(near, size=n - 1, replace=False)
        return s.rng.permutation(np.concatenate([[anchor], chosen]))
