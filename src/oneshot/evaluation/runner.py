"""The tutorial's figure and Lake's benchmark for baselines and, when given, a trained model.

``evaluate`` draws (or reloads) one saved task list per (split, mode, N), scores every scorer on
the very same tasks, and returns rows ready for the report: accuracy with a 95 % CI, task count,
task-file name and hash. A split may be an Omniglot split name, a folder of classes, or the name
of a Dataset passed in ``datasets`` (a folder's test part); on a folder, values of N larger than
its classes allow are left out (logged).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ..data.dataset import Dataset
from ..data.lake import load_lake_runs
from ..datasets import is_split_name, load_data
from ..sampling import TaskList, max_ways, sample_tasks
from .baselines import ModifiedHausdorffScorer, NearestNeighbourScorer
from .lake import LakeResult, lake_benchmark
from .nway import evaluate_tasks
from .scorers import RandomScorer, Scorer

__all__ = ["EvalSettings", "default_scorers", "task_list_for", "evaluate", "DEFAULT_WAYS"]

log = logging.getLogger(__name__)
DEFAULT_WAYS = tuple(range(1, 20, 2))


@dataclass(frozen=True)
class EvalSettings:
    splits: tuple[str, ...] = ("test", "background")
    modes: tuple[str, ...] = ("within-alphabet", "unstructured")
    ways: tuple[int, ...] = DEFAULT_WAYS
    tasks: int = 400
    seed: int = 0
    lake: bool = True


def default_scorers(seed: int = 0) -> list[Scorer]:
    """The baselines: random, nearest neighbour (L2 on pixels), modified Hausdorff."""
    return [RandomScorer(seed), NearestNeighbourScorer(), ModifiedHausdorffScorer()]


def task_list_for(ds, ways: int, n_tasks: int, mode: str, seed: int,
                  task_dir: str | os.PathLike) -> tuple[TaskList, Path]:
    """Load the saved task list for these settings, or draw and save it."""
    path = Path(task_dir) / f"{ds.name}-{mode}-{ways}way-{n_tasks}-seed{seed}.npz"
    if path.exists():
        return TaskList.load(path, ds), path
    tl = sample_tasks(ds, ways, n_tasks, mode, seed=seed)
    tl.save(path)
    return tl, path


def ways_that_fit(ds: Dataset, mode: str, ways: tuple[int, ...]) -> tuple[int, ...]:
    """The values of N for which ``ds`` has enough classes (in one alphabet, within-alphabet)."""
    most = max_ways(ds, mode)
    fit = tuple(n for n in ways if n <= most)
    if len(fit) < len(ways):
        log.info("%s %s: N = %s left out (at most %d classes)", ds.name, mode,
                 sorted(set(ways) - set(fit)), most)
    return fit


def evaluate(scorers: list[Scorer], settings: EvalSettings, task_dir: str | os.PathLike,
             data_dir=None, cache=None, progress: bool = False,
             datasets: dict[str, Dataset] | None = None
             ) -> tuple[list[dict], list[LakeResult]]:
    """Score every scorer on N-way tasks (rows) and, if ``settings.lake``, on Lake's runs.
    ``datasets``: {split: Dataset} to use instead of loading those splits."""
    rows: list[dict] = []
    loaded = dict(datasets or {})
    for split in settings.splits:
        if split not in loaded:
            loaded[split] = load_data(split, data_dir, cache)
    combos = [(s, m, n) for s in settings.splits for m in settings.modes
              for n in (settings.ways if is_split_name(s)
                        else ways_that_fit(loaded[s], m, settings.ways))]
    it = combos
    if progress:
        from tqdm import tqdm

        it = tqdm(combos, desc="evaluate", unit="point")
    for split, mode, ways in it:
        ds = loaded[split]
        # a different seed per N, so the points of one curve are independent samples
        tl, path = task_list_for(ds, ways, settings.tasks, mode, settings.seed + ways, task_dir)
        sha = tl.sha256
        for sc in scorers:
            acc = evaluate_tasks(sc, ds.images, tl)
            rows.append({"split": split, "mode": mode, "ways": ways, "scorer": sc.name,
                         **acc.to_dict(), "task_file": path.name, "task_sha256": sha})
            log.info("%s %s %d-way %s: %s", split, mode, ways, sc.name, acc)
    lake = []
    if settings.lake:
        runs = load_lake_runs(data_dir)
        lake = [lake_benchmark(sc, runs) for sc in scorers]
    return rows, lake
