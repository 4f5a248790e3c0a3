"""Which training-time distortions help robustness? Fine-tunes member 0 of the shipped ensemble
for --steps steps of the "fast" preset (lr 3e-4) once per arm, then scores the member as shipped
and each fine-tuned model with the robustness suite (Lake's runs and the first --tasks of the
3,000 saved test tasks, default preprocessing) on the perturbations that preprocessing leaves.

Arms: "trained" = Koch's distortions as the shipped model was trained (rotation 10 degrees, scale
0.8-1.2, shift 2 px, each with p 0.5); "wide" = rotation 15, scale 0.75-1.25, shift 6 px, p 0.8.
An ad-hoc comparison for docs/robustness.md, not a recipe: one seed, short runs.

    OMP_NUM_THREADS=1 ONESHOT_DATA=... python benchmarks/augment_finetune.py --out /tmp/ft
"""

from __future__ import annotations

import math
import sys
from pathlib import Path

import torch
from _common import TEST_TASK_FILE, parser, set_threads, write_json

from oneshot.augment import Distortion
from oneshot.checkpoint import export_model, load_model
from oneshot.data.lake import load_lake_runs
from oneshot.data.splits import load_split
from oneshot.evaluation.robustness import (
    RobustnessScorer,
    lake_trials,
    robustness_markdown,
    run_robustness,
    task_trials,
)
from oneshot.models import build_model
from oneshot.sampling import TaskList
from oneshot.training import Hook, apply_overrides, default_hooks, preset, train

ARMS = {"trained": Distortion(),
        "wide": Distortion(rotation_deg=15.0, scale=(0.75, 1.25), translate_px=6.0, p=0.8)}
PERTURB = ["clean", "rotate-10", "scale-0.8", "scale-1.2", "shift-5", "dilate-2", "erode-2",
           "gaussian-0.2"]


def member0(model, ens) -> None:
    """Load member 0 of the ensemble ``ens`` into ``model`` (encoder, and the head that gives
    that member's share of the ensemble's logits)."""
    k, w0 = len(ens.encoder.members), ens.encoder.weights[0]
    with torch.no_grad():
        model.encoder.load_state_dict(ens.encoder.members[0].state_dict())
        model.head.log_scale.fill_(math.log(k * w0 ** 2))
        model.head.bias.copy_(ens.head.bias)


class Start(Hook):
    """Starts the run from member 0 with the arm's distortions."""

    def __init__(self, ens, distortion: Distortion) -> None:
        self.ens, self.distortion = ens, distortion

    def on_start(self, trainer) -> None:
        member0(trainer.model, self.ens)
        trainer.data.distortion = self.distortion


def main(argv: list[str] | None = None) -> int:
    p = parser(__doc__, "data", "json", "threads", threads=1)
    p.add_argument("--out", required=True, help="folder for the runs")
    p.add_argument("--steps", type=int, default=3000, help="fine-tuning steps (default 3000)")
    p.add_argument("--tasks", type=int, default=1000, help="first N saved tasks (default 1000)")
    args = p.parse_args(argv)
    set_threads(args.threads)
    ens, _ = load_model(None)
    cfg = apply_overrides(preset("fast"), [f"steps={args.steps}", "lr=3e-4", "log_lake=false",
                                           f"val_every={args.steps}", "val_tasks=250",
                                           f"threads={args.threads}"])
    shipped = build_model(cfg.model_spec, seed=0)
    member0(shipped, ens)
    models = {"member 0 as shipped": shipped}
    for arm, dist in ARMS.items():
        res = train(cfg, Path(args.out) / arm, args.data_dir, args.cache, progress=False,
                    hooks=[Start(ens, dist), *default_hooks(False, False)])
        export_model(res.model, Path(args.out) / arm / "model.pt", {"arm": arm})
        models[f"fine-tuned, {arm}"] = res.model
    ds = load_split("test", args.data_dir, args.cache)
    tl = TaskList.load(TEST_TASK_FILE, ds)
    tl = TaskList(tl.query[:args.tasks], tl.support[:args.tasks], tl.answer[:args.tasks], tl.meta)
    trials = [lake_trials(load_lake_runs(args.data_dir, args.cache)),
              task_trials(ds, tl, f"{len(tl)} tasks")]
    report = {}
    for name, model in models.items():
        rows = run_robustness(RobustnessScorer(model), trials, PERTURB)
        print(f"### {name}\n\n{robustness_markdown(rows)}", flush=True)
        report[name] = rows
    write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
