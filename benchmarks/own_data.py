"""Your own classes, end to end, on a domain that is not Omniglot: N-way one-shot accuracy on the
held-out test scripts of a folder of typeset letters (benchmarks/_glyphs.py: non-Latin scripts
drawn by this machine's 21 DejaVu faces), for pixel nearest neighbour, the shipped model, a
model trained from scratch on the folder (``--preset small``) and the shipped model fine-tuned
on it (``--preset finetune``, i.e. ``--init default``).

    python benchmarks/own_data.py --out bench/own-data --json bench/own-data.json

Each training is ``oneshot train --data DIR`` in its own process on ONE thread, stopped by its
preset's time limit or ``--minutes``; both use the split that ``oneshot evaluate --data DIR
--part test`` uses (seed 0, by script), so the test scripts are never trained or validated on.
``--variant NAME:PRESET:FIELD=VALUE,...`` adds runs (how the presets were chosen: on the
validation scripts, the best validation accuracy and its curve, never on the test scripts).
Training minutes are training steps only (validation excluded), measured on a shared 2-core
machine, so the steps done in the same minutes vary with the load.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from _common import markdown_table, parser, write_json
from _glyphs import build_glyphs

RUNS = {"scratch": ("small", []), "finetune": ("finetune", [])}


def _train(name: str, preset: str, sets: list[str], data: Path, out: Path,
           minutes: float) -> dict:
    run = out / name
    if not (run / "best.pt").exists():
        cmd = [sys.executable, "-m", "oneshot", "--quiet", "train", "--preset", preset,
               "--data", str(data), "--out", str(run), "--overwrite", "--set", "threads=1",
               f"time_limit_min={minutes}", *sets]
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, env=env)
        print(f"{name}: {(time.perf_counter() - t0) / 60:.1f} min wall-clock", flush=True)
    from oneshot.checkpoint import load_checkpoint

    ck = load_checkpoint(run / "best.pt")
    last = load_checkpoint(run / "last.pt")
    return {"run": str(run), "preset": preset, "set": sets, "best_step": ck["step"],
            "steps": last["step"], "validation": ck["best"],
            "train_minutes": last["metrics"]["train_seconds"] / 60}


def _report(data: Path, out: Path, runs: dict, tasks: int, ways: tuple[int, ...]):
    from oneshot.datasets import load_folder_part
    from oneshot.evaluation.runner import EvalSettings
    from oneshot.report import evaluate_and_report

    test = load_folder_part(data, "test")
    models = ["default"] + [runs[n]["run"] for n in runs]
    settings = EvalSettings(splits=(test.name,), modes=("within-alphabet", "unstructured"),
                            ways=ways, tasks=tasks, lake=False)
    rep = evaluate_and_report(out / "report", settings, model=models, datasets={test.name: test},
                              command="benchmarks/own_data.py")
    return test, rep


def main() -> None:
    p = parser(__doc__, "json")
    p.add_argument("--out", default="bench/own-data", help="folder for the data, runs, report")
    p.add_argument("--minutes", type=float, default=4.0, help="training minutes per run")
    p.add_argument("--tasks", type=int, default=400, help="tasks per point")
    p.add_argument("--ways", type=int, nargs="+", default=[5, 10, 20], help="values of N")
    p.add_argument("--variant", action="append", default=[],
                   help="NAME:PRESET:FIELD=VALUE,... another run to train and score")
    args = p.parse_args()
    out = Path(args.out)
    data = out / "glyphs"
    print(f"folder: {data} {build_glyphs(data)}", flush=True)
    runs = {}
    todo = dict(RUNS)
    for v in args.variant:
        name, preset, sets = (v.split(":", 2) + [""])[:3]
        todo[name] = (preset, [s for s in sets.split(",") if s])
    for name, (preset, sets) in todo.items():
        runs[name] = _train(name, preset, sets, data, out / "runs", args.minutes)
    test, rep = _report(data, out, runs, args.tasks, tuple(args.ways))
    names = {"nearest-neighbour": "pixel nearest neighbour", "the shipped model": "shipped"}
    for n in runs:
        names[f"siamese ({n}/best.pt)"] = n
    print(f"\n### {test.name}: {test.counts()} (scripts {', '.join(test.alphabets)})\n")
    for mode in ("within-alphabet", "unstructured"):
        rows = [r for r in rep.rows if r["mode"] == mode and r["scorer"] in names]
        header = ["scorer", "train min (steps)", "validation %"] + [
            f"{w}-way" for w in args.ways]
        table = []
        for scorer, label in names.items():
            cells = {r["ways"]: r for r in rows if r["scorer"] == scorer}
            run = runs.get(label)
            trained = [f"{run['train_minutes']:.1f} ({run['steps']})", f"{run['validation']:.1f}"
                       ] if run else ["0", ""]
            table.append([label, *trained] + [
                f"{cells[w]['accuracy']:.1f} [{cells[w]['ci95_low']:.1f}, "
                f"{cells[w]['ci95_high']:.1f}]" if w in cells else "" for w in args.ways])
        print(f"{mode}, {args.tasks} tasks per point, accuracy % [95 % CI]\n")
        print(markdown_table(header, table) + "\n")
    print(json.dumps(runs, indent=1))
    write_json(args.json, {"runs": runs, "rows": rep.rows, "test": test.counts()})


if __name__ == "__main__":
    main()
