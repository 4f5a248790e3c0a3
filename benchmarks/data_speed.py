"""Data-layer speed: first decode of both Omniglot splits, then the load from the cache.

Decodes images_background.zip and images_evaluation.zip from ONESHOT_DATA (or --data-dir) into
a fresh temporary cache (verification included), then times loads from that cache. Prints a
Markdown table of medians over --reps repetitions. Targets: decode < 20 s, cache load < 0.5 s.

    python benchmarks/data_speed.py --data-dir ../shared/omniglot --reps 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time

from oneshot.data.omniglot import load_archive


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json")
    args = ap.parse_args()
    decode, load = {}, {}
    for split in ("background", "evaluation"):
        d, lo = [], []
        for _ in range(args.reps):
            with tempfile.TemporaryDirectory() as cache:
                t = time.perf_counter()
                load_archive(split, args.data_dir, cache)
                d.append(time.perf_counter() - t)
                for _ in range(3):
                    t = time.perf_counter()
                    load_archive(split, args.data_dir, cache)
                    lo.append(time.perf_counter() - t)
        decode[split], load[split] = statistics.median(d), statistics.median(lo)
    print("| split | first decode + verify + cache write (s) | load from cache (s) |")
    print("| --- | ---: | ---: |")
    for s in decode:
        print(f"| {s} | {decode[s]:.2f} | {load[s]:.3f} |")
    print(f"| both | {sum(decode.values()):.2f} | {sum(load.values()):.3f} |")
    print(f"\nmedians of {args.reps} decodes and {3 * args.reps} loads per split")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"decode_s": decode, "load_s": load, "reps": args.reps}, f, indent=2)


if __name__ == "__main__":
    main()
