"""Build the shipped model from trained runs and record what it scores.

Ensembles the runs' best checkpoints (one run: just that model) into one model file, scores it
on Lake's 20 runs (400 trials, the headline test) and on a saved list of 20-way within-alphabet
tasks of the validation alphabets, and writes the file (float16 weights, a few hundred kB) with a
record of the members, their training minutes and commands, and those scores. The shipped-model
test checks the record and the model card against a fresh Lake evaluation.

    python benchmarks/ship_model.py runs/fast runs/fast-s1 --out src/oneshot/weights/default.pt
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from oneshot.checkpoint import export_model, load_model
from oneshot.data.lake import load_lake_runs
from oneshot.data.splits import load_split
from oneshot.evaluation.lake import lake_benchmark
from oneshot.evaluation.nway import evaluate_tasks
from oneshot.evaluation.runner import task_list_for
from oneshot.evaluation.scorers import EncoderScorer
from oneshot.models import ensemble


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--out", required=True)
    ap.add_argument("--val-tasks", type=int, default=3000)
    ap.add_argument("--task-dir", default="runs/tasks")
    args = ap.parse_args()
    members, info = [], []
    for run in args.runs:
        model, rec = load_model(run / "best.pt")
        _, last = load_model(run / "last.pt")
        cfg = json.loads((run / "config.json").read_text())
        members.append(model)
        info.append({"run": run.name, "best_step": rec["step"], "best_val": rec["best"],
                     "steps": last["step"],
                     "train_minutes": round(last["metrics"]["train_seconds"] / 60, 2),
                     "seed": cfg["config"]["seed"], "command": " ".join(cfg["command"]),
                     "git_revision": cfg["git_revision"]})
    net = ensemble(members) if len(members) > 1 else members[0]
    # score exactly what ships: the float16 weights, loaded back as float32
    export_model(net, args.out, {}, half=True)
    net, _ = load_model(args.out)
    scorer = EncoderScorer(net)
    lake = lake_benchmark(scorer, load_lake_runs())
    val = load_split("validation")
    tl, path = task_list_for(val, 20, args.val_tasks, "within-alphabet", 12345, args.task_dir)
    val_acc = evaluate_tasks(scorer, val.images, tl)
    record = {"members": info, "lake": lake.to_dict(),
              "validation": {**val_acc.to_dict(), "task_file": path.name,
                             "task_sha256": tl.sha256},
              "torch": torch.__version__}
    export_model(net, args.out, record, half=True)
    print(json.dumps(record, indent=2))
    print(f"Lake: {lake.accuracy}; validation: {val_acc}; "
          f"{Path(args.out).stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
