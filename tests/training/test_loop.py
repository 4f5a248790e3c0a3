"""Training on real data: learning happens, checkpoints are safe, resume is exact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from oneshot.checkpoint import CheckpointError, load_checkpoint, load_model
from oneshot.errors import UsageError
from oneshot.training import PRESETS, TrainConfig, apply_overrides, preset, train

TINY = dict(encoder="conv", encoder_args={"input_size": 28, "width": 16}, head="euclidean",
            objective="episodes", ways=10, queries=2, lr=2e-3, val_ways=5, val_tasks=40,
            val_every=10, threads=1)


def _losses(run):
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if "loss" in r]


def test_short_training_beats_chance(tmp_path, data_dir, cache_dir):
    cfg = TrainConfig(**{**TINY, "steps": 150, "val_every": 150, "val_tasks": 300,
                         "threads": 0, "distort": True})
    r = train(cfg, tmp_path / "run", data_dir, cache_dir, progress=False)
    # 5-way within-alphabet tasks on the held-out validation alphabets: chance is 20 %
    assert r.best_val > 50.0, r
    ck = load_checkpoint(tmp_path / "run" / "best.pt")
    assert ck["step"] == 150 and ck["metrics"]["val"]["tasks"] == 300
    assert (tmp_path / "run" / "training.png").stat().st_size > 1000
    cfgjson = json.loads((tmp_path / "run" / "config.json").read_text())
    assert cfgjson["config"]["steps"] == 150 and cfgjson["data_digest"]


@pytest.mark.parametrize("objective", ["episodes", "pairs"])
def test_resume_after_stop_is_exact(tmp_path, data_dir, cache_dir, objective):
    cfg = TrainConfig(**{**TINY, "steps": 30, "objective": objective, "head": "l1",
                         "distort": True, "batch": 16})
    full = train(cfg, tmp_path / "full", data_dir, cache_dir, progress=False)
    train(cfg, tmp_path / "part", data_dir, cache_dir, progress=False, stop_after=20)
    assert load_checkpoint(tmp_path / "part" / "last.pt")["step"] == 20
    resumed = train(cfg, tmp_path / "part", data_dir, cache_dir, progress=False, resume=True)
    assert _losses(tmp_path / "part") == _losses(tmp_path / "full")
    assert len(_losses(tmp_path / "full")) == 30
    assert resumed.best_val == full.best_val


def test_resume_after_kill_is_exact(tmp_path, data_dir, cache_dir):
    """A real SIGKILL half-way through a `oneshot train` process, then --resume."""
    sets = ["encoder_args={\"input_size\": 56, \"width\": 16}", "steps=60", "val_every=10",
            "val_tasks=20", "val_ways=5", "ways=10", "queries=2", "threads=1", "amp=false",
            "distort=true"]
    env = {**os.environ, "ONESHOT_CACHE": str(cache_dir), "ONESHOT_DATA": str(data_dir)}
    base = [sys.executable, "-m", "oneshot", "--quiet", "train", "--preset", "fast", "--set",
            *sets, "--out"]
    subprocess.run(base + [str(tmp_path / "full")], check=True, env=env, timeout=300)
    run = tmp_path / "killed"
    proc = subprocess.Popen(base + [str(run)], env=env)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        m = run / "metrics.jsonl"
        if m.exists() and len(_losses(run)) >= 25:
            break
        time.sleep(0.02)
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert killed, "the run ended before it could be killed; make it longer"
    assert load_checkpoint(run / "last.pt")["step"] < 60
    subprocess.run(base + [str(run), "--resume"], check=True, env=env, timeout=300)
    assert _losses(run) == _losses(tmp_path / "full")


def test_refuses_to_overwrite_and_bad_resume(tmp_path, data_dir, cache_dir):
    cfg = TrainConfig(**{**TINY, "steps": 10})
    train(cfg, tmp_path / "r", data_dir, cache_dir, progress=False)
    with pytest.raises(UsageError, match="holds a run; use --resume"):
        train(cfg, tmp_path / "r", data_dir, cache_dir, progress=False)
    with pytest.raises(ValueError, match="another config; differences .*lr: 0.002 -> 0.5.*"
                       r"own settings .*use --config .*r[/\\]config\.json"):
        train(apply_overrides(cfg, ["lr=0.5"]), tmp_path / "r", data_dir, cache_dir,
              progress=False, resume=True)
    # the hint works: the run's own config.json resumes it
    own = TrainConfig.from_file(tmp_path / "r" / "config.json")
    assert train(own, tmp_path / "r", data_dir, cache_dir, progress=False, resume=True).steps == 10


def test_finished_and_longer_resumes_say_how_to_train_further(tmp_path, data_dir, cache_dir,
                                                               caplog):
    cfg = TrainConfig(**{**TINY, "steps": 4})
    run = tmp_path / "my run"  # a space: the hint quotes it, so that it can be pasted
    train(cfg, run, data_dir, cache_dir, progress=False)
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    with caplog.at_level("WARNING", logger="oneshot.training"):
        result = train(cfg, run, data_dir, cache_dir, progress=False, resume=True,
                       command=["oneshot", "train", "--resume"])
    assert "finished all its 4 steps: nothing left to train" in caplog.text
    assert result.steps == 4
    # nothing rewritten: config.json keeps the command that made the run, metrics and plot stay
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before
    assert f"--init '{run}' --out NEW_FOLDER" in caplog.text
    with pytest.raises(ValueError, match=r"steps: 4 -> 6.*not extended in place.*--init '"):
        train(apply_overrides(cfg, ["steps=6"]), run, data_dir, cache_dir, progress=False,
              resume=True)
    with pytest.raises(ValueError, match=r"steps: 4 -> 2; to continue .*config\.json$"):
        train(apply_overrides(cfg, ["steps=2"]), run, data_dir, cache_dir, progress=False,
              resume=True)  # fewer steps: no "to train further" hint
    # the hint works: a new run starts from the finished run's weights
    longer = apply_overrides(cfg, ["steps=6", f"init={run}"])
    assert train(longer, tmp_path / "more", data_dir, cache_dir, progress=False).steps == 6


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):  # unpickling this would run code
        return (os.makedirs, (self.marker,))


def test_checkpoint_loading_is_safe(tmp_path):
    bad = tmp_path / "evil.pt"
    marker = tmp_path / "code-ran"
    torch.save({"format": "oneshot-model-1", "x": _Evil(str(marker))}, bad)
    with pytest.raises(CheckpointError, match="Python objects that a safe load refuses") as e:
        load_model(bad)  # in words: not torch's hint (with terminal colours) to load unsafely
    assert not marker.exists() and "\x1b" not in str(e.value) and "weights_only" not in str(
        e.value)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a readable"):
        load_model(tmp_path / "junk.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")  # a plain state dict
    with pytest.raises(CheckpointError, match="no 'format' key: a plain state dict"):
        load_model(tmp_path / "other.pt")


def test_presets_and_overrides():
    assert set(PRESETS) >= {"tutorial", "koch", "fast"}
    t = preset("tutorial")
    assert (t.encoder, t.optimizer, t.lr, t.batch, t.steps, t.val_every, t.val_tasks) == (
        "koch", "adam", 6e-5, 32, 20000, 200, 250)
    assert (t.l2_conv, t.l2_dense, t.val_split) == (2e-4, 1e-3, "validation")
    k = preset("koch")
    assert k.optimizer == "sgd" and k.distort and k.batch == 128 and k.lr_schedule == "koch"
    c = apply_overrides(t, ["lr=1e-3", "amp=true", "encoder_args={\"fc_std\": 0.2}"])
    assert c.lr == 1e-3 and c.amp is True and c.encoder_args == {"fc_std": 0.2}
    with pytest.raises(ValueError, match="unknown config key"):
        apply_overrides(t, ["learning_rate=1"])
    with pytest.raises(ValueError, match="not a valid"):
        apply_overrides(t, ["steps=many"])
    with pytest.raises(ValueError, match="objective"):
        apply_overrides(t, ["objective=magic"])
    d = apply_overrides(k, ['distort_args={"rotation_deg": 20, "scale": [0.7, 1.3]}'])
    assert d.distort_args == {"rotation_deg": 20, "scale": [0.7, 1.3]}
    with pytest.raises(ValueError, match=r"distort_args=.*unknown distortion ranges \['spin'\]"):
        apply_overrides(k, ['distort_args={"spin": 20}'])
    with pytest.raises(ValueError, match="distort_p=1.5.*probability"):
        apply_overrides(k, ["distort_p=1.5"])


def test_l2_is_keras_penalty_as_weight_decay():
    """Coupled weight decay 2*lambda on kernels == the gradient of Keras' lambda * sum(w^2)."""
    from oneshot.models import build_model
    from oneshot.training import param_groups

    cfg = TrainConfig(encoder="koch", head="l1", optimizer="sgd", lr=0.1, l2_conv=2e-4,
                      l2_dense=1e-3, momentum=0.0, momentum_start=0.0)
    model = build_model(cfg.model_spec, seed=0)
    groups = param_groups(model, cfg)
    decay = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    assert len(decay) == sum(1 for _ in model.parameters())  # every parameter, once
    for m in model.encoder.modules():
        if isinstance(m, torch.nn.Conv2d):
            assert decay[id(m.weight)] == pytest.approx(4e-4) and decay[id(m.bias)] == 0
        elif isinstance(m, torch.nn.Linear):
            assert decay[id(m.weight)] == pytest.approx(2e-3) and decay[id(m.bias)] == 0
    assert all(decay[id(p)] == 0 for p in model.head.parameters())
    # one SGD step with zero data gradient moves w by -lr * 2 * lambda * w
    opt = torch.optim.SGD(groups, momentum=0.0)
    w0 = model.encoder.fc.weight.detach().clone()
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    assert torch.allclose(model.encoder.fc.weight, w0 * (1 - 0.1 * 2e-3))


