"""Lake's 20 official one-shot classification runs (``all_runs.zip``).

Semantics follow Lake's ``demo_classification.py``: in each run, the test and training file names
from ``class_labels.txt`` are sorted, the cost matrix is test x training, each test image is
assigned its lowest-cost (highest-score) training image, and it is correct when that training
file is the one ``class_labels.txt`` pairs it with.
"""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .omniglot import ENV_DATA, DataError

__all__ = ["LakeRun", "load_lake_runs", "find_lake_archive"]

RUNS = 20
ITEMS = 20
LAKE_FILENAME = "all_runs.zip"


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


def find_lake_archive(data_dir: str | os.PathLike | None = None) -> Path:
    """``all_runs.zip`` in ``data_dir`` or ``$ONESHOT_DATA``; DataError if absent."""
    for d in (data_dir, os.environ.get(ENV_DATA)):
        if d and (Path(d) / LAKE_FILENAME).is_file():
            return Path(d) / LAKE_FILENAME
    raise DataError(
        f"{LAKE_FILENAME} not found in data_dir={data_dir!r} or ${ENV_DATA}; get it from "
        "github.com/brendenlake/omniglot (python/one-shot-classification/all_runs.zip)"
    )


def _image(zf: zipfile.ZipFile, name: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(zf.read(name))) as im:
            a = np.asarray(im.convert("L"))
    except KeyError as e:
        raise DataError(f"{zf.filename}: missing {name}") from e
    except Exception as e:
        raise DataError(f"{zf.filename}: {name} is not a readable image ({e})") from e
    return (a < 128).astype(np.uint8)


def load_lake_runs(path: str | os.PathLike | None = None) -> list[LakeRun]:
    """The 20 runs from ``all_runs.zip`` (a path to the zip or its folder)."""
    p = Path(path) if path is not None else find_lake_archive()
    if p.is_dir():
        p = find_lake_archive(p)
    try:
        zf = zipfile.ZipFile(p)
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"{p}: not a readable zip archive ({e})") from e
    runs = []
    with zf:
        for r in range(1, RUNS + 1):
            name = f"run{r:02d}"
            try:
                text = zf.read(f"{name}/class_labels.txt").decode()
            except KeyError as e:
                raise DataError(f"{p}: missing {name}/class_labels.txt") from e
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
