"""Hooks: what happens around the training loop besides optimising, on rank 0 only.

A hook may implement any of ``on_start(trainer)``, ``on_step(trainer, info)``,
``on_validate(trainer, record)``, ``on_checkpoint(trainer)`` (before a checkpoint is written)
and ``on_end(trainer)``; hooks run in list order, so a hook
that adds to the validation record (``LakeLog``) comes before the one that writes it
(``MetricsLog``). ``default_hooks`` is what ``train`` uses.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .loop import Trainer

__all__ = ["Hook", "StepInfo", "MetricsLog", "ProgressBar", "LakeLog", "PlotCurve",
           "default_hooks"]

log = logging.getLogger("oneshot.training")


@dataclass(frozen=True)
class StepInfo:
    """One finished step: its number, this rank's loss, the loss averaged over ranks when the
    step is logged (else None), pairs scored in the global step, training seconds so far."""

    step: int
    loss: float
    logged_loss: float | None
    pairs: int
    train_seconds: float


class Hook:
    """Base class with no-op methods; override what you need."""

    def on_start(self, trainer: Trainer) -> None: ...

    def on_step(self, trainer: Trainer, info: StepInfo) -> None: ...

    def on_validate(self, trainer: Trainer, record: dict) -> None: ...

    def on_checkpoint(self, trainer: Trainer) -> None: ...

    def on_end(self, trainer: Trainer) -> None: ...


class MetricsLog(Hook):
    """``metrics.jsonl``: a line per logged step (loss, lr, training seconds) and per
    validation; on resume, lines after the checkpoint's step are dropped first."""

    def on_start(self, trainer: Trainer) -> None:
        trainer.folder.trim_metrics(trainer.step_count)
        self.file = open(trainer.folder.metrics, "a")  # noqa: SIM115 (closed in on_end)

    def on_step(self, trainer: Trainer, info: StepInfo) -> None:
        if info.logged_loss is not None:
            self.file.write(json.dumps({"step": info.step, "loss": round(info.logged_loss, 6),
                                        "lr": trainer.sched.get_last_lr()[0],
                                        "train_seconds": round(info.train_seconds, 3)}) + "\n")
            self.file.flush()  # readable as it grows (tail -f), a line at a time

    def on_validate(self, trainer: Trainer, record: dict) -> None:
        self.file.write(json.dumps(record) + "\n")
        self.file.flush()

    def on_checkpoint(self, trainer: Trainer) -> None:
        """Every line up to the checkpoint's step is on disk before the checkpoint is."""
        self.file.flush()
        os.fsync(self.file.fileno())

    def on_end(self, trainer: Trainer) -> None:
        self.file.close()


class ProgressBar(Hook):
    """A tqdm bar on a terminal: loss, pairs/s, best validation so far."""

    def __init__(self) -> None:
        self.bar = None

    def on_start(self, trainer: Trainer) -> None:
        if sys.stderr.isatty():
            from tqdm import tqdm
            from tqdm.contrib.logging import logging_redirect_tqdm

            self.bar = tqdm(total=trainer.cfg.steps, initial=trainer.step_count, desc="train",
                            unit="step")
            self.redirect = logging_redirect_tqdm()  # log lines print above the bar
            self.redirect.__enter__()
            self.t0, self.pairs = time.perf_counter(), 0

    def on_step(self, trainer: Trainer, info: StepInfo) -> None:
        if self.bar is None:
            return
        self.pairs += info.pairs
        self.bar.update(1)
        if info.step % 10 == 0:
            rate = self.pairs / max(1e-9, time.perf_counter() - self.t0)
            loss = info.loss if info.logged_loss is None else info.logged_loss
            best = f"{trainer.best:.1f}%@{trainer.best_step}" if trainer.best >= 0 else "-"
            self.bar.set_postfix(loss=f"{loss:.3f}", pairs_s=f"{rate:.0f}", best_val=best)

    def on_validate(self, trainer: Trainer, record: dict) -> None:
        if self.bar is not None:  # show the new best at once, not 10 steps later
            self.bar.set_postfix(val=f"{record['val']['accuracy']:.1f}%",
                                 best_val=f"{trainer.best:.1f}%@{trainer.best_step}")

    def on_end(self, trainer: Trainer) -> None:
        if self.bar is not None:
            self.redirect.__exit__(None, None, None)
            self.bar.close()


class LakeLog(Hook):
    """Adds Lake's benchmark to each validation record (``log_lake``): for time-to-accuracy
    curves only, never used for selection."""

    def on_start(self, trainer: Trainer) -> None:
        from ..data.lake import load_lake_runs

        self.runs = load_lake_runs(trainer.data_dir, trainer.cache)

    def on_validate(self, trainer: Trainer, record: dict) -> None:
        from ..evaluation.lake import lake_benchmark

        record["lake"] = lake_benchmark(trainer.scorer, self.runs).accuracy.to_dict()


class PlotCurve(Hook):
    """``training.png`` from the metrics log at the end (skipped without matplotlib)."""

    def on_end(self, trainer: Trainer) -> None:
        try:
            from ..plots import plot_training

            plot_training(trainer.folder.metrics, trainer.folder.plot)
        except ImportError:  # matplotlib missing: the run is still complete
            log.warning("matplotlib not available; training.png not written")


def default_hooks(log_lake: bool, progress: bool) -> list[Hook]:
    """Lake logging (if asked), the metrics log, a progress bar (if asked), the plot."""
    hooks: list[Hook] = [LakeLog()] if log_lake else []
    hooks.append(MetricsLog())
    if progress:
        hooks.append(ProgressBar())
    return hooks + [PlotCurve()]
