"""Plugins: your own encoders, heads and objectives, registered without editing the package.

A plugin is a module that registers components when imported (``register_encoder``,
``register_head``, ``register_objective``). The command line imports, before running:

- each ``--plugin`` given (a module name, ``my_pkg.plugin``, or a file, ``./my_objective.py``);
- the modules named in ``$ONESHOT_PLUGINS`` (separated by commas);
- installed packages' entry points in the group ``oneshot.plugins``.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import traceback
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

from .errors import OneshotError, UsageError

__all__ = ["load_plugin", "load_plugins", "ENV_PLUGINS", "ENTRY_POINT_GROUP"]

ENV_PLUGINS = "ONESHOT_PLUGINS"
ENTRY_POINT_GROUP = "oneshot.plugins"


def load_plugin(name: str) -> ModuleType:
    """Import a plugin module by name, or from a ``.py`` file; UsageError if it cannot be."""
    path = Path(name)
    try:
        if name.endswith(".py"):
            if not path.is_file():
                raise UsageError(f"plugin file {name} does not exist")
            mod_name = f"oneshot_plugin_{path.stem}"
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
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            modules.append(ep.load())
    return modules
