"""Time to accuracy: Lake's 20-way accuracy against minutes of training, for several runs.

Reads run folders trained with `--set log_lake=true` (Lake's benchmark logged at every
validation, for this curve only: model selection uses the validation alphabets) and prints a
Markdown table of validation and Lake accuracy (95 % CI) at each validation, plus a PNG of Lake
accuracy against training minutes, one line per run, with the published figures as references.

    python benchmarks/time_to_accuracy.py runs/fast runs/tutorial --png docs/time_to_accuracy.png

A JSON file written by ``--json`` may stand in for run folders (its runs are read back), so a
new run can be drawn beside earlier ones whose folders are gone: docs/time_to_accuracy.json
holds the curves of the figure.
"""

from __future__ import annotations

import json
from pathlib import Path

from _common import ci, markdown_table, parser, write_json

from oneshot.data.lake import ITEMS, RUNS
from oneshot.evaluation.lake import PUBLISHED

# Reference lines of the figure: short label -> the published figure's name in PUBLISHED.
REFERENCES = {"humans": "Humans (Lake et al. 2015)", "BPL": "BPL (Lake et al. 2015)",
              "Koch et al.": "Koch et al. 2015 Siamese convnet"}
LABEL_NUDGE = (0.0, 2.5, -2.5)  # vertical offsets (points of accuracy) so labels do not overlap


def read(run: Path) -> list[dict]:
    """The run's validation records (``metrics.jsonl`` lines with "val")."""
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if "val" in r]


def validation_kind(run: Path) -> str:
    """"N-way MODE" of the run's validation tasks, from its config.json (as the presets
    validate when the folder is gone)."""
    try:
        cfg = json.loads((run / "config.json").read_text())["config"]
        return f"{cfg['val_ways']}-way {cfg['val_mode']}"
    except (OSError, ValueError, KeyError):
        return "20-way within-alphabet"


def print_table(run: Path, rows: list[dict]) -> None:
    n_val = rows[0]["val"]["tasks"] if rows else 0
    print(f"\n### {run} (validation: {n_val} {validation_kind(run)} tasks; "
          f"Lake: {RUNS * ITEMS})\n")
    print(markdown_table(
        ["step", "train min", "validation % [95 % CI]", "Lake % [95 % CI]"],
        [[r["step"], f"{r['train_seconds'] / 60:.1f}", ci(r["val"]),
          ci(r["lake"]) if r.get("lake") else "not logged"] for r in rows], align="rrll"))


def plot(table: dict[str, list[dict]], png: str) -> None:
    """Lake accuracy (with 95 % CIs) against training minutes, one line per run; the right panel
    zooms on 90-100 % (runs below it are off its scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.transforms import blended_transform_factory

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    for ax in axes:
        for name, rows in table.items():
            pts = [(r["train_seconds"] / 60, r["lake"]) for r in rows if "lake" in r]
            if pts:
                ax.errorbar([m for m, _ in pts], [lk["accuracy"] for _, lk in pts],
                            yerr=[[lk["accuracy"] - lk["ci95_low"] for _, lk in pts],
                                  [lk["ci95_high"] - lk["accuracy"] for _, lk in pts]],
                            marker="o", ms=3, capsize=2, label=Path(name).name)
        right = blended_transform_factory(ax.transAxes, ax.transData)
        for (label, key), dy in zip(REFERENCES.items(), LABEL_NUDGE):
            y = PUBLISHED[key]
            ax.axhline(y, ls="--", lw=0.8, color="grey")
            ax.text(1.01, y + dy * (0.25 if ax is axes[1] else 1), f"{label} {y}", fontsize=7,
                    color="grey", transform=right, va="center")
        ax.set(xlabel="training minutes (one core each, 2-core CPU)",
               ylabel="Lake 20-way accuracy (%)")
    axes[0].set_title("Lake's benchmark against training time")
    axes[1].set(ylim=(90, 100), title="the same, 90-100 %")
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    print(f"\nwritten: {png}")


def main() -> None:
    ap = parser(__doc__, "json")
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--png", help="write the figure here")
    args = ap.parse_args()
    table = {}
    for run in args.runs:
        earlier = json.loads(run.read_text()) if run.is_file() else {str(run): read(run)}
        for name, rows in earlier.items():
            table[name] = rows
            print_table(Path(name), rows)
    if args.png:
        plot(table, args.png)
    write_json(args.json, table)


if __name__ == "__main__":
    main()
