"""What ``train --resume`` checks before it continues a run, and what it says when it cannot.

A run resumes exactly (same batches, distortions and losses) only with its own config and its
own images; anything else is refused before a file changes, with the way forward: the run's
own ``config.json``, or a new run warm-started from its weights.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from ..data.dataset import DataError
from ..errors import ConfigError
from .config import TrainConfig
from .overrides import config_diff
from .paths import same_folders
from .runfolder import RunFolder

__all__ = ["check_resumable", "finished_note", "same_data"]


def check_resumable(ck: dict, cfg: TrainConfig, train_ds, folder: RunFolder) -> None:
    """ConfigError unless ``cfg`` is the config of checkpoint ``ck`` (``folder.last``),
    DataError unless ``train_ds`` holds the images it was trained on."""
    diff = same_folders(config_diff(ck["config"], json.loads(json.dumps(cfg.to_dict()))))
    if "data" in diff and ck.get("data_digest") and ck["data_digest"] == train_ds.digest:
        then, now = (Path(str(v)).name for v in diff["data"])
        if then != now:  # the datasets, and so the saved validation tasks, carry its name
            raise ConfigError(f"--resume: the data folder was renamed ({then} -> {now}); its "
                              "images are the same, but the run's splits and validation tasks "
                              f"are named after it: rename it back to {then} (moved elsewhere "
                              "under its own name, it resumes)")
        del diff["data"]  # the folder was moved: its images are the same, by content
    if diff:
        raise ConfigError(f"--resume: {folder.last} was trained with another config; "
                          "differences (checkpoint -> now): " + ", ".join(
                              f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items())
                          + "; to continue with the run's own settings (a preset may have "
                          f"changed since), use --config {folder.config}"
                          + _extend_hint(diff, folder.root))
    same_data(ck.get("data_digest"), train_ds, folder.last)


def finished_note(root: Path, steps: int) -> str:
    """What a resume of a run that did all its steps says."""
    return (f"{root} finished all its {steps} steps: nothing left to train (to train further, "
            f"start a new run from its weights: --init {shlex.quote(str(root))} --out "
            "NEW_FOLDER)")


def _extend_hint(diff: dict, root: Path) -> str:
    """For a resume that changes ``steps``: why a run is not extended in place, and what to do."""
    then, now = diff.get("steps", (0, 0))
    if not (isinstance(then, int) and isinstance(now, int) and now > then):
        return ""
    return (f". A run's step count is part of its config (the cosine schedule decays to 0 at "
            f"it), so a run is not extended in place: to train further, start a new run from "
            f"its weights (--init {shlex.quote(str(root))} --out NEW_FOLDER)")


def same_data(then: str | None, ds, where: Path) -> None:
    """DataError unless ``ds`` is the data ``where`` was made from (its content digest)."""
    if then and then != ds.digest:
        raise DataError(f"--resume: the images of {ds.name} changed since {where} was written "
                        f"(content digest {then[:12]} then, {ds.digest[:12]} now: images or "
                        "class names changed, or this version reads them otherwise); resuming "
                        "exactly needs the same images: restore them, or start a new run "
                        f"(another --out, with --set init={where.parent} to keep its weights)")
