"""Users' own images laid out as ``root/<class>/<image>`` (any format Pillow reads).

Hidden files (names starting with ".") are ignored; any other file that is not a readable image
is an error naming it, as is a class folder with no image.
"""

from __future__ import annotations

import os
from pathlib import Path

from .images import ImageError

__all__ = ["list_folder"]


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
