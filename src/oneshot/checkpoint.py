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
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from .errors import ConfigError, ModelError, OneshotError, unreadable_reason
from .io import atomic_write_bytes, check_replaceable
from .models import SiameseNet, build_model

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "export_model",
           "export_ensemble", "load_model", "model_fingerprint", "default_model_path",
           "resolve_model_path", "build_skeleton"]

CHECKPOINT_FORMAT = "oneshot-checkpoint-1"
MODEL_FORMAT = "oneshot-model-1"


class CheckpointError(OneshotError, ValueError):
    """A file is not a oneshot checkpoint/model, is damaged, or does not fit."""


RUN_MODEL_FILES = ("best.pt", "last.pt", "model.pt")  # what a run folder offers, in order


def default_model_path() -> Path | None:
    """The model shipped inside the package, if this installation has one."""
    p = Path(str(resources.files("oneshot").joinpath("weights/default.pt")))
    return p if p.is_file() else None


def resolve_model_path(model: str | os.PathLike | None) -> Path:
    """A model file from a path, a run folder (its best.pt, else last.pt or model.pt), or
    None / "default" (the shipped model). CheckpointError when there is nothing to load."""
    if model is None or str(model) == "default":
        p = default_model_path()
        if p is None:
            raise CheckpointError("no model given and this installation ships no default "
                                  "model; train one (oneshot train) and pass --model")
        return p
    if not isinstance(model, (str, os.PathLike)):
        raise CheckpointError(f"model {model!r}: a path, a run folder or 'default' expected")
    p = Path(model)
    if p.is_dir():
        for name in RUN_MODEL_FILES:
            if (p / name).is_file():
                return p / name
        raise CheckpointError(f"{p}: run folder holds none of {', '.join(RUN_MODEL_FILES)} "
                              "(a training before its first checkpoint?)")
    if not p.exists():
        raise CheckpointError(f"{p}: no such model file or run folder")
    return p


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
        raise CheckpointError(f"{path}: not a readable oneshot model or checkpoint "
                              f"({unreadable_reason(path, e)})") from e
    if isinstance(obj, dict) and "format" not in obj:
        raise CheckpointError(f"{path}: not a oneshot model or checkpoint (no 'format' key: a "
                              "plain state dict, say); make model files with 'oneshot train' "
                              "or 'oneshot export'")
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
                 half: bool = False, inputs: tuple[str | os.PathLike, ...] = ()) -> None:
    """Write a small model file: spec, weights (fp16 with ``half``), and a JSON record.

    Refuses (CheckpointError) to write over a folder, over a training checkpoint (it would
    end the run's resumability) or over any of ``inputs`` (the files it was made from), and
    under an ``.onnx`` name (no command would load it).
    """
    if not isinstance(model, SiameseNet):
        raise CheckpointError(f"a {type(model).__name__} cannot be written as a PyTorch model "
                              "file; export the PyTorch model it came from")
    if Path(path).suffix.lower() == ".onnx":  # it would be refused by every command as such
        raise CheckpointError(f"{path}: a PyTorch model file named .onnx; name it .pt (for "
                              "ONNX: oneshot export MODEL.pt --out MODEL.onnx)")
    check_output_path(path, inputs)
    sd = {k: (v.half() if half and v.is_floating_point() else v)
          for k, v in model.state_dict().items()}
    _save({"format": MODEL_FORMAT, "model_spec": json.dumps(model.spec.to_dict()),
           "state_dict": sd, "record": json.dumps(record or {})}, path)


def export_ensemble(runs: list[str | os.PathLike], path: str | os.PathLike, half: bool = False,
                    views: str | None = None) -> int:
    """Write the exact ensemble of the models ``runs`` name (run folders or model files, each
    once; one: that model) to ``path``, with test-time ``views`` if given; returns the number
    of members. ConfigError for models that cannot be ensembled (other input sizes or heads,
    ONNX exports)."""
    from .errors import UsageError
    from .models import ensemble, with_views

    if len({str(resolve_model_path(r).resolve()) for r in runs}) < len(runs):
        raise UsageError(f"a model is given twice in {[str(r) for r in runs]}; each member once")
    loaded = [load_model(r) for r in runs]
    net = ensemble([m for m, _ in loaded]) if len(loaded) > 1 else loaded[0][0]
    export_model(with_views(net, views) if views else net, path,
                 {"members": [str(r) for r in runs],
                  "member_records": [rec for _, rec in loaded]}, half=half, inputs=tuple(runs))
    return len(loaded)


