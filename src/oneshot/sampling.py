"""Seeded samplers: N-way one-shot evaluation tasks (saved to disk), training pairs and episodes.

All indices are image indices into one :class:`~oneshot.data.Dataset`. Every sampler takes a seed
or a ``numpy.random.Generator``; none touches global random state. Classes may have different
numbers of images (a folder of the user's classes; at least 2 each): where they all have the
same number (Omniglot's 20 drawers) every sampler draws exactly the stream it always drew.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .data.dataset import DataError, Dataset
from .errors import ConfigError, OneshotError
from .io import atomic_write_bytes

__all__ = ["MODES", "TaskList", "TaskFileError", "sample_tasks", "character_grid",
           "ClassImages", "max_ways", "PairSampler", "EpisodeSampler"]

MODES = ("within-alphabet", "unstructured")
TASK_FORMAT, MAX_TASKS = 1, 100_000  # 100,000 tasks: about 17 MB at 20-way


def character_grid(ds: Dataset) -> np.ndarray:
    """int64 (C, K): the image indices of each character, ordered by drawer.

    Raises ValueError when characters have different numbers of images.
    """
    order = np.lexsort((ds.drawers, ds.labels))
    counts = np.bincount(ds.labels, minlength=len(ds.characters))
    if len(counts) and (counts != counts[0]).any():
        c = int(np.flatnonzero(counts != counts[0])[0])
        raise ValueError(f"character {ds.characters[c]!r} has {counts[c]} images, "
                         f"{counts[0]} expected (as for {ds.characters[0]!r})")
    if len(counts) and counts[0] < 2:
        raise ValueError(f"dataset {ds.name!r} has {counts[0]} image per character; 2 needed")
    return order.reshape(len(counts), -1)


class ClassImages:
    """Each class's image indices ordered by drawer, for classes of any sizes: class c's are
    ``order[start[c]: start[c] + count[c]]``. DataError for a class with fewer than
    ``min_images`` images, naming it."""

    def __init__(self, ds: Dataset, min_images: int = 2) -> None:
        self.order = np.lexsort((ds.drawers, ds.labels))
        self.count = np.bincount(ds.labels, minlength=len(ds.characters))
        self.start = np.concatenate([[0], np.cumsum(self.count)[:-1]]).astype(np.int64)
        few = np.flatnonzero(self.count < min_images)
        if len(few):
            c = int(few[0])
            raise DataError(f"character {ds.characters[c]!r} of dataset {ds.name!r} has "
                            f"{self.count[c]} image(s), at least {min_images} needed "
                            f"({len(few)} such)")
        self.uniform = bool(len(self.count)) and bool((self.count == self.count[0]).all())

    def __len__(self) -> int:
        return len(self.count)

    def at(self, chars: np.ndarray, pos: np.ndarray) -> np.ndarray:
        """Image indices of position(s) ``pos`` (0-based, < count) of classes ``chars``."""
        return self.order[self.start[chars] + pos]


def max_ways(ds: Dataset, mode: str) -> int:
    """The largest N of ``mode`` tasks ``ds`` allows: its classes (unstructured), or the most
    classes one alphabet has (within-alphabet)."""
    if mode != "within-alphabet":
        return len(ds.characters)
    return int(np.bincount(ds.char_alphabet, minlength=len(ds.alphabets)).max(initial=0))


def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


class TaskFileError(OneshotError, ValueError):
    """A task file is unreadable or was drawn for other data or settings."""


@dataclass(frozen=True, eq=False)
class TaskList:
    """N-way one-shot tasks over one dataset.

    query: int64 (T,) image index of each task's query.
    support: int64 (T, N) image indices of the candidates, in shuffled order.
    answer: int64 (T,) position in ``support`` of the query's own character.
    meta: split, digest, ways, mode, seed and count, saved with the tasks.
    """

    query: np.ndarray
    support: np.ndarray
    answer: np.ndarray
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.query)

    @property
    def ways(self) -> int:
        return int(self.support.shape[1])

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez(buf, query=self.query, support=self.support, answer=self.answer,
                 meta=np.array(json.dumps({**self.meta, "format": TASK_FORMAT}, sort_keys=True)))
        return buf.getvalue()

    @property
    def sha256(self) -> str:
        """Hash of the saved file's bytes (what reports print)."""
        return hashlib.sha256(self.to_bytes()).hexdigest()

    def save(self, path: str | os.PathLike) -> str:
        """Write atomically to ``path`` (.npz); returns the file's SHA-256."""
        data = self.to_bytes()
        atomic_write_bytes(path, data)
        return hashlib.sha256(data).hexdigest()

    @classmethod
    def load(cls, path: str | os.PathLike, dataset: Dataset | None = None,
             expect: dict | None = None) -> "TaskList":
        """Read a task file; with ``dataset``, check that it was drawn from that data; with
        ``expect`` ({meta key: value}, e.g. ways, tasks, mode, seed), that it was drawn with
        those settings. TaskFileError otherwise."""
        try:
            with np.load(Path(path), allow_pickle=False) as z:
                tl = cls(z["query"], z["support"], z["answer"], json.loads(str(z["meta"])))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            raise TaskFileError(f"{path}: not a readable task list ({e})") from e
        if not isinstance(tl.meta, dict) or tl.meta.get("format") != TASK_FORMAT:
            raise TaskFileError(f"{path}: not a task list of format {TASK_FORMAT}")
        want = dict(expect or {})
        if dataset is not None:
            want.update(split=dataset.name, digest=dataset.digest, images=len(dataset))
        for key, have in want.items():
            if tl.meta.get(key) != have:
                raise TaskFileError(f"{path}: tasks were drawn with {key}={tl.meta.get(key)!r}, "
                                    f"not {have!r}")
        n = len(tl.query)
        if tl.support.shape != (n, tl.meta.get("ways")) or tl.answer.shape != (n,):
            raise TaskFileError(f"{path}: arrays of shapes {tl.query.shape}, {tl.support.shape},"
                                f" {tl.answer.shape} do not fit {tl.meta.get('ways')}-way tasks")
        if dataset is not None and n and max(tl.query.max(), tl.support.max()) >= len(dataset):
            raise TaskFileError(f"{path}: image indices beyond the dataset's {len(dataset)}")
        return tl


