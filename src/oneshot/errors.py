"""The errors a user can cause, one base class for all of them.

Every mistake in user input (a file, a folder, an option, a config value) raises a subclass of
:class:`OneshotError` whose message names the thing and what is wrong; the command line prints
it and exits with status 2. Anything else is a bug and surfaces as a traceback (status 1). This
module imports nothing from the package, so every layer may use it.
"""

from __future__ import annotations

__all__ = ["OneshotError", "ConfigError", "UsageError", "MissingPackage"]


class OneshotError(Exception):
    """A user mistake or unusable input; the message says what and why."""


class ConfigError(OneshotError, ValueError):
    """A config value, preset, registry name or argument is not acceptable."""


class UsageError(OneshotError, ValueError):
    """Options that contradict each other or cannot apply."""


class MissingPackage(OneshotError, ImportError):
    """An optional package a feature needs is not installed; the message says how to get it."""
