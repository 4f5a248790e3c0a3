"""Omniglot archives: find or download them, verify their content, decode once into a cache.

Sources, in order: an explicit ``data_dir`` argument, the ``ONESHOT_DATA`` environment variable,
archives previously downloaded into the cache folder, then a download of the official archives
(MD5-checked). An archive is verified by *content*, not by zip bytes: folder structure, counts,
105x105 binary images, and a SHA-256 digest over the sorted (name, pixels) that this module pins.

Archives are read within :class:`~oneshot.io.ZipLimits` (entry count, entry and total sizes,
directory size, checked before anything big is read), so a hostile zip costs little memory.

The decoded cache (``<cache>/<split>.npz`` plus ``<split>.json``) stores the images as packed bits;
its manifest records the format version, counts, content digest and the payload's SHA-256. On
load the content digest is recomputed from the cached pixels and names (about as fast as hashing
the payload) and compared with the pinned one, so a stale, truncated, foreign or forged cache is
detected and rebuilt rather than trusted; ``verify=False`` skips that and marks the digest as
trusted (``Dataset.digest_verified``). A cache folder that cannot be written is not fatal: the
decoded data is used from memory, with a warning.

Image convention everywhere: ink = 1, background = 0 (the PNGs store the background as white).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from ..io import (
    ZipLimitError,
    ZipLimits,
    atomic_write,
    atomic_write_json,
    open_zip,
    read_zip_entry,
    sha256_file,
)
from .dataset import DataError, Dataset
from .download import DownloadError, download

__all__ = [
    "ARCHIVES",
    "ARCHIVE_LIMITS",
    "DataError",
    "ArchiveSpec",
    "cache_dir",
    "content_digest",
    "find_archive",
    "decode_archive",
    "load_archive",
    "verify_cache",
]

log = logging.getLogger(__name__)

IMAGE_SIZE = 105
DRAWERS = 20
CACHE_FORMAT = 1
ENV_DATA = "ONESHOT_DATA"
ENV_CACHE = "ONESHOT_CACHE"
OFFICIAL_URL = "https://github.com/brendenlake/omniglot/raw/master/python/{name}"
ARCHIVE_LIMITS = ZipLimits()


@dataclass(frozen=True)
class ArchiveSpec:
    """What one Omniglot archive must contain.

    ``digest`` is the SHA-256 over sorted (name, packed pixels); ``md5`` is the official zip's MD5,
    used only to check a download (local archives are checked by content).
    """

    name: str
    filename: str
    alphabets: int
    characters: int
    images: int
    digest: str
    md5: str

    @property
    def url(self) -> str:
        return OFFICIAL_URL.format(name=self.filename)


ARCHIVES: dict[str, ArchiveSpec] = {
    s.name: s
    for s in (
        ArchiveSpec(
            "background", "images_background.zip", 30, 964, 19280,
            "a124c5a5a976a2325d0833f6ed0f099009f18539b78de62d281d2188a44c0646",
            "68d2efa1b9178cc56df9314c21c6e718",
        ),
        ArchiveSpec(
            "evaluation", "images_evaluation.zip", 20, 659, 13180,
            "aea28c3ae3e13f70f5ca1e76e5dc886e9f9958b67730065a5efab5629664ea76",
            "6b91aef0f799c5bb55b94e3f2daec811",
        ),
        ArchiveSpec(
            "small1", "images_background_small1.zip", 5, 136, 2720,
            "d16fffc947efdcffb0987d361bc27341343a3712a7aa1b30a77e3d9c661e0ad0",
            "e704a628b5459e08445c13499850abc4",
        ),
        ArchiveSpec(
            "small2", "images_background_small2.zip", 5, 156, 3120,
            "d474ba4a496487ea82304f2a4022e471f309b99fe48edb8b5c5265beae38ca50",
            "b75a71a51d3b13f821f212756fe481fd",
        ),
    )
}

_IMAGE_RE = re.compile(r"^(?P<id>\d{4})_(?P<drawer>\d{2})\.png$")
_PACKED = (IMAGE_SIZE * IMAGE_SIZE + 7) // 8


def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``path``, else ``$ONESHOT_CACHE``, else ``~/.cache/oneshot``."""
    if path is not None:
        return Path(path)
    env = os.environ.get(ENV_CACHE)
    return Path(env) if env else Path.home() / ".cache" / "oneshot"


def _spec(split: "str | ArchiveSpec") -> ArchiveSpec:
    if isinstance(split, ArchiveSpec):
        return split
    if split not in ARCHIVES:
        raise DataError(f"unknown Omniglot archive {split!r}; expected one of {sorted(ARCHIVES)}")
    return ARCHIVES[split]


