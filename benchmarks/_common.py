"""What the benchmark scripts share: timing, medians, Markdown tables, the common options, and
the scoring of a trained model on the validation tasks and Lake's runs. Not a script.

Imports only the standard library at load time: ``keras_peer.py`` uses the timing helpers from
its own virtualenv, without torch or oneshot (those are imported inside the functions that need
them).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# The saved validation tasks that trained models are scored on (ablation.py, ship_model.py):
# 20-way within-alphabet tasks of the validation alphabets, drawn from this seed. Not a run's
# seed + oneshot.training.loop.VAL_SEED_OFFSET: those are the tasks training selects on.
SCORING_SEED = 12345
SCORING_WAYS = 20
SCORING_MODE = "within-alphabet"
# The 3,000 published 20-way within-alphabet tasks of the test alphabets (docs/robustness.md)
TEST_TASK_FILE = (Path(__file__).resolve().parents[1] / "docs" / "robustness" / "tasks"
                  / "test-within-alphabet-20way-3000-seed1300.npz")


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    """(wall-clock seconds, result) of one call of ``fn``."""
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def repeat(fn: Callable[[], T], reps: int) -> tuple[float, T]:
    """(median seconds, last result) of ``reps`` calls of ``fn``."""
    seconds, result = [], None
    for _ in range(reps):
        s, result = timed(fn)
        seconds.append(s)
    return statistics.median(seconds), result


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def alternate(items: Sequence[T], rep: int) -> list[T]:
    """``items`` in order in even repetitions, reversed in odd ones: measured back to back this
    way, slow drifts of the machine's load cancel out of the comparison."""
    return list(items) if rep % 2 == 0 else list(reversed(items))


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]],
                   align: str | None = None) -> str:
    """A Markdown table; ``align`` has one letter per column, "l" or "r" (default: the first
    column left, the others right)."""
    align = align or "l" + "r" * (len(headers) - 1)
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join(" --- " if a == "l" else " ---: " for a in align) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def at_least(low: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``low``."""
    def parse(text: str) -> int:
        try:
            n = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r}: a whole number expected") from None
        if n < low:
            raise argparse.ArgumentTypeError(f"{n}: at least {low} expected")
        return n
    return parse


def parser(doc: str, *options: str, reps: int = 3, threads: int = 0) -> argparse.ArgumentParser:
    """An ArgumentParser described by the first paragraph of ``doc``, with shared ``options``:
    "reps" (``--reps``, default ``reps``), "threads" (``--threads``: torch threads, 0 = torch's
    default), "data" (``--data-dir``, ``--cache``: as ``oneshot``'s, default $ONESHOT_DATA and
    $ONESHOT_CACHE), "json" (``--json PATH``)."""
    p = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    if "reps" in options:
        p.add_argument("--reps", type=at_least(1), default=reps,
                       help=f"repetitions (default {reps})")
    if "threads" in options:
        p.add_argument("--threads", type=at_least(0), default=threads,
                       help=f"torch threads, 0: torch's default (default {threads})")
    if "data" in options:
        p.add_argument("--data-dir", help="Omniglot zips and all_runs.zip (default: "
                       "$ONESHOT_DATA, then the cache, then a download)")
        p.add_argument("--cache", help="decoded cache (default: $ONESHOT_CACHE)")
    if "json" in options:
        p.add_argument("--json", metavar="PATH", help="also write the results as JSON here")
    return p


def set_threads(threads: int) -> None:
    """torch's intra-op threads (0: leave torch's default); call from a script's ``main``."""
    import torch

    if threads:
        torch.set_num_threads(threads)


def write_json(path: str | None, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path``, if one is given."""
    if path:
        from oneshot.io import atomic_write_bytes  # not at load time: keras_peer.py has no oneshot

        if Path(path).is_dir():
            raise SystemExit(f"error: --json {path}: is a folder; a file name expected")
        atomic_write_bytes(path, json.dumps(obj, indent=2, default=float).encode())


def ci(acc: dict) -> str:
    """"83.7 [82.3, 84.9]" from an ``Accuracy.to_dict()``."""
    return f"{acc['accuracy']:.1f} [{acc['ci95_low']:.1f}, {acc['ci95_high']:.1f}]"


def validation_tasks(n: int, task_dir: str | Path, data_dir=None, cache=None):
    """(validation split, its saved scoring TaskList of ``n`` tasks, the file): the tasks every
    trained model is scored on (drawn once with ``SCORING_SEED``, then loaded)."""
    from oneshot import load_split
    from oneshot.evaluation.runner import task_list_for

    val = load_split("validation", data_dir, cache)
    return val, *task_list_for(val, SCORING_WAYS, n, SCORING_MODE, SCORING_SEED, task_dir)


def score_model(model, val_tasks: int, task_dir: str | Path, data_dir=None,
                cache=None) -> dict:
    """A trained model (a SiameseNet) on the saved validation tasks (``val_tasks`` tasks,
    ``SCORING_WAYS``-way ``SCORING_MODE``, seed ``SCORING_SEED``, drawn once and saved in
    ``task_dir``) and on Lake's 20 runs: {"validation": accuracy + task file and hash,
    "lake": ``LakeResult.to_dict()``}. Belongs in the library (oneshot.evaluation)."""
    from oneshot import EncoderScorer, load_lake_runs
    from oneshot.evaluation.lake import lake_benchmark
    from oneshot.evaluation.nway import evaluate_tasks

    val, tasks, path = validation_tasks(val_tasks, task_dir, data_dir, cache)
    scorer = EncoderScorer(model)
    acc = evaluate_tasks(scorer, val.images, tasks)
    lake = lake_benchmark(scorer, load_lake_runs(data_dir, cache))
    return {"validation": {**acc.to_dict(), "task_file": path.name,
                           "task_sha256": tasks.sha256},
            "lake": lake.to_dict()}
