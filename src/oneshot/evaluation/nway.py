"""N-way one-shot evaluation of a scorer on a saved task list, through an embedding cache."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..sampling import TaskList
from .metrics import Accuracy
from .scorers import Scorer, score_pairs

__all__ = ["TaskScores", "score_tasks", "predict_positions", "evaluate_tasks"]


@dataclass(frozen=True)
class TaskScores:
    """scores: float32 (T, N) similarity of each task's query to each candidate."""

    scores: torch.Tensor
    answer: np.ndarray

    @property
    def correct(self) -> np.ndarray:
        return predict_positions(self.scores) == self.answer

    @property
    def accuracy(self) -> Accuracy:
        return Accuracy(int(self.correct.sum()), len(self.answer))


def predict_positions(scores: torch.Tensor) -> np.ndarray:
    """Index of the highest score per row; a tie goes to the first such candidate.

    Candidates are in random order (the task sampler shuffles them), so ties give the true match
    no advantage: a constant scorer gets 1/N.
    """
    s = scores.float()
    best = s.max(dim=1, keepdim=True).values
    return (s == best).float().argmax(dim=1).numpy()


def score_tasks(scorer: Scorer, images: np.ndarray, tasks: TaskList, cache: Any = None
                ) -> TaskScores:
    """Embed each distinct image of ``tasks`` once, then score every (query, candidate) pair.

    images: (M, H, W) of the dataset the tasks index into, ink = 1.
    cache: optionally ``scorer.embed(images)`` for all of ``images``, made once and shared by
    several task lists (every N and mode of a split): nothing is embedded here then.
    """
    T, N = tasks.support.shape
    if cache is None:
        used, inverse = np.unique(np.concatenate([tasks.query, tasks.support.ravel()]),
                                  return_inverse=True)
        cache = scorer.embed(images[used])
        q, c = np.repeat(inverse[:T], N), inverse[T:]
    else:
        q, c = np.repeat(tasks.query, N), tasks.support.ravel()
    scores = score_pairs(scorer, cache, q, c).reshape(T, N)
    return TaskScores(scores, tasks.answer)


def evaluate_tasks(scorer: Scorer, images: np.ndarray, tasks: TaskList,
                   cache: Any = None) -> Accuracy:
    """Accuracy of ``scorer`` on ``tasks`` (see :func:`score_tasks`)."""
    return score_tasks(scorer, images, tasks, cache).accuracy
