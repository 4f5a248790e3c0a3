"""Users' own images: ``root/<class>/<image>`` or ``root/<group>/<class>/<image>``.

A group plays the role of an Omniglot alphabet (within-group tasks and episodes, within-group
hard negatives); a flat folder is one group named after ``root``. Which files count and how the
layout is read: :mod:`.layout`; any file that counts must be a readable image (one error names
every one that is not).
Classes are "group/class", sorted; a class's images are its files sorted by name, numbered 1,
2, ... as Omniglot's drawers are; classes need not have the same number of images.

:func:`load_folder` decodes every image once (:mod:`.images`), turns it into a stored image by
the ``prepare`` function the caller gives (this layer knows nothing of the model's
preprocessing: :func:`oneshot.datasets.load_folder_dataset` passes
:func:`oneshot.preprocess.stored_image`), and keeps the result in the verified cache
(:mod:`.cache`) under a key over the files' names and bytes and the ``prepare`` identifier, so
a changed, added or removed file is noticed and the folder decoded again.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from .archives import IMAGE_SIZE, cache_dir
from .cache import (
    CacheExpect,
    cache_paths,
    check_cache_folder,
    content_digest,
    read_cached,
    write_cache,
)
from .dataset import DataError, Dataset
from .images import DRAFT_SIDE, ImageError, each_image, read_grey
from .layout import class_dirs, visible

__all__ = ["list_folder", "choose_per_class", "FolderIndex", "scan_folder", "load_folder",
           "MAX_FOLDER_IMAGES", "FOLDER_FORMAT"]

log = logging.getLogger(__name__)

MAX_FOLDER_IMAGES = 200_000  # about 2.2 GB of 105x105 images in memory; more is refused
FOLDER_FORMAT = "oneshot-folder-1"
Prepare = Callable[[np.ndarray, str], np.ndarray]  # grey float (H, W), name -> uint8 (S, S)


def list_folder(root: str | os.PathLike) -> list[tuple[Path, str]]:
    """(path, class name) of every image under ``root/<class>/``, or under
    ``root/<group>/<class>/`` with class names "<group>/<class>" (a grouped folder, as
    :func:`scan_folder` reads it), sorted; errors name the folder."""
    root = Path(root)
    if not root.is_dir():
        raise ImageError(f"{root}: " + ("a file, not a folder" if root.exists() else
                                        "no such folder") + f" (expected {root}/<class>/<image>)")
    if not visible(root, dirs=True):
        raise ImageError(f"{root}: no class folders (expected {root}/<class>/<image> or "
                         f"{root}/<group>/<class>/<image>)")
    try:
        grouped, dirs = class_dirs(root)
    except DataError as e:
        raise ImageError(str(e)) from e
    items, inside = [], []
    for group, c in dirs:
        name = f"{group}/{c.name}" if grouped else c.name
        files, inner = visible(c, dirs=False), visible(c, dirs=True)
        if not files:
            raise ImageError(f"{c}: class {name!r} has no images" + (
                f" (it holds folders: {inner[0].name!r}, ...; a class folder holds images)"
                if inner else ""))
        items += [(f, name) for f in files]
        inside += [str(f) for f in inner]
    if inside:
        log.warning("%s: left out %d folder(s) inside class folders (their images are not "
                    "enrolled): %s%s", root, len(inside), ", ".join(inside[:3]),
                    ", ..." if len(inside) > 3 else "")
    return items


def choose_per_class(items: list[tuple[Path, str]], k: int, pick: str = "first",
                     seed: int = 0) -> list[tuple[Path, str]]:
    """At most ``k`` of each class's items: the first by name (``pick="first"``) or a seeded
    random choice (``"random"``), in sorted order."""
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ImageError(f"images per class {k!r}; a whole number of at least 1 expected")
    if pick not in ("first", "random"):
        raise ImageError(f"pick {pick!r}; 'first' or 'random' expected")
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[tuple[Path, str]]] = {}
    for it in items:
        by_class.setdefault(it[1], []).append(it)
    out = []
    for mine in by_class.values():
        if pick == "random" and len(mine) > k:
            mine = [mine[i] for i in sorted(rng.choice(len(mine), k, replace=False))]
        out += mine[:k]
    return out


@dataclass(frozen=True)
class FolderIndex:
    """The layout of a class folder. classes: "group/class", sorted; files: each class's image
    paths, sorted by name; grouped: whether ``root`` holds groups of classes."""

    root: Path
    grouped: bool
    classes: tuple[str, ...]
    files: tuple[tuple[Path, ...], ...]

    @property
    def images(self) -> int:
        return sum(len(f) for f in self.files)

    @property
    def groups(self) -> list[str]:
        return sorted({c.split("/")[0] for c in self.classes})

    def stats(self) -> list[tuple[int, int] | None]:
        """(size, modification time in ns) of each file, None if gone: a change between two
        calls means a file changed meanwhile."""
        out = []
        for f in (f for files in self.files for f in files):
            try:
                st = f.stat()
                out.append((st.st_size, st.st_mtime_ns))
            except OSError:
                out.append(None)
        return out

    def key(self, prepare_id: str) -> str:
        """SHA-256 over the format, ``prepare_id``, the class names (a flat folder's include
        its own name: a copy elsewhere must not bring back these) and each file's relative
        name and bytes."""
        h = hashlib.sha256(f"{FOLDER_FORMAT}\0{prepare_id}\0".encode())
        h.update("\0".join(self.classes).encode() + b"\0\0")
        for files in self.files:
            for f in files:
                h.update(f"{f.relative_to(self.root).as_posix()}\0".encode())
                h.update(hashlib.sha256(f.read_bytes()).digest())
        return h.hexdigest()


def scan_folder(root: str | os.PathLike, max_images: int = MAX_FOLDER_IMAGES) -> FolderIndex:
    """The layout of ``root`` (see the module docstring); DataError for a missing folder, a
    mixed layout, a class folder without images, a name with "/" , or over ``max_images``."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (expected {root}/<class>/<image>)")
    grouped, dirs = class_dirs(root)
    named = sorted((f"{g}/{c.name}", c) for g, c in dirs)
    classes, files = [], []
    for name, folder in named:
        found = visible(folder, dirs=False)
        if not found:
            raise DataError(f"{folder}: class {name!r} has no images")
        nested = visible(folder, dirs=True)
        if nested:
            raise DataError(f"{folder}: class {name!r} holds folders ({nested[0].name!r}); "
                            "a class folder holds images only")
        classes.append(name)
        files.append(tuple(found))
    index = FolderIndex(root, grouped, tuple(classes), tuple(files))
    if index.images > max_images:
        raise DataError(f"{root}: {index.images} images, over the limit of {max_images}")
    return index


