"""Advisory file locks between processes (POSIX ``flock``), for galleries and run folders.

A lock is a small file beside what it protects (``gallery.npz.lock``, ``RUN/.lock``) holding
the owner's pid; a gallery's and a report's are removed when released (none is left). It is
released when the owner closes it or dies, so a killed process never leaves a folder locked.
Waiting is bounded: past ``timeout`` seconds, :class:`LockTimeout` names the file and the pid
that holds it.
"""

from __future__ import annotations

import contextlib
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
    ``tidy``: if acquiring made the lock's folder, releasing removes it again while it holds
    nothing but the lock (run and report folders: a start that failed leaves nothing behind);
    a process that locked the removed file meanwhile notices and locks the new one.
    ``remove``: releasing removes the lock file itself (under the lock, so the same holds).
    """

    def __init__(self, path: str | os.PathLike, timeout: float = 30.0, what: str = "",
                 tidy: bool = False, remove: bool = False) -> None:
        self.path = Path(path)
        self.timeout = timeout
        self.what = what or str(self.path)
        self.tidy = tidy
        self.remove = remove
        self._fd: int | None = None
        self._made = False

    def acquire(self) -> None:
        self._made = self.tidy and not self.path.parent.exists()
        deadline = time.monotonic() + self.timeout
        while True:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            except FileNotFoundError:  # a tidy holder removed the folder just now
                continue
            self._wait(fd, deadline)
            if self._current(fd):
                break
            os.close(fd)  # locked a file a tidy holder had removed: lock the one there now
        with contextlib.suppress(OSError):  # the holder's PID, for people; a full disk
            os.ftruncate(fd, 0)  # (ENOSPC) leaves the lock itself intact
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def _wait(self, fd: int, deadline: float) -> None:
        """Lock ``fd``, polling until ``deadline``; LockTimeout (``fd`` closed) past it."""
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                    os.close(fd)
                    raise LockTimeout(f"{self.what} is in use by another process (pid {holder}); "
                                      f"waited {self.timeout:g} s") from None
                time.sleep(POLL_SECONDS)

    def _current(self, fd: int) -> bool:
        """Whether ``fd`` is still the file at ``path`` (not one removed since it was opened)."""
        try:
            st, mine = os.stat(self.path), os.fstat(fd)
        except FileNotFoundError:
            return False
        return (st.st_ino, st.st_dev) == (mine.st_ino, mine.st_dev)

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            if self._made:
                self._remove_if_empty()
            if self.remove:  # (if the folder stays: it was not empty)
                with contextlib.suppress(OSError):
                    self.path.unlink()
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def _remove_if_empty(self) -> None:
        """Remove the folder this lock made if it holds nothing but the lock and empty folders
        (a report's tasks/ made before a full disk stopped the first write): as it was."""
        with contextlib.suppress(OSError):  # another process may lock it again at once
            others = [p for p in self.path.parent.iterdir() if p.name != self.path.name]
            if not all(p.is_dir() and not p.is_symlink() and not any(p.iterdir())
                       for p in others):
                return
            for p in others:
                p.rmdir()  # fails (and keeps everything) if something arrived meanwhile
            self.path.unlink()
            self.path.parent.rmdir()

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
