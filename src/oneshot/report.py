"""Reports of evaluation results: Markdown tables, CSV and JSON (all written atomically)."""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

from .evaluation.lake import PUBLISHED, LakeResult
from .io import atomic_write_bytes, atomic_write_json

__all__ = ["nway_markdown", "lake_markdown", "write_report"]


def _cell(r: dict) -> str:
    return f"{r['accuracy']:.1f} [{r['ci95_low']:.1f}, {r['ci95_high']:.1f}]"


def nway_markdown(rows: list[dict]) -> str:
    """One table per (split, mode): N down, scorers across, accuracy % [95 % CI]."""
    out = []
    for split, mode in dict.fromkeys((r["split"], r["mode"]) for r in rows):
        rs = [r for r in rows if r["split"] == split and r["mode"] == mode]
        scorers = list(dict.fromkeys(r["scorer"] for r in rs))
        ways = sorted({r["ways"] for r in rs})
        cell = {(r["scorer"], r["ways"]): r for r in rs}
        n = rs[0]["tasks"]
        out.append(f"### {split} alphabets, {mode} ({n} tasks per point, accuracy % [95 % CI])\n")
        out.append("| N | " + " | ".join(scorers) + " |")
        out.append("| ---: | " + " | ".join("---:" for _ in scorers) + " |")
        for w in ways:
            out.append(f"| {w} | " + " | ".join(_cell(cell[(s, w)]) for s in scorers) + " |")
        files = sorted({(r["task_file"], r["task_sha256"][:16]) for r in rs})
        out.append("\nTask files (SHA-256 prefix): " + ", ".join(f"`{f}` {h}" for f, h in files))
        out.append("")
    return "\n".join(out)


def lake_markdown(results: list[LakeResult]) -> str:
    """Lake's 20 runs: our scorers beside the published figures."""
    out = ["### Lake's 20-way within-alphabet benchmark (20 runs, 400 trials)\n",
           "| system | accuracy % | 95 % CI | error % | source |",
           "| --- | ---: | --- | ---: | --- |"]
    for r in results:
        lo, hi = r.accuracy.interval
        out.append(f"| {r.name} | {r.accuracy.value:.2f} | [{lo:.1f}, {hi:.1f}] | "
                   f"{100 - r.accuracy.value:.2f} | measured here |")
    for name, acc in PUBLISHED.items():
        out.append(f"| {name} | {acc:.1f} | | {100 - acc:.1f} | published (REFERENCE.md) |")
    return "\n".join(out) + "\n"


def write_report(out: str | os.PathLike, rows: list[dict], lake: list[LakeResult],
                 header: str = "") -> Path:
    """Write results.md, results.csv and results.json into ``out``; returns results.md."""
    out = Path(out)
    md = [header] if header else []
    if lake:
        md.append(lake_markdown(lake))
    if rows:
        md.append(nway_markdown(rows))
    atomic_write_bytes(out / "results.md", "\n".join(md).encode())
    if rows:
        buf = io.StringIO()
        w = csv.DictWriter(buf, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
        atomic_write_bytes(out / "results.csv", buf.getvalue().encode())
    atomic_write_json(out / "results.json", {"nway": rows, "lake": [r.to_dict() for r in lake]})
    return out / "results.md"
