"""Omniglot written out as a class folder (``DIR/<alphabet>/<character>/<image>``) and trained
through ``--data`` gives what the built-in path gives: the same training and validation images,
and a short ``fast`` training with the same seed and steps on each path, compared step by step.

    python benchmarks/omniglot_folder.py --out bench/omniglot-folder --steps 600

The folder holds both archives' PNGs as they are; its split is the protocol's (train: the 30
background alphabets, validation and test: the evaluation alphabets as ``splits.json`` says),
given as a saved class split (``--data-split``). Lake's log is off on both paths (it needs
Omniglot's archives and a folder run does not log it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from importlib import resources
from pathlib import Path

import numpy as np
from _common import markdown_table, parser, write_json


def write_folder(out: Path, data_dir: str | None) -> Path:
    """Both archives' PNGs under ``out/omniglot/<alphabet>/<character>/`` (once)."""
    from oneshot.data.omniglot import find_archive

    root = out / "omniglot"
    if (root / ".complete").exists():
        return root
    for split in ("background", "evaluation"):
        with zipfile.ZipFile(find_archive(split, data_dir)) as z:
            for info in z.infolist():
                parts = info.filename.split("/")
                if info.is_dir() or len(parts) != 4:
                    continue
                target = root.joinpath(*parts[1:])
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(z.read(info))
    (root / ".complete").write_text("written\n")
    return root


def protocol_split(out: Path, root: Path) -> Path:
    """The protocol's alphabets as a class split file: validation and test as splits.json
    says, train the rest (the background archive's 30)."""
    from oneshot.data.partition import ClassSplit

    table = json.loads(resources.files("oneshot.data").joinpath("splits.json").read_text())
    parts = {p: sorted(table[p]["alphabets"]) for p in ("validation", "test")}
    held = set(parts["validation"]) | set(parts["test"])
    parts["train"] = sorted(d.name for d in root.iterdir() if d.is_dir() and d.name not in held)
    path = out / "protocol_split.json"
    ClassSplit("groups", parts).save(path)
    return path


def same_data(root: Path, split_file: Path, data_dir, cache) -> dict:
    """Whether the folder's train and validation parts are the built-in splits, image for
    image (pixels, classes, order, drawers)."""
    from oneshot.data.splits import load_split
    from oneshot.datasets import folder_split, load_data

    full = load_data(root, cache=cache)
    split = folder_split(full, split_file)
    out = {}
    for part in ("train", "validation"):
        mine, ref = split.select(full, part), load_split(part, data_dir, cache)
        out[part] = bool(mine.characters == ref.characters and np.array_equal(
            mine.images, ref.images) and np.array_equal(mine.labels, ref.labels)
            and np.array_equal(mine.drawers, ref.drawers))
    return out


def train(run: Path, steps: int, extra: list[str]) -> list[dict]:
    if not (run / "last.pt").exists():
        half = max(1, steps // 2)
        cmd = [sys.executable, "-m", "oneshot", "--quiet", "train", "--preset", "fast",
               "--out", str(run), "--overwrite", "--steps", str(steps), *extra, "--set",
               "threads=1", "log_lake=false", f"val_every={half}", "val_tasks=1000",
               "time_limit_min=0"]
        subprocess.run(cmd, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def main() -> None:
    p = parser(__doc__, "data", "json")
    p.add_argument("--out", default="bench/omniglot-folder", help="folder for data and runs")
    p.add_argument("--steps", type=int, default=600, help="training steps of each run")
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    root = write_folder(out, args.data_dir)
    split = protocol_split(out, root)
    equal = same_data(root, split, args.data_dir, args.cache)
    builtin = train(out / "builtin", args.steps, [])
    folder = train(out / "folder", args.steps, ["--data", str(root), "--data-split", str(split)])
    loss = {name: [m["loss"] for m in log if "loss" in m] for name, log in
            (("builtin", builtin), ("folder", folder))}
    val = {name: [(m["step"], m["val"]) for m in log if "val" in m] for name, log in
           (("builtin", builtin), ("folder", folder))}
    same_losses = loss["builtin"] == loss["folder"]
    print(f"same training / validation images: {equal}; {len(loss['builtin'])} losses, "
          f"identical: {same_losses}; largest difference "
          f"{max(abs(a - b) for a, b in zip(loss['builtin'], loss['folder'])):.2e}\n")
    rows = [[f"{s}", f"{a['accuracy']:.2f} [{a['ci95_low']:.1f}, {a['ci95_high']:.1f}]",
             f"{b['accuracy']:.2f} [{b['ci95_low']:.1f}, {b['ci95_high']:.1f}]"]
            for (s, a), (_, b) in zip(val["builtin"], val["folder"])]
    print(markdown_table(["step", "built-in (`--preset fast`)",
                          "folder (`--data DIR --data-split FILE`)"], rows))
    write_json(args.json, {"same_data": equal, "same_losses": same_losses, "validation": val,
                           "steps": args.steps})


if __name__ == "__main__":
    main()
