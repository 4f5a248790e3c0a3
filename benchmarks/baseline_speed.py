"""Baseline speed: random, nearest neighbour and modified Hausdorff over Lake's 400 trials and
over 400 20-way within-alphabet tasks of the evaluation alphabets (all 20).

Times the whole scoring (embedding cache + pair scores), medians of --reps runs, and prints the
accuracies alongside so the numbers can be checked (MHD on Lake: 61.25 %). The brute-force
modified Hausdorff (every point pair, one float32 matrix per pair: the implementation before
the separable distance transform) runs side by side as the peer: the table gives its times, the
speed-up ratios and the largest difference between the two over Lake's 8000 pairs.

``--evaluate`` instead profiles the default ``oneshot evaluate``: it scores every default scorer
(and the shipped model, unless --no-model) on every (split, mode, N) point exactly as
``runner.evaluate`` does (one embedding per point), and prints CPU seconds per scorer per split
and mode, plus Lake's benchmark and the peak resident memory. --split/--mode/--ways/--tasks
reduce the configuration. --per-split embeds each split once per scorer and shares it between
the points (the ``cache`` argument of ``evaluate_tasks``); --encoder-batch sets the shipped
model's embedding batch (EncoderScorer's default: 256).

    python benchmarks/baseline_speed.py --reps 3
    python benchmarks/baseline_speed.py --evaluate
    python benchmarks/baseline_speed.py --evaluate --split test --mode within-alphabet --ways 5 19
    python benchmarks/baseline_speed.py --evaluate --per-split --encoder-batch 64
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

import numpy as np
import torch

from oneshot.data.lake import load_lake_runs
from oneshot.data.splits import load_split
from oneshot.evaluation.baselines import ink_points
from oneshot.evaluation.lake import lake_benchmark
from oneshot.evaluation.nway import evaluate_tasks
from oneshot.evaluation.runner import DEFAULT_WAYS, default_scorers
from oneshot.evaluation.scorers import score_pairs
from oneshot.sampling import MODES, sample_tasks


class BruteForceModifiedHausdorff:
    """The peer: all point pairs of each image pair, |a|^2 + |b|^2 - 2 a.b in float32."""

    name = "modified-hausdorff, brute force (peer)"

    def embed(self, images: np.ndarray):
        pts = ink_points(images)
        return pts, [(p * p).sum(1) for p in pts]

    def score(self, cache, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        pts, sq = cache
        out = torch.empty(len(a), dtype=torch.float32)
        for k, (i, j) in enumerate(zip(a.tolist(), b.tolist())):
            d2 = torch.addmm(sq[j][None, :], pts[i], pts[j].T, alpha=-2)
            d2.add_(sq[i][:, None]).clamp_min_(0)
            out[k] = -torch.maximum(d2.amin(1).sqrt().mean(), d2.amin(0).sqrt().mean())
        return out


def lake_pairs(runs) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lake's images (test then training images of each run) and its 8000 (test, train) pairs."""
    images = np.concatenate([np.concatenate([r.test_images, r.train_images]) for r in runs])
    a = np.concatenate([np.repeat(40 * k + np.arange(20), 20) for k in range(len(runs))])
    b = np.concatenate([np.tile(40 * k + 20 + np.arange(20), 20) for k in range(len(runs))])
    return images, a, b


def speed(args) -> None:
    runs = load_lake_runs(args.data_dir)
    ev = load_split("evaluation", args.data_dir)
    tasks = sample_tasks(ev, 20, 400, "within-alphabet", seed=0)
    scorers = default_scorers(0) + [BruteForceModifiedHausdorff()]
    times = {sc.name: ([], []) for sc in scorers}
    acc = {}
    for _ in range(args.reps):  # interleaved, so the peer sees the same machine load
        for sc in scorers:
            t = time.perf_counter()
            lake = lake_benchmark(sc, runs).accuracy
            times[sc.name][0].append(time.perf_counter() - t)
            t = time.perf_counter()
            acc[sc.name] = (lake, evaluate_tasks(sc, ev.images, tasks))
            times[sc.name][1].append(time.perf_counter() - t)
    rows = [{"scorer": sc.name, "lake_s": statistics.median(times[sc.name][0]),
             "lake": str(acc[sc.name][0]), "tasks_s": statistics.median(times[sc.name][1]),
             "tasks": str(acc[sc.name][1])} for sc in scorers]
    print("| scorer | Lake 400 trials (s) | Lake accuracy | 400 20-way tasks (s) | accuracy |")
    print("| --- | ---: | --- | ---: | --- |")
    for r in rows:
        print(f"| {r['scorer']} | {r['lake_s']:.2f} | {r['lake']} | {r['tasks_s']:.2f} | "
              f"{r['tasks']} |")
    mhd, peer = scorers[2], scorers[3]
    images, a, b = lake_pairs(runs)
    diff = (score_pairs(mhd, mhd.embed(images), a, b)
            - score_pairs(peer, peer.embed(images), a, b)).abs().max().item()
    ratio = [statistics.median(p / m for p, m in zip(times[peer.name][k], times[mhd.name][k]))
             for k in (0, 1)]
    print(f"\nmedians of {args.reps} runs; tasks: evaluation alphabets, within-alphabet, seed 0 "
          f"(SHA-256 {tasks.sha256[:16]}); modified Hausdorff vs the brute-force peer, side by "
          f"side: {ratio[0]:.1f}x faster on Lake, {ratio[1]:.1f}x on the tasks; largest "
          f"|difference| over Lake's 8000 pairs {diff:.1e} pixel")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rows": rows, "speedup_lake": ratio[0], "speedup_tasks": ratio[1],
                       "max_abs_difference": diff}, f, indent=2)


