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
``onnxruntime``. Install both with ``pip install 'oneshot-siamese[onnx]'``.
"""

from __future__ import annotations

from .common import DEFAULT_OPSET, ONNX_FORMAT, OnnxError
from .export import calibration_images, export_onnx, export_onnx_files, quantize_onnx
from .runtime import OnnxEncoder, OnnxSiameseNet, load_onnx_model

__all__ = ["OnnxError", "ONNX_FORMAT", "DEFAULT_OPSET", "export_onnx", "quantize_onnx",
           "export_onnx_files", "calibration_images",
           "OnnxEncoder", "OnnxSiameseNet", "load_onnx_model"]
