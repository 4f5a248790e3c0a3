"""Class-disjoint splits of one dataset into train, validation and test parts, seeded and saved.

Used when a folder of the user's classes is both what a model trains on and what it is tested
on (``oneshot train --data DIR``): the units are whole groups (a grouped folder with at least
``MIN_GROUPS`` groups, as Omniglot splits by alphabet) or classes; ``SHARES`` of them, rounded
and at least one unit each, go to validation and test, the rest to training. A part with fewer
than ``MIN_CLASSES`` classes, or a class with fewer than 2 images, is refused with the counts.
The split is saved as JSON (the run folder's ``data_split.json``) and can be reused to train
or evaluate on exactly the same classes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from ..io import atomic_write_json
from .cache import content_digest
from .dataset import DataError, Dataset

__all__ = ["PARTS", "SHARES", "MIN_CLASSES", "MIN_GROUPS", "ClassSplit", "split_classes",
           "SPLIT_FORMAT", "fingerprints", "shared_pictures"]

PARTS = ("train", "validation", "test")
SHARES = {"validation": 0.2, "test": 0.2}  # of the units (groups or classes); train the rest
MIN_CLASSES = {"train": 2, "validation": 2, "test": 2}  # 2: the smallest N-way task, N = 2
MIN_GROUPS = 3  # a grouped folder is split by group when it has this many groups (one a part)
MIN_IMAGES = 2  # per class: one to enrol (support), one to test (query)
SPLIT_FORMAT = "oneshot-class-split-1"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClassSplit:
    """by: "groups" or "classes"; parts: {part: sorted group or class names}; seed: what drew
    it (None when given by hand); dataset: the name and digest of the data it was drawn from;
    seen_images: a run's saved :func:`fingerprints` of what it trained and selected on."""

    by: str
    parts: dict
    seed: int | None = None
    dataset: dict | None = None
    seen_images: tuple = ()

    def characters(self, ds: Dataset, part: str) -> list[str]:
        """The classes of ``ds`` in ``part``."""
        if part not in PARTS:
            raise DataError(f"unknown part {part!r}; expected one of {list(PARTS)}")
        names = set(self.parts[part])
        if self.by == "classes":
            return [c for c in ds.characters if c in names]
        return [c for c in ds.characters if c.split("/")[0] in names]

    def select(self, ds: Dataset, part: str) -> Dataset:
        """The Dataset of ``part``'s classes, named "<name>-<part>", with its own content
        digest (so task files and checkpoints of a part outlive changes to the others)."""
        sub = ds.select(characters=self.characters(ds, part), name=f"{ds.name}-{part}")
        return replace(sub, digest=content_digest(sub))

    def counts(self, ds: Dataset) -> dict[str, dict[str, int]]:
        return {p: self.select(ds, p).counts() for p in PARTS}

    def to_dict(self) -> dict:
        return {"format": SPLIT_FORMAT, "by": self.by, "seed": self.seed,
                "dataset": self.dataset, **{p: list(self.parts[p]) for p in PARTS}}

    def save(self, path: str | os.PathLike, seen: list[str] | None = None) -> None:
        """Write the split; ``seen``: the :func:`fingerprints` of the images a run trained and
        selected on, kept as "seen_images" so that evaluations can spot them under any name."""
        atomic_write_json(path, {**self.to_dict(), **({"seen_images": seen} if seen else {})})

    @classmethod
    def load(cls, path: str | os.PathLike, ds: Dataset | None = None) -> "ClassSplit":
        """Read a saved split; with ``ds``, check that it names only groups or classes of
        ``ds`` and that its parts are disjoint. DataError naming the file otherwise."""
        try:
            d = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise DataError(f"{path}: not a readable class split ({e})") from e
        if not isinstance(d, dict) or d.get("format") != SPLIT_FORMAT \
                or d.get("by") not in ("groups", "classes") \
                or not all(isinstance(d.get(p), list) for p in PARTS):
            raise DataError(f"{path}: not a class split of format {SPLIT_FORMAT} (by groups "
                            f"or classes, lists {', '.join(PARTS)})")
        seen = d.get("seen_images")
        split = cls(d["by"], {p: sorted(map(str, d[p])) for p in PARTS}, d.get("seed"),
                    d.get("dataset"), tuple(map(str, seen)) if isinstance(seen, list) else ())
        if ds is not None:
            split = split.renamed_for(ds, str(path))
            split.check(ds, str(path))
        return split

    def renamed_for(self, ds: Dataset, where: str = "class split") -> "ClassSplit":
        """This split with a flat folder's classes moved to ``ds``'s one group: a flat folder's
        classes are "<folder name>/<class>", so a split saved for it names the folder, and the
        same folder renamed or copied elsewhere would not match by name."""
        listed = [n for p in PARTS for n in self.parts[p]]
        old = {n.split("/")[0] for n in listed}
        if self.by != "classes" or len(ds.alphabets) != 1 or len(old) != 1 \
                or old == set(ds.alphabets):
            return self
        new = ds.alphabets[0]
        moved = {p: sorted(f"{new}/{n.split('/', 1)[-1]}" for n in self.parts[p]) for p in PARTS}
        if not set(moved["train"] + moved["validation"] + moved["test"]) <= set(ds.characters):
            return self  # not the same classes: check() names what is missing
        log.info("%s: classes of folder %r applied to the same classes of folder %r", where,
                 old.pop(), new)
        return replace(self, parts=moved)

    def check(self, ds: Dataset, where: str = "class split") -> None:
        have = set(ds.alphabets if self.by == "groups" else ds.characters)
        listed = [n for p in PARTS for n in self.parts[p]]
        missing = sorted(set(listed) - have)
        if missing:
            raise DataError(f"{where}: {self.by} {missing[:5]} are not in dataset {ds.name!r}")
        if len(set(listed)) != len(listed):
            twice = sorted({n for n in listed if listed.count(n) > 1})
            raise DataError(f"{where}: {self.by} {twice[:5]} are in more than one part")
        _check_sizes(self, ds)


