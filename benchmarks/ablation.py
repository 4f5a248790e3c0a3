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

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import (
    SCORING_MODE,
    SCORING_WAYS,
    ci,
    markdown_table,
    parser,
    score_model,
    set_threads,
    write_json,
)

from oneshot.checkpoint import load_model
from oneshot.training import apply_overrides, preset

# Short runs: the fast preset with its schedule compressed to --steps, one validation at the end.
BASE = {"val_every": 100_000, "val_tasks": 200, "threads": 1, "log_lake": False,
        "time_limit_min": 0.0}
FAST_ENCODER = preset("fast").encoder_args
POLL_SECONDS = 2

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


def overrides(name: str, steps: int) -> dict:
    """The variant's fields over the fast preset; checked here (unknown keys, bad values)."""
    cfg = {**BASE, **VARIANTS[name], "steps": steps}
    apply_overrides(preset("fast"), cfg)
    return cfg


def run_variant(name: str, steps: int, out: Path, data: list[str]) -> subprocess.Popen:
    sets = [f"{k}={json.dumps(v) if isinstance(v, (dict, list, bool)) else v}"
            for k, v in overrides(name, steps).items()]
    cmd = [sys.executable, "-m", "oneshot", "--quiet", "train", "--preset", "fast",
           "--out", str(out / name), *data, "--set", *sets]
    log = open(out / f"{name}.log", "w")  # noqa: SIM115 (the child writes it; closed on exit)
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def train_all(names: list[str], steps: int, out: Path, parallel: int, data: list[str]) -> None:
    """Train the variants that have no ``last.pt`` yet, ``parallel`` at a time."""
    pending = [v for v in names if not (out / v / "last.pt").exists()]
    running: list[tuple[str, subprocess.Popen]] = []
    t0 = time.time()
    while pending or running:
        while pending and len(running) < parallel:
            name = pending.pop(0)
            running.append((name, run_variant(name, steps, out, data)))
        time.sleep(POLL_SECONDS)
        for name, p in list(running):
            if p.poll() is not None:
                running.remove((name, p))
                print(f"# {name} finished (rc {p.returncode}) at {time.time() - t0:.0f} s",
                      file=sys.stderr)


def score(run: Path, args) -> dict:
    model, rec = load_model(run / "last.pt")
    return {**score_model(model, args.val_tasks, run.parent / "tasks", args.data_dir,
                          args.cache),
            "train_minutes": rec["metrics"]["train_seconds"] / 60, "steps": rec["step"]}


def main() -> None:
    ap = parser(__doc__, "threads", "data", "json", threads=1)
    ap.add_argument("--variants", nargs="+", default=["fast", "no-centre"],
                    choices=sorted(VARIANTS))
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--val-tasks", type=int, default=3000)
    ap.add_argument("--parallel", type=int, default=2)
    ap.add_argument("--out", default="runs/ablation")
    args = ap.parse_args()
    set_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = [f"--{k.replace('_', '-')}={v}" for k, v in
            (("data_dir", args.data_dir), ("cache", args.cache)) if v]
    train_all(args.variants, args.steps, out, args.parallel, data)
    results = {name: score(out / name, args) for name in args.variants
               if (out / name / "last.pt").exists()}
    print(markdown_table(
        ["variant", "steps", "train min",
         f"validation {SCORING_WAYS}-way {SCORING_MODE}, {args.val_tasks} tasks",
         "Lake 400 trials"],
        [[name, r["steps"], f"{r['train_minutes']:.1f}", ci(r["validation"]), ci(r["lake"])]
         for name, r in results.items()], align="lrrll"))
    if results:
        val = next(iter(results.values()))["validation"]
        print(f"\nValidation task file: {val['task_file']} (SHA-256 {val['task_sha256'][:16]})")
    write_json(args.json, results)


if __name__ == "__main__":
    main()
