"""Gallery files: a classifier's enrolled embeddings and labels, saved atomically, read with
every field checked, and updated under a lock so that concurrent writers never lose classes
(:func:`enrol_into_gallery`: a folder of classes into a gallery file).

Format (``.npz``, no pickles): ``embeddings`` float32 (K, D) and ``meta``, a JSON string with
``format``, ``model_fingerprint``, ``model_spec``, ``preprocessing`` (``input_size``, ``crop``,
``version``: absent before 2026-12-02) and ``labels`` (K strings).
"""

from __future__ import annotations

import io
import json
import logging
import os
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from .data.folder import choose_per_class, list_folder
from .errors import OneshotError, UsageError, unreadable_reason
from .io import atomic_write_bytes, check_replaceable
from .locking import FileLock

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from .inference import OneShotClassifier

__all__ = ["GalleryError", "GalleryFile", "read_gallery", "write_gallery", "gallery_lock",
           "GALLERY_FORMAT", "LOCK_TIMEOUT", "check_gallery_target", "enrol_into_gallery",
           "EXISTING"]

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
                  fingerprint: str, model_spec: dict, input_size: int, crop: bool,
                  version: int) -> None:
    """Write a gallery atomically (the old file stays whole until the new one is complete);
    GalleryError rather than write over anything but a gallery (``check_gallery_target``).
    ``version``: the oldest ``oneshot.preprocess.VERSION`` its embeddings were made with."""
    check_gallery_target(path)
    meta = {"format": GALLERY_FORMAT, "model_fingerprint": fingerprint,
            "model_spec": model_spec, "labels": labels,
            "preprocessing": {"input_size": input_size, "crop": crop, "version": version}}
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
        raise GalleryError(f"{path}: " + ("a folder; a gallery file (.npz) expected"
                                          if path.is_dir() else "no such gallery file"))
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
    if not isinstance(pre, dict) or not isinstance(pre.get("crop"), bool) or not isinstance(
            pre.get("version", 1), int) or isinstance(pre.get("version"), bool):
        raise GalleryError(f"{path}: 'preprocessing' must hold a boolean 'crop' (and a whole "
                           "number 'version')")
    return labels, fp, pre["crop"], meta


def gallery_lock(path: str | os.PathLike, timeout: float = LOCK_TIMEOUT) -> FileLock:
    """The lock that writers of ``path`` hold while they read, change and write it."""
    check_gallery_target(path)  # a folder ("."), a link...: refused before a lock is made
    p = Path(path)
    return FileLock(p.with_name(p.name + ".lock"), timeout, what=f"gallery {p}",
                    remove=True)


EXISTING = ("skip", "replace", "append")  # what enrolling does with a class already there


def enrol_into_gallery(clf: OneShotClassifier, gallery: str | os.PathLike,
                       folder: str | os.PathLike, replace: bool = False,
                       existing: str | None = None, per_class: int | None = None,
                       pick: str = "first", seed: int = 0) -> dict[str, list[str]]:
    """Enrol ``folder`` (DIR/<class>/<image>, or DIR/<group>/<class>/<image> with classes
    "<group>/<class>": :func:`oneshot.data.folder.list_folder`) into the gallery file, under
    its lock: concurrent
    writers wait for each other, so no update is lost. ``replace`` starts a new gallery.

    ``per_class``: enrol at most that many images of each class (``pick``: the first by name,
    or "random" with ``seed``). ``existing``: what to do with a class the gallery already has:
    "skip" it, "replace" its images, or "append" to them (images already enrolled are not
    added twice); None refuses (GalleryError naming the classes) rather than guess. Nothing
    is written unless every image could be read. Returns {"added" | "skipped" | "replaced" |
    "appended": [classes]}.
    """
    if existing is not None and existing not in EXISTING:
        raise UsageError(f"existing={existing!r}; one of {list(EXISTING)} (or None) expected")
    if pick != "first" and per_class is None:  # it would be ignored: every image is enrolled
        raise UsageError(f"pick={pick!r} chooses which images of each class to enrol, so it "
                         "needs per_class (--per-class K)")
    items = list_folder(folder)
    if per_class is not None:
        items = choose_per_class(items, per_class, pick, seed)
    # read and embed before the lock, which is then held only to merge and write (a long
    # enrolment made other writers time out); skipped classes as the gallery has them now
    have = _classes(gallery) if existing == "skip" and not replace else set()
    todo = [str(p) for p, c in items if c not in have]
    embedded = dict(zip(todo, clf.embed(todo))) if todo else {}
    with gallery_lock(gallery):
        if Path(gallery).exists() and not replace:
            try:
                clf.load_gallery(gallery)
            except GalleryError as e:
                raise GalleryError(f"{e} (or, to drop its classes and start a new gallery, "
                                   "--replace)") from e
        done = _enrol_items(clf, items, existing, gallery, embedded)
        clf.save(gallery)
    return done


