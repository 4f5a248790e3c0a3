"""Export a model's encoder to ONNX (and int8), with its head and record as metadata."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib
import json
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..checkpoint import model_fingerprint
from ..io import atomic_write_bytes
from ..models import Encoder, SiameseNet
from .common import (
    CALIBRATION_BATCH,
    DEFAULT_OPSET,
    EXAMPLE_BATCH,
    INPUT_NAME,
    INT8_OPS,
    ONNX_FORMAT,
    OUTPUT_NAME,
    PARITY_TOL,
    PREPROCESSING,
    OnnxError,
    _check_target,
    _require,
    _set_metadata,
)
from .runtime import OnnxEncoder

__all__ = ["export_onnx", "quantize_onnx", "export_onnx_files", "calibration_images"]

CALIBRATION_IMAGES = 512  # background-alphabet images that set the int8 activation ranges

log = logging.getLogger("oneshot.onnx")


def _head_params(head: nn.Module) -> dict:
    """The head's state dict as JSON-ready {name: {"shape": [...], "values": [...]}}; float32
    values survive the trip exactly (a float32 is a double, and JSON prints doubles exactly)."""
    return {k: {"shape": list(v.shape), "values": v.detach().float().cpu().flatten().tolist()}
            for k, v in head.state_dict().items()}


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's notices that do not concern our graphs (missing torchvision ops,
    torch-internal deprecations); errors still propagate as exceptions."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "onnx_ir", "onnxscript")]
    levels = [lg.level for lg in loggers]  # onnx_ir and onnxscript: ~25 INFO lines per export
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module="copyreg")
            yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _trace(encoder: Encoder, example: torch.Tensor, opset: int):
    _require("onnxscript", "ONNX export (torch.onnx, dynamo exporter)")
    onnx = _require("onnx", "ONNX export")
    batch = torch.export.Dim("batch", min=1)
    try:
        with _quiet_exporter(), torch.no_grad():
            program = torch.onnx.export(
                encoder, (example,), dynamo=True, input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME], dynamic_shapes=({0: batch},), opset_version=opset,
                external_data=False, optimize=True, verbose=False)
    except Exception as e:  # the exporter raises many kinds; name the model and the cause
        raise OnnxError(f"torch.onnx could not export encoder {type(encoder).__name__} "
                        f"(opset {opset}): {e}") from e
    proto = program.model_proto
    got = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if got != opset:  # the exporter converts to older opsets where it can, and else keeps its own
        raise OnnxError(f"opset {opset} was asked for, but torch.onnx wrote opset {got} (it "
                        "converts its graph only to the opsets it supports); use --opset "
                        f"{got}, or another it supports, with an ONNX Runtime that reads it")
    onnx.checker.check_model(proto)
    return proto


def _check_parity(data: bytes, encoder: Encoder, example: torch.Tensor) -> None:
    """Run the serialised graph with ONNX Runtime (if installed) against PyTorch on ``example``."""
    try:
        ort = importlib.import_module("onnxruntime")
    except ImportError:
        log.info("onnxruntime not installed: export not checked against PyTorch")
        return
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    got = sess.run([OUTPUT_NAME], {INPUT_NAME: example.numpy()})[0]
    with torch.no_grad():
        ref = encoder(example).numpy()
    err, scale = float(np.abs(got - ref).max()), float(np.abs(ref).max())
    if got.shape != ref.shape or not err <= PARITY_TOL * (1 + scale):
        raise OnnxError(f"exported graph disagrees with PyTorch: shape {got.shape} vs "
                        f"{ref.shape}, max |difference| {err:.3g} (allowed "
                        f"{PARITY_TOL * (1 + scale):.3g})")


def export_onnx(model: SiameseNet, path: str | os.PathLike, record: dict | None = None,
                opset: int = DEFAULT_OPSET, check: bool = True) -> Path:
    """Write ``model``'s encoder as an ONNX graph, with its head and ``record`` as metadata.

    Input ``images`` float32 (B, 1, S, S), ink = 1, in [0, 1]; output ``embeddings`` float32
    (B, D); B is dynamic. The file is written atomically; an existing file is overwritten only if
    it is an earlier oneshot ONNX export (never a checkpoint, model file or anything else).
    ``check`` runs the graph with ONNX Runtime (when installed) against PyTorch before writing.
    Returns the path written.
    """
    path = Path(path)
    if isinstance(model.encoder, OnnxEncoder):
        raise OnnxError(f"the model is already an ONNX export ({model.encoder.path}); export "
                        "the PyTorch model it came from")
    _check_target(path)
    onnx = _require("onnx", "ONNX export")
    try:
        record_json = json.dumps(record or {}, sort_keys=True)
    except TypeError as e:
        raise OnnxError(f"record is not JSON-serialisable: {e}") from e
    encoder = copy.deepcopy(model.encoder).float().cpu().eval()
    size, dim = int(encoder.input_size), int(encoder.embedding_dim)
    example = torch.rand(EXAMPLE_BATCH, 1, size, size, generator=torch.Generator().manual_seed(0))
    proto = _trace(encoder, example, opset)
    meta = {
        "format": ONNX_FORMAT,
        "model_spec": json.dumps(model.spec.to_dict(), sort_keys=True),
        "head": model.spec.head,
        "head_params": json.dumps(_head_params(model.head)),
        "input_size": str(size),
        "embedding_dim": str(dim),
        "preprocessing": json.dumps(PREPROCESSING),
        "fingerprint": model_fingerprint(model),
        "record": record_json,
        "exporter": json.dumps({"torch": torch.__version__, "exporter": "torch.onnx dynamo",
                                "opset": opset}),
    }
    _set_metadata(proto, meta)
    proto.producer_name = "oneshot"
    proto.doc_string = (f"oneshot encoder {model.spec.encoder}: {INPUT_NAME} float32 (B, 1, "
                        f"{size}, {size}), ink = 1 -> {OUTPUT_NAME} float32 (B, {dim})")
    onnx.checker.check_model(proto)
    data = proto.SerializeToString()
    if check:
        _check_parity(data, encoder, example)
    atomic_write_bytes(path, data)
    log.info("exported %s encoder to %s (%.1f MB)", model.spec.encoder, path, len(data) / 1e6)
    return path


def quantize_onnx(src: str | os.PathLike, dst: str | os.PathLike,
                  calibration: torch.Tensor) -> Path:
    """Static int8 quantisation (ONNX Runtime, QDQ, per-tensor) of an export ``src`` into ``dst``.

    calibration: float32 (N, 1, S, S) model inputs that set the activation ranges; take them
    from the training alphabets, never from the test set. Convolutions, pooling and ReLU become
    int8 (``INT8_OPS``); the centring and the head stay float. The quantised model embeds
    differently, so it gets its own fingerprint (galleries must be enrolled with it); its
    metadata keeps the source's and adds ``quantisation``. Returns ``dst``.
    """
    onnx = _require("onnx", "int8 quantisation")
    _require("onnxruntime", "int8 quantisation")
    from onnxruntime import quantization as q

    src, dst = Path(src), Path(dst)
    if dst.exists() and src.exists() and dst.resolve() == src.resolve():
        raise OnnxError(f"{dst}: the output would overwrite the input; choose another path")
    _check_target(dst)
    source = OnnxEncoder(src, threads=1)  # validates the file and its metadata
    s = source.input_size
    if calibration.ndim != 4 or tuple(calibration.shape[1:]) != (1, s, s) or not len(calibration):
        raise ValueError(f"calibration images of shape {tuple(calibration.shape)}; "
                         f"(N >= 1, 1, {s}, {s}) expected")
    batches = [b.numpy() for b in
               calibration.detach().to("cpu", torch.float32).split(CALIBRATION_BATCH)]

    class Reader(q.CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(batches)

        def get_next(self) -> dict | None:
            x = next(self.batches, None)
            return None if x is None else {INPUT_NAME: x}

    with tempfile.TemporaryDirectory() as tmp:
        prepared, out = Path(tmp) / "prepared.onnx", Path(tmp) / "int8.onnx"
        # ONNX Runtime's symbolic shape inference fails on the conv encoder's crop (a box found
        # by ReduceMin/ReduceMax over a Where); ONNX's own shape inference is enough for QDQ
        q.quant_pre_process(str(src), str(prepared), skip_symbolic_shape=True)
        q.quantize_static(str(prepared), str(out), Reader(), quant_format=q.QuantFormat.QDQ,
                          op_types_to_quantize=INT8_OPS, per_channel=False,
                          activation_type=q.QuantType.QUInt8, weight_type=q.QuantType.QInt8)
        proto = onnx.load(str(out))
    graph_digest = hashlib.sha256(proto.graph.SerializeToString()).hexdigest()
    meta = dict(source.metadata)
    meta["fingerprint"] = hashlib.sha256(
        f"{source.fingerprint}:int8:{graph_digest}".encode()).hexdigest()
    meta["quantisation"] = json.dumps({
        "kind": "onnxruntime static int8, QDQ, per-tensor", "ops": INT8_OPS,
        "activations": "uint8", "weights": "int8", "calibration_images": len(calibration),
        "source_fingerprint": source.fingerprint})
    _set_metadata(proto, meta)
    atomic_write_bytes(dst, proto.SerializeToString())
    log.info("quantised %s to %s (int8, %d calibration images)", src, dst, len(calibration))
    return dst




def calibration_images(size: int, n: int = CALIBRATION_IMAGES, seed: int = 0, data_dir=None,
                       cache=None) -> torch.Tensor:
    """``n`` seeded images of the background (training) alphabets as model inputs
    float32 (n, 1, size, size): int8 calibration never sees the test alphabets."""
    from ..data.splits import load_split
    from ..preprocess import images_to_tensor

    ds = load_split("background", data_dir, cache)
    pick = np.sort(np.random.default_rng(seed).choice(len(ds), size=min(n, len(ds)),
                                                      replace=False))
    return images_to_tensor(ds.images[pick], size)


def export_onnx_files(model, out: str | os.PathLike, int8: str | os.PathLike | None = None,
                      opset: int = DEFAULT_OPSET, data_dir=None, cache=None) -> list[Path]:
    """What ``oneshot export --format onnx`` does: the model (a path, run folder or None for
    the shipped one) to ``out``, and with ``int8`` also its int8 quantisation, calibrated on
    background-alphabet images. Returns the files written."""
    from ..checkpoint import load_model, resolve_model_path

    for target in (out, int8):  # the suffix is how every command recognises an ONNX file
        if target is not None and not str(target).lower().endswith(".onnx"):
            raise OnnxError(f"{target}: an ONNX file name ends in .onnx (that is how it is "
                            "recognised when loaded)")
    if int8 is not None and Path(int8).absolute() == Path(out).absolute():
        raise OnnxError(f"--int8 {int8}: is --out too; the int8 model needs its own file")
    src = resolve_model_path(model)
    net, record = load_model(src)
    for target in (out, int8):
        if target is not None and Path(target).exists() and \
                Path(target).resolve() == src.resolve():
            raise OnnxError(f"--out {target}: is the input {src}; write to another file")
    written = [export_onnx(net, out, {**record, "source": str(src)}, opset)]
    if int8 is not None:
        calib = calibration_images(net.encoder.input_size, data_dir=data_dir, cache=cache)
        written.append(quantize_onnx(out, int8, calib))
    return written
