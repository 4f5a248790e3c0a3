"""Which files of a folder are the user's images, and how its top levels read.

Hidden files and folders (names starting with "."), file browsers' system files and files whose
suffix is not an image format's (:func:`is_image_name`: notes, PDFs, ...) are left out, the last
with a warning naming them. A folder is flat (``root/<class>/<image>``) or grouped
(``root/<group>/<class>/<image>``): :func:`class_dirs` decides, and refuses a mix.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PIL import Image

from ..errors import UsageError
from .dataset import DataError

__all__ = ["SYSTEM_FILES", "NOT_IMAGE_SUFFIXES", "is_skipped", "is_image_name", "visible",
           "has_images", "image_count", "class_dirs", "refuse_inside"]

log = logging.getLogger(__name__)


# Files that file browsers leave in image folders (Windows thumbnails and folder settings)
SYSTEM_FILES = frozenset({"thumbs.db", "ehthumbs.db", "desktop.ini", "__macosx"})


def is_skipped(name: str) -> bool:
    """Whether a file or folder name is not the user's data: hidden (".DS_Store", ".git", ...)
    or one of ``SYSTEM_FILES``, in any case."""
    return name.startswith(".") or name.lower() in SYSTEM_FILES


# Suffixes Pillow registers that are not pictures to read here (documents, video, data)
NOT_IMAGE_SUFFIXES = frozenset(".pdf .eps .ps .mpeg .mpg .h5 .hdf .grib .bufr .fit .fits .wmf "
                               ".emf".split())


def is_image_name(name: str) -> bool:
    """Whether a file is taken as an image by its name: no suffix, or (in any case) one that
    Pillow registers (with its plugins, e.g. pillow-heif's .heic) and not ``NOT_IMAGE_SUFFIXES``."""
    suffix = Path(name).suffix.lower()
    return not suffix or (suffix in Image.registered_extensions()
                          and suffix not in NOT_IMAGE_SUFFIXES)


def visible(folder: Path, dirs: bool) -> list[Path]:
    """Sorted sub-folders (``dirs``) or image files of ``folder``, but for ``is_skipped``
    names; other files are left out with a warning naming them."""
    every = sorted(p for p in folder.iterdir() if not is_skipped(p.name))
    broken = [p.name for p in every if p.is_symlink() and not p.exists()]
    if broken and not dirs:  # said once, with the files
        log.warning("%s: left out %d link(s) to nothing: %s%s", folder, len(broken),
                    ", ".join(broken[:5]), ", ..." if len(broken) > 5 else "")
    found = [p for p in every if (p.is_dir() if dirs else p.is_file())]
    other = [] if dirs else [p.name for p in found if not is_image_name(p.name)]
    if other:
        log.warning("%s: left out %d file(s) that are not images by their name: %s%s", folder,
                    len(other), ", ".join(other[:5]), ", ..." if len(other) > 5 else "")
    return [p for p in found if dirs or is_image_name(p.name)]


def has_images(folder: Path) -> bool:
    """Whether ``folder`` itself holds an image file (quietly: no warnings)."""
    return image_count(folder, stop=1) > 0


def image_count(folder: Path, stop: int | None = None) -> int:
    """How many image files ``folder`` itself holds (quietly; counting stops at ``stop``)."""
    n = 0
    for p in folder.iterdir():
        n += p.is_file() and not is_skipped(p.name) and is_image_name(p.name)
        if stop is not None and n >= stop:
            break
    return n


def class_dirs(root: Path) -> tuple[bool, list[tuple[str, Path]]]:
    """(grouped, [(group, class folder)]): grouped when some top folders are groups: they hold
    folders, and fewer images of their own than folders with images (none, or a stray image
    beside the class folders: left out), else flat (a class folder may hold a sub-folder, say
    thumbnails: it is still a class); a mix is an error naming them."""
    tops = visible(root, dirs=True)
    if not tops:
        raise DataError(f"{root}: no class folders (expected {root}/<class>/<image> or "
                        f"{root}/<group>/<class>/<image>)")
    subs = {t: visible(t, dirs=True) for t in tops}
    nested = [t for t in tops
              if subs[t] and image_count(t) < max(1, sum(map(has_images, subs[t])))]
    stray = [str(f) for t in [root, *nested] for f in visible(t, dirs=False)]
    if stray:  # a class is a folder: an image beside the class folders belongs to none
        log.warning("%s: left out %d image(s) that are in no class folder: %s%s", root,
                    len(stray), ", ".join(stray[:3]), ", ..." if len(stray) > 3 else "")
    if not nested:
        return False, [(root.name or "folder", t) for t in tops]
    flat = [t.name for t in tops if t not in nested]
    if flat:
        holders = [f"{t.name}/{visible(t, dirs=True)[0].name}" for t in nested[:3]]
        raise DataError(f"{root}: mixes classes and groups of classes: {holders} are "
                        f"sub-folders, beside {flat[:3]}, which hold images of their own; use "
                        "either <class>/<image> or <group>/<class>/<image> throughout (a link "
                        "to a folder counts as a folder)")
    return True, [(t.name, c) for t in nested for c in visible(t, dirs=True)]


def refuse_inside(out, folder, out_flag: str = "--out", folder_flag: str = "--data") -> None:
    """UsageError when ``out`` (a folder a command writes) is ``folder`` (a data folder) or
    inside it: what it writes (reports, plots, checkpoints) would be read as the data's classes
    and images by the next command on that folder."""
    o, f = Path(out).resolve(), Path(folder).resolve()
    if f.is_dir() and (o == f or f in o.parents):
        raise UsageError(f"{out_flag} {out} is inside {folder_flag} {folder}: what it writes "
                         "would be read as images of that folder next time; write it outside")
