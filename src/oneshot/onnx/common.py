"""Shared pieces of the ONNX export and runtime: names, limits, the error type, optional imports,
and the check that an output path may be written."""

from __future__ import annotations

import importlib
import zipfile
from pathlib import Path
from typing import Any

from ..errors import MissingPackage, OneshotError
from ..io import check_replaceable

ONNX_FORMAT = "oneshot-onnx-1"
DEFAULT_OPSET = 20  # the dynamo exporter's own default in torch 2.13; ORT >= 1.17 runs it
INPUT_NAME, OUTPUT_NAME = "images", "embeddings"
EMBED_BATCH = 256  # images per ONNX Runtime call in ``OnnxEncoder.embed``
EXAMPLE_BATCH = 2  # torch.export specialises sizes 0 and 1; 2 keeps the batch dimension symbolic
INT8_OPS = ["Conv", "MaxPool", "Relu"]  # the centring (GridSample, sums) and heads stay float
CALIBRATION_BATCH = 64
PARITY_TOL = 1e-4  # export check: max |onnx - torch| <= PARITY_TOL * (1 + max |torch|)
REQUIRED_KEYS = ("format", "model_spec", "head", "head_params", "input_size", "embedding_dim",
                 "fingerprint")
PREPROCESSING = {
    "input": "float32 (B, 1, S, S), ink = 1, background = 0, values in [0, 1]",
    "function": "oneshot.preprocess.preprocess(images, size=S, crop=False)",
    "steps": ["grey (alpha composited onto white)", "polarity: ink = 1 (border median is "
              "the background)", "contrast: background -> 0, strongest ink -> 1",
              "pad to a centred square (crop=True first crops to the ink)",
              "resize to S x S: area averaging when shrinking, bilinear when growing"],
}


class OnnxError(OneshotError, ValueError):
    """An ONNX file cannot be written there, is not a oneshot export, or does not fit."""


def _require(module: str, purpose: str) -> Any:
    """Import an optional dependency, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingPackage(f"{purpose} needs the optional package {module!r}: "
                          f"pip install {module}  (or pip install 'oneshot-siamese[onnx]')") from e


def _is_torch_file(path: Path) -> bool:
    """``torch.save`` archives (checkpoints, model files) are zips holding ``*/data.pkl``."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any(n.endswith("data.pkl") for n in z.namelist())


def _is_oneshot_onnx(path: Path) -> bool:
    onnx = _require("onnx", "reading an ONNX file")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception:  # protobuf decode errors of many kinds for foreign files
        return False
    return any(p.key == "format" and p.value == ONNX_FORMAT for p in proto.metadata_props)


def _check_target(path: Path) -> None:
    """Refuse to overwrite anything but an earlier oneshot ONNX export
    (``oneshot.io.check_replaceable``), naming a PyTorch file or a folder as such."""
    if path.is_dir():
        raise OnnxError(f"{path} is a folder; give the ONNX file's path (e.g. {path}/model.onnx)")
    if path.is_file() and not path.is_symlink() and _is_torch_file(path):
        raise OnnxError(f"{path} is a PyTorch checkpoint or model file; refusing to overwrite it "
                        "with an ONNX export: choose another output path (e.g. model.onnx)")
    check_replaceable(path, _is_oneshot_onnx, "an earlier oneshot ONNX export", OnnxError)


def _set_metadata(proto: Any, meta: dict[str, str]) -> None:
    del proto.metadata_props[:]
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v


