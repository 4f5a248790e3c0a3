"""Baseline speed: random, nearest neighbour and modified Hausdorff over Lake's 400 trials and
over 400 20-way within-alphabet tasks of the evaluation alphabets (all 20).

Times the whole scoring (embedding cache + pair scores), medians of --reps runs, and prints the
accuracies alongside so the numbers can be checked (MHD on Lake: 61.25 %).

    python benchmarks/baseline_speed.py --reps 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from oneshot.data.lake import load_lake_runs
from oneshot.data.splits import load_split
from oneshot.evaluation.lake import lake_benchmark
from oneshot.evaluation.nway import evaluate_tasks
from oneshot.evaluation.runner import default_scorers
from oneshot.sampling import sample_tasks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    runs = load_lake_runs(args.data_dir)
    ev = load_split("evaluation", args.data_dir)
    tasks = sample_tasks(ev, 20, 400, "within-alphabet", seed=0)
    rows = []
    for sc in default_scorers(0):
        tl, tt = [], []
        for _ in range(args.reps):
            t = time.perf_counter()
            lake = lake_benchmark(sc, runs).accuracy
            tl.append(time.perf_counter() - t)
            t = time.perf_counter()
            acc = evaluate_tasks(sc, ev.images, tasks)
            tt.append(time.perf_counter() - t)
        rows.append({"scorer": sc.name, "lake_s": statistics.median(tl), "lake": str(lake),
                     "tasks_s": statistics.median(tt), "tasks": str(acc)})
    print("| scorer | Lake 400 trials (s) | Lake accuracy | 400 20-way tasks (s) | accuracy |")
    print("| --- | ---: | --- | ---: | --- |")
    for r in rows:
        print(f"| {r['scorer']} | {r['lake_s']:.2f} | {r['lake']} | {r['tasks_s']:.2f} | "
              f"{r['tasks']} |")
    print(f"\nmedians of {args.reps} runs; tasks: evaluation alphabets, within-alphabet, seed 0 "
          f"(SHA-256 {tasks.sha256[:16]})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
