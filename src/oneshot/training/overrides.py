"""Changes to a config: ``field=value`` overrides (``oneshot train --set``) and the
differences between two configs (what ``--resume`` compares)."""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import fields, replace
from typing import Any

from ..errors import ConfigError
from .config import TrainConfig, _kind

__all__ = ["apply_overrides", "config_diff"]

log = logging.getLogger(__name__)


def _parse(f: dataclasses.Field, text: str) -> Any:
    kind = _kind(f)
    try:
        if kind.startswith("bool"):
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError("expected true or false")
        if kind.startswith("int"):
            return int(text)
        if kind.startswith("float"):
            return float(text)
        if kind.startswith(("dict", "list")):
            return json.loads(text)
        return text
    except ValueError as e:
        raise ConfigError(f"config {f.name}={text!r}: not a valid {kind} ({e})") from e


def apply_overrides(cfg: TrainConfig, overrides: list[str] | dict) -> TrainConfig:
    """Return ``cfg`` with ``field=value`` strings (or a dict of values) applied. A new
    ``encoder``, ``head`` or ``objective`` starts from empty ``*_args`` unless they are given
    too (the preset's belong to its own component; a warning says what was dropped)."""
    by_name = {f.name: f for f in fields(cfg)}
    values: dict[str, Any] = {}
    items = overrides.items() if isinstance(overrides, dict) else (
        o.split("=", 1) if "=" in o else (o, None) for o in overrides)
    for key, value in items:
        if key not in by_name:
            raise ConfigError(f"unknown config key {key!r}; known: {sorted(by_name)}")
        if value is None:
            raise ConfigError(f"override {key!r} has no value; use {key}=VALUE")
        values[key] = _parse(by_name[key], value) if isinstance(value, str) else value
    for name in ("encoder", "head", "objective"):  # another component: not the old one's args
        args = f"{name}_args"
        if name in values and values[name] != getattr(cfg, name) and args not in values \
                and getattr(cfg, args):
            log.warning("%s=%s: %s %s of %s %r dropped (give its own with --set %s=JSON)", name,
                        values[name], args, getattr(cfg, args), name, getattr(cfg, name), args)
            values[args] = {}
    return replace(cfg, **values)


def config_diff(old: dict, new: dict) -> dict[str, tuple[Any, Any]]:
    """Keys whose values differ between two config dicts: {key: (old, new)}. A key missing from
    ``old`` (a run made before the field existed) counts as its default; key order is ignored."""
    defaults = TrainConfig().to_dict()
    return {k: (old.get(k, defaults.get(k)), new.get(k)) for k in sorted(set(old) | set(new))
            if json.dumps(old.get(k, defaults.get(k)), sort_keys=True)
            != json.dumps(new.get(k), sort_keys=True)}
