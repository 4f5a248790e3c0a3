"""Training objectives: what one optimisation step computes, as a registry.

An objective is created once per run by ``factory(cfg, dataset, rng, **cfg.objective_args)``
and then asked for ``loss(ctx)`` at every step. It draws its own batch with ``rng`` (a seeded
``numpy.random.Generator`` whose state the checkpoint saves, so resume is exact), fetches images
through ``ctx.images`` (distorted as the config says, this rank's share only) and runs the
network through ``ctx.net`` (DDP-wrapped when distributed; ``net(x)`` gives embeddings,
``net(x1, x2)`` pair logits) and ``ctx.head``.

Built in: ``pairs`` (binary cross-entropy on same/different pairs, Koch et al. 2015 and the
tutorial) and ``episodes`` (N-way episodes: cross-entropy of each query over the support set).
Add one with ``@register_objective("name")`` from anywhere, then ``--set objective=name``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..errors import ConfigError, ModelError
from ..registry import Registry
from ..sampling import EpisodeSampler, PairSampler
from .mining import HardClasses, rotation_pools

if TYPE_CHECKING:
    from ..data.dataset import Dataset
    from .config import TrainConfig

__all__ = ["Objective", "StepContext", "PairsObjective", "EpisodesObjective",
           "register_objective", "list_objectives", "create_objective", "batch_field",
           "checked_loss"]


@dataclass(frozen=True)
class StepContext:
    """What an objective may use in one step.

    images(idx, mine): float (len(idx[mine]), 1, S, S) on ``device`` for dataset positions
    ``idx`` (the global batch; distortions are drawn for all of it so every rank follows one
    stream) of which this rank keeps ``mine`` (a slice or boolean mask); ``distort=False``
    gives them undistorted. ``step``: the optimisation steps done before this one.
    """

    net: nn.Module
    head: nn.Module
    images: Callable[..., torch.Tensor]
    device: torch.device
    rank: int = 0
    world: int = 1
    step: int = 0


class Objective(Protocol):
    """``batch_field``: the config field holding the global batch, split between processes."""

    batch_field: str

    def loss(self, ctx: StepContext) -> tuple[torch.Tensor, int]:
        """This rank's mean loss (a scalar tensor with a graph) and the number of image pairs
        the global step scored (for pairs/s)."""
        ...


class PairsObjective:
    """``batch`` pairs, half same-character; binary cross-entropy on the pair logits."""

    batch_field = "batch"

    def __init__(self, cfg: TrainConfig, dataset: Dataset, rng: np.random.Generator) -> None:
        if cfg.batch < 2:
            raise ConfigError(f"config batch={cfg.batch}; pairs need at least 2 "
                              "(one positive, one negative)")
        self.batch = cfg.batch
        self.sampler = PairSampler(dataset, cfg.same_alphabet, cfg.balance, seed=rng)

    def loss(self, ctx: StepContext) -> tuple[torch.Tensor, int]:
        a, b, t = self.sampler.sample(self.batch)
        mine = slice(ctx.rank, None, ctx.world)
        logits = ctx.net(ctx.images(a, mine), ctx.images(b, mine))
        target = torch.from_numpy(t[mine]).to(ctx.device)
        return F.binary_cross_entropy_with_logits(logits.float(), target), len(t)


class EpisodesObjective:
    """``episodes_per_step`` N-way episodes (``ways`` characters of one alphabet, one support
    and ``queries`` query images each): cross-entropy of each query over the support set, plus
    ``bce_weight`` x the pairwise binary cross-entropy of the same logits (positives weighted
    N - 1), which keeps sigmoid(logit) a calibrated probability of "same class".

    ``objective_args`` (:mod:`oneshot.training.mining`): ``same_rotation`` keeps each episode
    in one orientation (with ``rotations``); ``hard`` is the share of episodes built from
    classes the network embeds near each other, refreshed every ``refresh`` steps;
    ``label_smoothing`` (in [0, 1)) softens the cross-entropy's target, a regulariser."""

    batch_field = "episodes_per_step"

    def __init__(self, cfg: TrainConfig, dataset: Dataset, rng: np.random.Generator,
                 same_rotation: bool = False, hard: float = 0.0, refresh: int = 1000,
                 label_smoothing: float = 0.0) -> None:
        if (isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float))
                or not 0 <= label_smoothing < 1):
            raise ConfigError(f"objective_args label_smoothing={label_smoothing!r}; a number "
                              "in [0, 1) expected")
        self.label_smoothing = float(label_smoothing)
        self.episodes = cfg.episodes_per_step
        self.bce_weight = cfg.bce_weight
        self.sampler = EpisodeSampler(dataset, cfg.ways, 1, cfg.queries, seed=rng)
        if not isinstance(same_rotation, bool):
            raise ConfigError(f"objective_args same_rotation={same_rotation!r}; true or false "
                              "expected")
        if same_rotation:
            if not cfg.rotations:
                raise ConfigError("objective_args same_rotation=true needs rotations=true "
                                  "(rotated characters as extra classes)")
            self.sampler.pools = rotation_pools(dataset, self.sampler.pools)
        self.hard = HardClasses(self.sampler, hard, refresh)

    def state_dict(self) -> dict:
        """What a checkpoint must keep beyond the random streams (for an exact resume)."""
        return self.hard.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.hard.load_state_dict(state)

    def loss(self, ctx: StepContext) -> tuple[torch.Tensor, int]:
        self.hard.step(ctx)
        drawn = [self.sampler.episode(self.hard.characters()) for _ in range(self.episodes)]
        sizes = [s.size + len(q) for s, q, _ in drawn]
        owner = np.repeat(np.arange(len(drawn)) % ctx.world, sizes)
        idx = np.concatenate([np.concatenate([s.ravel(), q]) for s, q, _ in drawn])
        emb = ctx.net(ctx.images(idx, owner == ctx.rank)).float()
        loss, pos, pairs = 0.0, 0, 0
        mine = drawn[ctx.rank::ctx.world]
        for s, q, y in mine:
            n = len(s)
            se, qe = emb[pos: pos + n], emb[pos + n: pos + n + len(q)]
            pos += n + len(q)
            logits = ctx.head(qe[:, None, :], se[None, :, :])
            loss = loss + self._episode_loss(logits, torch.from_numpy(y).to(ctx.device))
            pairs += logits.numel() * ctx.world
        return loss / len(mine), pairs

    def _episode_loss(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """logits (Q, N) of queries against the support set; target (Q,) positions."""
        loss = F.cross_entropy(logits, target, label_smoothing=self.label_smoothing)
        if self.bce_weight:
            n = logits.shape[1]
            onehot = F.one_hot(target, n).float()
            loss = loss + self.bce_weight * F.binary_cross_entropy_with_logits(
                logits, onehot, pos_weight=torch.tensor(float(n - 1), device=logits.device))
        return loss


_OBJECTIVES = Registry("objective")


def register_objective(name: str, factory=None, *, replace: bool = False):
    """Make ``objective=name`` build ``factory(cfg, dataset, rng, **cfg.objective_args)``, an
    :class:`Objective`. Usable as a decorator; taken names need ``replace=True``."""
    return _OBJECTIVES.register(name, factory, replace=replace)


def list_objectives() -> list[str]:
    """Names of the registered objectives, sorted."""
    return _OBJECTIVES.names()


def batch_field(cfg: TrainConfig) -> str:
    """The config field that holds the objective's global batch (read from its factory's
    ``batch_field``, so the batch can be checked before the objective is built)."""
    field = getattr(_OBJECTIVES.get(cfg.objective), "batch_field", None)
    if not isinstance(field, str) or not hasattr(cfg, field):
        raise ConfigError(f"objective {cfg.objective!r} names no config field as its global "
                          f"batch (batch_field={field!r})")
    return field


def checked_loss(result, name: str) -> tuple[torch.Tensor, int]:
    """An objective's ``loss(ctx)`` result, or ModelError naming the objective: a scalar
    floating-point tensor with a graph to the model, and a whole number of pairs (a plugin's
    mistake here was a deep torch traceback)."""
    if not (isinstance(result, tuple) and len(result) == 2):
        got = type(result).__name__
    else:
        loss, pairs = result
        if (isinstance(loss, torch.Tensor) and loss.numel() == 1 and loss.is_floating_point()
                and loss.requires_grad and isinstance(pairs, int)
                and not isinstance(pairs, bool)):
            return loss, pairs
        what = (f"a {loss.dtype} tensor of shape {tuple(loss.shape)}"
                f"{'' if loss.requires_grad else ' with no graph'}"
                if isinstance(loss, torch.Tensor) else f"a {type(loss).__name__}")
        got = f"({what}, pairs of type {type(pairs).__name__})"
    raise ModelError(f"objective {name!r}: loss(ctx) returned {got}; (a scalar tensor computed "
                     "from the model, the number of pairs it scored: an int) expected")


def create_objective(cfg: TrainConfig, dataset: Dataset,
                     rng: np.random.Generator) -> Objective:
    """The config's objective for a training ``dataset``, drawing with ``rng``."""
    batch_field(cfg)
    return _OBJECTIVES.create(cfg.objective, cfg, dataset, rng, **cfg.objective_args)


register_objective("pairs", PairsObjective)
register_objective("episodes", EpisodesObjective)
