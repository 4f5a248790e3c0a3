"""A run folder is never mixed or lost: a second training into a busy folder is refused at once
(real processes), a non-empty folder needs ``--overwrite``, stale task files are never reused,
and a resume with another config names what differs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from oneshot.cli import main
from oneshot.errors import ConfigError, UsageError
from oneshot.sampling import TaskList
from oneshot.training import apply_overrides, config_diff, preset, train

# encoder_args keys out of sorted order on purpose: config.json sorts them (see the resume test)
TINY = {"encoder_args": {"width": 8, "input_size": 28}, "steps": 4, "val_every": 4,
        "val_tasks": 10, "val_ways": 5, "rotations": False, "log_lake": False,
        "time_limit_min": 0.0, "threads": 1}


def _sets(d: dict) -> list[str]:
    return [f"{k}={json.dumps(v) if isinstance(v, dict) else v}" for k, v in d.items()]


def test_second_training_into_a_busy_folder_is_refused(tmp_path, data_dir, cache_dir):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "oneshot", "train", "--quiet", "--data-dir", str(data_dir),
           "--cache", str(cache_dir), "--out", str(out), "--set",
           *_sets({**TINY, "steps": 400, "val_every": 400})]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / ".lock").exists() or not (out / ".lock").read_text().strip():
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()
            time.sleep(0.1)
        second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 2
        assert f"is in use by another process (pid {first.pid})" in second.stderr
        assert "Traceback" not in second.stderr
    finally:
        first.wait(timeout=600)
    assert first.returncode == 0, first.stderr.read()
    assert json.loads((out / "config.json").read_text())["config"]["steps"] == 400


def test_non_empty_folder_needs_overwrite(tmp_path, data_dir, cache_dir):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "config.json").write_text('{"mine": true}')
    (out / "notes.txt").write_text("keep me")
    cfg = apply_overrides(preset("fast"), TINY)
    with pytest.raises(UsageError, match="is not empty; use --overwrite"):
        train(cfg, out, data_dir, cache_dir, progress=False)
    assert (out / "config.json").read_text() == '{"mine": true}'
    train(cfg, out, data_dir, cache_dir, progress=False, overwrite=True)
    assert (out / "notes.txt").read_text() == "keep me"  # not a run file: left alone
    assert "config" in json.loads((out / "config.json").read_text())


def test_stale_task_file_is_never_reused(tmp_path, data_dir, cache_dir):
    out = tmp_path / "r"
    cfg = apply_overrides(preset("fast"), {**TINY, "val_ways": 20, "val_tasks": 20})
    train(cfg, out, data_dir, cache_dir, progress=False)
    (out / "last.pt").unlink()  # as if the run had crashed before its first checkpoint
    (out / "best.pt").unlink()
    cfg5 = apply_overrides(cfg, {"val_ways": 5, "val_tasks": 12})
    train(cfg5, out, data_dir, cache_dir, progress=False, overwrite=True)
    tl = TaskList.load(out / "val_tasks.npz")
    assert (tl.ways, len(tl)) == (5, 12)
    # a resume whose task file was drawn with other settings is refused
    stale = TaskList(tl.query, tl.support, tl.answer, {**tl.meta, "seed": 1})
    stale.save(out / "val_tasks.npz")
    with pytest.raises(ValueError, match="tasks were drawn with seed=1"):
        train(cfg5, out, data_dir, cache_dir, progress=False, resume=True)


def test_resume_names_the_keys_that_differ(tmp_path, data_dir, cache_dir):
    cfg = apply_overrides(preset("fast"), TINY)
    train(cfg, tmp_path / "r", data_dir, cache_dir, progress=False)
    other = apply_overrides(cfg, {"lr": 0.5, "queries": 3})
    with pytest.raises(ConfigError, match=r"lr: 0.001 -> 0.5, queries: 2 -> 3"):
        train(other, tmp_path / "r", data_dir, cache_dir, progress=False, resume=True)
    # the refusal's hint: the run's config.json (keys sorted) resumes it from the command line
    assert main(["train", "--config", str(tmp_path / "r" / "config.json"), "--out",
                 str(tmp_path / "r"), "--resume", "--data-dir", str(data_dir), "--cache",
                 str(cache_dir), "--quiet"]) == 0


def test_config_diff_ignores_key_order():
    assert config_diff({"encoder_args": {"width": 8, "crop": 28}},
                       {"encoder_args": {"crop": 28, "width": 8}}) == {}
    assert config_diff({"encoder_args": {"width": 8}}, {"encoder_args": {"width": 9}}) == {
        "encoder_args": ({"width": 8}, {"width": 9})}


def test_out_that_is_a_file(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["train", "--out", str(f), "--steps", "1"]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert f.read_text() == "x"


@pytest.mark.parametrize("value", ["-1", "4294967296", "99999999999999999999"])
@pytest.mark.parametrize("name", ["seed", "split_seed"])
def test_seeds_out_of_range_are_config_errors(name, value):
    """--set seed=-1 reached numpy as a traceback (found by a review helper)."""
    with pytest.raises(ConfigError, match=f"config {name}={value}; 0 to 2\\*\\*32-1 expected"):
        apply_overrides(preset("fast"), [f"{name}={value}"])
