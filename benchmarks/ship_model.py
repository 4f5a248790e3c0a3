"""Build the shipped model from trained runs and record what it scores.

Ensembles the runs' best checkpoints (one run: just that model) into one model file, scores it
on Lake's 20 runs (400 trials, the headline test) and on a saved list of 20-way within-alphabet
tasks of the validation alphabets, calibrates its open-set threshold on the validation alphabets
(``oneshot.calibration.calibrate_record``, as ``oneshot train`` does for an ensemble), and
writes the file (float16 weights, a few hundred kB) with a record of the members, their
training minutes and commands, and those scores. The shipped-model test checks the record and
the model card against a fresh Lake evaluation.

    python benchmarks/ship_model.py runs/fast runs/fast-s1 --out src/oneshot/weights/default.pt
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from _common import ci, parser, score_model, set_threads

from oneshot import load_split
from oneshot.calibration import calibrate_record
from oneshot.checkpoint import export_model, load_model
from oneshot.models import ensemble


def member(run: Path) -> tuple[torch.nn.Module, dict]:
    """A run's best model and what the record says of it."""
    model, rec = load_model(run / "best.pt")
    _, last = load_model(run / "last.pt")
    cfg = json.loads((run / "config.json").read_text())
    return model, {"run": run.name, "best_step": rec["step"], "best_val": rec["best"],
                   "steps": last["step"],
                   "train_minutes": round(last["metrics"]["train_seconds"] / 60, 2),
                   "seed": cfg["config"]["seed"], "command": " ".join(cfg["command"]),
                   "git_revision": cfg["git_revision"]}


def main() -> None:
    ap = parser(__doc__, "threads", "data")
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--out", required=True)
    ap.add_argument("--val-tasks", type=int, default=3000)
    ap.add_argument("--task-dir", default="runs/tasks")
    args = ap.parse_args()
    set_threads(args.threads)
    members, info = zip(*(member(run) for run in args.runs))
    net = ensemble(list(members)) if len(members) > 1 else members[0]
    # score exactly what ships: the float16 weights, loaded back as float32
    export_model(net, args.out, {}, half=True)
    net, _ = load_model(args.out)
    scores = score_model(net, args.val_tasks, args.task_dir, args.data_dir, args.cache)
    val = load_split("validation", args.data_dir, args.cache)
    record = {"members": list(info), **scores, "torch": torch.__version__,
              "open_set": calibrate_record(net, val, trials=500)}
    export_model(net, args.out, record, half=True)
    print(json.dumps(record, indent=2))
    print(f"Lake: {ci(scores['lake'])} %; validation: {ci(scores['validation'])} %; "
          f"{Path(args.out).stat().st_size / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
