"""Lake's 20 official one-shot classification runs (``all_runs.zip``).

Semantics follow Lake's ``demo_classification.py``: in each run, the test and training file names
from ``class_labels.txt`` are sorted, the cost matrix is test x training, each test image is
assigned its lowest-cost (highest-score) training image, and it is correct when that training
file is the one ``class_labels.txt`` pairs it with.
"""

from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..io import ZipLimitError, ZipLimits, open_zip, read_zip_entry
from .archives import IMAGE_SIZE, find_file
from .dataset import DataError
from .images import ImageError, read_binary

__all__ = ["LakeRun", "load_lake_runs", "find_lake_archive", "RUNS", "ITEMS"]

RUNS = 20   # runs in all_runs.zip
ITEMS = 20  # training images (= test images = classes) per run
LAKE_FILENAME = "all_runs.zip"
LAKE_URL = ("https://github.com/brendenlake/omniglot/raw/master/python/one-shot-classification/"
            + LAKE_FILENAME)
LAKE_MD5 = "e8996daecdf12afeeb4a53a179f06b19"  # the official file's MD5
# all_runs.zip has 880 entries, the largest under 1 KB: wide margins, small worst case
LAKE_LIMITS = ZipLimits(max_entries=2000, max_entry_bytes=64 << 10, max_total_bytes=16 << 20)


@dataclass(frozen=True)
class LakeRun:
    """One run. Images uint8 (20, 105, 105), ink = 1; ``answers[i]`` is the index into
    ``train_files`` of the correct training image for ``test_files[i]``."""

    name: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    train_images: np.ndarray
    test_images: np.ndarray
    answers: np.ndarray


def find_lake_archive(data_dir: str | os.PathLike | None = None,
                      cache: str | os.PathLike | None = None,
                      allow_download: bool = True) -> Path:
    """``all_runs.zip``, found like the Omniglot archives (:func:`.omniglot.find_file`)."""
    return find_file(LAKE_FILENAME, LAKE_URL, LAKE_MD5, data_dir, cache, allow_download)


def _entry(zf: zipfile.ZipFile, name: str) -> bytes:
    try:
        return read_zip_entry(zf, name, LAKE_LIMITS.max_entry_bytes)
    except KeyError as e:
        raise DataError(f"{zf.filename}: missing {name}") from e
    except (ZipLimitError, zipfile.BadZipFile, OSError, EOFError) as e:
        raise DataError(f"{zf.filename}: {name}: cannot read entry ({e})") from e


def _image(zf: zipfile.ZipFile, name: str) -> np.ndarray:
    data = _entry(zf, name)
    try:
        return read_binary(data, f"{zf.filename}:{name}", IMAGE_SIZE).astype(np.uint8)
    except ImageError as e:
        raise DataError(str(e)) from e


def load_lake_runs(path: str | os.PathLike | None = None, cache: str | os.PathLike | None = None,
                   allow_download: bool = True) -> list[LakeRun]:
    """The 20 runs from ``all_runs.zip``: a path to the zip, or a data folder / None (found
    like the Omniglot archives: that folder, ``$ONESHOT_DATA``, the cache, a download)."""
    p = Path(path) if path is not None else None
    if p is None or p.is_dir():
        p = find_lake_archive(p, cache, allow_download)
    try:
        zf = open_zip(p, LAKE_LIMITS)
    except ZipLimitError as e:
        raise DataError(f"{p}: refused, {e}") from e
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise DataError(f"{p}: not a readable zip archive ({e})") from e
    runs = []
    with zf:
        for r in range(1, RUNS + 1):
            name = f"run{r:02d}"
            text = _entry(zf, f"{name}/class_labels.txt").decode(errors="replace")
            pairs = [line.split() for line in text.splitlines() if line.strip()]
            if len(pairs) != ITEMS or any(len(q) != 2 for q in pairs):
                raise DataError(f"{p}: {name}/class_labels.txt has {len(pairs)} lines, "
                                f"{ITEMS} 'test train' pairs expected")
            answer_of = {t: tr for t, tr in pairs}
            test_files = sorted(t for t, _ in pairs)
            train_files = sorted(tr for _, tr in pairs)
            answers = np.array([train_files.index(answer_of[t]) for t in test_files])
            runs.append(LakeRun(
                name=name, train_files=tuple(train_files), test_files=tuple(test_files),
                train_images=np.stack([_image(zf, f) for f in train_files]),
                test_images=np.stack([_image(zf, f) for f in test_files]),
                answers=answers,
            ))
    return runs