def find_archive(
    split: str,
    data_dir: str | os.PathLike | None = None,
    cache: str | os.PathLike | None = None,
    allow_download: bool = True,
    base_url: str | None = None,
) -> Path:
    """Path of the zip for ``split``, looking in ``data_dir``, ``$ONESHOT_DATA``, the cache, then
    downloading it (official URL, or ``base_url/<filename>``) into ``<cache>/archives``.

    Raises DataError naming every place looked when the archive is nowhere and download is off.
    """
    spec = _spec(split)
    looked: list[str] = []
    for d, why in ((data_dir, "data_dir"), (os.environ.get(ENV_DATA), f"${ENV_DATA}")):
        if d:
            p = Path(d) / spec.filename
            if p.is_file():
                return p
            looked.append(f"{p} ({why})")
    target = cache_dir(cache) / "archives" / spec.filename
    if target.is_file():
        return target
    looked.append(str(target))
    if not allow_download:
        raise DataError(
            f"Omniglot archive {spec.filename} not found; looked in: {', '.join(looked)}. "
            f"Put the file in one of these folders (or set ${ENV_DATA}), "
            f"or allow the download from {spec.url}"
        )
    url = f"{base_url.rstrip('/')}/{spec.filename}" if base_url else spec.url
    log.info("downloading %s to %s", url, target)
    try:
        download(url, target, md5=spec.md5)
    except DownloadError as e:
        raise DownloadError(
            f"{e}. To do without the download, fetch {spec.filename} from {spec.url} (on any "
            f"machine) and put it in a folder given as data_dir (--data-dir on the command line) "
            f"or named by ${ENV_DATA}; looked in: {', '.join(looked)}"
        ) from e
    return target


def _read_png(data: bytes, name: str) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(data), formats=["PNG"]) as im:
            if im.size != (IMAGE_SIZE, IMAGE_SIZE):  # from the header, before decoding pixels
                raise DataError(
                    f"{name}: image is {im.size[0]}x{im.size[1]}, "
                    f"{IMAGE_SIZE}x{IMAGE_SIZE} expected"
                )
            im.load()
            a = np.asarray(im.convert("L"))
    except DataError:
        raise
    except Exception as e:  # PIL raises several types for undecodable data
        raise DataError(f"{name}: not a readable PNG image ({e})") from e
    if not np.isin(a, (0, 255)).all():
        raise DataError(f"{name}: image is not binary (grey levels other than 0 and 255)")
    return a == 0  # ink is black in the PNGs


def _content_digest(characters, char_ids, labels, drawers, bits) -> str:
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
    return _content_digest(ds.characters, ds.char_ids, ds.labels, ds.drawers, bits)


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


