"""Training on a folder of your classes (--data) and from existing weights (--init)."""

from __future__ import annotations

import json

import pytest
import torch
from support import class_folder

from oneshot.checkpoint import load_model
from oneshot.data.dataset import DataError
from oneshot.data.partition import ClassSplit
from oneshot.errors import ConfigError
from oneshot.training import apply_overrides, preset, train
from oneshot.training.warmstart import initial_model, resolve_init

TINY = {"encoder_args": {"input_size": 28, "width": 8, "depth": 3}, "amp": False,
        "steps": 4, "val_every": 2, "val_tasks": 10, "episodes_per_step": 1, "threads": 1}


@pytest.fixture
def letters(tmp_path):
    names = [f"g{g}/c{c}" for g in range(5) for c in range(4)]
    return class_folder(tmp_path / "letters", names, per_class=[2 + (i % 3) for i in
                                                                range(len(names))])


def test_train_on_a_folder(letters, tmp_path, monkeypatch):
    cfg = apply_overrides(preset("small"), {**TINY, "data": str(letters)})
    r = train(cfg, tmp_path / "run", cache=tmp_path / "cache", progress=False, stop_after=2)
    run = tmp_path / "run"
    split = ClassSplit.load(run / "data_split.json")
    assert split.by == "groups" and len(split.parts["test"]) == 1
    record = json.loads((run / "config.json").read_text())
    assert record["val_ways"] == 4  # one validation group of 4 classes: 4-way, not 20-way
    assert record["data_split"]["train"] == 3
    assert r.steps == 2 and r.best_val >= 0
    model, rec = load_model(run)
    assert rec["config"]["data"] == str(letters.resolve())
    # resuming keeps the saved split even if the folder has changed since; the folder may be
    # spelt otherwise (was refused: "data: 'letters' -> './letters/'", review)
    class_folder(letters, ["g9/new1", "g9/new2"], per_class=2, seed=9)
    monkeypatch.chdir(tmp_path)
    cfg = apply_overrides(cfg, {"data": "./letters/"})
    train(cfg, run, cache=tmp_path / "cache", resume=True, progress=False)
    assert ClassSplit.load(run / "data_split.json").parts == split.parts
    val = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()
           if '"val"' in line]
    assert [v["step"] for v in val] == [2, 4]


def test_a_folder_too_small_is_refused(tmp_path):
    few = class_folder(tmp_path / "few", ["a", "b", "c"], per_class=2)
    cfg = apply_overrides(preset("small"), {**TINY, "data": str(few)})
    with pytest.raises(DataError, match="too small to split"):
        train(cfg, tmp_path / "run", cache=tmp_path / "cache", progress=False)


def test_data_excludes_named_splits():
    with pytest.raises(ConfigError, match="train_split and val_split cannot apply"):
        apply_overrides(preset("small"), {"data": "DIR", "val_split": "test"})


def test_fine_tune_from_the_shipped_model(letters, tmp_path):
    shipped, _ = load_model(None)
    cfg = resolve_init(apply_overrides(preset("finetune"), {
        "data": str(letters), "amp": False, "steps": 2, "val_every": 2, "val_tasks": 10,
        "threads": 1}))
    assert cfg.encoder == "concat" and cfg.model_spec.to_dict() == shipped.spec.to_dict()
    start = initial_model(cfg)
    assert all(torch.equal(a, b) for a, b in zip(start.state_dict().values(),
                                                  shipped.state_dict().values()))
    r = train(cfg, tmp_path / "ft", cache=tmp_path / "cache", progress=False)
    tuned, _ = load_model(tmp_path / "ft" / "last.pt")
    assert r.steps == 2 and tuned.encoder.input_size == shipped.encoder.input_size
    assert not torch.equal(tuned.encoder.members[0].features[0].weight,
                           shipped.encoder.members[0].features[0].weight)
    with pytest.raises(ConfigError, match="leave encoder and head to the init model"):
        initial_model(apply_overrides(cfg, {"encoder": "conv", "encoder_args": {}}))


@pytest.mark.parametrize("part", ["train", "validation"])
def test_resume_refuses_changed_images(letters, tmp_path, part):
    """An image edited in a training class was trained on silently after --resume (the digest
    saved in the checkpoint was not compared); one in a validation class gave "tasks were drawn
    with digest=..." (found by a review helper)."""
    cfg = apply_overrides(preset("small"), {**TINY, "data": str(letters)})
    run = tmp_path / "run"
    train(cfg, run, cache=tmp_path / "cache", progress=False, stop_after=2)
    group = ClassSplit.load(run / "data_split.json").parts[part][0]
    image = sorted((letters / group).rglob("*.png"))[0]
    (letters / group / "c0" / "extra.png").write_bytes(image.read_bytes())  # one image more
    with pytest.raises(DataError, match=r"--resume: the images of letters-" + part
                       + r" changed since .*restore them, or start a new run"):
        train(cfg, run, cache=tmp_path / "cache", resume=True, progress=False)


def test_resume_after_the_data_folder_moved(letters, tmp_path):
    """A run could not be resumed once its data folder had moved, even with --config and the
    new --data (review): moved, it resumes (the images are checked by content); renamed, the
    refusal says to rename it back (its splits and tasks carry the name)."""
    import shutil

    run = tmp_path / "run"
    train(apply_overrides(preset("small"), {**TINY, "data": str(letters)}), run,
          cache=tmp_path / "cache", progress=False, stop_after=2)
    renamed = tmp_path / "renamed"
    shutil.move(str(letters), str(renamed))
    with pytest.raises(ConfigError, match=r"data folder was renamed \(letters -> renamed\).*"
                       "rename it back to letters"):
        train(apply_overrides(preset("small"), {**TINY, "data": str(renamed)}), run,
              cache=tmp_path / "cache", resume=True, progress=False)
    moved = tmp_path / "elsewhere" / "letters"
    moved.parent.mkdir()
    shutil.move(str(renamed), str(moved))
    train(apply_overrides(preset("small"), {**TINY, "data": str(moved)}), run,
          cache=tmp_path / "cache", resume=True, progress=False, stop_after=4)
    assert load_model(run / "last.pt")[1]["step"] == 4


def test_folders_in_a_config_are_stored_absolute(tmp_path, monkeypatch):
    from oneshot.training.paths import absolute_paths, same_folders

    (tmp_path / "test").mkdir()
    monkeypatch.chdir(tmp_path)
    cfg = absolute_paths(apply_overrides(preset("small"), {"data": "test"}))
    assert cfg.data == str(tmp_path / "test")  # --data is a folder, even one named "test"
    cfg = absolute_paths(apply_overrides(preset("small"), {"val_split": "test"}))
    assert cfg.val_split == "test"  # a split name, not the folder
    assert same_folders({"data": ("test", str(tmp_path / "test")), "data_split": ("a", "b"),
                         "steps": (1, 2)}) == {"data_split": ("a", "b"), "steps": (1, 2)}
