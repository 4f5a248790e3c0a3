"""One command trains an ensemble: the members side by side in their own processes, then one
model file with its validation accuracy and open-set threshold; resume and overwrite apply."""

from __future__ import annotations

import json

import pytest
from support import class_folder

from oneshot.checkpoint import load_model, resolve_model_path
from oneshot.cli import main
from oneshot.errors import ConfigError, UsageError
from oneshot.training import apply_overrides, preset, train

SETS = {"encoder_args": {"input_size": 28, "width": 8}, "steps": 6, "val_every": 6,
        "val_tasks": 10, "val_ways": 5, "ways": 5, "rotations": False, "log_lake": False,
        "time_limit_min": 0.0, "members": 2}


def test_shipped_preset_is_two_fast_members():
    shipped, fast = preset("shipped"), preset("fast")
    assert shipped.members == 2 and shipped.threads == 1
    assert {k: v for k, v in shipped.to_dict().items() if k not in ("members", "threads")} == \
        {k: v for k, v in fast.to_dict().items() if k not in ("members", "threads")}


def test_views_need_an_ensemble():
    with pytest.raises(ConfigError, match="views='rot' go into an ensemble's model.pt"):
        apply_overrides(preset("fast"), {"views": "rot"})
    with pytest.raises(ConfigError, match="views='spin'; expected one of"):
        apply_overrides(preset("shipped"), {"views": "spin"})


def test_an_ensemble_of_other_heads_is_refused_before_training(tmp_path):
    cfg = apply_overrides(preset("shipped"), {"encoder": "koch", "encoder_args": {},
                                              "head": "l1"})
    with pytest.raises(ConfigError, match="members=2 with head='l1'.*Euclidean"):
        train(cfg, tmp_path / "ens")
    assert not (tmp_path / "ens").exists()  # refused before the folder was taken


def test_members_train_side_by_side_into_one_model(tmp_path, data_dir, cache_dir, capsys):
    cfg = apply_overrides(preset("fast"), {**SETS, "views": "rot"})
    out = tmp_path / "ens"
    r = train(cfg, out, data_dir, cache_dir, progress=False)
    assert (out / "member-0" / "best.pt").is_file() and (out / "member-1" / "best.pt").is_file()
    assert resolve_model_path(out) == out / "model.pt"
    net, record = load_model(out)
    assert net.spec.encoder == "views" and len(net.encoder.views) == 3
    assert len(net.encoder.inner.members) == 2  # the views wrap the exact ensemble
    assert [m["seed"] for m in record["members"]] == [0, 1]
    assert record["validation"]["tasks"] == 10 and r.best_val == record["validation"]["accuracy"]
    assert 0 < record["open_set"]["threshold"] < 1
    with pytest.raises(UsageError, match="not empty; use --resume, --overwrite"):
        train(cfg, out, data_dir, cache_dir, progress=False)
    again = train(cfg, out, data_dir, cache_dir, progress=False, resume=True)  # all finished
    assert again.best_val == r.best_val
    cfg_file = tmp_path / "cfg.json"
    cfg_file.write_text(json.dumps(cfg.to_dict()))
    assert main(["train", "--config", str(cfg_file), "--out", str(out), "--resume",
                 "--data-dir", str(data_dir), "--cache", str(cache_dir), "--quiet"]) == 0
    said = capsys.readouterr().out
    # another config (say, a preset changed since) is refused with the way to resume as trained
    with pytest.raises(ConfigError, match=r"lr: 0.001 -> 0.5; .*use --config .*config\.json"):
        train(apply_overrides(cfg, {"lr": 0.5}), out, data_dir, cache_dir, progress=False,
              resume=True)
    assert main(["train", "--config", str(out / "config.json"), "--out", str(out), "--resume",
                 "--data-dir", str(data_dir), "--cache", str(cache_dir), "--quiet"]) == 0
    said += capsys.readouterr().out
    assert "trained 2 members" in said and f"model file {out / 'model.pt'}" in said, said
    support = class_folder(tmp_path / "s", ["a", "b"])
    assert main(["classify", "--model", str(out), "--support", str(support),
                 str(support / "a" / "0.png"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] in ("a", "b", "unknown")
    members = [str(out / "member-0"), str(out / "member-1")]
    assert main(["ensemble", *members, "--out", str(tmp_path / "e.pt")]) == 0
    assert load_model(tmp_path / "e.pt")[0].spec.encoder == "concat"
    assert main(["ensemble", members[0], "--out", str(tmp_path / "v.pt"), "--views",
                 "rot-scale"]) == 0
    inner = load_model(tmp_path / "v.pt")[0].spec.encoder_args["inner"]
    assert inner["encoder"] == "conv"  # one run: its own network, in the views
    assert main(["ensemble", members[0], "--out", str(tmp_path / "x.pt"), "--views",
                 "spin"]) == 2
    assert "unknown view set 'spin'" in capsys.readouterr().err
    assert not (tmp_path / "x.pt").exists()
    # these were tracebacks (exit 1), or accepted twice over (found by a review helper)
    for runs, says in [([members[0], "default"], "input sizes [28, 56]; one size expected"),
                       ([members[0], members[0] + "/best.pt"], "a model is given twice")]:
        assert main(["ensemble", *runs, "--out", str(tmp_path / "y.pt")]) == 2
        assert says in capsys.readouterr().err
    assert not (tmp_path / "y.pt").exists()


def test_an_ensemble_on_a_folder_is_validated_on_the_folder(tmp_path, cache_dir):
    """It was validated and calibrated on Omniglot's validation alphabets (60 % beside members
    at 95-100 %), and its folder had no data_split.json for evaluate's leakage warning."""
    data = class_folder(tmp_path / "flat", [f"c{k:02d}" for k in range(14)], per_class=4)
    cfg = apply_overrides(preset("small"), {**SETS, "data": str(data), "val_ways": 20})
    r = train(cfg, tmp_path / "run", cache=cache_dir, progress=False)
    _, record = load_model(tmp_path / "run" / "model.pt")
    assert record["validation"]["tasks"] == 10 and "open_set" not in record  # too few classes
    members = [record["members"][k]["best_val"] for k in (0, 1)]
    assert min(members) >= 90 and r.best_val >= 90  # the folder's few classes, as members
    split = json.loads((tmp_path / "run" / "data_split.json").read_text())
    assert split == json.loads((tmp_path / "run" / "member-0" / "data_split.json").read_text())
    assert split["seen_images"]