def profile_evaluate(args) -> None:
    scorers = default_scorers(0)
    if not args.no_model:
        from oneshot.checkpoint import load_model
        from oneshot.evaluation.scorers import EncoderScorer
        from oneshot.inference import default_model_path

        path = default_model_path()
        if path is not None:
            kw = {"batch": args.encoder_batch} if args.encoder_batch else {}
            scorers.append(EncoderScorer(load_model(path)[0], name=f"siamese ({path.name})", **kw))
    cpu = {}  # (scorer, column) -> CPU seconds
    points = []
    for split in args.split:
        ds = load_split(split, args.data_dir)
        caches = {}
        if args.per_split:
            for sc in scorers:
                t = time.process_time()
                caches[sc.name] = sc.embed(ds.images)
                dt = time.process_time() - t
                col = f"{split} {args.mode[0]}"  # the first column of the split holds it
                cpu[sc.name, col] = cpu.get((sc.name, col), 0.0) + dt
        for mode in args.mode:
            for ways in args.ways:
                tl = sample_tasks(ds, ways, args.tasks, mode, seed=ways)  # runner: seed + N
                for sc in scorers:
                    t = time.process_time()
                    if caches:
                        evaluate_tasks(sc, ds.images, tl, caches[sc.name])
                    else:  # as runner.evaluate does today (runs against older revisions)
                        evaluate_tasks(sc, ds.images, tl)
                    dt = time.process_time() - t
                    col = f"{split} {mode}"
                    cpu[sc.name, col] = cpu.get((sc.name, col), 0.0) + dt
                    points.append((dt, f"{split} {mode} {ways}-way {sc.name}"))
        caches.clear()
    runs = load_lake_runs(args.data_dir)
    for sc in scorers:
        t = time.process_time()
        lake_benchmark(sc, runs)
        cpu[sc.name, "Lake"] = time.process_time() - t
    cols = [f"{s} {m}" for s in args.split for m in args.mode] + ["Lake"]
    print("| scorer | " + " | ".join(cols) + " | total |")
    print("| --- |" + " ---: |" * (len(cols) + 1))
    for sc in scorers:
        v = [cpu[sc.name, c] for c in cols]
        print(f"| {sc.name} | " + " | ".join(f"{x:.1f}" for x in v) + f" | {sum(v):.1f} |")
    total = sum(cpu.values())
    dt, worst = max(points)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    how = "each split embedded once per scorer" if args.per_split else "one embedding per point"
    print(f"\nCPU seconds (process time, {torch.get_num_threads()} torch threads; {how}); "
          f"N = {' '.join(map(str, args.ways))}, {args.tasks} tasks per point; "
          f"total {total:.1f} s; slowest point: {worst} {dt:.1f} s; peak RSS {rss:.0f} MB")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"cpu_s": {f"{k[0]} | {k[1]}": v for k, v in cpu.items()},
                       "peak_rss_mb": rss}, f, indent=2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json")
    ap.add_argument("--evaluate", action="store_true",
                    help="profile the default `oneshot evaluate` per scorer, split and mode")
    ap.add_argument("--no-model", action="store_true", help="--evaluate: baselines only")
    ap.add_argument("--per-split", action="store_true",
                    help="--evaluate: embed each split once per scorer, shared by its points")
    ap.add_argument("--encoder-batch", type=int, help="--evaluate: the model's embedding batch")
    ap.add_argument("--split", nargs="+", default=["test", "background"])
    ap.add_argument("--mode", nargs="+", default=list(MODES), choices=MODES)
    ap.add_argument("--ways", nargs="+", type=int, default=list(DEFAULT_WAYS))
    ap.add_argument("--tasks", type=int, default=400)
    args = ap.parse_args()
    profile_evaluate(args) if args.evaluate else speed(args)


if __name__ == "__main__":
    main()
