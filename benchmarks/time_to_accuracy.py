"""Time to accuracy: Lake's 20-way accuracy against minutes of training, for several runs.

Reads run folders trained with `--set log_lake=true` (Lake's benchmark logged at every
validation, for this curve only: model selection uses the validation alphabets) and prints a
Markdown table of validation and Lake accuracy (95 % CI) at each validation, plus a PNG of Lake
accuracy against training minutes, one line per run, with the published figures as references.

    python benchmarks/time_to_accuracy.py runs/fast runs/tutorial --png docs/time_to_accuracy.png
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

REFERENCES = {"humans 95.5": 95.5, "BPL 96.7": 96.7, "Koch et al. 92.0": 92.0}


def read(run: Path) -> list[dict]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "val" in r]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--png", help="write the figure here")
    ap.add_argument("--json", help="write the table as JSON here")
    args = ap.parse_args()
    table = {}
    for run in args.runs:
        rows = read(run)
        table[str(run)] = rows
        n_val = rows[0]["val"]["tasks"] if rows else 0
        print(f"\n### {run} (validation: {n_val} 20-way within-alphabet tasks; Lake: 400)\n")
        print("| step | train min | validation % [95 % CI] | Lake % [95 % CI] |")
        print("| ---: | ---: | --- | --- |")
        for r in rows:
            v, lk = r["val"], r.get("lake")
            lake = (f"{lk['accuracy']:.1f} [{lk['ci95_low']:.1f}, {lk['ci95_high']:.1f}]"
                    if lk else "not logged")
            print(f"| {r['step']} | {r['train_seconds'] / 60:.1f} | {v['accuracy']:.1f} "
                  f"[{v['ci95_low']:.1f}, {v['ci95_high']:.1f}] | {lake} |")
    if args.png:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4.5))
        for name, rows in table.items():
            pts = [(r["train_seconds"] / 60, r["lake"]) for r in rows if "lake" in r]
            if pts:
                ax.errorbar([m for m, _ in pts], [lk["accuracy"] for _, lk in pts],
                            yerr=[[lk["accuracy"] - lk["ci95_low"] for _, lk in pts],
                                  [lk["ci95_high"] - lk["accuracy"] for _, lk in pts]],
                            marker="o", ms=3, capsize=2, label=Path(name).name)
        from matplotlib.transforms import blended_transform_factory

        right = blended_transform_factory(ax.transAxes, ax.transData)
        for (label, y), dy in zip(REFERENCES.items(), (0.0, 2.5, -2.5)):
            ax.axhline(y, ls="--", lw=0.8, color="grey")
            ax.text(1.01, y + dy, label, fontsize=7, color="grey", transform=right,
                    va="center")
        ax.set(xlabel="training minutes (one core each, 2-core CPU)",
               ylabel="Lake 20-way accuracy (%)",
               title="Lake's benchmark against training time")
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(args.png, dpi=120)
        print(f"\nwritten: {args.png}")
    if args.json:
        Path(args.json).write_text(json.dumps(table, indent=2))


if __name__ == "__main__":
    main()
