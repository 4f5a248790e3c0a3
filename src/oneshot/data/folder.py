"""Users' own images laid out as ``root/<class>/<image>`` (any format Pillow reads).

Hidden files (names starting with ".") are ignored; any other file that is not a readable image
is an error naming it, as is a class folder with no image.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..preprocess import ImageError, preprocess

__all__ = ["FolderImages", "list_folder", "load_folder"]


@dataclass(frozen=True)
class FolderImages:
    """images: float32 (N, 1, S, S), ink = 1; labels: int64 (N,) into ``classes``."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    paths: tuple[Path, ...]


def list_folder(root: str | os.PathLike) -> list[tuple[Path, str]]:
    """(path, class name) of every file under ``root/<class>/``, sorted; errors name the folder."""
    root = Path(root)
    if not root.is_dir():
        raise ImageError(f"{root}: not a folder (expected root/<class>/<image>)")
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ImageError(f"{root}: no class folders (expected root/<class>/<image>)")
    items = []
    for c in classes:
        files = sorted(f for f in c.iterdir() if f.is_file() and not f.name.startswith("."))
        if not files:
            raise ImageError(f"{c}: class {c.name!r} has no images")
        items += [(f, c.name) for f in files]
    return items


def load_folder(root: str | os.PathLike, size: int, crop: bool = False) -> FolderImages:
    """Read and preprocess every image under ``root`` (see :mod:`oneshot.preprocess`)."""
    items = list_folder(root)
    classes = tuple(sorted({c for _, c in items}))
    paths = tuple(p for p, _ in items)
    images = preprocess(list(paths), size, crop)
    labels = torch.tensor([classes.index(c) for _, c in items], dtype=torch.int64)
    return FolderImages(images, labels, classes, paths)
