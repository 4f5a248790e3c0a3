"""Omniglot archives: decode and verify them, and load a split through the cache.

Files are found by :mod:`.archives` (data dir, ``$ONESHOT_DATA``, cache, download) and the
decoded cache is :mod:`.cache`; both are re-exported here. An archive is verified by *content*,
not by zip bytes: folder structure, counts, 105x105 binary images, and a SHA-256 digest over the
sorted (name, pixels) pinned in ``ARCHIVES``. Archives are read within
:class:`~oneshot.io.ZipLimits` (entry count, entry and total sizes, directory size, checked
before anything big is read), so a hostile zip costs little memory. A cache folder that cannot
be written is not fatal: the decoded data is used from memory, with a warning.

Image convention everywhere: ink = 1, background = 0 (the PNGs store the background as white).
"""

from __future__ import annotations

import logging
import os
import time
import zipfile
from pathlib import Path

import numpy as np

from ..io import ZipLimitError, ZipLimits, open_zip, read_zip_entry
from .archives import (
    ARCHIVES,
    DRAWERS,
    IMAGE_RE,
    IMAGE_SIZE,
    ArchiveSpec,
    cache_dir,
    find_archive,
    find_file,
    spec_of,
)
from .cache import (
    cache_paths,
    check_cache_folder,
    content_digest,
    digest_of,
    read_cache,
    verify_cache,
    write_cache,
)
from .dataset import DataError, Dataset
from .images import ImageError, read_binary

__all__ = [
    "ARCHIVES",
    "ARCHIVE_LIMITS",
    "DataError",
    "ArchiveSpec",
    "cache_dir",
    "content_digest",
    "find_archive",
    "find_file",
    "decode_archive",
    "load_archive",
    "verify_cache",
]

log = logging.getLogger(__name__)

ARCHIVE_LIMITS = ZipLimits()


def _read_png(data: bytes, name: str) -> np.ndarray:
    """An Omniglot PNG -> bool (105, 105), ink = True; DataError if it is not one."""
    try:
        return read_binary(data, name, IMAGE_SIZE)
    except ImageError as e:
        raise DataError(str(e)) from e


def _open_archive(path: Path, limits: ZipLimits) -> zipfile.ZipFile:
    try:
        return open_zip(path, limits)
    except ZipLimitError as e:
        raise DataError(
            f"{path}: refused, {e} (an Omniglot archive has at most {limits.max_entries} entries "
            f"of {limits.max_entry_bytes} bytes, {limits.max_total_bytes} bytes in all)"
        ) from e
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise DataError(
            f"{path}: not a readable zip archive ({e}); delete it and fetch it again"
        ) from e


def _index(zf: zipfile.ZipFile, path: Path) -> dict[tuple[str, str], dict[int, tuple]]:
    """{(alphabet, character): {drawer: (id, ZipInfo)}} from the archive's layout."""
    by_char: dict[tuple[str, str], dict[int, tuple[int, zipfile.ZipInfo]]] = {}
    for info in sorted((i for i in zf.infolist() if not i.is_dir()), key=lambda i: i.filename):
        parts = info.filename.split("/")
        m = IMAGE_RE.match(parts[-1]) if len(parts) == 4 else None
        if m is None:
            raise DataError(f"{path}: unexpected entry {info.filename!r}; expected "
                            "<top>/<Alphabet>/characterNN/<ID>_<drawer>.png")
        drawer = int(m["drawer"])
        if not 1 <= drawer <= DRAWERS:
            raise DataError(f"{path}: {info.filename}: drawer {drawer} outside 1..{DRAWERS}")
        by_char.setdefault((parts[1], parts[2]), {})[drawer] = (int(m["id"]), info)
    return by_char


def _check_counts(path: Path, spec: ArchiveSpec, by_char: dict) -> None:
    alphabets = {a for a, _ in by_char}
    got = (len(alphabets), len(by_char), sum(len(v) for v in by_char.values()))
    want = (spec.alphabets, spec.characters, spec.images)
    if got != want:
        raise DataError(f"{path}: {got[0]} alphabets / {got[1]} characters / {got[2]} images, "
                        f"expected {want[0]} / {want[1]} / {want[2]} for the {spec.name!r} split")
    for (a, c), found in by_char.items():
        ids = {i for i, _ in found.values()}
        if len(found) != DRAWERS or len(ids) != 1:
            raise DataError(f"{path}: character '{a}/{c}' has {len(found)} images with IDs "
                            f"{sorted(ids)}; {DRAWERS} drawers with one ID expected")