def decode_archive(path: str | os.PathLike, split: "str | ArchiveSpec",
                   progress: bool = False, limits: ZipLimits = ARCHIVE_LIMITS) -> Dataset:
    """Decode and verify an Omniglot zip into a Dataset (no cache involved).

    Checks: ``limits`` (from the zip's directory, before reading entries), readable zip, layout
    ``<top>/<Alphabet>/characterNN/<ID>_<drawer>.png``, 20 drawers per character with one ID,
    counts and content digest of ``split``'s ArchiveSpec (a name from ARCHIVES, or an ArchiveSpec
    for other archives of the same layout).
    """
    spec = _spec(split)
    split = spec.name
    path = Path(path)
    with _open_archive(path, limits) as zf:
        entries = sorted((i for i in zf.infolist() if not i.is_dir()), key=lambda i: i.filename)
        by_char: dict[tuple[str, str], dict[int, tuple[int, zipfile.ZipInfo]]] = {}
        for info in entries:
            parts = info.filename.split("/")
            m = _IMAGE_RE.match(parts[-1]) if len(parts) == 4 else None
            if m is None:
                raise DataError(
                    f"{path}: unexpected entry {info.filename!r}; expected "
                    "<top>/<Alphabet>/characterNN/<ID>_<drawer>.png"
                )
            drawer = int(m["drawer"])
            if not 1 <= drawer <= DRAWERS:
                raise DataError(f"{path}: {info.filename}: drawer {drawer} outside 1..{DRAWERS}")
            by_char.setdefault((parts[1], parts[2]), {})[drawer] = (int(m["id"]), info)
        keys = sorted(by_char)
        alphabets = sorted({a for a, _ in keys})
        n_img = sum(len(v) for v in by_char.values())
        got = (len(alphabets), len(keys), n_img)
        want = (spec.alphabets, spec.characters, spec.images)
        if got != want:
            raise DataError(
                f"{path}: {got[0]} alphabets / {got[1]} characters / {got[2]} images, "
                f"expected {want[0]} / {want[1]} / {want[2]} for the {split!r} split"
            )
        images = np.empty((n_img, IMAGE_SIZE, IMAGE_SIZE), dtype=np.uint8)
        labels = np.empty(n_img, dtype=np.int64)
        drawers = np.empty(n_img, dtype=np.int64)
        it = enumerate(keys)
        if progress:
            from tqdm import tqdm

            it = tqdm(it, total=len(keys), desc=f"decode {split}", unit="char")
        k = 0
        for c, key in it:
            found = by_char[key]
            ids = {i for i, _ in found.values()}
            if len(found) != DRAWERS or len(ids) != 1:
                raise DataError(
                    f"{path}: character '{key[0]}/{key[1]}' has {len(found)} images with "
                    f"IDs {sorted(ids)}; {DRAWERS} drawers with one ID expected"
                )
            for d in sorted(found):
                info = found[d][1]
                try:
                    data = read_zip_entry(zf, info, limits.max_entry_bytes)
                except ZipLimitError as e:
                    raise DataError(f"{path}: refused, {e}") from e
                except (zipfile.BadZipFile, OSError, EOFError, RuntimeError) as e:
                    raise DataError(f"{path}: {info.filename}: cannot read entry ({e})") from e
                images[k] = _read_png(data, f"{path}:{info.filename}")
                labels[k], drawers[k] = c, d
                k += 1
    char_names = tuple(f"{a}/{c}" for a, c in keys)
    char_ids = np.array([next(iter(by_char[k].values()))[0] for k in keys], dtype=np.int64)
    hexd = _content_digest(char_names, char_ids, labels, drawers,
                           np.packbits(images.reshape(n_img, -1), axis=1))
    if hexd != spec.digest:
        raise DataError(
            f"{path}: content digest {hexd} differs from the pinned {spec.digest} for the "
            f"{split!r} split; the archive's images are not the official ones"
        )
    char_alpha = np.array([alphabets.index(a) for a, _ in keys], dtype=np.int64)
    return Dataset(
        images=images, labels=labels, drawers=drawers, characters=char_names,
        char_alphabet=char_alpha, alphabets=tuple(alphabets), char_ids=char_ids,
        name=split, digest=hexd, digest_verified=True,
    )


def _cache_paths(split: str, cache: str | os.PathLike | None) -> tuple[Path, Path]:
    root = cache_dir(cache)
    return root / f"{split}.npz", root / f"{split}.json"


def _check_cache_folder(root: Path) -> None:
    """DataError, before any decoding, when ``root`` or a folder above it is not a folder."""
    for p in (root, *root.parents):
        if p.exists():
            if not p.is_dir():
                raise DataError(
                    f"cache folder {root}: {p} is a file, not a folder; choose another cache "
                    f"folder (the cache argument, --cache on the command line, or ${ENV_CACHE})"
                )
            return


def _write_cache(ds: Dataset, split: str, cache: str | os.PathLike | None) -> None:
    payload, manifest = _cache_paths(split, cache)
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
    biggest = spec.images * _PACKED + (1 << 16)
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


def _read_cache(split: str, cache: str | os.PathLike | None, verify: bool = True) -> Dataset:
    """Load a cache written by _write_cache; raise DataError if anything is off.

    verify: recompute the content digest from the cached pixels and names and require the pinned
    one (otherwise the manifest's digest is trusted and only the structure is checked).
    """
    spec = _spec(split)
    payload, manifest = _cache_paths(split, cache)
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
    shapes = {"bits": (n, _PACKED), "labels": (n,), "drawers": (n,), "char_alphabet": (C,),
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
        hexd = _content_digest(characters, arrays["char_ids"], labels, arrays["drawers"],
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
    return _read_cache(split, cache, verify=True)


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
    spec = _spec(split)
    _check_cache_folder(cache_dir(cache))
    _, manifest = _cache_paths(spec.name, cache)
    if manifest.exists():
        try:
            return _read_cache(spec.name, cache, verify)
        except DataError as e:
            log.warning("rebuilding the %s cache: %s", spec.name, e)
    t0 = time.perf_counter()
    ds = decode_archive(find_archive(spec.name, data_dir, cache, allow_download), spec, progress)
    try:
        _write_cache(ds, spec.name, cache)
    except OSError as e:
        log.warning("cannot write the %s cache in %s (%s); using the decoded data from memory "
                    "(it will be decoded again next time)", spec.name, cache_dir(cache), e)
    log.info("decoded %s in %.1f s", spec.name, time.perf_counter() - t0)
    return ds
