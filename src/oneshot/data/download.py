"""Download a file over HTTP(S) with MD5 verification, atomically, within a deadline.

The file is streamed into a temporary file beside the target; only a complete download whose MD5
matches is renamed into place, so an interrupted or corrupt download never becomes the target.

Two clocks bound a download: ``timeout`` for each network operation (connect, one read), and an
overall ``deadline`` (``$ONESHOT_DOWNLOAD_TIMEOUT`` seconds, default 600) that also stops a
server or proxy trickling a byte at a time: when it passes, a watchdog shuts the connection's
socket, whatever phase (TLS handshake, proxy tunnel, headers, body) it is in. Only the system's
host-name lookup lies outside it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import socket
import threading
import time
import urllib.request
from pathlib import Path

from ..io import atomic_write
from .dataset import DataError

__all__ = ["DEFAULT_DEADLINE_S", "ENV_TIMEOUT", "DownloadError", "download", "download_deadline"]

log = logging.getLogger(__name__)
_CHUNK = 1 << 16
ENV_TIMEOUT = "ONESHOT_DOWNLOAD_TIMEOUT"
DEFAULT_DEADLINE_S = 600.0


class DownloadError(DataError, OSError):
    """The download failed, was incomplete, overran its deadline, or its checksum differed."""


def download_deadline(value: float | None = None) -> float:
    """The overall deadline in seconds: ``value``, else ``$ONESHOT_DOWNLOAD_TIMEOUT``, else 600."""
    if value is None:
        raw = os.environ.get(ENV_TIMEOUT)
        if not raw:
            return DEFAULT_DEADLINE_S
        try:
            value = float(raw)
        except ValueError:
            raise DataError(f"${ENV_TIMEOUT}={raw!r} is not a number of seconds") from None
    if not value > 0:
        raise DataError(f"download deadline {value!r} s: a positive number of seconds expected")
    return float(value)


class _Watchdog:
    """Shuts every socket it was given once ``seconds`` have passed."""

    def __init__(self, seconds: float):
        self.expired = False
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> "_Watchdog":
        self._timer.start()
        return self

    def __exit__(self, *exc) -> None:
        self._timer.cancel()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for s in self._socks:
                _shut(s)

    def _register(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._socks.append(sock)
            if self.expired:
                _shut(sock)
        return sock

    def connection_class(self, base):
        """A factory like ``base`` (an HTTPConnection class) whose sockets this watchdog holds."""

        def make(*args, **kwargs):
            conn = base(*args, **kwargs)
            create = conn._create_connection  # http.client's hook for opening the socket

            def create_and_register(*a, **k):
                return self._register(create(*a, **k))

            conn._create_connection = create_and_register
            return conn

        return make


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)  # wakes a read blocked in another thread
    except OSError:
        pass


def _opener(watch: _Watchdog) -> urllib.request.OpenerDirector:
    """urllib's default opener (proxies from the environment included), watched."""

    class HTTP(urllib.request.HTTPHandler):
        def do_open(self, http_class, req, **kw):
            return super().do_open(watch.connection_class(http_class), req, **kw)

    handlers: list = [HTTP]
    if hasattr(urllib.request, "HTTPSHandler"):  # Python built with ssl

        class HTTPS(urllib.request.HTTPSHandler):
            def do_open(self, http_class, req, **kw):
                return super().do_open(watch.connection_class(http_class), req, **kw)

        handlers.append(HTTPS)
    return urllib.request.build_opener(*handlers)


def download(url: str, target: str | os.PathLike, md5: str | None = None,
             timeout: float = 60.0, deadline: float | None = None) -> Path:
    """Fetch ``url`` into ``target`` (skipped when ``target`` already exists).

    timeout: seconds for each network operation; deadline: seconds for the whole download
    (default: :func:`download_deadline`). Raises DownloadError (a DataError and an OSError) if the
    connection fails, the deadline passes, the body is shorter than its Content-Length, or the MD5
    differs from ``md5``; ``target`` is then left absent.
    """
    target = Path(target)
    if target.is_file():
        return target
    limit = download_deadline(deadline)
    end = time.monotonic() + limit
    n = 0
    with _Watchdog(limit) as watch:
        try:
            with _opener(watch).open(url, timeout=min(timeout, limit)) as resp, \
                    atomic_write(target) as f:
                expected = resp.headers.get("Content-Length")
                h = hashlib.md5()
                while block := resp.read1(_CHUNK):
                    if time.monotonic() > end:
                        raise TimeoutError("deadline passed")
                    f.write(block)
                    h.update(block)
                    n += len(block)
                if watch.expired and expected is None:  # shut down: is this the body's end?
                    raise TimeoutError("deadline passed")
                if expected is not None and n != int(expected):
                    raise DownloadError(f"download of {url} incomplete: {n} of {expected} bytes")
                if md5 is not None and h.hexdigest() != md5:
                    raise DownloadError(
                        f"download of {url}: MD5 {h.hexdigest()} differs from the expected {md5}"
                    )
        except Exception as e:  # urllib raises URLError, HTTPError, socket errors, IncompleteRead
            if watch.expired or time.monotonic() > end:
                raise DownloadError(
                    f"download of {url} did not finish within its deadline of {limit:g} s "
                    f"({n} bytes received; set ${ENV_TIMEOUT} to allow longer)"
                ) from e
            if isinstance(e, DownloadError):
                raise
            raise DownloadError(f"download of {url} to {target} failed: {e}") from e
    log.info("downloaded %s (%d bytes)", target, n)
    return target
