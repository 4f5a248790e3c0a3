"""Speed-up of 2-process data-parallel training on this CPU (torchrun, gloo).

Trains the `fast` preset for --steps steps three ways, with the same global batch (2 episodes
of 20 ways x 3 images per step) and seed: one process with 1 thread, one process with 2
threads, and `torchrun --nproc-per-node 2` with 1 thread per process. Reports training steps per
second (from the runs' own `train_seconds`, validation excluded) and the speed-up over one
single-threaded process, medians of --reps runs.

    python benchmarks/ddp_speedup.py --steps 300 --reps 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SETS = ["val_every=100000", "val_tasks=20", "log_lake=false", "time_limit_min=0"]


def run(kind: str, steps: int, out: Path) -> float:
    threads = 2 if kind == "1 process, 2 threads" else 1
    train = ["-m", "oneshot", "--quiet", "train", "--preset", "fast", "--out", str(out),
             "--set", *SETS, f"steps={steps}", f"threads={threads}"]
    if kind.startswith("2 processes"):
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc-per-node=2", *train]
    else:
        cmd = [sys.executable, *train]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in rows if "loss" in r][-1]
    return last["step"] / last["train_seconds"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    kinds = ["1 process, 1 thread", "1 process, 2 threads", "2 processes (torchrun), 1 thread"]
    rates: dict[str, list[float]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):
            for i, kind in enumerate(kinds):
                rates[kind].append(run(kind, args.steps, Path(tmp) / f"r{rep}-{i}"))
    base = statistics.median(rates[kinds[0]])
    print(f"| training ({args.steps} steps, global batch 2 episodes) | steps/s | speed-up |")
    print("| --- | ---: | ---: |")
    for k in kinds:
        m = statistics.median(rates[k])
        print(f"| {k} | {m:.2f} | {m / base:.2f}x |")
    print(f"\nmedians of {args.reps} runs each")
    if args.json:
        Path(args.json).write_text(json.dumps(rates, indent=2))


if __name__ == "__main__":
    main()
