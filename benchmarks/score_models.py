"""Score trained models, each bare and with test-time views, on the benchmarks the model card
quotes, with 95 % intervals and paired differences against the first row.

Columns: the 3,000 saved 20-way within-alphabet tasks of the validation alphabets (the ones
every choice is made on; ``_common.SCORING_SEED``), the 3,000 published tasks of the test
alphabets (``docs/robustness/tasks``), Lake's 20 runs (400 trials), and the tutorial's own
setting: 3,000 20-way tasks drawn across the 20 evaluation alphabets. "vs first" is the paired
difference in points on the validation tasks (and, in its own column, on the test tasks) with
its 95 % interval (same tasks, so the interval is much narrower than the two accuracies'
intervals suggest). ``--precision fp32 bf16``
scores each model in both numerics (bf16: autocast, as ``oneshot evaluate --precision bf16``);
"seconds" is the wall-clock time of the row's four benchmarks.

    OMP_NUM_THREADS=1 python benchmarks/score_models.py src/oneshot/weights/default.pt \\
        runs/v2/model.pt --views none rot-scale --threads 1
"""

from __future__ import annotations

import math
import time

import numpy as np
from _common import (
    TEST_TASK_FILE,
    markdown_table,
    parser,
    set_threads,
    validation_tasks,
    write_json,
)

TUTORIAL_SEED = 2015  # the tutorial's setting: 20-way across the evaluation alphabets


def paired(a: np.ndarray, b: np.ndarray) -> str:
    """b - a in points with a 95 % normal interval on the paired per-task differences."""
    d = b.astype(float) - a.astype(float)
    se = d.std(ddof=1) / math.sqrt(len(d)) if len(d) > 1 else 0.0
    return f"{100 * d.mean():+.1f} [{100 * (d.mean() - 1.96 * se):+.1f}, " \
           f"{100 * (d.mean() + 1.96 * se):+.1f}]"


def benchmarks(args):
    """name -> (dataset images, TaskList) and Lake's runs."""
    from oneshot import load_lake_runs, load_split
    from oneshot.evaluation.runner import task_list_for
    from oneshot.sampling import TaskList

    val, vt, _ = validation_tasks(args.tasks, args.task_dir, args.data_dir, args.cache)
    test, ev = (load_split(s, args.data_dir, args.cache) for s in ("test", "evaluation"))
    et, _ = task_list_for(ev, 20, args.tasks, "unstructured", TUTORIAL_SEED, args.task_dir)
    sets = {"validation": (val.images, vt),
            "test": (test.images, TaskList.load(TEST_TASK_FILE, test)),
            "tutorial": (ev.images, et)}
    return sets, load_lake_runs(args.data_dir, args.cache)


def score(net, sets, lake_runs, amp: bool = False) -> tuple[dict, object]:
    """({benchmark: per-task correctness}, Lake's Accuracy); ``amp``: bf16 autocast."""
    from oneshot import EncoderScorer
    from oneshot.evaluation.lake import lake_benchmark
    from oneshot.evaluation.nway import score_tasks

    scorer = EncoderScorer(net, amp=amp)
    out = {name: score_tasks(scorer, images, tasks).correct for name, (images, tasks)
           in sets.items()}
    return out, lake_benchmark(scorer, lake_runs).accuracy


def main() -> None:
    from oneshot import Accuracy
    from oneshot.checkpoint import load_model
    from oneshot.models import with_views

    ap = parser(__doc__, "threads", "data", "json", threads=1)
    ap.add_argument("models", nargs="+", help="model files or run folders")
    ap.add_argument("--views", nargs="+", default=["none"], help="view sets to try per model")
    ap.add_argument("--precision", nargs="+", default=["fp32"], choices=["fp32", "bf16"],
                    help="numerics to score each model in")
    ap.add_argument("--tasks", type=int, default=3000)
    ap.add_argument("--task-dir", default="runs/tasks")
    args = ap.parse_args()
    set_threads(args.threads)
    sets, lake_runs = benchmarks(args)
    rows, results, first = [], {}, None
    for path in args.models:
        model, _ = load_model(path)
        for views, precision in [(v, p) for v in args.views for p in args.precision]:
            net = model if views == "none" else with_views(model, views)
            t = time.perf_counter()
            r, lake = score(net, sets, lake_runs, amp=precision == "bf16")
            seconds = time.perf_counter() - t
            first = r if first is None else first
            acc = {k: Accuracy(int(v.sum()), len(v)) for k, v in r.items()} | {"lake": lake}
            name = f"{path} ({views}{', bf16' if precision == 'bf16' else ''})"
            results[name] = {k: a.to_dict() for k, a in acc.items()} | {"seconds": seconds}
            rows.append([name, *(str(acc[k]) for k in ("validation", "test", "lake", "tutorial")),
                         paired(first["validation"], r["validation"]),
                         paired(first["test"], r["test"]), f"{seconds:.0f}"])
            print(rows[-1], flush=True)
    print(markdown_table(["model (views)", "validation 3,000", "test 3,000", "Lake 400",
                          "tutorial 20-way 3,000", "vs first (validation)", "vs first (test)",
                          "seconds"], rows))
    write_json(args.json, results)


if __name__ == "__main__":
    main()
