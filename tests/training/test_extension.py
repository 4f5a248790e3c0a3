"""The package is extended from outside, with no edit to it: this file registers a new encoder,
a new head and a new objective, then trains with them for 5 steps through the Python API and
through the command line (in process, and in a fresh process that loads this file with
``--plugin``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from oneshot.cli import main
from oneshot.errors import ConfigError
from oneshot.models import Encoder, Head, register_encoder, register_head
from oneshot.training import StepContext, apply_overrides, preset, register_objective, train

THIS = Path(__file__).resolve()


class TinyMLP(Encoder):
    """Flattened 16x16 image -> ``dim``: nothing like the package's encoders."""

    def __init__(self, dim: int = 16) -> None:
        super().__init__()
        self.input_size, self.embedding_dim = 16, dim
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(256, 32), nn.ReLU(), nn.Linear(32, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CosineHead(Head):
    """scale * cosine(a, b) + bias."""

    def __init__(self, dim: int, scale: float = 5.0) -> None:
        super().__init__(dim)
        self.scale = nn.Parameter(torch.tensor(scale))
        self.bias = nn.Parameter(torch.tensor(0.0))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.scale * F.cosine_similarity(a, b, dim=-1) + self.bias


class MarginObjective:
    """Anchor-positive-negative triplets from the pair sampler's stream: hinge on the head's
    logits, ``margin`` apart. Its global batch is the config's ``batch``."""

    batch_field = "batch"

    def __init__(self, cfg, dataset, rng: np.random.Generator, margin: float = 1.0) -> None:
        self.cfg, self.rng, self.margin = cfg, rng, margin
        self.labels = dataset.labels
        self.by_label = {c: np.flatnonzero(dataset.labels == c) for c in np.unique(dataset.labels)}

    def loss(self, ctx: StepContext) -> tuple[torch.Tensor, int]:
        n = self.cfg.batch
        anchors = self.rng.integers(0, len(self.labels), n)
        pos = np.array([self.rng.choice(self.by_label[self.labels[a]]) for a in anchors])
        neg = self.rng.integers(0, len(self.labels), n)
        e = ctx.net(ctx.images(np.concatenate([anchors, pos, neg])))
        a, p, q = e.split(n)
        gap = ctx.head(a, p) - ctx.head(a, q)
        return F.relu(self.margin - gap).mean(), 2 * n


register_encoder("test-tiny-mlp", TinyMLP, replace=True)
register_head("test-cosine", CosineHead, replace=True)
register_objective("test-margin", MarginObjective, replace=True)

OVERRIDES = {"encoder": "test-tiny-mlp", "encoder_args": {"dim": 8}, "head": "test-cosine",
             "head_args": {"scale": 3.0}, "objective": "test-margin",
             "objective_args": {"margin": 0.5}, "batch": 8, "steps": 5, "val_every": 5,
             "val_tasks": 10, "val_ways": 5, "rotations": False, "distort": True,
             "log_lake": False, "amp": False, "time_limit_min": 0.0}


def _as_set(overrides: dict) -> list[str]:
    return [f"{k}={json.dumps(v) if isinstance(v, (dict, bool)) else v}"
            for k, v in overrides.items()]


def _check_run(run: Path) -> None:
    losses = [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text()
              .splitlines() if '"loss"' in line]
    assert len(losses) == 5 and all(np.isfinite(losses))
    cfg = json.loads((run / "config.json").read_text())["config"]
    assert {k: cfg[k] for k in OVERRIDES} == OVERRIDES
    assert (run / "best.pt").is_file() and (run / "last.pt").is_file()


def test_train_through_the_python_api(tmp_path, data_dir, cache_dir):
    cfg = apply_overrides(preset("fast"), OVERRIDES)
    r = train(cfg, tmp_path / "api", data_dir, cache_dir, progress=False)
    assert r.steps == 5 and 0 <= r.best_val <= 100
    assert isinstance(r.model.encoder, TinyMLP) and isinstance(r.model.head, CosineHead)
    assert r.model.head.scale.item() != 3.0  # the head was trained
    _check_run(tmp_path / "api")


def test_train_through_the_cli_in_process(tmp_path, data_dir, cache_dir):
    out = tmp_path / "cli"
    rc = main(["train", "--quiet", "--data-dir", str(data_dir), "--cache", str(cache_dir),
               "--out", str(out), "--set", *_as_set(OVERRIDES)])
    assert rc == 0
    _check_run(out)


def test_train_through_the_cli_with_a_plugin_file(tmp_path, data_dir, cache_dir):
    out = tmp_path / "plugin"
    cmd = [sys.executable, "-m", "oneshot", "--plugin", str(THIS), "train", "--quiet",
           "--data-dir", str(data_dir), "--cache", str(cache_dir), "--out", str(out),
           "--set", *_as_set(OVERRIDES)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    _check_run(out)
    # without the plugin the names are unknown: a clear error naming the registered ones
    r = subprocess.run(cmd[:3] + cmd[5:-len(_as_set(OVERRIDES))] + ["objective=test-margin"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 2
    assert "objective='test-margin'" in r.stderr and "episodes" in r.stderr


def test_registries_refuse_clashes_and_name_known_entries():
    with pytest.raises(ConfigError, match="already registered"):
        register_encoder("conv", TinyMLP)
    with pytest.raises(ConfigError, match=r"unknown head 'nope'; registered: \[.*'euclidean'"):
        from oneshot.models import create_head

        create_head("nope", 4)


@pytest.mark.parametrize("code, says", [
    ('x = 1\nraise RuntimeError("boom")\n', "failed on import at {path}:2: RuntimeError: boom"),
    ("def f(:\n", "failed on import: SyntaxError: invalid syntax"),
    ("import no_such_module_xyz\n", "cannot be imported (No module named"),
])
def test_a_plugin_that_fails_on_import_is_one_line(code, says, tmp_path, capsys):
    """It was a full traceback with exit status 1 (found by a review helper)."""
    from oneshot.cli import main

    path = tmp_path / "bad_plugin.py"
    path.write_text(code)
    for _ in range(2):  # the half-run module was reused silently the second time
        assert main(["--plugin", str(path), "data", "--split", "small1"]) == 2
        err = capsys.readouterr().err
        assert says.format(path=path) in err and "Traceback" not in err, err