def dataset_name(root: Path) -> str:
    """A name for a folder's data that is safe in file names (task files carry it)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", root.resolve().name).strip("._") or "folder"


def decode_folder(index: FolderIndex, prepare: Prepare, progress: bool = False) -> Dataset:
    """Decode every image of ``index`` and ``prepare`` it: a Dataset of uint8 (N, 105, 105)."""
    n = index.images
    images = np.empty((n, IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    labels = np.repeat(np.arange(len(index.classes)), [len(f) for f in index.files])
    drawers = np.concatenate([np.arange(1, len(f) + 1) for f in index.files])
    paths = [p for files in index.files for p in files]
    it = enumerate(paths)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, total=n, desc=f"decode {index.root.name}", unit="img")

    def store(item: tuple[int, Path], name: str) -> None:
        img = prepare(read_grey(item[1], max_side=DRAFT_SIDE), name)  # large: reduced at once
        if img.shape != (IMAGE_SIZE, IMAGE_SIZE) or img.dtype != np.uint8:
            raise TypeError(f"prepare gave {img.dtype} {img.shape}, uint8 "
                            f"({IMAGE_SIZE}, {IMAGE_SIZE}) expected")
        images[item[0]] = img

    each_image(store, it, map(str, paths))  # all unusable images named at once
    groups = index.groups
    ds = Dataset(images=images, labels=labels.astype(np.int64), drawers=drawers.astype(np.int64),
                 characters=index.classes,
                 char_alphabet=np.array([groups.index(c.split("/")[0]) for c in index.classes],
                                        np.int64),
                 alphabets=tuple(groups), char_ids=np.zeros(len(index.classes), np.int64),
                 name=dataset_name(index.root), digest="", digest_verified=True)
    return replace(ds, digest=content_digest(ds))


def load_folder(root: str | os.PathLike, prepare: Prepare, prepare_id: str,
                cache: str | os.PathLike | None = None, progress: bool = False,
                verify: bool = True) -> Dataset:
    """The folder ``root`` as a Dataset, from the cache when the folder's content (and
    ``prepare_id``) is what was cached; else decoded (``prepare`` each image) and cached. A
    broken cache is rebuilt; a cache folder that cannot be written leaves the data in memory."""
    index = scan_folder(root)
    before = index.stats()
    key = index.key(prepare_id)
    name, label = f"folder-{key[:24]}", dataset_name(index.root)
    check_cache_folder(cache_dir(cache))
    want = CacheExpect(name, len(index.classes), index.images, None, len(index.groups),
                       {"source_key": key}, label)
    if cache_paths(name, cache)[1].exists():
        try:
            return read_cached(want, cache, verify)
        except DataError as e:
            log.warning("rebuilding the cache of %s: %s", index.root, e)
    ds = decode_folder(index, prepare, progress)
    if index.stats() != before:  # what was decoded may not be what the key was made from
        log.warning("%s: files changed while being read; the data is used but not cached "
                    "(run again on a settled folder to cache it)", index.root)
        return ds
    try:
        write_cache(ds, name, cache, {"source_key": key, "source": str(index.root.resolve()),
                                      "prepare": prepare_id, "grouped": index.grouped})
    except OSError as e:
        log.warning("cannot write the cache of %s in %s (%s); using the decoded data from "
                    "memory", index.root, cache_dir(cache), e)
    return ds
