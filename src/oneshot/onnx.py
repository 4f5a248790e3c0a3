"""Deployment through ONNX: export a model's encoder, run it with ONNX Runtime.

    export_onnx(model, "model.onnx", record)        # encoder graph; head, record as metadata
    net = load_onnx_model("model.onnx", threads=1)  # a stand-in for SiameseNet
    net.encoder(x)                                  # float32 (B, 1, S, S) -> (B, D), by ORT
    net.head.pairwise(q, g)                         # the PyTorch head, rebuilt from metadata

Only the encoder becomes a graph: images float32 (B, 1, S, S), ink = 1, background = 0, in
[0, 1] -> ``embeddings`` float32 (B, D), any batch size. Ensembles (the ``concat`` encoder) are one
graph. The pair head is a handful of numbers; it is stored in the file's metadata and rebuilt in
PyTorch, so scoring (``head``, ``head.pairwise``) is the very code the PyTorch model uses.

The metadata (``metadata_props``, strings; JSON where structured):

=================  ======================================================================
``format``         ``oneshot-onnx-1``
``model_spec``     the ``ModelSpec`` (encoder name and arguments, head name)
``head``           the head's name; ``head_params``: its state dict, ``{name: {shape, values}}``
                   (Euclidean: ``log_scale``, ``bias``; L1: ``fc.weight``, ``fc.bias``)
``input_size``     S; ``embedding_dim``: D
``preprocessing``  what the input must be and how :func:`oneshot.preprocess.preprocess` makes it
``fingerprint``    ``checkpoint.model_fingerprint`` of the PyTorch model: a gallery enrolled with
                   the PyTorch model is accepted by its export, and by nothing else
``record``         the caller's record (training runs, scores, ...)
``exporter``       torch version, exporter and opset
=================  ======================================================================

Export uses ``torch.onnx.export(dynamo=True)`` (needs ``onnx`` and ``onnxscript``): the default
and maintained exporter of recent PyTorch; the legacy TorchScript exporter is deprecated and cannot
express the ``centre`` option's ``affine_grid`` below opset 20. The runtime needs only
``onnxruntime``. Install both with ``pip install 'oneshot[onnx]'``.
"""

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
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .checkpoint import model_fingerprint
from .io import atomic_write_bytes
from .models import Encoder, ModelSpec, SiameseNet, create_head

__all__ = ["OnnxError", "ONNX_FORMAT", "DEFAULT_OPSET", "export_onnx", "quantize_onnx",
           "OnnxEncoder", "OnnxSiameseNet", "load_onnx_model"]

log = logging.getLogger(__name__)

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


class OnnxError(ValueError):
    """An ONNX file cannot be written there, is not a oneshot export, or does not fit."""


