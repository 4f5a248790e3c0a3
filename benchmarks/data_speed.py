"""Data-layer speed: first decode of both Omniglot splits, then the load from the cache.

Decodes images_background.zip and images_evaluation.zip from ONESHOT_DATA (or --data-dir) into
a fresh temporary cache (verification included), then times loads from that cache. Prints a
Markdown table of medians over --reps repetitions. Targets: decode < 20 s, cache load < 0.5 s.

    python benchmarks/data_speed.py --data-dir ../shared/omniglot --reps 3
"""

from __future__ import annotations

import tempfile

from _common import markdown_table, median, parser, timed, write_json

from oneshot.data.omniglot import load_archive

LOADS_PER_DECODE = 3


def measure(split: str, data_dir: str | None, reps: int) -> tuple[float, float]:
    """(median seconds of a first decode into a fresh cache, median seconds of a cache load)."""
    decodes, loads = [], []
    for _ in range(reps):
        with tempfile.TemporaryDirectory() as cache:
            decodes.append(timed(lambda cache=cache: load_archive(split, data_dir, cache))[0])
            loads += [timed(lambda cache=cache: load_archive(split, data_dir, cache))[0]
                      for _ in range(LOADS_PER_DECODE)]
    return median(decodes), median(loads)


def main() -> None:
    ap = parser(__doc__, "reps", "json")
    ap.add_argument("--data-dir", help="folder with the Omniglot zips (default: $ONESHOT_DATA)")
    args = ap.parse_args()
    decode, load = {}, {}
    for split in ("background", "evaluation"):
        decode[split], load[split] = measure(split, args.data_dir, args.reps)
    rows = [[s, f"{decode[s]:.2f}", f"{load[s]:.3f}"] for s in decode]
    rows.append(["both", f"{sum(decode.values()):.2f}", f"{sum(load.values()):.3f}"])
    print(markdown_table(["split", "first decode + verify + cache write (s)",
                          "load from cache (s)"], rows))
    print(f"\nmedians of {args.reps} decodes and {LOADS_PER_DECODE * args.reps} loads per split")
    write_json(args.json, {"decode_s": decode, "load_s": load, "reps": args.reps})


if __name__ == "__main__":
    main()
