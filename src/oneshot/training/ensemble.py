"""One command for an ensemble: ``members`` > 1 trains the members side by side (one process and
one thread each, seeds ``seed``, ``seed + 1``, ...) in ``OUT/member-K``, then writes the exact
ensemble of their best checkpoints as one model file, ``OUT/model.pt`` (float16 weights), with
its validation accuracy and its open-set threshold in the record.

A run folder of an ensemble therefore holds ``config.json``, ``member-K/`` (complete run folders,
each with its log ``member-K.log`` beside it) and ``model.pt``; ``--resume`` resumes every
member that has not finished; SIGINT/SIGTERM stop every member after its current step.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from ..checkpoint import export_model, load_checkpoint, load_model
from ..errors import ConfigError, OneshotError, UsageError
from ..io import atomic_write_bytes, atomic_write_json
from ..locking import FileLock
from ..models import build_model, ensemble, with_views
from ..models.ensemble import check_ensemble_head
from .config import TrainConfig
from .data import fit_ways, load_training_data
from .loop import VAL_SEED_OFFSET, TrainingInterrupted, TrainResult
from .overrides import config_diff
from .paths import same_folders
from .runfolder import RUN_FILES, RunFolder

__all__ = ["train_ensemble", "member_configs"]

log = logging.getLogger("oneshot.training")


def member_configs(cfg: TrainConfig) -> list[TrainConfig]:
    """The members' configs: one member each, seeds ``seed + k``, one thread unless set; the
    views belong to the ensemble's model.pt, not to the members."""
    return [replace(cfg, members=1, views="", seed=cfg.seed + k, threads=cfg.threads or 1)
            for k in range(cfg.members)]


def _launch(folder: RunFolder, k: int, cfg: TrainConfig, data_dir, cache) -> subprocess.Popen:
    """Start member ``k`` as ``python -m oneshot train --config member-K.json``."""
    out = folder.root / f"member-{k}"
    spec = folder.root / f"member-{k}.json"
    atomic_write_json(spec, cfg.to_dict())
    cmd = [sys.executable, "-m", "oneshot", "--quiet", "train", "--config", str(spec),
           "--out", str(out)]
    cmd += ["--resume"] if (out / "last.pt").exists() else []
    cmd += ["--data-dir", str(data_dir)] if data_dir else []
    cmd += ["--cache", str(cache)] if cache else []
    with open(folder.root / f"member-{k}.log", "a") as log_file:  # the child keeps its copy
        return subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT,
                                env={**os.environ, "OMP_NUM_THREADS": str(cfg.threads)},
                                preexec_fn=_die_with_parent if sys.platform == "linux" else None)


def _die_with_parent() -> None:
    """In a member, before it starts (Linux): SIGTERM when the parent dies (kill -9, a
    crash), so that it stops after its step and writes last.pt for ``--resume`` instead of
    training on, orphaned, in a folder the next command takes (prctl PR_SET_PDEATHSIG)."""
    import ctypes

    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))  # 1: PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before that: no signal will come
        os.kill(os.getpid(), signal.SIGTERM)


def _wait_all(procs: list[subprocess.Popen], folder: RunFolder) -> None:
    """Wait for every member; a signal is passed on to all of them (they stop after their
    step and write last.pt). Raises TrainingInterrupted or OneshotError for failures."""
    def forward(signum, frame):
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        codes = [p.wait() for p in procs]
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    if any(c == 130 for c in codes):
        raise TrainingInterrupted(folder.root, -1, "members interrupted")
    failed = [k for k, c in enumerate(codes) if c != 0]
    if failed:
        logs = ", ".join(str(folder.root / f"member-{k}.log") for k in failed)
        raise OneshotError(f"ensemble members {failed} failed; see {logs}")


def _member_record(run: Path) -> dict:
    best, last = load_checkpoint(run / "best.pt"), load_checkpoint(run / "last.pt")
    return {"run": run.name, "seed": best["config"]["seed"], "best_step": best["step"],
            "best_val": best["best"], "steps": last["step"],
            "train_minutes": round(last["metrics"].get("train_seconds", 0.0) / 60, 2)}


