"""The errors a user can cause, one base class for all of them.

Every mistake in user input (a file, a folder, an option, a config value) raises a subclass of
:class:`OneshotError` whose message names the thing and what is wrong; the command line prints
it and exits with status 2. Anything else is a bug and surfaces as a traceback (status 1). This
module imports nothing from the package, so every layer may use it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import zipfile

__all__ = ["NamedStdout", "OneshotError", "ConfigError", "UsageError", "MissingPackage",
           "ModelError", "TrainingDiverged", "unreadable_reason", "silence_stdout",
           "sigterm_as_interrupt"]


class OneshotError(Exception):
    """A user mistake or unusable input; the message says what and why."""


class ConfigError(OneshotError, ValueError):
    """A config value, preset, registry name or argument is not acceptable."""


class UsageError(OneshotError, ValueError):
    """Options that contradict each other or cannot apply."""


class MissingPackage(OneshotError, ImportError):
    """An optional package a feature needs is not installed; the message says how to get it."""


class ModelError(OneshotError, ValueError):
    """A model (often a plugin's encoder or head) gave unusable output: embeddings of the
    wrong shape or type, NaN scores."""


class TrainingDiverged(OneshotError, FloatingPointError):
    """The training loss became NaN or infinite; the message says at which step."""


def unreadable_reason(path: str | os.PathLike, error: BaseException) -> str:
    """Why a zip-based file (a model, checkpoint or gallery) could not be read, in words: the
    loaders' own errors are often a bare number or a hint to unpickle unsafely."""
    try:
        if os.path.getsize(path) == 0:
            return "the file is empty"
        if not zipfile.is_zipfile(path):
            return "not a zip archive, as these files are: another kind of file, or cut short"
    except OSError as e:
        return str(e)
    if str(error).startswith("Weights only load failed"):  # torch's hint is to load unsafely
        return ("it holds Python objects that a safe load refuses to run (a whole pickled "
                "network, say, not a oneshot model file)")
    first = (str(error).strip().splitlines() or [""])[0][:200]
    return f"damaged or foreign content: {type(error).__name__}{': ' + first if first else ''}"


def silence_stdout(status: int) -> int:
    """Point stdout at the null device (its reader has gone: Python's final flush would fail
    again) and return ``status``."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    except (OSError, ValueError):  # not a real file (a test's capture): nothing to flush
        pass
    return status


class NamedStdout:
    """``sys.stdout`` whose write errors name it (a full disk under ``> file``: "[Errno 28] No
    space left on device: 'standard output'"); a closed pipe stays a BrokenPipeError."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def __getattr__(self, name: str):
        return getattr(self._stream, name)

    def _guard(self, fn, *args):
        try:
            return fn(*args)
        except BrokenPipeError:
            raise
        except OSError as e:
            if e.filename is not None:
                raise
            raise OSError(e.errno, e.strerror, "standard output") from e

    def write(self, text: str) -> int:
        return self._guard(self._stream.write, text)

    def flush(self) -> None:
        self._guard(self._stream.flush)

    @classmethod
    @contextlib.contextmanager
    def installed(cls):
        """``sys.stdout`` wrapped for the block, flushed at its end (a failure is said there,
        naming it, not at the exit's flush), then restored."""
        old = sys.stdout
        sys.stdout = cls(old)
        try:
            yield
            sys.stdout.flush()
        finally:
            sys.stdout = old


@contextlib.contextmanager
def sigterm_as_interrupt():
    """SIGTERM raises KeyboardInterrupt while inside (as Ctrl-C does: atomic writes clean up,
    the command line says "interrupted" and exits 130); the earlier handler comes back after.
    Only the main thread can set handlers: elsewhere, nothing changes."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)
