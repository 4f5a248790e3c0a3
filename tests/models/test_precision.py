"""Evaluation numerics: ``--precision auto`` uses bf16 only for encoders measured to be as
accurate in it, and only on hardware that computes bf16; the report says which was used."""

from __future__ import annotations

import json

import pytest
import torch

from oneshot import ModelSpec, build_model
from oneshot.cli import main
from oneshot.embedding import native_bf16, resolve_precision
from oneshot.errors import ConfigError
from oneshot.models.encoders import ConvEncoder, KochEncoder


@pytest.fixture(scope="module")
def koch():
    return build_model(ModelSpec("koch", {"fc_std": 0.01}, "l1"), seed=0)


CONV = build_model(ModelSpec("conv", {"input_size": 28, "width": 8}, "euclidean"), seed=0)


def test_explicit_precisions_are_obeyed(koch):
    for net in (koch, CONV, koch.encoder):
        assert resolve_precision("fp32", net) is False
        assert resolve_precision("bf16", net) is True


def test_auto_is_bf16_only_for_measured_encoders_on_bf16_hardware(koch, monkeypatch):
    assert KochEncoder.bf16_eval and not ConvEncoder.bf16_eval
    assert resolve_precision("auto", CONV) is False
    assert resolve_precision("auto", koch) is native_bf16("cpu")
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        monkeypatch.setattr(torch.cpu, name, lambda: False, raising=False)
    assert native_bf16("cpu") is False
    assert resolve_precision("auto", koch) is False  # emulated bf16 would be slower


def test_unknown_precision_is_named(koch):
    with pytest.raises(ConfigError, match="precision 'fp16'"):
        resolve_precision("fp16", koch)


def test_evaluate_applies_and_reports_the_precision(data_dir, cache_dir, tmp_path,
                                                    tiny_model_file, monkeypatch):
    from oneshot.evaluation import scorers

    used = []
    real = scorers.EncoderScorer.__init__

    def spy(self, *a, **k):
        used.append(k.get("amp"))
        real(self, *a, **k)

    monkeypatch.setattr(scorers.EncoderScorer, "__init__", spy)
    monkeypatch.setenv("ONESHOT_DATA", str(data_dir))
    monkeypatch.setenv("ONESHOT_CACHE", str(cache_dir))
    common = ["evaluate", "--model", str(tiny_model_file), "--no-baselines", "--no-lake",
              "--split", "test", "--mode", "within-alphabet", "--ways", "5", "--tasks", "20"]
    for precision, amp in (("auto", False), ("bf16", True), ("fp32", False)):
        out = tmp_path / precision
        assert main(common + ["--precision", precision, "--out", str(out)]) == 0
        assert used[-1] is amp
        md = (out / "results.md").read_text()
        assert ("bf16 autocast" in md) is amp, md
        rows = json.loads((out / "results.json").read_text())["nway"]
        assert all(r["scorer"].endswith("[bf16]") is amp for r in rows), rows


def test_bf16_is_refused_for_onnx_models():
    """ONNX Runtime ignores torch autocast: reports said "[bf16]" for an ONNX model whose
    embeddings did not change at all (found by a review helper)."""
    from oneshot.onnx.runtime import OnnxEncoder

    class Graph(torch.nn.Module):
        autocast = OnnxEncoder.autocast

    assert OnnxEncoder.autocast is False
    with pytest.raises(ConfigError, match="bf16 applies to PyTorch models"):
        resolve_precision("bf16", Graph())
    assert resolve_precision("auto", Graph()) is False and not resolve_precision("fp32", Graph())
