"""The decoded cache: ``<cache>/<split>.npz`` (images as packed bits) and ``<split>.json``.

The manifest records the format version, counts, content digest and the payload's SHA-256. On
load the content digest is recomputed from the cached pixels and names (about as fast as hashing
the payload) and compared with the pinned one, so a stale, truncated, foreign or forged cache is
detected and rebuilt rather than trusted; ``verify=False`` skips that and marks the digest as
trusted (``Dataset.digest_verified``). The payload is read within zip limits that fit the split.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np

from ..io import ZipLimits, atomic_write, atomic_write_json, open_zip, read_zip_entry, sha256_file
from .archives import ENV_CACHE, IMAGE_SIZE, ArchiveSpec, cache_dir, spec_of
from .dataset import DataError, Dataset

__all__ = ["content_digest", "verify_cache", "read_cache", "write_cache", "cache_paths",
           "check_cache_folder", "CACHE_FORMAT"]

CACHE_FORMAT = 1
PACKED = (IMAGE_SIZE * IMAGE_SIZE + 7) // 8


def digest_of(characters, char_ids, labels, drawers, bits) -> str:
    """SHA-256 over (name, NUL, packed pixels) of each image in order; ``bits``: uint8 (N, P)."""
    prefix = [f"{c}/{int(i):04d}_" for c, i in zip(characters, char_ids.tolist())]
    h = hashlib.sha256()
    for lab, d, row in zip(labels.tolist(), drawers.tolist(), np.ascontiguousarray(bits)):
        h.update(f"{prefix[lab]}{d:02d}.png\0".encode())
        h.update(row)
    return h.hexdigest()


def content_digest(ds: Dataset) -> str:
    """The content digest of ``ds`` as pinned in ARCHIVES: SHA-256 over each image's name
    ('Alphabet/characterNN/ID_drawer.png'), a NUL byte and its pixels packed as bits (ink = 1),
    in the archive's sorted order. Recomputed from the data, never read from anywhere."""
    bits = np.packbits(ds.images.reshape(len(ds), -1), axis=1)
    return digest_of(ds.characters, ds.char_ids, ds.labels, ds.drawers, bits)


def cache_paths(split: str, cache: str | os.PathLike | None) -> tuple[Path, Path]:
    root = cache_dir(cache)
    return root / f"{split}.npz", root / f"{split}.json"


def check_cache_folder(root: Path) -> None:
    """DataError, before any decoding, when ``root`` or a folder above it is not a folder."""
    for p in (root, *root.parents):
        if p.exists():
            if not p.is_dir():
                raise DataError(
                    f"cache folder {root}: {p} is a file, not a folder; choose another cache "
                    f"folder (the cache argument, --cache on the command line, or ${ENV_CACHE})"
                )
            return


def write_cache(ds: Dataset, split: str, cache: str | os.PathLike | None) -> None:
    payload, manifest = cache_paths(split, cache)
    bits = np.packbits(ds.images.reshape(len(ds), -1), axis=1)
    with atomic_write(payload) as f:
        np.savez(f, bits=bits, labels=ds.labels, drawers=ds.drawers,
                 char_alphabet=ds.char_alphabet, char_ids=ds.char_ids)
    atomic_write_json(manifest, {
        "format": CACHE_FORMAT,
        "split": split,
        "digest": ds.digest,
        "counts": {"alphabets": len(ds.alphabets), "characters": len(ds.characters),
                   "images": len(ds)},
        "image_size": IMAGE_SIZE,
        "alphabets": list(ds.alphabets),
        "characters": list(ds.characters),
        "payload_sha256": sha256_file(payload),
    })


_CACHE_ARRAYS = ("bits", "labels", "drawers", "char_alphabet", "char_ids")


