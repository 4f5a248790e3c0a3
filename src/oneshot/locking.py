"""Advisory file locks between processes (POSIX ``flock``), for galleries and run folders.

A lock is a small file beside what it protects (``gallery.npz.lock``, ``RUN/.lock``) holding
the owner's pid. It is released when the owner closes it or dies, so a killed process never
leaves a folder locked. Waiting is bounded: past ``timeout`` seconds, :class:`LockTimeout`
names the file and the pid that holds it.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

from .errors import OneshotError

__all__ = ["FileLock", "LockTimeout"]

POLL_SECONDS = 0.05


class LockTimeout(OneshotError):
    """Another process holds the lock past the timeout."""


class FileLock:
    """``with FileLock(path, timeout):`` holds an exclusive lock on ``path`` (created if needed).

    ``timeout=0`` tries once (fail fast); ``what`` names the locked thing in the error.
    """

    def __init__(self, path: str | os.PathLike, timeout: float = 30.0, what: str = "") -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.what = what or str(self.path)
        self._fd: int | None = None
        self._made = False

    def acquire(self) -> None:
        # a fail-fast lock (a run or report folder) that made its folder removes it again if it
        # is still empty on release: a start that failed leaves nothing behind
        self._made = self.timeout == 0 and not self.path.parent.exists()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                    os.close(fd)
                    raise LockTimeout(f"{self.what} is in use by another process (pid {holder}); "
                                      f"waited {self.timeout:g} s") from None
                time.sleep(POLL_SECONDS)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)
            if self._made and [p.name for p in self.path.parent.iterdir()] == [self.path.name]:
                self.path.unlink()  # a folder this lock made, still empty: as it was
                self.path.parent.rmdir()
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