def sample_tasks(ds: Dataset, ways: int, n_tasks: int, mode: str = "within-alphabet",
                 seed: int = 0) -> TaskList:
    """Draw ``n_tasks`` N-way one-shot tasks.

    Each task: N distinct characters (one alphabet for ``within-alphabet``, any for
    ``unstructured``), two distinct drawers d1 != d2; the support set holds the N characters as
    drawn by d1, the query is one of them (uniformly) as drawn by d2. The support order is random,
    so the answer's position is uniform over 0..N-1. When classes have different numbers of
    images, each support image is a random one of its class and the query another one.
    """
    if mode not in MODES:
        raise ConfigError(f"mode {mode!r}; expected one of {MODES}")
    if ways < 1:
        raise ConfigError(f"ways={ways}; at least 1 needed")
    if not 1 <= n_tasks <= MAX_TASKS:  # 10**8 tasks took gigabytes and hung without a word
        raise ConfigError(f"{n_tasks} tasks; 1 to {MAX_TASKS:,} expected (+-0.3 points at most)")
    cls = ClassImages(ds)
    rng = _rng(seed)
    C, K = len(cls), cls.count
    by_alpha = [np.flatnonzero(ds.char_alphabet == a) for a in range(len(ds.alphabets))]
    pools = [p for p in by_alpha if len(p) >= ways] if mode == "within-alphabet" else [np.arange(C)]
    if not pools or max(len(p) for p in pools) < ways:
        raise ConfigError(f"{mode} {ways}-way tasks need an alphabet with at least {ways} "
                         f"characters; dataset {ds.name!r} has at most "
                         f"{max((len(p) for p in by_alpha), default=0)}")
    query = np.empty(n_tasks, np.int64)
    support = np.empty((n_tasks, ways), np.int64)
    answer = rng.integers(0, ways, size=n_tasks)
    for t in range(n_tasks):
        pool = pools[rng.integers(len(pools))]
        chars = rng.choice(pool, size=ways, replace=False)
        a = chars[answer[t]]
        if cls.uniform:  # one drawer for the support set, another for the query
            d1, d2 = rng.choice(K[0], size=2, replace=False)
        else:  # a position per class, and another one of the answer's for the query
            d1 = rng.integers(0, K[chars])
            d2 = (d1[answer[t]] + 1 + rng.integers(0, K[a] - 1)) % K[a]
        support[t] = cls.at(chars, d1)
        query[t] = cls.at(a, d2)
    meta = {"split": ds.name, "digest": ds.digest, "images": len(ds), "ways": ways,
            "mode": mode, "seed": seed if isinstance(seed, int) else None, "tasks": n_tasks}
    return TaskList(query, support, answer, meta)


