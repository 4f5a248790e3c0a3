"""Ablation of the `fast` recipe: what each choice adds, on held-out validation alphabets.

Each variant is the `fast` preset with some fields overridden, trained from scratch for the same
number of steps (`oneshot train`, one thread per run, `--parallel` runs at once), then scored on
one saved list of several thousand 20-way within-alphabet tasks of the validation alphabets
(decisions are made on these, never on Lake's runs) and, for the record, on Lake's 400 trials.
Prints a Markdown table (accuracy %, 95 % CI, training minutes) and writes JSON.

    python benchmarks/ablation.py --steps 3000 --val-tasks 3000 --out runs/ablation \
        --variants fast no-centre maxpool maxpool-no-centre no-rotations no-distortions pairs 40px
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# Short runs: the fast preset with its schedule compressed to --steps, one validation at the end.
BASE = {"val_every": 100_000, "val_tasks": 200, "threads": 1, "log_lake": False,
        "time_limit_min": 0.0}
FAST_ENCODER = {"input_size": 28, "width": 64, "depth": 4, "centre": True}

VARIANTS: dict[str, dict] = {
    "fast": {},
    "no-centre": {"encoder_args": {**FAST_ENCODER, "centre": False}},
    "maxpool": {"encoder_args": {**FAST_ENCODER, "pool": "max"}},
    "maxpool-no-centre": {"encoder_args": {**FAST_ENCODER, "pool": "max", "centre": False}},
    "no-rotations": {"rotations": False},
    "no-distortions": {"distort": False},
    "no-bce": {"bce_weight": 0.0},
    "pairs": {"objective": "pairs", "head": "l1", "batch": 128, "same_alphabet": 0.5},
    "40px": {"encoder_args": {**FAST_ENCODER, "input_size": 40}},
    "56px": {"encoder_args": {**FAST_ENCODER, "input_size": 56}},
    "wide96": {"encoder_args": {**FAST_ENCODER, "width": 96}},
    "fp32": {"amp": False},
}


def _sets(d: dict) -> list[str]:
    return [f"{k}={json.dumps(v) if isinstance(v, (dict, list, bool)) else v}"
            for k, v in d.items()]


def run_variant(name: str, steps: int, out: Path) -> subprocess.Popen:
    cfg = {**BASE, **VARIANTS[name], "steps": steps}
    cmd = [sys.executable, "-m", "oneshot", "--quiet", "train", "--preset", "fast",
           "--out", str(out / name), "--set", *_sets(cfg)]
    log = open(out / f"{name}.log", "w")
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def score(run: Path, val_tasks: int) -> dict:
    import torch

    from oneshot.checkpoint import load_model
    from oneshot.data.lake import load_lake_runs
    from oneshot.data.splits import load_split
    from oneshot.evaluation.lake import lake_benchmark
    from oneshot.evaluation.nway import evaluate_tasks
    from oneshot.evaluation.runner import task_list_for
    from oneshot.evaluation.scorers import EncoderScorer

    torch.set_num_threads(1)
    model, rec = load_model(run / "last.pt")
    val = load_split("validation")
    tl, path = task_list_for(val, 20, val_tasks, "within-alphabet", 12345, run.parent / "tasks")
    sc = EncoderScorer(model)
    acc = evaluate_tasks(sc, val.images, tl)
    lake = lake_benchmark(sc, load_lake_runs()).accuracy
    return {"val": acc.to_dict(), "val_task_file": path.name, "val_task_sha256": tl.sha256,
            "lake": lake.to_dict(), "train_minutes": rec["metrics"]["train_seconds"] / 60,
            "steps": rec["step"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--variants", nargs="+", default=["fast", "no-centre"],
                    choices=sorted(VARIANTS))
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--val-tasks", type=int, default=3000)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--out", default="runs/ablation")
    ap.add_argument("--json", help="also write the results here")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pending = [v for v in args.variants if not (out / v / "last.pt").exists()]
    running: list[tuple[str, subprocess.Popen]] = []
    t0 = time.time()
    while pending or running:
        while pending and len(running) < args.parallel:
            name = pending.pop(0)
            running.append((name, run_variant(name, args.steps, out)))
        time.sleep(2)
        for name, p in list(running):
            if p.poll() is not None:
                running.remove((name, p))
                print(f"# {name} finished (rc {p.returncode}) at {time.time() - t0:.0f} s",
                      file=sys.stderr)
    results = {}
    for name in args.variants:
        if (out / name / "last.pt").exists():
            results[name] = score(out / name, args.val_tasks)
    print(f"| variant | steps | train min | validation 20-way within-alphabet, "
          f"{args.val_tasks} tasks | Lake 400 trials |")
    print("| --- | ---: | ---: | --- | --- |")
    for name, r in results.items():
        v, lk = r["val"], r["lake"]
        print(f"| {name} | {r['steps']} | {r['train_minutes']:.1f} | {v['accuracy']:.1f} "
              f"[{v['ci95_low']:.1f}, {v['ci95_high']:.1f}] | {lk['accuracy']:.1f} "
              f"[{lk['ci95_low']:.1f}, {lk['ci95_high']:.1f}] |")
    if results:
        first = next(iter(results.values()))
        print(f"\nValidation task file: {first['val_task_file']} "
              f"(SHA-256 {first['val_task_sha256'][:16]})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
