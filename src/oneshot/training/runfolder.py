"""A training run's folder: its files, its record of how it was made, its metrics log.

A run folder holds ``config.json`` (resolved config, command line, git revision, seeds, data
digest), ``metrics.jsonl`` (one JSON object per logged step and per validation),
``val_tasks.npz``, ``best.pt``, ``last.pt`` and ``training.png``; a run on a folder of classes
also ``data_split.json`` (which classes are for training, validation and test).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from ..errors import UsageError
from ..io import atomic_write_bytes, atomic_write_json
from ..locking import FileLock

__all__ = ["RunFolder", "git_revision"]

RUN_FILES = ("config.json", "metrics.jsonl", "val_tasks.npz", "best.pt", "last.pt",
             "training.png", "data_split.json")


def git_revision() -> str:
    """The package checkout's git revision (with -dirty), or "unknown"."""
    try:
        return subprocess.run(["git", "describe", "--always", "--dirty", "--abbrev=40"],
                              capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=5).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


class RunFolder:
    """Paths and records of the run folder ``root``."""

    def __init__(self, root: str | os.PathLike) -> None:
        self.root = Path(root)
        self.config = self.root / "config.json"
        self.metrics = self.root / "metrics.jsonl"
        self.val_tasks = self.root / "val_tasks.npz"
        self.best = self.root / "best.pt"
        self.last = self.root / "last.pt"
        self.plot = self.root / "training.png"
        self.data_split = self.root / "data_split.json"
        self.lock = FileLock(self.root / ".lock", timeout=0, what=f"run folder {self.root}",
                             tidy=True)

    def check_is_folder(self) -> None:
        """UsageError when ``--out`` names a file (nothing is written then)."""
        if self.root.exists() and not self.root.is_dir():
            raise UsageError(f"--out {self.root}: is a file, not a folder")

    def check_start(self, resume: bool, overwrite: bool = False) -> None:
        """Refuse what would lose the user's files: a new run in a folder that is not empty
        (unless ``overwrite``: the previous run's files are removed), a resume without last.pt."""
        if resume:
            if not self.last.exists():
                raise UsageError(f"--resume: {self.last} does not exist (the run stopped "
                                 "before its first checkpoint, or never ran here): start it "
                                 "again with --overwrite instead of --resume")
            return
        present = sorted(p.name for p in self.root.iterdir()
                         if p.name != ".lock") if self.root.is_dir() else []
        if present and not overwrite:
            what = "holds a run; use --resume, " if self.last.exists() else "is not empty; use "
            raise UsageError(f"--out {self.root} {what}--overwrite (replaces a run's files "
                             f"there) or another folder; it holds {', '.join(present[:8])}")
        for name in present if overwrite else ():
            if name in RUN_FILES:
                (self.root / name).unlink()

    def open(self, resume: bool, overwrite: bool = False) -> None:
        """Take the folder for this run: lock it (a second run into it is refused at once,
        naming the pid that holds it), then :meth:`check_start`. ``close`` releases it."""
        self.check_is_folder()
        self.lock.acquire()
        try:
            self.check_start(resume, overwrite)
        except BaseException:
            self.lock.release()
            raise

    def close(self) -> None:
        self.lock.release()

    def write_config(self, cfg_dict: dict, command: list[str] | None, seeds: dict,
                     **extra) -> None:
        atomic_write_json(self.config, {
            "config": cfg_dict, "command": command or sys.argv, "git_revision": git_revision(),
            "seeds": seeds, "torch": torch.__version__, **extra})

    def trim_metrics(self, upto: int) -> None:
        """Keep the metric lines up to step ``upto`` (a resumed run rewrites the rest); a line
        that is not a JSON object (a kill's torn last line, a damaged one) is dropped alone,
        not with every line after it."""
        keep = []
        if self.metrics.exists():
            for line in self.metrics.read_text(errors="replace").splitlines():
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                step = rec.get("step", 0) if isinstance(rec, dict) else None
                if isinstance(step, (int, float)) and step <= upto:
                    keep.append(line)
        atomic_write_bytes(self.metrics, "".join(line + "\n" for line in keep).encode())