def _classes(gallery: str | os.PathLike) -> set[str]:
    """The classes of ``gallery`` now (none if absent or unreadable: said under the lock)."""
    try:
        return set(read_gallery(gallery).labels) if Path(gallery).is_file() else set()
    except OneshotError:
        return set()


def _enrol_items(clf: OneShotClassifier, items: list, existing: str | None, gallery,
                 embedded: dict) -> dict:
    have = set(clf.classes)
    classes = list(dict.fromkeys(c for _, c in items))
    clash = [c for c in classes if c in have]
    if clash and existing is None:
        raise GalleryError(f"{gallery}: {len(clash)} of these classes are already enrolled "
                           f"({', '.join(clash[:5])}{', ...' if len(clash) > 5 else ''}); say "
                           "what to do with them: --existing skip, replace or append")
    if existing == "skip":
        items = [(p, c) for p, c in items if c not in have]
    old_emb, old_labels = clf.enrolled
    late = [str(p) for p, _ in items if str(p) not in embedded]  # a class skipped, then gone
    embedded = {**embedded, **dict(zip(late, clf.embed(late)))} if late else embedded
    emb = torch.stack([embedded[str(p)] for p, _ in items]) if items else old_emb[:0]
    labels = [c for _, c in items]
    _warn_enrolled_elsewhere(emb, labels, old_emb, old_labels, gallery)
    if existing == "replace":
        for c in clash:
            clf.remove(c)
    elif existing == "append":  # the same image twice would only weigh its class more
        ids = {c: i for i, c in enumerate(dict.fromkeys(old_labels + labels))}
        same = (torch.tensor([ids[c] for c in labels])[:, None]
                == torch.tensor([ids[c] for c in old_labels])[None, :])
        d = torch.cdist(emb, old_emb, compute_mode="donot_use_mm_for_euclid_dist")
        seen = ((d < 1e-4) & same).any(1)
        keep = (~seen).nonzero().flatten().tolist()
        emb, labels = emb[keep], [labels[i] for i in keep]
    clf.enrol_embeddings(emb, labels)
    action = {"skip": "skipped", "replace": "replaced", "append": "appended"}.get(existing or "")
    return {"added": [c for c in classes if c not in have],
            **({action: clash} if action else {})}


def _warn_enrolled_elsewhere(emb: torch.Tensor, labels: list[str], old_emb: torch.Tensor,
                             old_labels: list[str], gallery) -> None:
    """Warn when images being enrolled are in the gallery already under another class name
    (a folder enrolled flat, then grouped: every class twice, and classify torn between
    them). Identical images give identical embeddings; compared 1,024 at a time."""
    found = {}
    for i in range(0, len(emb) if len(old_emb) else 0, 1024):
        d = torch.cdist(emb[i:i + 1024], old_emb, compute_mode="donot_use_mm_for_euclid_dist")
        best, j = d.min(1)
        for k, (v, jj) in enumerate(zip(best.tolist(), j.tolist())):
            if v < 1e-4 and labels[i + k] != old_labels[jj]:
                found.setdefault(labels[i + k], old_labels[jj])
    if found:
        same = ", ".join(f"{a!r} = {b!r}" for a, b in sorted(found.items())[:3])
        log.warning("%s: %d of these classes hold images the gallery has under another class "
                    "name (%s%s): enrolled twice, say flat and then grouped? To keep one "
                    "naming, start the gallery again with --replace", gallery, len(found), same,
                    ", ..." if len(found) > 3 else "")
