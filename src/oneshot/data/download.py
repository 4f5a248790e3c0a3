"""Download a file over HTTP(S) with MD5 verification, atomically.

The file is streamed into a temporary file beside the target; only a complete download whose MD5
matches is renamed into place, so an interrupted or corrupt download never becomes the target.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.request
from pathlib import Path

from ..io import atomic_write

__all__ = ["DownloadError", "download"]

log = logging.getLogger(__name__)
_CHUNK = 1 << 16


class DownloadError(OSError):
    """The download failed, was incomplete, or its checksum did not match."""


def download(url: str, target: str | os.PathLike, md5: str | None = None,
             timeout: float = 60.0) -> Path:
    """Fetch ``url`` into ``target`` (skipped when ``target`` already exists).

    Raises DownloadError if the connection fails, the body is shorter than its Content-Length,
    or the MD5 differs from ``md5``; ``target`` is then left absent.
    """
    target = Path(target)
    if target.is_file():
        return target
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp, atomic_write(target) as f:
            expected = resp.headers.get("Content-Length")
            h = hashlib.md5()
            n = 0
            while block := resp.read(_CHUNK):
                f.write(block)
                h.update(block)
                n += len(block)
            if expected is not None and n != int(expected):
                raise DownloadError(f"download of {url} incomplete: {n} of {expected} bytes")
            if md5 is not None and h.hexdigest() != md5:
                raise DownloadError(
                    f"download of {url}: MD5 {h.hexdigest()} differs from the expected {md5}"
                )
    except DownloadError:
        raise
    except Exception as e:  # urllib raises URLError, HTTPError, socket errors, IncompleteRead
        raise DownloadError(f"download of {url} to {target} failed: {e}") from e
    log.info("downloaded %s (%d bytes)", target, n)
    return target
