"""Speed-up of 2-process data-parallel training on this CPU (torchrun, gloo).

Trains the `fast` preset for --steps steps three ways, with the same global batch (2 episodes
of 20 ways x 3 images per step) and seed: one process with 1 thread, one process with 2
threads, and `torchrun --nproc-per-node 2` with 1 thread per process. Reports training steps per
second (from the runs' own `train_seconds`, validation excluded) and the speed-up over one
single-threaded process, medians of --reps runs; the three run back to back in each repetition,
in reversed order in odd ones.

    python benchmarks/ddp_speedup.py --steps 300 --reps 3
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import alternate, markdown_table, median, parser, write_json

from oneshot.training import preset

# the fast preset as it is, with validation and Lake logging out of the way
SETS = ["val_every=100000", "val_tasks=20", "log_lake=false", "time_limit_min=0"]
KINDS = {"1 process, 1 thread": (1, 1), "1 process, 2 threads": (1, 2),
         "2 processes (torchrun), 1 thread": (2, 1)}  # name: (processes, threads each)


def run(kind: str, steps: int, out: Path) -> float:
    """Training steps per second of one run of ``kind``."""
    procs, threads = KINDS[kind]
    train = ["-m", "oneshot", "--quiet", "train", "--preset", "fast", "--out", str(out),
             "--set", *SETS, f"steps={steps}", f"threads={threads}"]
    launcher = ["-m", "torch.distributed.run", "--standalone",
                f"--nproc-per-node={procs}"] if procs > 1 else []
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    subprocess.run([sys.executable, *launcher, *train], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    last = [r for r in rows if "loss" in r][-1]
    return last["step"] / last["train_seconds"]


def main() -> None:
    ap = parser(__doc__, "reps", "json")
    ap.add_argument("--steps", type=int, default=300)
    args = ap.parse_args()
    rates: dict[str, list[float]] = {k: [] for k in KINDS}
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(args.reps):
            for i, kind in alternate(list(enumerate(KINDS)), rep):
                rates[kind].append(run(kind, args.steps, Path(tmp) / f"r{rep}-{i}"))
    base = median(rates[next(iter(KINDS))])
    print(markdown_table(
        [f"training ({args.steps} steps, global batch {preset('fast').episodes_per_step} "
         "episodes)", "steps/s", "speed-up"],
        [[k, f"{median(r):.2f}", f"{median(r) / base:.2f}x"] for k, r in rates.items()]))
    print(f"\nmedians of {args.reps} runs each")
    write_json(args.json, rates)


if __name__ == "__main__":
    main()
