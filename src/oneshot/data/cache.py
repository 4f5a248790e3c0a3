"""The decoded cache: ``<cache>/<name>.npz`` (images as packed bits) and ``<name>.json``.

The manifest records the format version, counts, content digest and the payload's SHA-256. On
load the content digest is recomputed from the cached pixels and names (about as fast as hashing
the payload) and compared with the expected one, so a stale, truncated, foreign or forged cache
is detected and rebuilt rather than trusted; ``verify=False`` skips that and marks the digest as
trusted (``Dataset.digest_verified``). The payload is read within zip limits that fit the data.

Omniglot's archives expect the digest pinned in ``ARCHIVES``; a folder of the user's images
(:mod:`.folder`) has no pinned digest, so its cache is keyed by the folder's content (the file
name carries the key) and checked against the digest its manifest records.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..io import (
    ZipLimits,
    atomic_write,
    atomic_write_json,
    open_zip,
    read_zip_entry,
    remove_stale_temps,
    sha256_file,
)
from .archives import ENV_CACHE, IMAGE_SIZE, cache_dir, spec_of
from .dataset import DataError, Dataset

__all__ = ["content_digest", "verify_cache", "read_cache", "read_cached", "write_cache",
           "cache_paths", "check_cache_folder", "CacheExpect", "CACHE_FORMAT"]

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


def write_cache(ds: Dataset, split: str, cache: str | os.PathLike | None,
                extra: dict | None = None) -> None:
    """Write ``ds`` as the cache entry ``split``; ``extra``: more manifest fields (a folder's
    source key), checked again on load by :func:`read_cached`."""
    payload, manifest = cache_paths(split, cache)
    bits = np.packbits(ds.images.reshape(len(ds), -1), axis=1)
    remove_stale_temps(payload, every=True)  # a killed decode of a folder since changed
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
        **(extra or {}),
    })


_CACHE_ARRAYS = ("bits", "labels", "drawers", "char_alphabet", "char_ids")


@dataclass(frozen=True)
class CacheExpect:
    """What a cache entry must hold: its ``name`` (file stem), counts (``alphabets`` None:
    any), the content ``digest`` (None: the one the manifest records, recomputed on verify),
    ``extra`` manifest fields that must match, and the Dataset's ``label``."""

    name: str
    characters: int
    images: int
    digest: str | None
    alphabets: int | None = None
    extra: dict = field(default_factory=dict)
    label: str = ""


def _read_payload(payload: Path, images: int) -> dict[str, np.ndarray]:
    """The arrays of a cache payload (an .npz), read within limits that fit ``images``."""
    biggest = images * PACKED + (1 << 16)
    limits = ZipLimits(max_entries=len(_CACHE_ARRAYS), max_entry_bytes=biggest,
                       max_total_bytes=biggest + 4 * (images * 8 + (1 << 16)),
                       max_directory_bytes=1 << 16)
    try:
        with open_zip(payload, limits) as z:
            return {k: np.lib.format.read_array(
                        io.BytesIO(read_zip_entry(z, f"{k}.npy", biggest)), allow_pickle=False)
                    for k in _CACHE_ARRAYS}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise DataError(f"cache payload {payload} unreadable ({e})") from e


def _read_manifest(manifest: Path, want: CacheExpect) -> tuple[dict, str]:
    """The manifest's fields after the checks that need no payload; and the digest to expect."""
    try:
        meta = json.loads(manifest.read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"cache manifest {manifest} unreadable ({e})") from e
    fmt = meta.get("format") if isinstance(meta, dict) else None
    if fmt != CACHE_FORMAT:
        raise DataError(f"cache manifest {manifest}: format {fmt!r}, {CACHE_FORMAT} expected")
    digest = want.digest or meta.get("digest")
    if not isinstance(digest, str) or meta.get("digest") != digest:
        raise DataError(f"cache {manifest}: digest {meta.get('digest')} is not the pinned {digest}")
    for key, value in want.extra.items():
        if meta.get(key) != value:
            raise DataError(f"cache {manifest}: {key} {meta.get(key)!r}, {value!r} expected")
    characters, alphabets = meta.get("characters"), meta.get("alphabets")
    if (not isinstance(characters, list) or len(characters) != want.characters
            or not all(isinstance(c, str) and c.count("/") == 1 for c in characters)
            or characters != sorted(set(characters))
            or alphabets != sorted({c.split("/")[0] for c in characters})
            or len(alphabets) != (want.alphabets or len(alphabets))):
        raise DataError(f"cache manifest {manifest}: characters or alphabets are not the "
                        f"{want.characters} sorted characters of "
                        f"{want.alphabets or 'their'} alphabets")
    return meta, digest


def read_cached(want: CacheExpect, cache: str | os.PathLike | None,
                verify: bool = True) -> Dataset:
    """Load the cache entry ``want.name``; DataError if anything differs from ``want``.

    verify: recompute the content digest from the cached pixels and names and require the
    expected one (otherwise the manifest's digest is trusted and only the structure is checked).
    """
    payload, manifest = cache_paths(want.name, cache)
    meta, digest = _read_manifest(manifest, want)
    characters, alphabets = meta["characters"], meta["alphabets"]
    arrays = _read_payload(payload, want.images)
    n, C = want.images, want.characters
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
        if hexd != digest:
            raise DataError(f"cache payload {payload}: content digest {hexd} recomputed from the "
                            f"cached images differs from the expected {digest}")
    images = np.unpackbits(arrays["bits"], axis=1, count=IMAGE_SIZE * IMAGE_SIZE)
    return Dataset(
        images=images.reshape(n, IMAGE_SIZE, IMAGE_SIZE), labels=labels,
        drawers=arrays["drawers"], characters=tuple(characters), char_alphabet=char_alpha,
        alphabets=tuple(alphabets), char_ids=arrays["char_ids"], name=want.label or want.name,
        digest=digest, digest_verified=verify,
    )


def read_cache(split: str, cache: str | os.PathLike | None, verify: bool = True) -> Dataset:
    """Load the cached Omniglot archive ``split`` (see :func:`read_cached`); its digest must be
    the one pinned in ``ARCHIVES``."""
    spec = spec_of(split)
    return read_cached(CacheExpect(spec.name, spec.characters, spec.images, spec.digest,
                                   spec.alphabets), cache, verify)


def verify_cache(split: str, cache: str | os.PathLike | None = None) -> Dataset:
    """The cached ``split`` after a full check (structure, and the content digest recomputed from
    the cached images and names against the pinned one); DataError when anything is off."""
    return read_cache(split, cache, verify=True)


