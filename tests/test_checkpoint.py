"""Model files and checkpoints: exports never overwrite a checkpoint or their input; model files
with NaN weights, oversized or mismatched specs are refused before anything big is built."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
from support import TINY_SPEC

from oneshot.checkpoint import (
    MODEL_FORMAT,
    CheckpointError,
    _save,
    export_model,
    load_model,
    save_checkpoint,
)
from oneshot.cli import main
from oneshot.models import build_model


def _checkpoint(path):
    """A training checkpoint as the trainer writes it (tiny model, one SGD optimiser)."""
    model = build_model(TINY_SPEC, seed=0)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    save_checkpoint(path, model=model, optimizer=opt,
                    scheduler=torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0), step=3,
                    best=50.0, config={}, metrics={}, data_digest="d", rng={})
    return path


def test_export_never_replaces_a_checkpoint_or_its_input(tmp_path, tiny_model_file, capsys):
    run = tmp_path / "run"
    run.mkdir()
    last = _checkpoint(run / "last.pt")
    before = last.read_bytes()
    assert main(["export", str(last), "--out", str(last)]) == 2
    assert "is the input" in capsys.readouterr().err
    assert main(["export", str(tiny_model_file), "--out", str(last)]) == 2
    assert "training checkpoint" in capsys.readouterr().err
    assert last.read_bytes() == before
    assert main(["export", str(tiny_model_file), "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    out = tmp_path / "model.pt"
    assert main(["export", str(tiny_model_file), "--out", str(out)]) == 0
    assert main(["export", str(tiny_model_file), "--out", str(out)]) == 0  # a model file: ok


def test_export_never_replaces_other_files(tmp_path, tiny_model_file, capsys):
    """A user's image, notes or run files, a link or a device are not model files: refused,
    untouched (found by a review: they used to be replaced silently)."""
    notes = tmp_path / "config.json"
    notes.write_text('{"mine": 1}')
    png = tmp_path / "a.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    link = tmp_path / "link.pt"
    link.symlink_to(notes)
    for target, says in [(notes, "is not an earlier oneshot model file"),
                         (png, "is not an earlier oneshot model file"),
                         (link, "symbolic link"), ("/dev/null", "not a regular file")]:
        assert main(["export", str(tiny_model_file), "--out", str(target)]) == 2
        assert says in capsys.readouterr().err, target
    assert notes.read_text() == '{"mine": 1}' and link.is_symlink()
    assert png.read_bytes().startswith(b"\x89PNG")


def test_nan_weights_are_refused(tmp_path):
    model = build_model(TINY_SPEC, seed=0)
    with torch.no_grad():
        model.head.bias.fill_(float("nan"))
    export_model(model, tmp_path / "nan.pt")
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        load_model(tmp_path / "nan.pt")


def test_mismatched_weights_are_refused(tmp_path):
    other = build_model({**TINY_SPEC, "encoder_args": {"input_size": 28, "width": 4}})
    _save({"format": MODEL_FORMAT, "model_spec": json.dumps(TINY_SPEC),
           "state_dict": other.state_dict(), "record": "{}"}, tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="do not fit the model spec"):
        load_model(tmp_path / "m.pt")


def test_oversized_spec_is_refused_fast_and_small(tmp_path):
    """A 2.5 KB file asking for width=6000 used to cost 9.7 s and 1.5 GB before the refusal."""
    path = tmp_path / "huge.pt"
    spec = {**TINY_SPEC, "encoder_args": {"input_size": 28, "width": 6000}}
    _save({"format": MODEL_FORMAT, "model_spec": json.dumps(spec),
           "state_dict": build_model(TINY_SPEC).state_dict(), "record": "{}"}, path)
    # the child's own peak (VmHWM): getrusage's ru_maxrss would carry pytest's over the exec
    code = ("import sys, time; from oneshot.checkpoint import load_model, CheckpointError\n"
            "t = time.perf_counter()\ntry:\n    load_model(sys.argv[1])\n"
            "except CheckpointError as e:\n    print(e)\n"
            "hwm = next(int(x.split()[1]) for x in open('/proc/self/status') "
            "if x.startswith('VmHWM:'))\nprint(time.perf_counter() - t, hwm)")
    r = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True,
                       timeout=120)
    assert "over the limit" in r.stdout, r.stdout + r.stderr
    seconds, peak_kb = map(float, r.stdout.split()[-2:])
    # building the spec on the meta device takes about 1-2 s (torch's meta kernels load)
    assert seconds < 5.0 and peak_kb < 700_000, (seconds, peak_kb)  # torch alone is ~250 MB


def test_huge_input_size_is_refused(tmp_path):
    """A hand-edited file with input_size=100000 (and a crop, so the weights still fit)
    loaded, and the first image then asked for 40 GB (found by a review helper)."""
    spec = {**TINY_SPEC, "encoder_args": {**TINY_SPEC["encoder_args"], "input_size": 100000,
                                          "crop": 28}}
    _save({"format": MODEL_FORMAT, "model_spec": json.dumps(spec),
           "state_dict": build_model(TINY_SPEC).state_dict(), "record": "{}"},
          tmp_path / "m.pt")
    with pytest.raises(CheckpointError, match="input_size=100000; 1 to 1024 px expected"):
        load_model(tmp_path / "m.pt")
