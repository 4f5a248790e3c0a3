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
from dataclasses import dataclass, replace
from numbers import Integral
from pathlib import Path

from ..data.dataset import DataError, Dataset
from ..data.lake import load_lake_runs
from ..datasets import is_split_name, load_data
from ..errors import ConfigError
from ..sampling import TaskFileError, TaskList, max_ways, sample_tasks
from .baselines import ModifiedHausdorffScorer, NearestNeighbourScorer
from .lake import LakeResult, lake_benchmark
from .nway import evaluate_tasks
from .scorers import RandomScorer, Scorer

__all__ = ["EvalSettings", "FULL", "curve_for", "check_fits", "ways_that_fit", "default_scorers",
           "nway_scorers", "task_list_for", "evaluate", "evaluate_curve", "DEFAULT_WAYS"]

log = logging.getLogger(__name__)
DEFAULT_WAYS = tuple(range(1, 20, 2))


@dataclass(frozen=True)
class EvalSettings:
    """What to evaluate. The default is the quick job (about a minute on a 2-core CPU): Lake's
    benchmark and the N-way figure on the test alphabets; ``FULL`` adds the background
    alphabets, and ``mhd_nway`` scores modified Hausdorff on every N-way point too (by far the
    slowest scorer; it always runs on Lake's 400 trials). ``precision`` sets the numerics of
    the models ``report.evaluate_and_report`` loads (:func:`oneshot.embedding.resolve_precision`):
    "auto" is bf16 only for encoders measured to be as accurate in it, on bf16 hardware."""

    splits: tuple[str, ...] = ("test",)
    modes: tuple[str, ...] = ("within-alphabet", "unstructured")
    ways: tuple[int, ...] = DEFAULT_WAYS
    tasks: int = 400
    seed: int = 0
    lake: bool = True
    mhd_nway: bool = False
    precision: str = "auto"  # models' numerics: "auto", "fp32" or "bf16" (embedding.PRECISIONS)

    def __post_init__(self) -> None:  # refused now, not after Lake's benchmark has run
        for name, values in (("ways", self.ways), ("tasks", (self.tasks,))):
            if any(isinstance(v, bool) or not isinstance(v, Integral) or v < 1 for v in values):
                raise ConfigError(f"{name}={getattr(self, name)!r}; whole numbers of at least "
                                  "1 expected")


FULL = EvalSettings(splits=("test", "background"), mhd_nway=True)


def default_scorers(seed: int = 0) -> list[Scorer]:
    """The baselines: random, nearest neighbour (L2 on pixels), modified Hausdorff."""
    return [RandomScorer(seed), NearestNeighbourScorer(), ModifiedHausdorffScorer()]


def nway_scorers(scorers: list[Scorer], settings: EvalSettings) -> list[Scorer]:
    """The scorers of the N-way points: all, or, when Lake's runs already show modified
    Hausdorff and ``mhd_nway`` is off, all but it (by far the slowest scorer)."""
    return [s for s in scorers if settings.mhd_nway or not settings.lake
            or not isinstance(s, ModifiedHausdorffScorer)]


def task_list_for(ds, ways: int, n_tasks: int, mode: str, seed: int,
                  task_dir: str | os.PathLike) -> tuple[TaskList, Path]:
    """Load the saved task list for these settings (checked to be drawn with them, not only
    named so), or draw and save it; drawn again, with a warning, when the images of ``ds``
    changed since (a folder given to ``evaluate --data`` with images added: its old tasks
    index other images, and every later run into the same --out failed)."""
    path = Path(task_dir) / f"{ds.name}-{mode}-{ways}way-{n_tasks}-seed{seed}.npz"
    if path.exists():
        want = {"ways": ways, "tasks": n_tasks, "mode": mode, "seed": seed, "split": ds.name}
        try:  # the usual case reads the file once
            return TaskList.load(path, ds, expect=want), path
        except TaskFileError:
            old = TaskList.load(path, expect=want)  # unreadable or other settings: said here
            if (old.meta.get("digest"), old.meta.get("images")) == (ds.digest, len(ds)):
                raise  # the same images: what was wrong is not that they changed
        log.warning("%s: drawn from other images of %s than there are now (%s then, %d now, or "
                    "changed): drawing new tasks in its place", path, ds.name,
                    old.meta.get("images"), len(ds))
    tl = sample_tasks(ds, ways, n_tasks, mode, seed=seed)
    tl.save(path)
    return tl, path