def test_rotated_training_images_equal_the_rotated_dataset(splits):
    """Rotations made per batch are the rotated images in Dataset.with_rotations' order
    (position k * N + i is image i turned k times), and the stored images stay unrotated."""
    from oneshot.preprocess import images_to_tensor
    from oneshot.training.data import TrainingImages

    ds = splits["validation"].select(alphabets=[splits["validation"].alphabets[0]])
    n = len(ds.images)
    assert len(ds.with_rotations(images=False).labels) == 4 * n
    data = TrainingImages(ds, 20, torch.device("cpu"), None, torch.Generator(), rotations=True)
    base = images_to_tensor(ds.images, 20)
    for k in range(4):
        assert torch.equal(data.images(np.arange(k * n, (k + 1) * n)),
                           torch.rot90(base, k, dims=(2, 3)))
    mixed = np.random.default_rng(0).choice(4 * n, 64, replace=False)
    want = torch.stack([torch.rot90(base[i % n], i // n, dims=(1, 2)) for i in mixed])
    assert torch.equal(data.images(mixed), want)
    assert torch.equal(data.x, base)


@pytest.mark.parametrize("flips, rotations", [(True, True), (True, False), (False, True)])
def test_flipped_and_rotated_training_images_follow_the_dataset_order(splits, flips, rotations):
    """Position i holds image i % N, mirrored when (i % M) >= N (M = 2N with flips), then
    turned i // M times: the Trainer's labels (with_flips, then with_rotations) and images
    made per batch match copies made in numpy."""
    from oneshot.preprocess import images_to_tensor
    from oneshot.training.data import TrainingImages

    ds = splits["validation"].select(alphabets=[splits["validation"].alphabets[0]])
    n, c, k = len(ds.images), len(ds.characters), (1 + flips) * (1 + 3 * rotations)
    labels, stored = ds, ds  # as the Trainer builds its labels, and as stored copies
    if flips:
        labels, stored = labels.with_flips(images=False), stored.with_flips()
    if rotations:
        labels, stored = labels.with_rotations(images=False), stored.with_rotations()
    assert len(labels.labels) == k * n and len(labels.characters) == k * c
    if flips:
        assert labels.characters[c] == ds.characters[0] + "@flip"
    if flips and rotations:
        assert labels.characters[3 * c] == ds.characters[0] + "@flip@rot90"
    data = TrainingImages(ds, 20, torch.device("cpu"), None, torch.Generator(),
                          rotations=rotations, flips=flips)
    mixed = np.random.default_rng(0).choice(k * n, 64, replace=False)
    assert torch.equal(data.images(mixed), images_to_tensor(stored.images[mixed], 20))
    assert torch.equal(data.x, images_to_tensor(ds.images, 20))
