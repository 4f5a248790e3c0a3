"""Run an exported encoder with ONNX Runtime, as a stand-in for a SiameseNet at inference."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..models import Encoder, ModelSpec, create_head
from .common import (
    EMBED_BATCH,
    INPUT_NAME,
    ONNX_FORMAT,
    OUTPUT_NAME,
    REQUIRED_KEYS,
    OnnxError,
    _is_torch_file,
    _require,
)

__all__ = ["OnnxEncoder", "OnnxSiameseNet", "load_onnx_model"]


def _metadata(path: Path, sess: Any) -> dict:
    meta = dict(sess.get_modelmeta().custom_metadata_map)
    if meta.get("format") != ONNX_FORMAT:
        raise OnnxError(f"{path}: format {meta.get('format')!r}, {ONNX_FORMAT!r} expected (an "
                        "ONNX file not written by oneshot.onnx.export_onnx)")
    missing = [k for k in REQUIRED_KEYS if k not in meta]
    if missing:
        raise OnnxError(f"{path}: metadata lacks {missing}")
    return meta


def _build_head(name: str, dim: int, params: dict, head_args: dict) -> nn.Module:
    head = create_head(name, dim, **head_args)  # the args: what a head computes (local's radius)
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

    autocast = False  # ONNX Runtime runs the graph: torch's bf16 autocast cannot reach it

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
            hint = (" (a PyTorch model or checkpoint named .onnx: rename it to .pt)"
                    if _is_torch_file(self.path) else "")
            raise OnnxError(f"{self.path}: not a readable ONNX model{hint} ({e})") from e
        self.metadata = _metadata(self.path, self.session)
        try:
            self.spec = ModelSpec(**json.loads(self.metadata["model_spec"]))
            self.input_size = int(self.metadata["input_size"])
            self.embedding_dim = int(self.metadata["embedding_dim"])
            self.head = _build_head(self.metadata["head"], self.embedding_dim,
                                    json.loads(self.metadata["head_params"]), self.spec.head_args)
            self.record = json.loads(self.metadata.get("record", "{}"))
            self.preprocessing = json.loads(self.metadata.get("preprocessing", "{}"))
        except ConfigError as e:  # a head no plugin loaded has registered
            raise OnnxError(f"{self.path}: {e}") from e
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
