"""The training loop: a small :class:`Trainer` (step, validate, checkpoint, resume) with hooks.

The objective (pairs, episodes, or one you register) computes each step's loss; validation is
N-way one-shot on a saved task list of held-out alphabets; ``best.pt`` and ``last.pt`` are
written atomically at each validation; ``resume`` continues exactly (same batches, same
distortions, same losses). Under ``torchrun`` every rank steps and joins the collectives and
only rank 0 validates, runs the hooks and writes (see :mod:`.distributed`).
"""

from __future__ import annotations

import json
import logging
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..allocator import keep_freed_memory
from ..augment import make_distortion
from ..checkpoint import load_checkpoint, save_checkpoint
from ..errors import TrainingDiverged
from ..evaluation.nway import evaluate_tasks
from ..evaluation.scorers import EncoderScorer
from ..models import SiameseNet
from ..sampling import TaskList, sample_tasks
from .config import TrainConfig
from .data import TrainingImages, fit_ways, load_training_data
from .distributed import init_distributed
from .hooks import Hook, StepInfo, default_hooks
from .objectives import StepContext, batch_field, checked_loss, create_objective
from .optim import apply_momentum, build_optimizer, build_scheduler
from .resumption import check_resumable, finished_note, same_data
from .runfolder import RunFolder
from .warmstart import initial_model

__all__ = ["Trainer", "TrainResult", "VAL_SEED_OFFSET", "TrainingInterrupted", "StopRequest"]

log = logging.getLogger("oneshot.training")
VAL_SEED_OFFSET = 1_000_003  # validation tasks use seed + this, apart from the training stream


@dataclass(frozen=True)
class TrainResult:
    """out: the run folder; steps done; best validation accuracy (%) and its step (rank 0 only;
    NaN and -1 on other ranks); seconds spent in training steps; the model as it ended."""

    out: Path
    steps: int
    best_val: float
    best_step: int
    train_seconds: float
    model: SiameseNet


class StopRequest:
    """Set by a signal handler (see :func:`oneshot.training.run.train`); the loop stops at the
    end of the current step, after writing last.pt."""

    def __init__(self) -> None:
        self.requested = False
        self.signal_name = ""

    def request(self, signal_name: str) -> None:
        self.requested, self.signal_name = True, signal_name


class TrainingInterrupted(KeyboardInterrupt):
    """Training stopped on request after ``step`` steps; last.pt holds that state, so
    ``--resume`` continues exactly."""

    def __init__(self, folder: Path, step: int, signal_name: str = "") -> None:
        self.folder, self.step = folder, step
        why = f" ({signal_name})" if signal_name else ""
        super().__init__(f"interrupted{why} after step {step}; {folder / 'last.pt'} holds it. "
                         "Continue exactly with the same command plus --resume")


