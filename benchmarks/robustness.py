"""Robustness of a model (default: the shipped one) to perturbed images: accuracy per perturbation,
applied to the query only and to query and support, on Lake's 20 runs (400 trials) and on 3,000
saved 20-way within-alphabet tasks of the 10 test alphabets (``--tasks`` uses the first N of them).

Every image goes the user's way: perturbed at 105x105 (oneshot.evaluation.perturbations), rendered
as an 8-bit grey file, then ``oneshot.preprocess.preprocess`` (``--preprocessing``, ``--set``,
``--crop``) and the model. The library function is ``oneshot.evaluation.robustness``.

    OMP_NUM_THREADS=1 ONESHOT_DATA=... python benchmarks/robustness.py [--tasks 3000]
        [--preprocessing default|legacy] [--set min_ink=0 ...] [--json out.json] [--md out.md]
"""

from __future__ import annotations

import ast
import dataclasses
import logging
import sys
import time
from pathlib import Path

from _common import parser, set_threads, write_json

from oneshot.checkpoint import load_model, resolve_model_path
from oneshot.data.lake import load_lake_runs
from oneshot.data.splits import load_split
from oneshot.errors import ConfigError
from oneshot.evaluation.perturbations import list_perturbations
from oneshot.evaluation.robustness import (
    RobustnessScorer,
    lake_trials,
    robustness_markdown,
    run_robustness,
    task_trials,
)
from oneshot.evaluation.runner import task_list_for
from oneshot.preprocess import DEFAULT, LEGACY

TASK_DIR = Path(__file__).resolve().parents[1] / "docs" / "robustness" / "tasks"
TASKS, WAYS, MODE, TASK_SEED = 3000, 20, "within-alphabet", 1300
PRESETS = {"default": DEFAULT, "legacy": LEGACY}


def options(preset: str, sets: list[str]):
    """A Preprocessing preset with ``field=value`` overrides (values as Python literals)."""
    opts = PRESETS[preset]
    fields = {f.name for f in dataclasses.fields(opts)}
    for item in sets:
        key, sep, value = item.partition("=")
        if not sep or key not in fields:
            raise ConfigError(f"--set {item!r}: FIELD=VALUE with FIELD in {sorted(fields)}")
        try:
            val = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            val = value
        opts = dataclasses.replace(opts, **{key: val})
    return opts


def build_parser():
    p = parser(__doc__, "data", "json", "threads", threads=1)
    p.add_argument("--model", help="model file, checkpoint or run folder (default: shipped)")
    p.add_argument("--tasks", type=int, default=TASKS,
                   help=f"first N of the {TASKS} saved tasks; 0: none (default {TASKS})")
    p.add_argument("--no-lake", action="store_true", help="skip Lake's runs")
    p.add_argument("--perturb", nargs="+", default=list_perturbations(),
                   help="perturbations (default: all)")
    p.add_argument("--preprocessing", choices=sorted(PRESETS), default="default",
                   help="preprocessing preset (default: default)")
    p.add_argument("--set", nargs="*", default=[], metavar="FIELD=VALUE",
                   help="override Preprocessing fields, e.g. --set stroke_width=None")
    p.add_argument("--crop", action="store_true", help="preprocess with crop=True")
    p.add_argument("--seed", type=int, default=0, help="perturbation seed (default 0)")
    p.add_argument("--md", metavar="PATH", help="also write the Markdown table here")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    set_threads(args.threads)
    opts = options(args.preprocessing, args.set)
    path = resolve_model_path(args.model)
    model, _ = load_model(path)
    scorer = RobustnessScorer(model, crop=args.crop, options=opts)
    trials, meta = [], {}
    if not args.no_lake:
        trials.append(lake_trials(load_lake_runs(args.data_dir, args.cache)))
    if args.tasks:
        ds = load_split("test", args.data_dir, args.cache)
        tl, tpath = task_list_for(ds, WAYS, TASKS, MODE, TASK_SEED, TASK_DIR)
        sub = dataclasses.replace(tl, query=tl.query[:args.tasks],
                                  support=tl.support[:args.tasks], answer=tl.answer[:args.tasks])
        trials.append(task_trials(ds, sub, f"{WAYS}-way tasks"))
        meta["task_file"], meta["task_sha256"] = tpath.name, tl.sha256
    t0 = time.perf_counter()
    rows = run_robustness(scorer, trials, args.perturb, args.seed,
                          progress=lambda m: print(m, file=sys.stderr, flush=True))
    md = robustness_markdown(rows)
    print(f"model {path.name}; preprocessing {opts} crop={args.crop}; {meta}; "
          f"{time.perf_counter() - t0:.0f} s\n")
    print(md)
    if args.md:
        Path(args.md).write_text(md)
    write_json(args.json, {"model": path.name, "preprocessing": dataclasses.asdict(opts),
                           "crop": args.crop, "seed": args.seed, **meta, "rows": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
