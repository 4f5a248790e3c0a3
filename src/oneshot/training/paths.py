"""Folders named in a training config, made absolute when a run starts: ``config.json`` and
the checkpoints then name the same folders from any working directory (``--resume`` and
``--config RUN/config.json`` work elsewhere), and a resume compares folders, not spellings
(``grouped`` and ``./grouped/`` are one folder)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from ..datasets import is_split_name
from .config import TrainConfig

__all__ = ["PATH_FIELDS", "absolute_paths", "same_folders"]

PATH_FIELDS = ("data", "data_split", "train_split", "val_split")
ALWAYS_PATHS = ("data", "data_split")  # the others may name an Omniglot split instead


def _folder(key: str, value: Any) -> Any:
    """An absolute path for a folder or file given by path; split names and "" as they are."""
    if not isinstance(value, str) or not value or not Path(value).exists() \
            or (key not in ALWAYS_PATHS and is_split_name(value)):
        return value
    return str(Path(value).resolve())


def absolute_paths(cfg: TrainConfig) -> TrainConfig:
    """``cfg`` with its folders (``PATH_FIELDS`` that exist on disk) made absolute."""
    return replace(cfg, **{k: _folder(k, getattr(cfg, k)) for k in PATH_FIELDS})


def same_folders(diff: dict[str, tuple[Any, Any]]) -> dict[str, tuple[Any, Any]]:
    """A :func:`~.overrides.config_diff` without the path fields that name the same folder (a
    run made before paths were stored absolute, resumed from where it was started)."""
    return {k: (a, b) for k, (a, b) in diff.items()
            if k not in PATH_FIELDS or _folder(k, a) != _folder(k, b)}