class PairSampler:
    """Balanced same/different pairs for binary training.

    Half of each batch are positives (one character, two different drawers, so never the same image
    twice); the other half negatives, a share ``same_alphabet`` of them drawn from the anchor's own
    alphabet. Anchors' characters are drawn uniformly over characters, or over alphabets first
    (``balance="alphabet"``).
    """

    def __init__(self, ds: Dataset, same_alphabet: float = 0.5, balance: str = "character",
                 seed: int | np.random.Generator = 0):
        if not 0.0 <= same_alphabet <= 1.0:
            raise ValueError(f"same_alphabet={same_alphabet}; a share in [0, 1] expected")
        if balance not in ("character", "alphabet"):
            raise ValueError(f"balance={balance!r}; 'character' or 'alphabet' expected")
        self.cls = ClassImages(ds)
        self.char_alphabet = ds.char_alphabet
        self.by_alpha = [np.flatnonzero(ds.char_alphabet == a) for a in range(len(ds.alphabets))]
        self.same_alphabet = same_alphabet
        self.balance = balance
        self.rng = _rng(seed)

    def _chars(self, n: int) -> np.ndarray:
        C = len(self.cls)
        if self.balance == "character":
            return self.rng.integers(0, C, size=n)
        alpha = self.rng.integers(0, len(self.by_alpha), size=n)
        return np.array([p[self.rng.integers(len(p))] for p in (self.by_alpha[a] for a in alpha)])

    def _other_in_alphabet(self, chars: np.ndarray) -> np.ndarray:
        out = np.empty_like(chars)
        for i, c in enumerate(chars):
            pool = self.by_alpha[self.char_alphabet[c]]
            if len(pool) < 2:  # an alphabet of one character: fall back to any other character
                out[i] = (c + 1 + self.rng.integers(len(self.cls) - 1)) % len(self.cls)
                continue
            j = self.rng.integers(len(pool) - 1)
            out[i] = pool[j + (pool[j] >= c)]  # skip c itself (pool is sorted)
        return out

    def sample(self, batch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(a, b, target): int64 (B,) image indices, float32 (B,) 1 = same character."""
        C = len(self.cls)
        npos = batch // 2
        nneg = batch - npos
        chars = self._chars(batch)
        K = self.cls.count[chars]  # one count for all (Omniglot): the same stream as a scalar
        d1 = self.rng.integers(0, K)
        d2 = (d1 + 1 + self.rng.integers(0, K - 1)) % K  # != d1
        other = (chars[npos:] + 1 + self.rng.integers(0, C - 1, size=nneg)) % C
        same = self.rng.random(nneg) < self.same_alphabet
        if same.any():
            other[same] = self._other_in_alphabet(chars[npos:][same])
        b_chars = np.concatenate([chars[:npos], other])
        a = self.cls.at(chars, d1)
        b = self.cls.at(b_chars, d2 % self.cls.count[b_chars])  # d2 itself when counts agree
        target = np.concatenate([np.ones(npos), np.zeros(nneg)]).astype(np.float32)
        return a, b, target


class EpisodeSampler:
    """N-way episodes mirroring the test: ``ways`` characters, one support image each
    (``shots`` > 1 allowed) and ``queries`` query images each, all different drawers (a class
    with fewer than ``shots + queries`` images gives as many queries as it has images left).

    Returns support int64 (N, shots), query int64 (Q,), query labels int64 (Q,) in 0..N-1.
    """

    def __init__(self, ds: Dataset, ways: int, shots: int = 1, queries: int = 1,
                 mode: str = "within-alphabet", seed: int | np.random.Generator = 0):
        if mode not in MODES:
            raise ConfigError(f"mode {mode!r}; expected one of {MODES}")
        self.cls = ClassImages(ds, min_images=shots + 1)
        by_alpha = [np.flatnonzero(ds.char_alphabet == a) for a in range(len(ds.alphabets))]
        self.pools = by_alpha if mode == "within-alphabet" else [np.arange(len(self.cls))]
        self.ways, self.shots, self.queries = ways, shots, queries
        self.rng = _rng(seed)

    def sample(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.episode(self.characters())

    def characters(self) -> np.ndarray:
        """An episode's classes: ``ways`` (or all of a smaller pool) from one pool, drawn
        uniformly (a pool: an alphabet, within-alphabet; all classes, unstructured)."""
        pool = self.pools[self.rng.integers(len(self.pools))]
        return self.rng.choice(pool, size=min(self.ways, len(pool)), replace=False)

    def episode(self, chars: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The images of an episode of classes ``chars`` (support, query, query labels)."""
        n = len(chars)
        K = self.cls.count[chars][:, None]
        r = self.rng.random((n, int(self.cls.count.max())))
        r[np.arange(r.shape[1])[None, :] >= K] = 2.0  # a smaller class: its own images first
        d = np.argsort(r, axis=1)[:, : self.shots + self.queries]
        idx = self.cls.at(chars[:, None], np.minimum(d, K - 1))
        support = idx[:, : self.shots]
        have = d[:, self.shots:] < K  # a class with fewer images gives fewer queries
        query = idx[:, self.shots:][have]
        labels = np.repeat(np.arange(n), have.sum(axis=1))
        return support, query, labels