def _combine(folder: RunFolder, cfg: TrainConfig, data_dir, cache) -> TrainResult:
    """Ensemble the members' best checkpoints into model.pt; score and calibrate it."""
    from ..calibration import calibrate_record
    from ..evaluation.nway import evaluate_tasks
    from ..evaluation.scorers import EncoderScorer
    from ..sampling import sample_tasks

    runs = [folder.root / f"member-{k}" for k in range(cfg.members)]
    members = [_member_record(r) for r in runs]
    net = ensemble([load_model(r / "best.pt")[0] for r in runs])
    if cfg.views:
        net = with_views(net, cfg.views)
    path = folder.root / "model.pt"
    export_model(net, path, {}, half=True)
    net, _ = load_model(path)  # score exactly what ships: float16 weights back as float32
    # the members' own validation data: a folder's validation part (its split saved beside
    # model.pt, for evaluate's leakage check), or the named split
    split_file = runs[0] / "data_split.json"
    _, val, split = load_training_data(cfg, data_dir, cache, saved_split=split_file)
    if split is not None:
        atomic_write_bytes(folder.data_split, split_file.read_bytes())
    tasks = sample_tasks(val, fit_ways(val, cfg.val_ways, cfg.val_mode), cfg.val_tasks,
                         cfg.val_mode, seed=cfg.seed + VAL_SEED_OFFSET)
    acc = evaluate_tasks(EncoderScorer(net), val.images, tasks)
    record = {"members": members, "validation": acc.to_dict()}
    try:
        record["open_set"] = calibrate_record(net, val, trials=min(500, 10 * cfg.val_tasks))
    except OneshotError as e:  # a small folder: classify then names a class for every image
        log.warning("no open-set threshold in %s: %s", path, e)
    export_model(net, path, record, half=True)
    log.info("ensemble of %d members: validation %s; written %s", cfg.members, acc, path)
    minutes = sum(m["train_minutes"] for m in members)
    return TrainResult(folder.root, max(m["steps"] for m in members), acc.value, -1,
                       60 * minutes, net)


def _take_folder(folder: RunFolder, cfg: TrainConfig, resume: bool, overwrite: bool) -> None:
    """Lock the folder; a new ensemble needs it empty (``overwrite`` removes an earlier
    ensemble's files), a resumed one its own config."""
    folder.lock.acquire()
    present = sorted(p.name for p in folder.root.iterdir() if p.name != ".lock")
    if resume:
        if not folder.config.exists():
            raise UsageError(f"--resume: {folder.config} does not exist")
        try:
            old = json.loads(folder.config.read_text())
            old = old.get("config") if isinstance(old, dict) else None
            if not isinstance(old, dict):
                raise ValueError('no "config" object in it')
        except (OSError, ValueError) as e:  # (UnicodeDecodeError and JSON's errors too)
            raise ConfigError(f"--resume: {folder.config} is not a readable run config "
                              f"({e})") from e
        diff = same_folders(config_diff(old, json.loads(json.dumps(cfg.to_dict()))))
        if diff:
            raise ConfigError(f"--resume: {folder.root} was trained with another config; "
                              "differences: " + ", ".join(f"{k}: {a!r} -> {b!r}"
                                                          for k, (a, b) in diff.items())
                              + "; to continue with the run's own settings (a preset may have "
                              f"changed since), use --config {folder.config}")
    elif present and not overwrite:
        raise UsageError(f"--out {folder.root} is not empty; use --resume, --overwrite or "
                         f"another folder; it holds {', '.join(present[:8])}")
    elif present:
        for name in present:
            p = folder.root / name
            if name.startswith("member-") and p.is_dir():
                with FileLock(p / ".lock", timeout=0, what=f"ensemble member folder {p}"):
                    pass  # refused while a member (an orphan of a killed run) still trains
                shutil.rmtree(p)
            elif name.startswith("member-") or name in RUN_FILES + ("model.pt",):
                p.unlink()


def train_ensemble(cfg: TrainConfig, out: str | os.PathLike, data_dir=None, cache=None,
                   resume: bool = False, overwrite: bool = False,
                   command: list[str] | None = None) -> TrainResult:
    """Train ``cfg.members`` members side by side and combine them (module docstring)."""
    try:  # refused now, not after the members' hours of training
        check_ensemble_head(build_model(cfg.model_spec).head, f"config members={cfg.members} "
                            f"with head={cfg.head!r}")
    except ValueError as e:
        raise ConfigError(str(e)) from e
    folder = RunFolder(out)
    folder.check_is_folder()
    try:
        _take_folder(folder, cfg, resume, overwrite)
        folder.write_config(cfg.to_dict(), command,
                            {"members": [c.seed for c in member_configs(cfg)]})
        procs = [_launch(folder, k, c, data_dir, cache)
                 for k, c in enumerate(member_configs(cfg))]
        _wait_all(procs, folder)
        return _combine(folder, cfg, data_dir, cache)
    finally:
        folder.close()