class Trainer:
    """Everything one run holds. Build it, then ``fit()``; ``step()`` does one update."""

    def __init__(self, cfg: TrainConfig, out: str | os.PathLike, data_dir=None, cache=None,
                 progress: bool = True, hooks: list[Hook] | None = None) -> None:
        self.cfg, self.folder = cfg, RunFolder(out)
        self.data_dir, self.cache = data_dir, cache
        self.dist, self.device = init_distributed(cfg.device, (batch_field(cfg),
                                                  getattr(cfg, batch_field(cfg))))
        base, self.val_ds, self.split = self._load_data(progress)
        self.train_ds = base.with_flips(images=False) if cfg.flips else base
        if cfg.rotations:
            self.train_ds = self.train_ds.with_rotations(images=False)
        self.model = initial_model(cfg).to(self.device)
        if cfg.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.net = self.dist.wrap(self.model, self.device)
        self.rng = np.random.default_rng(cfg.seed)
        self.objective = create_objective(cfg, self.train_ds, self.rng)
        self.gen = torch.Generator().manual_seed(cfg.seed + 1)
        self.data = TrainingImages(
            base, self.model.encoder.input_size, self.device,
            make_distortion(cfg.distort_p, cfg.distort_thickness, cfg.distort_args)
            if cfg.distort else None,
            self.gen, cfg.channels_last, rotations=cfg.rotations, flips=cfg.flips)
        self.opt = build_optimizer(self.model, cfg, self.device)
        if self.device.type == "cpu":
            keep_freed_memory()  # reuse each step's large buffers (after loading the data)
        self.sched = build_scheduler(self.opt, cfg)
        self.scorer = EncoderScorer(self.model, device=str(self.device), amp=cfg.amp)
        lake = cfg.log_lake and not cfg.data  # Lake's runs are Omniglot's: not for a folder
        self.hooks = default_hooks(lake, progress) if hooks is None else list(hooks)
        self.step_count, self.best, self.best_step, self.train_seconds = 0, -1.0, -1, 0.0
        self.val_tasks: TaskList | None = None
        self.last_val: dict = {}
        self.stop_request = StopRequest()

    def _load_data(self, progress: bool):
        """Training data (drawers; rotations are made later, after resizing), validation data
        and the folder's class split (None for named splits); rank 0 decodes and caches first,
        the other ranks then read the cache."""
        dist = self.dist
        if not dist.main:
            dist.barrier()
        out = load_training_data(self.cfg, self.data_dir, self.cache, progress,
                                 self.folder.data_split)
        if dist.main:
            dist.barrier()
        return out

    def context(self) -> StepContext:
        return StepContext(self.net, self.model.head, self.data.images, self.device,
                           self.dist.rank, self.dist.world, self.step_count)

    def step(self) -> tuple[float, int]:
        """One optimisation step: this rank's loss and the pairs the global step scored."""
        apply_momentum(self.opt, self.cfg, self.step_count)
        self.model.train()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cfg.amp):
            loss, pairs = checked_loss(self.objective.loss(self.context()), self.cfg.objective)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.sched.step()
        self.step_count += 1
        return float(loss.detach()), pairs

    # --- validation and checkpoints (rank 0) ---

    def prepare_validation(self, resume: bool = False) -> None:
        """Draw the validation tasks from the config and save them; a resumed run reloads its
        saved tasks, which must be the ones its config draws (split, N, count, mode, seed)."""
        cfg, path = self.cfg, self.folder.val_tasks
        want = {"ways": fit_ways(self.val_ds, cfg.val_ways, cfg.val_mode),
                "tasks": cfg.val_tasks, "mode": cfg.val_mode, "seed": cfg.seed + VAL_SEED_OFFSET}
        if resume and path.exists():
            same_data(TaskList.load(path).meta.get("digest"), self.val_ds, path)
            self.val_tasks = TaskList.load(path, self.val_ds, expect=want)
            return
        self.val_tasks = sample_tasks(self.val_ds, want["ways"], cfg.val_tasks, cfg.val_mode,
                                      seed=cfg.seed + VAL_SEED_OFFSET)
        self.val_tasks.save(path)

    def validate(self) -> dict:
        """Score the validation tasks, update best, run the hooks, write the checkpoints."""
        acc = evaluate_tasks(self.scorer, self.val_ds.images, self.val_tasks)
        improved = acc.value > self.best
        if improved:
            self.best, self.best_step = acc.value, self.step_count
        record = {"step": self.step_count, "val": acc.to_dict(), "best": self.best,
                  "train_seconds": round(self.train_seconds, 3)}
        for h in self.hooks:
            h.on_validate(self, record)
        log.info("step %d: validation %s (best %.2f at %d)", self.step_count, acc, self.best,
                 self.best_step)
        self.last_val = acc.to_dict()
        if improved:
            self.save(self.folder.best)
        self.save(self.folder.last)
        return record

    def rng_state(self) -> dict:
        return {"numpy": json.dumps(self.rng.bit_generator.state),
                "distort": self.gen.get_state(), "torch": torch.get_rng_state(),
                "objective": getattr(self.objective, "state_dict", dict)()}

    def save(self, path: Path) -> None:
        """Write a checkpoint of the state after ``step_count`` steps (hooks flush first, so
        the metrics log holds every line up to it)."""
        for h in self.hooks:
            getattr(h, "on_checkpoint", lambda t: None)(self)
        save_checkpoint(path, model=self.model, optimizer=self.opt, scheduler=self.sched,
                        step=self.step_count, best=self.best, config=self.cfg.to_dict(),
                        data_digest=self.train_ds.digest, rng=self.rng_state(),
                        metrics={"val": self.last_val, "best_step": self.best_step,
                                 "train_seconds": self.train_seconds})
        self.saved_at = time.monotonic()

    def resume(self) -> bool:
        """Continue from ``last.pt``: weights, optimiser, schedule, RNG streams, counters.
        True when the run did all its steps already (nothing left: a warning says how to
        train further)."""
        ck = load_checkpoint(self.folder.last)
        check_resumable(ck, self.cfg, self.train_ds, self.folder)
        self.model.load_state_dict(ck["state_dict"])
        self.opt.load_state_dict(ck["optimizer"])
        self.sched.load_state_dict(ck["scheduler"])
        self.rng.bit_generator.state = json.loads(ck["rng"]["numpy"])
        self.gen.set_state(ck["rng"]["distort"])
        torch.set_rng_state(ck["rng"]["torch"])
        getattr(self.objective, "load_state_dict", lambda s: None)(ck["rng"].get("objective", {}))
        self.step_count, self.best = ck["step"], ck["best"]
        self.last_val = ck["metrics"].get("val", {})
        self.best_step = ck["metrics"].get("best_step", -1)
        self.train_seconds = ck["metrics"].get("train_seconds", 0.0)
        log.info("resuming %s at step %d (best %.2f)", self.folder.root, self.step_count,
                 self.best)
        if self.step_count < self.cfg.steps:
            return False
        log.warning("%s", finished_note(self.folder.root, self.cfg.steps))
        return True

    def fit(self, stop_after: int | None = None) -> TrainResult:
        """Step until ``cfg.steps`` (or ``stop_after``), validating every ``val_every`` steps
        and at the end; stops early on ``patience`` or ``time_limit_min``; writes last.pt every
        ``checkpoint_minutes``; on a stop request (SIGINT/SIGTERM) writes last.pt and raises
        :class:`TrainingInterrupted`."""
        cfg, main = self.cfg, self.dist.main
        end = cfg.steps if stop_after is None else min(cfg.steps, stop_after)
        self.saved_at = time.monotonic()
        for h in self.hooks if main else ():
            h.on_start(self)
        try:
            while self.step_count < end:
                if self._one_step():
                    break
        finally:
            for h in self.hooks if main else ():
                h.on_end(self)
        return self.result()

    def result(self) -> TrainResult:
        """Where the run stands (best accuracy and step on the main process only)."""
        main = self.dist.main
        best, best_step = (self.best, self.best_step) if main else (float("nan"), -1)
        return TrainResult(self.folder.root, self.step_count, best, best_step,
                           self.train_seconds, self.model)

    def _one_step(self) -> bool:
        """One step and what follows it (hooks, validation, checkpoints); True to stop."""
        cfg, dist, main = self.cfg, self.dist, self.dist.main
        t0 = time.perf_counter()
        loss, pairs = self.step()
        self.train_seconds += time.perf_counter() - t0
        step = self.step_count
        if not math.isfinite(loss):
            raise TrainingDiverged(f"loss became {loss} at step {step}; lower the lr")
        logged = dist.mean(loss, self.device) if step % cfg.log_every == 0 else None
        info = StepInfo(step, loss, logged, pairs, self.train_seconds)
        for h in self.hooks if main else ():
            h.on_step(self, info)
        if dist.from_main(self.stop_request.requested, self.device):
            if main:
                self.save(self.folder.last)
            raise TrainingInterrupted(self.folder.root, step, self.stop_request.signal_name)
        timed_out = bool(cfg.time_limit_min) and dist.from_main(
            self.train_seconds >= 60 * cfg.time_limit_min, self.device)
        if step % cfg.val_every == 0 or step == cfg.steps or timed_out:
            stop = self._validate_and_decide(timed_out) if main else False
            return dist.from_main(stop, self.device) or timed_out
        if main and cfg.checkpoint_minutes and \
                time.monotonic() - self.saved_at >= 60 * cfg.checkpoint_minutes:
            self.save(self.folder.last)
        return False

    def _validate_and_decide(self, timed_out: bool) -> bool:
        """Validate; True when patience says stop."""
        self.validate()
        stale = (self.step_count - self.best_step) // self.cfg.val_every
        stop = bool(self.cfg.patience and stale >= self.cfg.patience)
        if stop:
            log.info("early stop at step %d: %d validations without improvement",
                     self.step_count, stale)
        if timed_out:
            log.info("time limit of %.1f min reached at step %d", self.cfg.time_limit_min,
                     self.step_count)
        return stop
