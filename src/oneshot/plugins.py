"""Plugins: your own encoders, heads and objectives, registered without editing the package.

A plugin is a module that registers components when imported (``register_encoder``,
``register_head``, ``register_objective``). The command line imports, before running:

- each ``--plugin`` given (a module name, ``my_pkg.plugin``, or a file, ``./my_objective.py``);
- the modules named in ``$ONESHOT_PLUGINS`` (separated by commas);
- installed packages' entry points in the group ``oneshot.plugins`` (one that fails to load is
  a warning naming it, not an error: it may not be the plugin this command needs).

The Python API loads the installed entry points by itself the first time a name is not found
in a registry (``oneshot.load_model`` of a run trained with an installed plugin just works);
call ``load_plugins([...])`` for plugin files and modules.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import logging
import os
import sys
import traceback
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from .errors import OneshotError, UsageError

__all__ = ["load_plugin", "load_plugins", "load_installed", "ENV_PLUGINS", "ENTRY_POINT_GROUP"]

ENV_PLUGINS = "ONESHOT_PLUGINS"
ENTRY_POINT_GROUP = "oneshot.plugins"
log = logging.getLogger(__name__)
_installed_loaded = False


def load_plugin(name: str) -> ModuleType:
    """Import a plugin module by name, or from a ``.py`` file; UsageError if it cannot be."""
    path = Path(name)
    try:
        if name.endswith(".py"):
            if not path.is_file():
                raise UsageError(f"plugin file {name} does not exist")
            # two files of one name (p1/plugin.py, p2/plugin.py) are two plugins
            digest = hashlib.sha256(str(path.resolve()).encode()).hexdigest()[:12]
            mod_name = f"oneshot_plugin_{path.stem}_{digest}"
            if mod_name in sys.modules:
                return sys.modules[mod_name]
            spec = importlib.util.spec_from_file_location(mod_name, path)
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:  # never leave a half-run plugin to be reused
                sys.modules.pop(mod_name, None)
                raise
            return module
        return importlib.import_module(name)
    except ImportError as e:
        raise UsageError(f"plugin {name!r} cannot be imported ({e})") from e
    except (OneshotError, KeyboardInterrupt):
        raise
    except Exception as e:  # the plugin's own code failed: say where, in one line
        frames = traceback.extract_tb(e.__traceback__)  # a SyntaxError says where itself
        where = "" if isinstance(e, SyntaxError) or not frames else \
            f" at {frames[-1].filename}:{frames[-1].lineno}"
        raise UsageError(f"plugin {name!r} failed on import{where}: "
                         f"{type(e).__name__}: {e}") from e


def load_plugins(names: list[str] | None = None, environment: bool = True,
                 installed: bool = True) -> list[ModuleType]:
    """Load ``names``, then ``$ONESHOT_PLUGINS`` and the ``oneshot.plugins`` entry points."""
    wanted = list(names or [])
    if environment:
        wanted += [n.strip() for n in os.environ.get(ENV_PLUGINS, "").split(",") if n.strip()]
    modules = [load_plugin(n) for n in wanted]
    if installed:
        modules += load_installed()
    return modules


def load_installed() -> list[ModuleType]:
    """Import the installed ``oneshot.plugins`` entry points (each once per process); one that
    fails is logged as a warning naming it and its target, and skipped."""
    global _installed_loaded
    _installed_loaded = True
    modules = []
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            modules.append(ep.load())
        except Exception as e:  # the plugin's import failed: it may not be the one needed
            log.warning("installed plugin %r (%s) was not loaded: %s: %s", ep.name, ep.value,
                        type(e).__name__, e)
    return modules


def installed_on_miss() -> bool:
    """For a registry's unknown name: load the installed plugins if not yet done; whether it
    loaded them now (so the name is worth looking up again)."""
    if _installed_loaded:
        return False
    load_installed()
    return True