def _read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path, limits: ZipLimits
                ) -> np.ndarray:
    try:
        data = read_zip_entry(zf, info, limits.max_entry_bytes)
    except ZipLimitError as e:
        raise DataError(f"{path}: refused, {e}") from e
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as e:
        raise DataError(f"{path}: {info.filename}: cannot read entry ({e})") from e
    return _read_png(data, f"{path}:{info.filename}")


def decode_archive(path: str | os.PathLike, split: str | ArchiveSpec,
                   progress: bool = False, limits: ZipLimits = ARCHIVE_LIMITS) -> Dataset:
    """Decode and verify an Omniglot zip into a Dataset (no cache involved).

    Checks: ``limits`` (from the zip's directory, before reading entries), readable zip, layout
    ``<top>/<Alphabet>/characterNN/<ID>_<drawer>.png``, 20 drawers per character with one ID,
    counts and content digest of ``split``'s ArchiveSpec (a name from ARCHIVES, or an ArchiveSpec
    for other archives of the same layout).
    """
    spec, path = spec_of(split), Path(path)
    with _open_archive(path, limits) as zf:
        by_char = _index(zf, path)
        _check_counts(path, spec, by_char)
        keys = sorted(by_char)
        images = np.empty((spec.images, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
        labels = np.repeat(np.arange(len(keys), dtype=np.int64), DRAWERS)
        drawers = np.tile(np.arange(1, DRAWERS + 1, dtype=np.int64), len(keys))
        it = enumerate(keys)
        if progress:
            from tqdm import tqdm

            it = tqdm(it, total=len(keys), desc=f"decode {spec.name}", unit="char")
        for c, key in it:
            for d in range(1, DRAWERS + 1):
                images[c * DRAWERS + d - 1] = _read_entry(zf, by_char[key][d][1], path, limits)
    names = tuple(f"{a}/{c}" for a, c in keys)
    char_ids = np.array([by_char[k][1][0] for k in keys], dtype=np.int64)
    hexd = digest_of(names, char_ids, labels, drawers,
                     np.packbits(images.reshape(len(images), -1), axis=1))
    if hexd != spec.digest:
        raise DataError(f"{path}: content digest {hexd} differs from the pinned {spec.digest} "
                        f"for the {spec.name!r} split; the archive's images are not the official "
                        "ones")
    alphabets = sorted({a for a, _ in keys})
    return Dataset(
        images=images, labels=labels, drawers=drawers, characters=names,
        char_alphabet=np.array([alphabets.index(a) for a, _ in keys], dtype=np.int64),
        alphabets=tuple(alphabets), char_ids=char_ids, name=spec.name, digest=hexd,
        digest_verified=True)


def load_archive(
    split: str,
    data_dir: str | os.PathLike | None = None,
    cache: str | os.PathLike | None = None,
    allow_download: bool = True,
    progress: bool = False,
    verify: bool = True,
) -> Dataset:
    """The whole ``split`` archive ("background", "evaluation", "small1", "small2") as a Dataset.

    Uses the decoded cache when it is valid (``verify``: recompute its content digest, about
    0.05 s for the background split; False trusts the manifest's digest); otherwise finds (or
    downloads) the archive, decodes and verifies it, and writes the cache atomically. A broken
    cache is logged and rebuilt; a cache folder that cannot be written is logged and the decoded
    data is used from memory. A cache path under a regular file is a DataError before decoding.
    """
    spec = spec_of(split)
    check_cache_folder(cache_dir(cache))
    _, manifest = cache_paths(spec.name, cache)
    if manifest.exists():
        try:
            return read_cache(spec.name, cache, verify)
        except DataError as e:
            log.warning("rebuilding the %s cache: %s", spec.name, e)
    t0 = time.perf_counter()
    ds = decode_archive(find_archive(spec.name, data_dir, cache, allow_download), spec, progress)
    try:
        write_cache(ds, spec.name, cache)
    except OSError as e:
        log.warning("cannot write the %s cache in %s (%s); using the decoded data from memory "
                    "(it will be decoded again next time)", spec.name, cache_dir(cache), e)
    log.info("decoded %s in %.1f s", spec.name, time.perf_counter() - t0)
    return ds
