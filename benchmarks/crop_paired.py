"""crop=False against crop=True on clean images, paired: the same model (default: the shipped
one) on Lake's 400 trials and the 3,000 saved test tasks, through ``preprocess`` with each crop;
the trials only one setting gets right and an exact two-sided McNemar test on them.

    OMP_NUM_THREADS=1 ONESHOT_DATA=... python benchmarks/crop_paired.py [--model M]
"""

from __future__ import annotations

import math
import sys

import numpy as np
from _common import TEST_TASK_FILE, parser, set_threads, write_json

from oneshot.checkpoint import load_model
from oneshot.data.lake import load_lake_runs
from oneshot.data.splits import load_split
from oneshot.evaluation.nway import TaskScores
from oneshot.evaluation.robustness import RobustnessScorer, lake_trials, task_trials
from oneshot.evaluation.scorers import score_pairs
from oneshot.sampling import TaskList


def correct(scorer: RobustnessScorer, tr) -> np.ndarray:
    """bool (T,): each trial answered right."""
    cache = scorer.embed(tr.images)
    T, N = tr.support.shape
    s = score_pairs(scorer, cache, np.repeat(tr.query, N), tr.support.ravel()).reshape(T, N)
    return TaskScores(s, tr.answer).correct


def mcnemar_p(b: int, c: int) -> float:
    """Exact two-sided McNemar p-value for b and c discordant pairs."""
    n = b + c
    if n == 0:
        return 1.0
    return min(1.0, 2 * sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2 ** n)


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "data", "json", "threads", threads=1)
    p.add_argument("--model", help="model file, checkpoint or run folder (default: shipped)")
    args = p.parse_args(argv)
    set_threads(args.threads)
    model, _ = load_model(args.model)
    ds = load_split("test", args.data_dir, args.cache)
    trials = [lake_trials(load_lake_runs(args.data_dir, args.cache)),
              task_trials(ds, TaskList.load(TEST_TASK_FILE, ds), "3,000 tasks")]
    out = []
    print("| trials | crop=False | crop=True | only crop=False right | only crop=True right "
          "| McNemar p |\n| --- | ---: | ---: | ---: | ---: | ---: |")
    for tr in trials:
        a, b = (correct(RobustnessScorer(model, crop=c), tr) for c in (False, True))
        row = {"trials": tr.name, "n": len(a), "no_crop": int(a.sum()), "crop": int(b.sum()),
               "only_no_crop": int((a & ~b).sum()), "only_crop": int((~a & b).sum())}
        row["p"] = mcnemar_p(row["only_no_crop"], row["only_crop"])
        out.append(row)
        print(f"| {tr.name} (n={row['n']}) | {row['no_crop']} | {row['crop']} | "
              f"{row['only_no_crop']} | {row['only_crop']} | {row['p']:.4f} |")
    write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