def _check_sizes(split: ClassSplit, ds: Dataset) -> None:
    counts = np.bincount(ds.labels, minlength=len(ds.characters))
    few = [f"{ds.characters[c]!r} ({counts[c]})" for c in np.flatnonzero(counts < MIN_IMAGES)]
    if few:
        raise DataError(f"dataset {ds.name!r}: {len(few)} class(es) with fewer than "
                        f"{MIN_IMAGES} images: {', '.join(few[:5])}; every class needs one "
                        "image to enrol and one to test")
    have = {p: len(split.characters(ds, p)) for p in PARTS}
    if any(have[p] < MIN_CLASSES[p] for p in PARTS):
        n = len(ds.characters)
        size = f"{n} class{'es' if n != 1 else ''}" + (
            f" in {len(ds.alphabets)} groups" if split.by == "groups" else "")
        raise DataError(
            f"dataset {ds.name!r} ({size}) is too "
            f"small to split by {split.by}: train / validation / test get "
            f"{have['train']} / {have['validation']} / {have['test']} classes, at least "
            f"{MIN_CLASSES['train']} / {MIN_CLASSES['validation']} / {MIN_CLASSES['test']} "
            "needed; " + ("add groups or classes, try another split seed, split by classes "
                          "(--set split_by=classes)" if split.by == "groups" else
                          f"add classes (at least {_fewest_classes()} for a split by classes)")
            + ", or give a split file (--data-split)")


def _fewest_classes() -> int:
    """The fewest classes that a split by classes gives every part its minimum."""
    n = 1
    while True:
        held = {p: max(1, round(SHARES[p] * n)) for p in SHARES}
        held["train"] = n - sum(held.values())
        if all(held[p] >= MIN_CLASSES[p] for p in PARTS):
            return n
        n += 1


def split_classes(ds: Dataset, seed: int = 0, by: str = "auto") -> ClassSplit:
    """Split ``ds``'s groups (``by="groups"``) or classes (``"classes"``; ``"auto"``: groups
    when there are at least ``MIN_GROUPS``) into train, validation and test, seeded."""
    if by == "auto":
        by = "groups" if len(ds.alphabets) >= MIN_GROUPS else "classes"
    if by not in ("groups", "classes"):
        raise DataError(f"split by {by!r}; 'auto', 'groups' or 'classes' expected")
    units = list(ds.alphabets if by == "groups" else ds.characters)
    order = np.random.default_rng(seed).permutation(len(units))
    n_val = max(1, round(SHARES["validation"] * len(units)))
    n_test = max(1, round(SHARES["test"] * len(units)))
    cut = {"validation": order[:n_val], "test": order[n_val: n_val + n_test],
           "train": order[n_val + n_test:]}
    split = ClassSplit(by, {p: sorted(units[i] for i in cut[p]) for p in PARTS}, seed,
                       {"name": ds.name, "digest": ds.digest})
    _check_sizes(split, ds)
    return split


def fingerprints(images: np.ndarray) -> list[str]:
    """A short hash (16 hex digits of SHA-256) of each stored image (uint8 (N, S, S)): the same
    picture gives the same fingerprint whatever its file or class is called."""
    return [hashlib.sha256(np.ascontiguousarray(im).tobytes()).hexdigest()[:16] for im in images]


def shared_pictures(split: ClassSplit, ds: Dataset) -> list[str]:
    """The same picture (by :func:`fingerprints`) in classes of different parts of ``split``:
    "class (part) = class (part)" for each such pair of classes, sorted. Any is leakage: the
    test part is then not new to a model trained on the train part."""
    where: dict[str, tuple[str, str]] = {}
    found = set()
    for part in PARTS:
        sub = split.select(ds, part)
        for f, label in zip(fingerprints(sub.images), sub.labels):
            mine = (sub.characters[label], part)
            other = where.setdefault(f, mine)
            if other[1] != part:
                found.add(f"{other[0]} ({other[1]}) = {mine[0]} ({part})")
    return sorted(found)