def _read_payload(payload: Path, spec: ArchiveSpec) -> dict[str, np.ndarray]:
    """The arrays of a cache payload (an .npz), read within limits that fit ``spec``."""
    biggest = spec.images * PACKED + (1 << 16)
    limits = ZipLimits(max_entries=len(_CACHE_ARRAYS), max_entry_bytes=biggest,
                       max_total_bytes=biggest + 4 * (spec.images * 8 + (1 << 16)),
                       max_directory_bytes=1 << 16)
    try:
        with open_zip(payload, limits) as z:
            return {k: np.lib.format.read_array(
                        io.BytesIO(read_zip_entry(z, f"{k}.npy", biggest)), allow_pickle=False)
                    for k in _CACHE_ARRAYS}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"cache payload {payload} unreadable ({e})") from e


def read_cache(split: str, cache: str | os.PathLike | None, verify: bool = True) -> Dataset:
    """Load a cache written by _write_cache; raise DataError if anything is off.

    verify: recompute the content digest from the cached pixels and names and require the pinned
    one (otherwise the manifest's digest is trusted and only the structure is checked).
    """
    spec = spec_of(split)
    payload, manifest = cache_paths(split, cache)
    try:
        meta = json.loads(manifest.read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"cache manifest {manifest} unreadable ({e})") from e
    fmt = meta.get("format") if isinstance(meta, dict) else None
    if fmt != CACHE_FORMAT:
        raise DataError(f"cache manifest {manifest}: format {fmt!r}, {CACHE_FORMAT} expected")
    if meta.get("digest") != spec.digest:
        raise DataError(
            f"cache {manifest}: digest {meta.get('digest')} is not the pinned {spec.digest}"
        )
    characters, alphabets = meta.get("characters"), meta.get("alphabets")
    if (not isinstance(characters, list) or len(characters) != spec.characters
            or not all(isinstance(c, str) and c.count("/") == 1 for c in characters)
            or characters != sorted(set(characters))
            or alphabets != sorted({c.split("/")[0] for c in characters})
            or len(alphabets) != spec.alphabets):
        raise DataError(f"cache manifest {manifest}: characters or alphabets are not the "
                        f"{spec.characters} sorted characters of {spec.alphabets} alphabets")
    arrays = _read_payload(payload, spec)
    n, C = spec.images, spec.characters
    shapes = {"bits": (n, PACKED), "labels": (n,), "drawers": (n,), "char_alphabet": (C,),
              "char_ids": (C,)}
    for k, shape in shapes.items():
        a = arrays[k]
        if a.shape != shape or a.dtype != (np.uint8 if k == "bits" else np.int64):
            raise DataError(f"cache payload {payload}: {k} is {a.dtype} {a.shape}, "
                            f"{'uint8' if k == 'bits' else 'int64'} {shape} expected")
    labels = arrays["labels"]
    if labels.min() < 0 or labels.max() >= C:
        raise DataError(f"cache payload {payload}: labels outside 0..{C - 1}")
    char_alpha = np.array([alphabets.index(c.split("/")[0]) for c in characters], np.int64)
    if not np.array_equal(char_alpha, arrays["char_alphabet"]):
        raise DataError(f"cache payload {payload}: character alphabets differ from the manifest")
    if verify:
        hexd = digest_of(characters, arrays["char_ids"], labels, arrays["drawers"],
                               arrays["bits"])
        if hexd != spec.digest:
            raise DataError(f"cache payload {payload}: content digest {hexd} recomputed from the "
                            f"cached images differs from the pinned {spec.digest}")
    images = np.unpackbits(arrays["bits"], axis=1, count=IMAGE_SIZE * IMAGE_SIZE)
    return Dataset(
        images=images.reshape(n, IMAGE_SIZE, IMAGE_SIZE), labels=labels,
        drawers=arrays["drawers"], characters=tuple(characters), char_alphabet=char_alpha,
        alphabets=tuple(alphabets), char_ids=arrays["char_ids"], name=split,
        digest=spec.digest, digest_verified=verify,
    )


def verify_cache(split: str, cache: str | os.PathLike | None = None) -> Dataset:
    """The cached ``split`` after a full check (structure, and the content digest recomputed from
    the cached images and names against the pinned one); DataError when anything is off."""
    return read_cache(split, cache, verify=True)


