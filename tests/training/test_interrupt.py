"""Nothing is lost on interruption: a real SIGINT or SIGTERM makes ``oneshot train`` write
last.pt after the current step, print the command that resumes, and exit 130 without a
traceback; a SIGKILL loses at most ``checkpoint_minutes``. Resuming from either checkpoint
continues exactly (the same losses as an uninterrupted run)."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time

import pytest

from oneshot.checkpoint import load_checkpoint

SETS = ['encoder_args={"input_size": 28, "width": 16}', "steps=120", "val_every=100",
        "val_tasks=20", "val_ways=5", "ways=10", "queries=2", "threads=1", "amp=false",
        "distort=true", "log_lake=false", "time_limit_min=0"]


def _losses(run) -> list[float]:
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if "loss" in r]


def _cmd(out, *extra: str) -> list[str]:
    return [sys.executable, "-m", "oneshot", "--quiet", "train", "--preset", "fast", "--out",
            str(out), "--set", *SETS, *extra]


@pytest.fixture(scope="module")
def env(data_dir, cache_dir):
    return {**os.environ, "ONESHOT_CACHE": str(cache_dir), "ONESHOT_DATA": str(data_dir),
            "OMP_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def reference(tmp_path_factory, env):
    out = tmp_path_factory.mktemp("ref") / "run"
    subprocess.run(_cmd(out), check=True, env=env, timeout=600)
    return _losses(out)


def _start_and_wait(out, env, extra: tuple[str, ...], lines: int) -> subprocess.Popen:
    proc = subprocess.Popen(_cmd(out, *extra), env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if (out / "metrics.jsonl").exists() and len(_losses(out)) >= lines:
            return proc
        time.sleep(0.02)
    proc.kill()
    pytest.fail(f"the run ended or stalled before step {lines}: {proc.communicate()[1]}")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_writes_last_and_resumes_exactly(tmp_path, env, reference, sig):
    out = tmp_path / "run"
    proc = _start_and_wait(out, env, ("checkpoint_minutes=60",), 30)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "--resume" in err and str(out) in err
    step = load_checkpoint(out / "last.pt")["step"]
    assert 30 <= step < 100  # after the signal, before the first validation: the signal's save
    resume = shlex.split(err.strip().splitlines()[-1])
    assert resume[0] == "oneshot" and "train" in resume and resume[-1] == "--resume"
    subprocess.run([sys.executable, "-m", "oneshot", *resume[1:]], check=True, env=env,
                   timeout=600)
    assert _losses(out) == reference


def test_kill_loses_at_most_the_checkpoint_interval(tmp_path, env, reference):
    out = tmp_path / "run"
    proc = _start_and_wait(out, env, ("checkpoint_minutes=0.0005",), 40)  # every 30 ms
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    step = load_checkpoint(out / "last.pt")["step"]
    assert 30 <= step < 100, step  # a time checkpoint, not a validation's
    subprocess.run(_cmd(out, "checkpoint_minutes=0.0005", "--resume"), check=True, env=env,
                   timeout=600)
    assert _losses(out) == reference
