"""Outputs a user names: never a file of the wrong kind under a name no command can load,
and a failing standard output named as such."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from oneshot.cli import main


def test_no_pytorch_file_is_written_under_an_onnx_name(tiny_model_file, tmp_path, capsys):
    """`ensemble --out e.onnx` wrote a PyTorch file that `verify --model e.onnx` then refused
    as a misnamed one (review); so did `export --format pt --out e.onnx`."""
    out = tmp_path / "e.onnx"
    assert main(["ensemble", str(tiny_model_file), "--out", str(out)]) == 2
    assert "e.onnx: a PyTorch model file named .onnx; name it .pt" in capsys.readouterr().err
    assert main(["export", str(tiny_model_file), "--format", "pt", "--out", str(out)]) == 2
    assert "a PyTorch model file named .onnx" in capsys.readouterr().err
    assert not out.exists()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs Linux's /dev/full")
def test_a_full_standard_output_is_named(tiny_model_file, tmp_path):
    """`oneshot verify A B > /dev/full` said "error: [Errno 28] No space left on device",
    naming nothing (review)."""
    from PIL import Image, ImageDraw

    im = Image.new("L", (64, 64), 255)
    ImageDraw.Draw(im).line((10, 10, 50, 50), fill=0, width=5)
    im.save(tmp_path / "a.png")
    with open("/dev/full", "w") as full:
        r = subprocess.run([sys.executable, "-m", "oneshot", "verify", "--model",
                            str(tiny_model_file), str(tmp_path / "a.png"),
                            str(tmp_path / "a.png")], stdout=full, stderr=subprocess.PIPE,
                           text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().endswith("No space left on device: 'standard output'"), r.stderr
    assert "Traceback" not in r.stderr


def test_under_torchrun_only_rank_0_reports_a_training(tmp_path, monkeypatch, capsys):
    """Rank 1 printed "best validation nan % at step -1" after rank 0's line (review)."""
    import math

    import oneshot.training as training
    from oneshot.training.loop import TrainResult

    monkeypatch.setattr(training, "train", lambda cfg, out, *a, **k: TrainResult(
        tmp_path, 5, math.nan, -1, 1.0, None))
    for rank, said in (("1", False), ("0", True)):
        monkeypatch.setenv("RANK", rank)
        assert main(["train", "--preset", "fast", "--out", str(tmp_path / "r")]) == 0
        assert ("trained 5 steps" in capsys.readouterr().out) == said, rank