def _require(module: str, purpose: str) -> Any:
    """Import an optional dependency, or say how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{purpose} needs the optional package {module!r}: "
                          f"pip install {module}  (or pip install 'oneshot[onnx]')") from e


# --------------------------------------------------------------------------------------- export

def _head_params(head: nn.Module) -> dict:
    """The head's state dict as JSON-ready {name: {"shape": [...], "values": [...]}}; float32
    values survive the trip exactly (a float32 is a double, and JSON prints doubles exactly)."""
    return {k: {"shape": list(v.shape), "values": v.detach().float().cpu().flatten().tolist()}
            for k, v in head.state_dict().items()}


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
    """Refuse to overwrite anything but an earlier oneshot ONNX export."""
    if path.is_dir():
        raise OnnxError(f"{path} is a folder; give the ONNX file's path (e.g. {path}/model.onnx)")
    if not path.exists():
        return
    if _is_torch_file(path):
        raise OnnxError(f"{path} is a PyTorch checkpoint or model file; refusing to overwrite it "
                        "with an ONNX export: choose another output path (e.g. model.onnx)")
    if not _is_oneshot_onnx(path):
        raise OnnxError(f"{path} exists and is not an earlier oneshot ONNX export; refusing to "
                        "overwrite it: delete it or choose another output path")


@contextlib.contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's notices that do not concern our graphs (missing torchvision ops,
    torch-internal deprecations); errors still propagate as exceptions."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=FutureWarning, module="copyreg")
            yield
    finally:
        logger.setLevel(level)


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


def _set_metadata(proto: Any, meta: dict[str, str]) -> None:
    del proto.metadata_props[:]
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v


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
        q.quant_pre_process(str(src), str(prepared))
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


# -------------------------------------------------------------------------------------- runtime

def _metadata(path: Path, sess: Any) -> dict:
    meta = dict(sess.get_modelmeta().custom_metadata_map)
    if meta.get("format") != ONNX_FORMAT:
        raise OnnxError(f"{path}: format {meta.get('format')!r}, {ONNX_FORMAT!r} expected (an "
                        "ONNX file not written by oneshot.onnx.export_onnx)")
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise OnnxError(f"{path}: metadata lacks {missing}")
    return meta


def _build_head(name: str, dim: int, params: dict) -> nn.Module:
    head = create_head(name, dim)
    sd = {k: torch.tensor(p["values"], dtype=torch.float32).reshape(p["shape"])
          for k, p in params.items()}
    head.load_state_dict(sd)
    return head.eval()


class OnnxEncoder(Encoder):
    """An exported encoder run by ONNX Runtime: float (B, 1, S, S) -> float32 (B, D).

    Exposes ``input_size`` (S), ``embedding_dim`` (D), ``spec`` (ModelSpec), ``fingerprint``
    (the PyTorch model's), ``record``, ``preprocessing``, ``metadata`` (all strings) and ``head``
    (the pair head in PyTorch, parameters from the metadata). ``threads``: ONNX Runtime's
    intra-op threads (None: ``torch.get_num_threads()``, so OMP_NUM_THREADS applies to both);
    one inter-op thread, sequential execution, all graph optimisations.
    """

    def __init__(self, path: str | os.PathLike, threads: int | None = None,
                 providers: list[str] | None = None, batch: int = EMBED_BATCH) -> None:
        super().__init__()
        ort = _require("onnxruntime", "running an ONNX model")
        self.path = Path(path)
        if not self.path.is_file():
            raise OnnxError(f"{self.path}: no such ONNX file")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or torch.get_num_threads())
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(self.path), sess_options=opts,
                                                providers=providers or ["CPUExecutionProvider"])
        except Exception as e:  # ORT raises its own exception types for unreadable files
            hint = (" (a PyTorch checkpoint or model file: load it with "
                    "oneshot.checkpoint.load_model)" if _is_torch_file(self.path) else "")
            raise OnnxError(f"{self.path}: not a readable ONNX model{hint} ({e})") from e
        self.metadata = _metadata(self.path, self.session)
        try:
            self.spec = ModelSpec(**json.loads(self.metadata["model_spec"]))
            self.input_size = int(self.metadata["input_size"])
            self.embedding_dim = int(self.metadata["embedding_dim"])
            self.head = _build_head(self.metadata["head"], self.embedding_dim,
                                    json.loads(self.metadata["head_params"]))
            self.record = json.loads(self.metadata.get("record", "{}"))
            self.preprocessing = json.loads(self.metadata.get("preprocessing", "{}"))
        except (KeyError, ValueError, TypeError, RuntimeError) as e:
            raise OnnxError(f"{self.path}: damaged oneshot metadata ({e})") from e
        self.fingerprint = self.metadata["fingerprint"]
        self.batch = batch
        inp, out = self.session.get_inputs(), self.session.get_outputs()
        if ([i.name for i in inp], [o.name for o in out]) != ([INPUT_NAME], [OUTPUT_NAME]) or \
                inp[0].shape[1:] != [1, self.input_size, self.input_size] or \
                out[0].shape[1:] != [self.embedding_dim]:
            raise OnnxError(f"{self.path}: graph {[(i.name, i.shape) for i in inp]} -> "
                            f"{[(o.name, o.shape) for o in out]} does not fit its metadata "
                            f"({INPUT_NAME} (B, 1, {self.input_size}, {self.input_size}) -> "
                            f"{OUTPUT_NAME} (B, {self.embedding_dim}))")

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """float (B, 1, S, S), ink = 1 -> float32 (B, D) on x's device, ``batch`` at a time."""
        s = self.input_size
        if x.ndim != 4 or tuple(x.shape[1:]) != (1, s, s):
            raise ValueError(f"images of shape {tuple(x.shape)}; (B, 1, {s}, {s}) expected")
        a = x.detach().to("cpu", torch.float32).contiguous().numpy()
        out = [self.session.run([OUTPUT_NAME], {INPUT_NAME: a[i: i + self.batch]})[0]
               for i in range(0, len(a), self.batch)]
        emb = np.concatenate(out) if out else np.empty((0, self.embedding_dim), np.float32)
        return torch.from_numpy(emb).to(x.device)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x)


class OnnxSiameseNet(nn.Module):
    """Stands in for :class:`SiameseNet` where only inference is needed (the classifier, the
    evaluation scorers): ``encoder`` (an :class:`OnnxEncoder`), ``head`` (PyTorch), ``spec``,
    ``fingerprint``, ``record``; ``forward`` as SiameseNet's. No trainable encoder weights."""

    def __init__(self, encoder: OnnxEncoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.head = encoder.head
        self.spec = encoder.spec
        self.fingerprint = encoder.fingerprint
        self.record = encoder.record

    def forward(self, x1: torch.Tensor, x2: torch.Tensor | None = None) -> torch.Tensor:
        if x2 is None:
            return self.encoder(x1)
        a, b = self.encoder(torch.cat([x1, x2])).split(len(x1))
        return self.head(a, b)


def load_onnx_model(path: str | os.PathLike, threads: int | None = None,
                    providers: list[str] | None = None) -> OnnxSiameseNet:
    """An exported model, ready for the classifier or a scorer (see :class:`OnnxEncoder`)."""
    return OnnxSiameseNet(OnnxEncoder(path, threads, providers)).eval()
