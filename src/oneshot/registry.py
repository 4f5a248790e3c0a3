"""A small named registry: the one pattern behind encoders, heads and objectives.

Each kind has public ``register_*``, ``list_*`` and ``create_*`` functions built on a
:class:`Registry`; unknown names are errors that list the registered ones (an unknown name
first loads the installed plugins, once: :func:`oneshot.plugins.installed_on_miss`). This
module imports nothing from the package at load time, so every layer may use it.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from typing import Any

from .errors import ConfigError

__all__ = ["Registry"]


class Registry:
    """Factories by name for one ``kind`` of component ("encoder", "head", "objective")."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., Any]] = {}

    def register(self, name: str, factory: Callable[..., Any] | None = None, *,
                 replace: bool = False):
        """Register ``factory`` under ``name``; without ``factory``, a class decorator.

        Registering a taken name is an error unless ``replace`` is true.
        """
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{self.kind} name must be a non-empty string, got {name!r}")

        def add(f: Callable[..., Any]) -> Callable[..., Any]:
            if not callable(f):
                raise ConfigError(f"{self.kind} {name!r}: factory {f!r} is not callable")
            old = self._factories.get(name)
            if old is not None and old is not f:
                if not replace:
                    raise ConfigError(f"{self.kind} {name!r} is already registered "
                                      f"({old!r}); pass replace=True")
                logging.getLogger(__name__).warning(
                    "%s %r replaced: %r instead of %r (saved models naming it now use the "
                    "replacement)", self.kind, name, f, old)
            self._factories[name] = f
            return f

        return add if factory is None else add(factory)

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._factories)

    def get(self, name: str) -> Callable[..., Any]:
        """The factory registered as ``name``; ConfigError naming the known entries if none."""
        if isinstance(name, str) and name not in self._factories:
            from .plugins import installed_on_miss  # not at load time: plugins use registries

            installed_on_miss()  # a plugin's name, not yet loaded?
        try:
            return self._factories[name]
        except (KeyError, TypeError):
            raise ConfigError(f"unknown {self.kind} {name!r}; registered: {self.names()} (a "
                              "plugin's? load it: --plugin FILE_OR_MODULE, $ONESHOT_PLUGINS, "
                              "or install it)") from None

    def create(self, name: str, *args: Any, **kwargs: Any) -> Any:
        """``factory(*args, **kwargs)``; wrong arguments are a ConfigError naming them."""
        factory = self.get(name)
        try:
            inspect.signature(factory).bind(*args, **kwargs)
        except TypeError as e:
            raise ConfigError(f"{self.kind} {name!r} does not accept the arguments "
                              f"{sorted(kwargs)}: {e}") from e
        except ValueError:  # no signature to check (some builtins): let the call decide
            pass
        return factory(*args, **kwargs)

    def __contains__(self, name: object) -> bool:
        return name in self._factories
