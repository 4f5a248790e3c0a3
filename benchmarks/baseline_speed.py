"""Baseline speed: random, nearest neighbour and modified Hausdorff over Lake's 400 trials and
over 400 20-way within-alphabet tasks of the evaluation alphabets (all 20).

Times the whole scoring (embedding cache + pair scores), medians of --reps runs, and prints the
accuracies alongside so the numbers can be checked (MHD on Lake: 61.25 %).

    python benchmarks/baseline_speed.py --reps 3
"""

from __future__ import annotations

from _common import markdown_table, parser, repeat, set_threads, write_json

from oneshot.data.lake import load_lake_runs
from oneshot.data.splits import load_split
from oneshot.evaluation.lake import lake_benchmark
from oneshot.evaluation.nway import evaluate_tasks
from oneshot.evaluation.runner import default_scorers
from oneshot.sampling import sample_tasks

WAYS, TASKS, MODE, TASK_SEED = 20, 400, "within-alphabet", 0


def main() -> None:
    ap = parser(__doc__, "reps", "threads", "data", "json")
    args = ap.parse_args()
    set_threads(args.threads)
    runs = load_lake_runs(args.data_dir, args.cache)
    ev = load_split("evaluation", args.data_dir, args.cache)
    tasks = sample_tasks(ev, WAYS, TASKS, MODE, seed=TASK_SEED)
    rows = []
    for sc in default_scorers(TASK_SEED):
        lake_s, lake = repeat(lambda sc=sc: lake_benchmark(sc, runs).accuracy, args.reps)
        tasks_s, acc = repeat(lambda sc=sc: evaluate_tasks(sc, ev.images, tasks), args.reps)
        rows.append({"scorer": sc.name, "lake_s": lake_s, "lake": str(lake),
                     "tasks_s": tasks_s, "tasks": str(acc)})
    print(markdown_table(
        ["scorer", "Lake 400 trials (s)", "Lake accuracy", f"{TASKS} {WAYS}-way tasks (s)",
         "accuracy"],
        [[r["scorer"], f"{r['lake_s']:.2f}", r["lake"], f"{r['tasks_s']:.2f}", r["tasks"]]
         for r in rows], align="lrlrl"))
    print(f"\nmedians of {args.reps} runs; tasks: evaluation alphabets, {MODE}, seed {TASK_SEED} "
          f"(SHA-256 {tasks.sha256[:16]})")
    write_json(args.json, rows)


if __name__ == "__main__":
    main()
