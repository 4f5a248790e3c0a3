"""Named splits of the evaluation protocol, shipped as data in ``splits.json``.

- ``train`` / ``background``: the 30 background alphabets (all training happens here);
- ``validation``: the 10 evaluation alphabets that Lake's 20 runs do not use (model selection);
- ``test``: the 10 evaluation alphabets of Lake's runs (reported, never used for selection);
- ``evaluation``: all 20 evaluation alphabets; ``small1`` / ``small2``: Lake's minimal sets.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from functools import lru_cache
from importlib import resources

from .dataset import Dataset
from .omniglot import DataError, load_archive

__all__ = ["SPLITS", "split_names", "load_split"]


@lru_cache(maxsize=1)
def _table() -> dict:
    raw = json.loads(resources.files(__package__).joinpath("splits.json").read_text())
    return {k: v for k, v in raw.items() if not k.startswith("_")}


def split_names() -> list[str]:
    """Names accepted by :func:`load_split`."""
    return list(_table())


SPLITS = split_names()


def load_split(
    name: str,
    data_dir: str | os.PathLike | None = None,
    cache: str | os.PathLike | None = None,
    drawers: Iterable[int] | None = None,
    allow_download: bool = True,
    progress: bool = False,
) -> Dataset:
    """Load a named split (optionally restricted to some drawers) as a Dataset."""
    table = _table()
    if name not in table:
        raise DataError(f"unknown split {name!r}; expected one of {list(table)}")
    entry = table[name]
    ds = load_archive(entry["archive"], data_dir, cache, allow_download, progress)
    if entry["alphabets"] is None and drawers is None:
        return ds if ds.name == name else ds.select(name=name)
    return ds.select(alphabets=entry["alphabets"], drawers=drawers, name=name)
