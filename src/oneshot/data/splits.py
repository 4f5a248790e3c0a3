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

__all__ = ["SPLITS", "split_names", "load_split", "shares_alphabets", "protocol_error"]


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


# Lake's minimal sets are drawn from the background alphabets (and share Greek and Latin)
_FAMILY = {"small1": "background", "small2": "background"}


def shares_alphabets(a: str, b: str) -> bool:
    """Whether the named splits ``a`` and ``b`` hold an alphabet in common (False when either
    is not a split name, e.g. a folder)."""
    table = _table()
    if a not in table or b not in table:
        return False
    (fa, la), (fb, lb) = ((_FAMILY.get(table[n]["archive"], table[n]["archive"]),
                           table[n]["alphabets"]) for n in (a, b))
    return fa == fb and (la is None or lb is None or bool(set(la) & set(lb)))


def protocol_error(train: str, val: str) -> str | None:
    """What is wrong with training on split ``train`` and selecting on ``val`` (DESIGN.md: test
    alphabets are reported, never trained or selected on), or None. Selecting on the test
    alphabets is allowed (the tutorial did) but biases every test figure: callers warn."""
    if shares_alphabets(train, "test"):
        return (f"train_split={train!r} holds test alphabets (Lake's 10, which are reported, "
                "never trained on); train on 'train' or on a folder of your own")
    if shares_alphabets(train, val):
        return (f"train_split={train!r} and val_split={val!r} share alphabets: validation would "
                "score characters the model trains on")
    return None
