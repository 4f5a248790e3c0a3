"""Datasets by reference: an Omniglot split name or a folder of your own classes.

Everywhere a split name is accepted (``oneshot data``, ``evaluate``, ``show-task``, the
training config's ``train_split`` / ``val_split``, the Python API) a folder path works too:
``DIR/<class>/<image>`` or ``DIR/<group>/<class>/<image>`` (see :mod:`oneshot.data.folder`). A
name of an Omniglot split (``train``, ``test``, ...) always means that split; write ``./test``
for a folder of that name.

Layering: :mod:`oneshot.data` decodes the files (its one image decoder) and caches the result,
but knows nothing of the model's preprocessing; this module hands it
:func:`oneshot.preprocess.stored_image` (grey, ink = 1 whatever the polarity, padded square,
cleaned as the classifier cleans (the same steps),
105 x 105, binarised), so a folder's Dataset holds what the classifier makes of the same files.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from .data.dataset import DataError, Dataset
from .data.folder import load_folder
from .data.layout import refuse_inside
from .data.partition import PARTS, ClassSplit, split_classes
from .data.splits import load_split, split_names
from .errors import UsageError
from .preprocess import STORED_PREPARE_ID, stored_image

log = logging.getLogger(__name__)

__all__ = ["load_data", "load_folder_dataset", "is_split_name", "warn_if_shadowed", "folder_split",
           "load_folder_part", "check_folder_options", "PARTS"]


def is_split_name(ref: str | os.PathLike) -> bool:
    """Whether ``ref`` names an Omniglot split (else it is a folder path)."""
    return isinstance(ref, str) and ref in split_names()


def warn_if_shadowed(refs) -> None:
    """Warn of each split name in ``refs`` (as the user typed them) that is also a folder in
    the working directory: the name means the split (a folder needs ./NAME), and says so."""
    for ref in refs:
        if is_split_name(ref) and Path(ref).is_dir():
            log.warning("%r means Omniglot's %s split; a folder of that name is here too: "
                        "write ./%s for the folder", ref, ref, ref)


def load_folder_dataset(root: str | os.PathLike, cache: str | os.PathLike | None = None,
                        progress: bool = False) -> Dataset:
    """The folder ``root`` as a Dataset (decoded once into the cache, keyed by its content)."""
    return load_folder(root, stored_image, STORED_PREPARE_ID, cache, progress)


def load_data(ref: str | os.PathLike, data_dir: str | os.PathLike | None = None,
              cache: str | os.PathLike | None = None, drawers=None,
              allow_download: bool = True, progress: bool = False) -> Dataset:
    """An Omniglot split by name, or a folder of classes by path (``drawers``: keep only those
    image positions, 1-based)."""
    if is_split_name(ref):
        return load_split(str(ref), data_dir, cache, drawers, allow_download, progress)
    if not Path(ref).is_dir():
        raise DataError(f"{ref!r} is neither an Omniglot split ({', '.join(split_names())}) "
                        "nor a folder of classes (DIR/<class>/<image>)")
    ds = load_folder_dataset(ref, cache, progress)
    return ds if drawers is None else ds.select(drawers=drawers)


def folder_split(ds: Dataset, split_file: str | os.PathLike | None = None, seed: int = 0,
                 by: str = "auto") -> ClassSplit:
    """The class split of ``ds``: read from ``split_file`` (checked against ``ds``), else
    drawn with ``seed`` (see :func:`oneshot.data.partition.split_classes`)."""
    if split_file:
        return ClassSplit.load(split_file, ds)
    return split_classes(ds, seed, by)


def load_folder_part(ref: str | os.PathLike, part: str = "all",
                     split_file: str | os.PathLike | None = None, seed: int = 0,
                     by: str = "auto", cache: str | os.PathLike | None = None,
                     progress: bool = False) -> Dataset:
    """One part ("train", "validation", "test", or "all") of a folder's class split: what
    ``oneshot evaluate --data DIR --part test`` scores. With the same ``split_file`` (a run's
    ``data_split.json``) or the same ``seed`` and ``by`` as ``oneshot train --data DIR``, the
    parts are the run's."""
    ds = load_folder_dataset(ref, cache, progress)  # --data is a folder, even one named "test"
    if part == "all":
        if split_file is not None:  # not used, but a split of another folder is a mistake
            ClassSplit.load(split_file, ds)
        return ds
    if part not in PARTS:
        raise DataError(f"part {part!r}; expected 'all' or one of {list(PARTS)}")
    return folder_split(ds, split_file, seed, by).select(ds, part)


def check_folder_options(args) -> None:
    """UsageError for ``evaluate`` options that contradict: --part, --data-split, --split-seed
    need --data; --split and --full exclude it; a split is given or drawn; --out is outside it."""
    if not args.data:
        given = [o for o, v in (("--part", args.part != "all"), ("--data-split", args.data_split),
                                ("--split-seed", args.split_seed is not None)) if v]
        if given:
            raise UsageError(f"{', '.join(given)}: with --data DIR only (Omniglot: --split)")
    elif args.split or args.full:
        raise UsageError("--split and --full choose Omniglot's alphabets, not with --data")
    elif args.data_split and args.split_seed is not None:
        raise UsageError("--data-split gives a class split, --split-seed draws one: not both")
    else:
        refuse_inside(args.out, args.data)
