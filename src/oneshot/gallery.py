"""Gallery files: a classifier's enrolled embeddings and labels, saved atomically, read with
every field checked, and updated under a lock so that concurrent writers never lose classes.

Format (``.npz``, no pickles): ``embeddings`` float32 (K, D) and ``meta``, a JSON string with
``format``, ``model_fingerprint``, ``model_spec``, ``preprocessing`` (``input_size``, ``crop``)
and ``labels`` (K strings).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .errors import OneshotError, unreadable_reason
from .io import atomic_write_bytes, check_replaceable
from .locking import FileLock

__all__ = ["GalleryError", "GalleryFile", "read_gallery", "write_gallery", "gallery_lock",
           "GALLERY_FORMAT", "LOCK_TIMEOUT", "check_gallery_target"]

GALLERY_FORMAT = "oneshot-gallery-1"
LOCK_TIMEOUT = 60.0  # seconds a writer waits for another one to finish


class GalleryError(OneshotError, ValueError):
    """A gallery file is unreadable, damaged, or belongs to another model."""


@dataclass(frozen=True)
class GalleryFile:
    embeddings: torch.Tensor  # float32 (K, D)
    labels: list[str]
    fingerprint: str
    crop: bool
    meta: dict


def write_gallery(path: str | os.PathLike, embeddings: torch.Tensor, labels: list[str],
                  fingerprint: str, model_spec: dict, input_size: int, crop: bool) -> None:
    """Write a gallery atomically (the old file stays whole until the new one is complete);
    GalleryError rather than write over anything but a gallery (``check_gallery_target``)."""
    check_gallery_target(path)
    meta = {"format": GALLERY_FORMAT, "model_fingerprint": fingerprint,
            "model_spec": model_spec, "preprocessing": {"input_size": input_size, "crop": crop},
            "labels": labels}
    buf = io.BytesIO()
    np.savez(buf, embeddings=embeddings.float().numpy(), meta=np.array(json.dumps(meta)))
    atomic_write_bytes(path, buf.getvalue())


def check_gallery_target(path: str | os.PathLike) -> None:
    """A gallery may be written over an earlier gallery (of any model) or a new path; never over
    a folder, a link, a device or another kind of file (a user's image, say)."""
    check_replaceable(path, _is_gallery, "a oneshot gallery (.npz)", GalleryError)


def _is_gallery(path: Path) -> bool:
    try:
        with np.load(path, allow_pickle=False) as z:
            return json.loads(str(z["meta"])).get("format") == GALLERY_FORMAT
    except Exception:  # numpy, zip and json raise many kinds for foreign files
        return False


def read_gallery(path: str | os.PathLike) -> GalleryFile:
    """Read and check a gallery; GalleryError naming the file and the problem otherwise."""
    path = Path(path)
    if not path.is_file():
        raise GalleryError(f"{path}: no such gallery file")
    try:
        with np.load(path, allow_pickle=False) as z:
            emb = np.asarray(z["embeddings"])
            meta = json.loads(str(z["meta"]))
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as e:
        raise GalleryError(f"{path}: not a readable gallery ({unreadable_reason(path, e)}); "
                           "enrol again into a new file") from e
    return GalleryFile(_checked_embeddings(path, emb), *_checked_meta(path, meta, len(emb)))


def _checked_embeddings(path: Path, emb: np.ndarray) -> torch.Tensor:
    if emb.ndim != 2 or emb.dtype.kind != "f":
        raise GalleryError(f"{path}: embeddings of shape {emb.shape} and type {emb.dtype}; "
                           "float (images, dimensions) expected")
    if not np.isfinite(emb).all():
        raise GalleryError(f"{path}: embeddings hold NaN or infinite values")
    return torch.from_numpy(emb.astype(np.float32))


def _checked_meta(path: Path, meta, n: int) -> tuple[list[str], str, bool, dict]:
    if not isinstance(meta, dict):
        raise GalleryError(f"{path}: metadata is a {type(meta).__name__}, an object expected")
    if meta.get("format") != GALLERY_FORMAT:
        raise GalleryError(f"{path}: format {meta.get('format')!r}, {GALLERY_FORMAT} expected")
    labels, fp, pre = meta.get("labels"), meta.get("model_fingerprint"), meta.get("preprocessing")
    if not isinstance(labels, list) or not all(isinstance(x, str) and x for x in labels):
        raise GalleryError(f"{path}: 'labels' must be a list of non-empty strings")
    if len(labels) != n:
        raise GalleryError(f"{path}: {n} embeddings but {len(labels)} labels")
    if not isinstance(fp, str):
        raise GalleryError(f"{path}: 'model_fingerprint' missing or not a string")
    if not isinstance(pre, dict) or not isinstance(pre.get("crop"), bool):
        raise GalleryError(f"{path}: 'preprocessing' must hold a boolean 'crop'")
    return labels, fp, pre["crop"], meta


def gallery_lock(path: str | os.PathLike, timeout: float = LOCK_TIMEOUT) -> FileLock:
    """The lock that writers of ``path`` hold while they read, change and write it."""
    p = Path(path)
    return FileLock(p.with_name(p.name + ".lock"), timeout, what=f"gallery {p}")
