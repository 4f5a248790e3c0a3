"""Where the data files are: the Omniglot archives' specs and the one lookup for every file.

Sources, in order: an explicit ``data_dir`` argument, the ``ONESHOT_DATA`` environment variable,
files previously downloaded into the cache folder, then a download of the official file
(MD5-checked; a failed download says where to put the file instead). Omniglot's splits and
Lake's runs are found the same way (:func:`find_file`).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from .dataset import DataError
from .download import DownloadError, download

__all__ = ["ARCHIVES", "ArchiveSpec", "cache_dir", "find_file", "find_archive", "ENV_DATA",
           "ENV_CACHE", "IMAGE_SIZE", "DRAWERS"]

log = logging.getLogger("oneshot.data")

IMAGE_SIZE = 105
DRAWERS = 20
ENV_DATA = "ONESHOT_DATA"
ENV_CACHE = "ONESHOT_CACHE"
OFFICIAL_URL = "https://github.com/brendenlake/omniglot/raw/master/python/{name}"
IMAGE_RE = re.compile(r"^(?P<id>\d{4})_(?P<drawer>\d{2})\.png$")


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

def cache_dir(path: str | os.PathLike | None = None) -> Path:
    """The cache folder: ``path``, else ``$ONESHOT_CACHE``, else ``~/.cache/oneshot``."""
    if path is not None:
        return Path(path)
    env = os.environ.get(ENV_CACHE)
    return Path(env) if env else Path.home() / ".cache" / "oneshot"


def spec_of(split: "str | ArchiveSpec") -> ArchiveSpec:
    if isinstance(split, ArchiveSpec):
        return split
    if split not in ARCHIVES:
        raise DataError(f"unknown Omniglot archive {split!r}; expected one of {sorted(ARCHIVES)}")
    return ARCHIVES[split]


def find_file(
    filename: str,
    url: str,
    md5: str | None,
    data_dir: str | os.PathLike | None = None,
    cache: str | os.PathLike | None = None,
    allow_download: bool = True,
    official_url: str | None = None,
) -> Path:
    """The one data lookup: ``filename`` in ``data_dir``, ``$ONESHOT_DATA``, the cache's
    ``archives`` folder, else downloaded from ``url`` (MD5-checked) into that folder.

    Raises DataError when ``data_dir`` is given but is no folder, naming every place looked
    when the file is nowhere and download is off, or when the download fails (saying where to
    put the file instead).
    """
    looked: list[str] = []
    if data_dir and not Path(data_dir).is_dir():  # a typo, not a wish to use the other places
        raise DataError(f"data_dir (--data-dir) {data_dir}: no such folder")
    for d, why in ((data_dir, "data_dir"), (os.environ.get(ENV_DATA), f"${ENV_DATA}")):
        if d:
            p = Path(d) / filename
            if p.is_file():
                return p
            state = "a folder, not the zip file" if p.is_dir() else "absent" if not Path(
                d).is_dir() else "not there"
            looked.append(f"{p} ({why}: {state})")
    target = cache_dir(cache) / "archives" / filename
    if target.is_file():
        return target
    looked.append(str(target))
    if not allow_download:
        raise DataError(
            f"{filename} not found; looked in: {', '.join(looked)}. Put the file in one of "
            f"these folders (or set ${ENV_DATA}), or allow the download from {url}"
        )
    log.info("downloading %s to %s", url, target)
    try:
        download(url, target, md5=md5)
    except DownloadError as e:
        raise DownloadError(
            f"{e}. To do without the download, fetch {filename} from {official_url or url} (on "
            "any machine) and put it in a folder given as data_dir (--data-dir on the command "
            f"line) or named by ${ENV_DATA}; looked in: {', '.join(looked)}"
        ) from e
    return target


def find_archive(
    split: str,
    data_dir: str | os.PathLike | None = None,
    cache: str | os.PathLike | None = None,
    allow_download: bool = True,
    base_url: str | None = None,
) -> Path:
    """Path of the zip for ``split`` (see :func:`find_file`); ``base_url`` replaces the
    official download location."""
    spec = spec_of(split)
    url = f"{base_url.rstrip('/')}/{spec.filename}" if base_url else spec.url
    return find_file(spec.filename, url, spec.md5, data_dir, cache, allow_download,
                     official_url=spec.url)


