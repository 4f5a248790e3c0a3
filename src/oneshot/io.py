"""Small I/O helpers shared by caches, checkpoints, task lists and galleries.

Every file the project writes goes through :func:`atomic_write`: the bytes are written to a
temporary file in the destination folder and renamed over the target only once complete, so an
interrupted write never leaves a half-written file where a reader would trust it. The new file's
permissions follow the umask, like any file a program creates. A temporary file carries its
writer's host and process ID in its name (``.<target>.<host>-<pid>.<random>.tmp``), so one left
behind by a killed writer is removed by the next write to the same target, while a live writer's
is never touched (see :func:`remove_stale_temps`).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "STALE_TEMP_AGE_S",
    "atomic_write",
    "atomic_write_bytes",
    "atomic_write_json",
    "remove_stale_temps",
    "sha256_file",
]

STALE_TEMP_AGE_S = 3600.0
"""Age (seconds since last modified) after which a temporary file whose writer cannot be checked
(another host, or a name from an older version without a process ID) is taken as abandoned."""

_NEW_FILE_MODE = 0o666  # before the umask, as open() and every other program use
_OWNED_TEMP = re.compile(r"(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)\.[0-9a-f]{16}\.tmp")
_LEGACY_TEMP = re.compile(r"[a-z0-9_]{8}\.tmp")  # tempfile.mkstemp names of earlier versions


def _host_tag() -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:32] or "host"


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (conservatively True when unsure)."""
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)  # signal 0: existence check only (POSIX; never called elsewhere)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists but belongs to someone else
        return True
    return True


def remove_stale_temps(path: str | os.PathLike, max_age_s: float = STALE_TEMP_AGE_S) -> list[Path]:
    """Remove temporary files that interrupted writes of ``path`` left beside it.

    A temporary file named by this module on this host is removed when its writer process no
    longer exists; one from another host (a shared folder) or with an older-style name is removed
    once unmodified for ``max_age_s`` seconds. A live writer's file is never removed (a process
    ID reused by an unrelated process only delays the clean-up). Returns the removed paths.
    """
    path = Path(path)
    prefix = f".{path.name}."
    now = time.time()
    here = _host_tag()
    removed = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    for e in entries:
        if not (e.name.startswith(prefix) and e.name.endswith(".tmp")):
            continue
        rest = e.name[len(prefix):]
        m = _OWNED_TEMP.fullmatch(rest)
        try:
            if m and m["host"] == here and os.name == "posix":
                stale = not _pid_alive(int(m["pid"]))
            elif m or _LEGACY_TEMP.fullmatch(rest):
                stale = now - e.stat(follow_symlinks=False).st_mtime > max_age_s
            else:
                continue
            if stale and e.is_file(follow_symlinks=False):
                os.unlink(e.path)
                removed.append(Path(e.path))
        except OSError:  # gone meanwhile (another cleaner), or not ours to remove
            continue
    return removed


def _create_temp(path: Path) -> tuple[int, Path]:
    """Create and open the temporary file for ``path``; the umask applies to its mode."""
    tmp = path.parent / f".{path.name}.{_host_tag()}-{os.getpid()}.{secrets.token_hex(8)}.tmp"
    flags = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
             | getattr(os, "O_CLOEXEC", 0))
    return os.open(tmp, flags, _NEW_FILE_MODE), tmp


def _fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (best effort; POSIX only)."""
    if os.name != "posix":
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[Any]:
    """Open a temporary file beside ``path``; on success rename it to ``path``.

    On any exception the temporary file is removed and ``path`` is left untouched. The new file
    gets the permissions the umask allows (0644 under the usual umask 022). Stale temporary files
    of earlier, killed writes of ``path`` are removed first (:func:`remove_stale_temps`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_write(path, "wb") as f:
        f.write(data)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    with atomic_write(path, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
        f.write("\n")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
