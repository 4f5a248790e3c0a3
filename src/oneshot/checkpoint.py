"""Checkpoints and model files: atomic writes, loading that never runs code from the file.

A checkpoint (``best.pt``, ``last.pt``) holds weights, optimiser and scheduler state, step, best
validation accuracy, config, metrics, the training data's digest and RNG states. A model file
(what ``export_model`` writes and the package ships) holds only the spec, weights and a short
record. Both are ``torch.save`` dictionaries of tensors and plain values, loaded with
``torch.load(weights_only=True)``, which refuses anything that would execute code.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any

import torch

from .io import atomic_write_bytes
from .models import SiameseNet, build_model

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "export_model",
           "load_model", "model_fingerprint"]

CHECKPOINT_FORMAT = "oneshot-checkpoint-1"
MODEL_FORMAT = "oneshot-model-1"


class CheckpointError(ValueError):
    """A file is not a oneshot checkpoint/model, is damaged, or does not fit."""


def _save(obj: dict, path: str | os.PathLike) -> None:
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def _load(path: str | os.PathLike, kinds: tuple[str, ...]) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such model or checkpoint file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickle/zip errors of many kinds for damaged or foreign files
        raise CheckpointError(f"{path}: not a readable oneshot model or checkpoint ({e})") from e
    if not isinstance(obj, dict) or obj.get("format") not in kinds:
        fmt = obj.get("format") if isinstance(obj, dict) else type(obj).__name__
        raise CheckpointError(f"{path}: format {fmt!r} is not one of {list(kinds)}")
    return obj


def save_checkpoint(path: str | os.PathLike, *, model: SiameseNet, optimizer, scheduler,
                    step: int, best: float, config: dict, metrics: dict, data_digest: str,
                    rng: dict[str, Any]) -> None:
    """Write a full training checkpoint atomically (see the module docstring)."""
    _save({
        "format": CHECKPOINT_FORMAT,
        "model_spec": json.dumps(model.spec.to_dict()),
        "state_dict": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "step": int(step),
        "best": float(best),
        "config": json.dumps(config),
        "metrics": json.dumps(metrics),
        "data_digest": data_digest,
        "rng": rng,
    }, path)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """A checkpoint's dictionary, with ``config``, ``metrics`` and ``model_spec`` decoded."""
    ck = _load(path, (CHECKPOINT_FORMAT,))
    for key in ("config", "metrics", "model_spec"):
        ck[key] = json.loads(ck[key])
    return ck


def export_model(model: SiameseNet, path: str | os.PathLike, record: dict | None = None,
                 half: bool = False) -> None:
    """Write a small model file: spec, weights (fp16 with ``half``), and a JSON record."""
    sd = {k: (v.half() if half and v.is_floating_point() else v)
          for k, v in model.state_dict().items()}
    _save({"format": MODEL_FORMAT, "model_spec": json.dumps(model.spec.to_dict()),
           "state_dict": sd, "record": json.dumps(record or {})}, path)


def load_model(path: str | os.PathLike) -> tuple[SiameseNet, dict]:
    """A SiameseNet (eval mode, float32) from a model file or a checkpoint, and its record."""
    obj = _load(path, (MODEL_FORMAT, CHECKPOINT_FORMAT))
    try:
        spec = json.loads(obj["model_spec"])
        model = build_model(spec)
        sd = {k: v.float() if v.is_floating_point() else v for k, v in obj["state_dict"].items()}
        model.load_state_dict(sd)
    except (KeyError, ValueError, RuntimeError, TypeError) as e:
        raise CheckpointError(f"{path}: weights do not fit the model they name ({e})") from e
    record = json.loads(obj.get("record", "{}")) if obj["format"] == MODEL_FORMAT else {
        "config": json.loads(obj["config"]), "step": obj["step"], "best": obj["best"],
        "metrics": json.loads(obj["metrics"]), "data_digest": obj["data_digest"]}
    return model.eval(), record


def model_fingerprint(model: SiameseNet) -> str:
    """SHA-256 over the spec and weights: identifies a model (galleries record it)."""
    h = hashlib.sha256(json.dumps(model.spec.to_dict(), sort_keys=True).encode())
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()
