"""Small I/O helpers shared by caches, checkpoints, task lists and galleries.

Every file the project writes goes through :func:`atomic_write`: the bytes are written to a
temporary file in the destination folder and renamed over the target only once complete, so an
interrupted write never leaves a half-written file where a reader would trust it. The new file's
permissions follow the umask, like any file a program creates. A temporary file carries its
writer's host and process ID in its name (``.<target>.<host>-<pid>.<random>.tmp``), so one left
behind by a killed writer is removed by the next write to the same target, while a live writer's
is never touched (see :func:`remove_stale_temps`).

Every zip archive read from outside (Omniglot archives, cached arrays) goes through
:func:`open_zip` and :func:`read_zip_entry` (:mod:`oneshot.zipread`, re-exported here), which
refuse archives beyond :class:`ZipLimits` before anything big is read (docs/reliability.md).
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .zipread import ZipLimitError, ZipLimits, open_zip, read_zip_entry

__all__ = ["STALE_TEMP_AGE_S", "ZipLimitError", "ZipLimits", "atomic_write", "atomic_write_bytes",
           "atomic_write_json", "check_replaceable", "open_zip", "read_zip_entry",
           "remove_stale_temps", "sha256_file"]

STALE_TEMP_AGE_S = 3600.0
"""Age (seconds since last modified) after which a temporary file whose writer cannot be checked
(another host, or a name from an older version without a process ID) is taken as abandoned."""

_LONG_NAME = 150  # bytes: a longer target's temporary files name it by a prefix and a hash
_NEW_FILE_MODE = 0o666  # before the umask, as open() and every other program use
_OWNED_TEMP = re.compile(r"(?P<host>[A-Za-z0-9_]+)-(?P<pid>\d+)\.[0-9a-f]{16}\.tmp")
_ANY_OWNED_TEMP = re.compile(r".+\." + _OWNED_TEMP.pattern)  # <target>.<host>-<pid>...
_LEGACY_TEMP = re.compile(r"[a-z0-9_]{8}\.tmp")  # tempfile.mkstemp names of earlier versions


def _host_tag() -> str:
    """Who may judge a temporary file's writer alive: the host name (32 characters) and, on
    Linux, the PID namespace (containers sharing a folder and a host name, or --net=host, do
    not see each other's processes: a live writer there must not look dead here)."""
    host = re.sub(r"[^A-Za-z0-9_]", "_", socket.gethostname())[:32] or "host"
    try:
        return f"{host}_ns{os.stat('/proc/self/ns/pid').st_ino}"
    except OSError:
        return host


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


def remove_stale_temps(path: str | os.PathLike, max_age_s: float = STALE_TEMP_AGE_S,
                       every: bool = False) -> list[Path]:
    """Remove temporary files that interrupted writes of ``path`` left beside it.

    A temporary file named by this module on this host is removed when its writer process no
    longer exists; one from another host (a shared folder) or with an older-style name is removed
    once unmodified for ``max_age_s`` seconds. A live writer's file is never removed (a process
    ID reused by an unrelated process only delays the clean-up). ``every``: this module's
    temporary files of any target in the folder (a cache, whose entries are named by their
    content, so a killed write's target may never be written again). Returns what it removed.
    """
    path = Path(path)
    prefix = "." if every else f".{_temp_stem(path.name)}."
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
        m = (_ANY_OWNED_TEMP if every else _OWNED_TEMP).fullmatch(rest)
        if every and m is None:
            continue
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


def _temp_stem(name: str) -> str:
    """The part of a temporary file's name that names its target: the name itself, or for a
    long one (the temporary name adds about 60 bytes; names stop at 255) its first 100 bytes
    and a hash of the rest, so that every legal name can be written."""
    raw = name.encode("utf-8", "surrogateescape")
    if len(raw) <= _LONG_NAME:
        return name
    head = raw[:100].decode("utf-8", "ignore")  # whole characters only
    return f"{head}~{hashlib.sha256(raw).hexdigest()[:16]}"


def _create_temp(path: Path) -> tuple[int, Path]:
    """Create and open the temporary file for ``path``; the umask applies to its mode."""
    tmp = path.parent / (f".{_temp_stem(path.name)}.{_host_tag()}-{os.getpid()}."
                         f"{secrets.token_hex(8)}.tmp")
    flags = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
             | getattr(os, "O_CLOEXEC", 0))
    return os.open(tmp, flags, _NEW_FILE_MODE), tmp


def _naming(e: OSError, path: Path) -> OSError:
    """``e`` again, naming ``path`` (the user's file) instead of no file or a temporary one."""
    return type(e)(e.errno, e.strerror, str(path))


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


def check_replaceable(path: str | os.PathLike, is_ours: Callable[[Path], bool], what: str,
                      error: type[Exception] = ValueError) -> None:
    """Refuse (``error``) to write ``path`` over anything but an earlier file of this kind
    (``what``, recognised by ``is_ours``): a folder, a link, a device or other special file, or
    a regular file that is someone else's. A path that does not exist is fine."""
    p = Path(path)
    if p.is_symlink():
        raise error(f"{p}: is a symbolic link; give the path of the file itself")
    if p.is_dir() or str(path).endswith(("/", os.sep)):  # "new/" meant a folder, not a file
        raise error(f"{path}: {'is a folder' if p.is_dir() else 'ends in /'}; a file name "
                    "expected")
    if not p.exists():
        return
    if not p.is_file():
        raise error(f"{p}: is not a regular file (a device, pipe or socket); refusing to write it")
    if not is_ours(p):
        raise error(f"{p}: exists and is not {what}; refusing to overwrite it: delete it or "
                    "choose another path")


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb") -> Iterator[Any]:
    """Open a temporary file beside ``path``; on success rename it to ``path``.

    On any exception the temporary file is removed and ``path`` is left untouched (an OSError
    that names no file, as a full disk's, is raised again naming ``path``). The new file
    gets the permissions the umask allows (0644 under the usual umask 022). Stale temporary files
    of earlier, killed writes of ``path`` are removed first (:func:`remove_stale_temps`).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    try:
        fd, tmp = _create_temp(path)
    except OSError as e:  # a read-only folder: say which file, not the temporary one
        raise _naming(e, path) from e
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        if isinstance(e, OSError) and e.filename in (None, str(tmp)) and e.errno is not None:
            # a full disk fails a write on a descriptor: say which file could not be written
            raise _naming(e, path) from e
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


# ---- zip archives from outside --------------------------------------------------------------