def evaluate_curve(scorers: list[Scorer], ds, mode: str, settings: EvalSettings,
                   task_dir: str | os.PathLike, caches: dict | None = None,
                   label: str | None = None) -> list[dict]:
    """Rows of one N-way curve (one split, one mode): every scorer on the same saved tasks,
    a different seed per N so the points of a curve are independent samples. Each scorer
    embeds the split's images once (kept in ``caches``, by split and scorer, so the other mode
    reuses them), not once per point. ``label`` names the split in the rows (default: the
    dataset's name)."""
    caches = {} if caches is None else caches
    rows = []
    for ways in settings.ways:
        tl, path = task_list_for(ds, ways, settings.tasks, mode, settings.seed + ways, task_dir)
        for sc in scorers:
            key = (ds.name, ds.digest, id(sc))
            if key not in caches:
                caches[key] = sc.embed(ds.images)
            acc = evaluate_tasks(sc, ds.images, tl, caches[key])
            rows.append({"split": label or ds.name, "mode": mode, "ways": ways,
                         "scorer": sc.name, **acc.to_dict(), "task_file": path.name,
                         "task_sha256": tl.sha256})
            log.debug("%s %s %d-way %s: %s", ds.name, mode, ways, sc.name, acc)
    return rows


def ways_that_fit(ds: Dataset, mode: str, ways: tuple[int, ...]) -> tuple[int, ...]:
    """The values of N for which ``ds`` has enough classes (in one alphabet, within-alphabet)."""
    most = max_ways(ds, mode)
    fit = tuple(n for n in ways if n <= most)
    if most < 2:  # 1-way tasks alone: every scorer, random included, would score 100 %
        log.warning("%s %s: no N-way tasks (at most %d class%s %s; at least 2 are needed)",
                    ds.name, mode, most, "" if most == 1 else "es",
                    "in a group" if mode == "within-alphabet" else "")
        return ()
    if len(fit) < len(ways):
        log.info("%s %s: N = %s left out (at most %d classes)", ds.name, mode,
                 sorted(set(ways) - set(fit)), most)
    return fit


def check_fits(ds: Dataset, modes: tuple[str, ...], ways: tuple[int, ...]) -> None:
    """DataError unless ``ds`` has the classes (in one group, within-alphabet) for N-way tasks
    of some N >= 2 of ``ways`` in one of ``modes``: 1-way tasks alone score 100 % for every
    scorer, random too, and a report with no task would say nothing."""
    most = max(max_ways(ds, mode) for mode in modes)
    if not any(2 <= n <= most for n in ways):
        hint = f"; try --ways 2 to {most}" if most >= 2 else ""
        raise DataError(f"{ds.name}: no N-way task of N = {list(ways)} fits: N >= 2 is needed, "
                        f"and {' or '.join(modes)} tasks have {most} class"
                        f"{'' if most == 1 else 'es'} at most (in one group for "
                        f"within-alphabet){hint}")


def curve_for(scorers: list[Scorer], split: str, mode: str, settings: EvalSettings,
              task_dir: str | os.PathLike, data_dir=None, cache=None,
              datasets: dict[str, Dataset] | None = None, caches: dict | None = None
              ) -> list[dict]:
    """One curve of ``split`` (a split name, a folder, or a key of ``datasets``): all N for
    Omniglot's splits, the N that fit for a folder's classes."""
    ds = (datasets or {}).get(split) or load_data(split, data_dir, cache)
    ways = settings.ways if is_split_name(split) else ways_that_fit(ds, mode, settings.ways)
    return evaluate_curve(nway_scorers(scorers, settings), ds, mode,
                          replace(settings, ways=ways), task_dir, caches, label=split)


def evaluate(scorers: list[Scorer], settings: EvalSettings, task_dir: str | os.PathLike,
             data_dir=None, cache=None, progress: bool = False,
             datasets: dict[str, Dataset] | None = None
             ) -> tuple[list[dict], list[LakeResult]]:
    """Score every scorer on N-way tasks (rows) and, if ``settings.lake``, on Lake's runs
    (modified Hausdorff on N-way points only with ``settings.mhd_nway``). ``datasets``:
    {split: Dataset} to use instead of loading those splits."""
    rows: list[dict] = []
    for ds in (datasets or {}).values():
        check_fits(ds, settings.modes, settings.ways)
    for split in settings.splits:
        caches: dict = {}
        for mode in settings.modes:
            rows += curve_for(scorers, split, mode, settings, task_dir, data_dir, cache,
                              datasets, caches)
    lake = []
    if settings.lake:
        runs = load_lake_runs(data_dir, cache)
        lake = [lake_benchmark(sc, runs) for sc in scorers]
    return rows, lake