def check_output_path(path: str | os.PathLike, inputs: tuple = ()) -> None:
    """An output file must not be one of ``inputs``, a training checkpoint, or anything but an
    earlier model file (``oneshot.io.check_replaceable``: not a folder, link or device)."""
    p = Path(path)
    for src in inputs:
        src = Path(src)
        if p.exists() and src.exists() and p.resolve() == resolve_model_path(src).resolve():
            raise CheckpointError(f"--out {p}: is the input {src}; write to another file")
    fmt = _format(p) if p.is_file() and not p.is_symlink() else None  # read once
    if fmt == CHECKPOINT_FORMAT:
        raise CheckpointError(f"--out {p}: is a training checkpoint; exporting over it "
                              "would lose the run's state. Write to another file")
    check_replaceable(p, lambda _: fmt == MODEL_FORMAT, "an earlier oneshot model file",
                      CheckpointError)


def _format(path: Path) -> str | None:
    """The "format" entry of a torch file of ours; None for any other file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("format")
    except Exception:  # not ours: torch and zip raise many kinds for foreign files
        return None


MAX_PARAMETERS = 500_000_000  # a model file naming more is refused before anything is built


def build_skeleton(spec) -> SiameseNet:
    """The model ``spec`` names, built on the meta device (shapes only: no memory, no time);
    on the CPU if it cannot be (a plugin's encoder that computes with tensors as it is made)."""
    try:
        with torch.device("meta"):
            return build_model(spec)
    except ConfigError:
        raise
    except (ModelError, RuntimeError, NotImplementedError, TypeError, ValueError):
        return build_model(spec)  # its own errors, if any, are the real ones


def _build_checked(path: Path, spec: dict, state: dict) -> SiameseNet:
    """Build the model ``spec`` names after checking it on the meta device (no memory): a
    bounded size, and stored weights of exactly its names, shapes, and finite values."""
    skeleton = build_skeleton(spec)
    n = sum(p.numel() for p in skeleton.parameters())
    if n > MAX_PARAMETERS:
        raise CheckpointError(f"{path}: the model spec asks for {n:,} parameters, over the "
                              f"limit of {MAX_PARAMETERS:,}")
    want = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    have = {k: tuple(v.shape) for k, v in state.items() if isinstance(v, torch.Tensor)}
    if want != have or len(have) != len(state):
        diff = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))[:5]
        raise CheckpointError(f"{path}: stored weights do not fit the model spec "
                              f"(differences at {diff})")
    bad = [k for k, v in state.items() if v.is_floating_point() and not torch.isfinite(v).all()]
    if bad:
        raise CheckpointError(f"{path}: weights hold NaN or infinite values ({bad[:3]})")
    model = build_model(spec)
    model.load_state_dict({k: v.float() if v.is_floating_point() else v
                           for k, v in state.items()})
    return model


def load_model(path: str | os.PathLike | None = None) -> tuple[SiameseNet, dict]:
    """A SiameseNet (eval mode, float32) and its record, from a model file, a checkpoint, a run
    folder or None (the shipped model; see :func:`resolve_model_path`). A ``.onnx`` file gives
    an :class:`oneshot.onnx.OnnxSiameseNet`, which serves inference the same way."""
    path = resolve_model_path(path)
    if path.suffix.lower() == ".onnx":  # an ONNX export, run by ONNX Runtime (the onnx extra)
        from .onnx import load_onnx_model

        net = load_onnx_model(path)
        return net, net.record
    obj = _load(path, (MODEL_FORMAT, CHECKPOINT_FORMAT))
    try:
        spec = json.loads(obj["model_spec"])
        state = obj["state_dict"]
        if not isinstance(state, dict):
            raise TypeError(f"state_dict is a {type(state).__name__}")
        model = _build_checked(path, spec, state)
        record = json.loads(obj.get("record", "{}")) if obj["format"] == MODEL_FORMAT else {
            "config": json.loads(obj["config"]), "step": obj["step"], "best": obj["best"],
            "metrics": json.loads(obj["metrics"]), "data_digest": obj["data_digest"]}
    except CheckpointError:
        raise
    except (KeyError, ValueError, RuntimeError, TypeError, AttributeError) as e:
        raise CheckpointError(f"{path}: not a usable model ({type(e).__name__}: {e})") from e
    return model.eval(), record


def model_fingerprint(model: SiameseNet) -> str:
    """SHA-256 over the spec and weights: identifies a model (galleries record it). A model
    that carries its PyTorch original's fingerprint (an ONNX export) gives that one."""
    carried = getattr(model, "fingerprint", None)
    if isinstance(carried, str):
        return carried
    h = hashlib.sha256(json.dumps(model.spec.to_dict(), sort_keys=True).encode())
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()
