"""``train``: check the config, take the run folder, train, release it.

The caller's torch thread count and global RNG state are restored afterwards; the run folder is
locked while the run lasts (see :class:`.runfolder.RunFolder`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading

import torch

from ..checkpoint import build_skeleton
from ..data.layout import refuse_inside
from ..data.partition import fingerprints
from ..embedding import resolve_device
from ..errors import ConfigError, ModelError
from .config import TrainConfig, registered_names
from .distributed import shut_down
from .hooks import Hook
from .loop import VAL_SEED_OFFSET, StopRequest, Trainer, TrainResult
from .paths import PATH_FIELDS, absolute_paths
from .runfolder import RunFolder
from .warmstart import resolve_init

__all__ = ["train", "check_config"]

log = logging.getLogger("oneshot.training")


@contextlib.contextmanager
def _torch_state(threads: int, seed: int):
    """Threads and the global torch seed for the run, restored afterwards."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            yield
    finally:
        torch.set_num_threads(before)


def train(cfg: TrainConfig, out: str | os.PathLike, data_dir=None, cache=None,
          resume: bool = False, progress: bool = True, stop_after: int | None = None,
          command: list[str] | None = None, hooks: list[Hook] | None = None,
          overwrite: bool = False) -> TrainResult:
    """Train a Siamese network as ``cfg`` says, writing the run folder ``out``.

    ``resume`` continues from ``out/last.pt`` exactly (same batches, same distortions, same
    losses). A new run needs an empty (or absent) ``out``, or ``overwrite``; the folder is
    locked while the run lasts. ``stop_after`` ends the run after that many steps (as if killed
    after its last checkpoint); ``cfg.steps`` still defines the schedule. ``hooks`` replace the
    default ones (:func:`oneshot.training.hooks.default_hooks`). The caller's torch thread
    count and global RNG state are restored afterwards. With ``cfg.init`` the network is the
    init model's (:func:`.warmstart.resolve_init`), starting from its weights.
    """
    cfg = absolute_paths(resolve_init(cfg))
    check_config(cfg)
    for key in PATH_FIELDS:  # folders given by path are absolute now; split names are not
        if isinstance(getattr(cfg, key), str) and os.path.isabs(getattr(cfg, key)):
            refuse_inside(out, getattr(cfg, key), "--out", f"the {key} folder")
    if cfg.members > 1:
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise ConfigError("members > 1 trains its own processes; do not start it under "
                              "torchrun")
        from .ensemble import train_ensemble

        return train_ensemble(cfg, out, data_dir, cache, resume, overwrite, command)
    folder = RunFolder(out)
    main = os.environ.get("RANK", "0") == "0"
    if main:
        folder.open(resume, overwrite)
    try:
        with _torch_state(cfg.threads, cfg.seed):
            return _run(cfg, out, data_dir, cache, resume, progress, stop_after, command, hooks)
    finally:
        if main:
            folder.close()


@contextlib.contextmanager
def _stop_on_signals(request: StopRequest):
    """SIGINT and SIGTERM ask the loop to stop after the current step (which then writes
    last.pt); a second SIGINT interrupts at once. Only in the main thread (signals can only be
    handled there); the previous handlers come back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        if request.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        log.warning("%s: stopping after this step and writing last.pt (Ctrl-C again to "
                    "stop at once)", signal.Signals(signum).name)
        request.request(signal.Signals(signum).name)

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _run(cfg, out, data_dir, cache, resume, progress, stop_after, command, hooks
         ) -> TrainResult:
    t = Trainer(cfg, out, data_dir, cache, progress, hooks)
    try:
        # a resume goes first: a config that differs is refused before any file changes; a
        # finished run is checked (its task file too) but left as it is (config.json keeps
        # the command that made it)
        finished = bool(resume) and t.resume()
        if finished:
            if t.dist.main and t.folder.val_tasks.exists():
                t.prepare_validation(resume=True)
            shut_down(t.dist)
            return t.result()
        if t.dist.main:
            _start_files(t, cfg, resume, command)
        with _stop_on_signals(t.stop_request):
            result = t.fit(stop_after)
    except BaseException:
        t.net = t.model  # the DDP wrapper goes first: destroyed after its process group, it
        shut_down(t.dist, wait=False)  # hung a worker's exit in ~ProcessGroupGloo (seen once)
        raise
    t.net = t.model
    shut_down(t.dist)
    return result


def _start_files(t: Trainer, cfg: TrainConfig, resume: bool, command) -> None:
    """The main process's files of a (re)started run: validation tasks, class split, config."""
    t.prepare_validation(resume)
    extra = {}
    if t.split is not None:  # a folder: which classes train, validate and test
        t.split.save(t.folder.data_split, seen=fingerprints(t.train_ds.images)
                     + fingerprints(t.val_ds.images))
        extra["data_split"] = {"file": t.folder.data_split.name, "by": t.split.by,
                               **{p: len(names) for p, names in t.split.parts.items()}}
    t.folder.write_config(
        cfg.to_dict(), command,
        {"training": cfg.seed, "validation_tasks": cfg.seed + VAL_SEED_OFFSET},
        data_digest=t.train_ds.digest, val_tasks_sha256=t.val_tasks.sha256,
        val_ways=t.val_tasks.ways, device=str(t.device), world_size=t.dist.world, **extra)


def check_config(cfg: TrainConfig) -> None:
    """Registered names (encoder, head, objective, optimizer, schedule) still exist (a config
    is checked when made; this re-checks before a run), the model can be built from its
    arguments, the device exists. ConfigError naming what is wrong otherwise."""
    for name, (value, known) in registered_names(cfg).items():
        if value not in known:
            raise ConfigError(f"config {name}={value!r}; registered: {known}")
    try:
        build_skeleton(cfg.model_spec)
    except (ConfigError, ModelError):
        raise
    except (ValueError, TypeError, RuntimeError) as e:
        raise ConfigError(f"config encoder={cfg.encoder!r} encoder_args={cfg.encoder_args} "
                          f"head={cfg.head!r}: the model cannot be built ({e})") from e
    resolve_device(cfg.device)
