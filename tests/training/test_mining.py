"""Episode options of the ``episodes`` objective: one orientation per episode, hard classes."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from oneshot.errors import ConfigError
from oneshot.sampling import EpisodeSampler
from oneshot.training import TrainConfig, train
from oneshot.training.mining import HardClasses, orientation_of, rotation_of, rotation_pools
from oneshot.training.objectives import EpisodesObjective


@pytest.fixture(scope="module")
def rotated(splits):
    return splits["validation"].with_rotations(images=False)


def _line_ctx(ds, step=0, net=None, calls=None):
    """A step context whose 'network' embeds class c at the point c of a line."""
    def images(idx, distort=True):
        assert not distort  # the class embeddings are of undistorted images
        if calls is not None:
            calls.append(len(idx))
        return torch.as_tensor(ds.labels[idx], dtype=torch.float32)[:, None]

    return SimpleNamespace(net=net or torch.nn.Identity(), images=images, step=step, world=1,
                           rank=0, device=torch.device("cpu"),
                           head=lambda a, b: -(a - b).pow(2).sum(-1))


def test_rotation_of_reads_the_names_with_rotations_gives():
    assert [rotation_of(n) for n in ("a/c01", "a/c01@rot90", "a/c01@rot180", "a/c01@rot270",
                                     "a/c@rot45", "a/@rotten", "a/c@flip@rot90",
                                     "a/c@rot270@flip")] == [0, 1, 2, 3, 0, 0, 1, 3]
    assert [orientation_of(n) for n in ("a/c", "a/c@flip", "a/c@flip@rot180", "a/c@flipped")] \
        == [(False, 0), (True, 0), (True, 2), (False, 0)]


def test_same_rotation_with_flips_keeps_mirrored_and_upright_apart(splits):
    """Eight orientations: an episode never holds a character and its own mirror image."""
    both = splits["validation"].with_flips(images=False).with_rotations(images=False)
    s = EpisodeSampler(both, 20, 1, 2, seed=0)
    pools = rotation_pools(both, s.pools)
    assert len(pools) == 8 * len(s.pools)
    s.pools = pools
    for _ in range(50):
        names = [both.characters[c] for c in s.characters()]
        assert len({orientation_of(n) for n in names}) == 1, names


def test_same_rotation_pools_split_each_alphabet_by_orientation(rotated):
    s = EpisodeSampler(rotated, 20, 1, 2, seed=0)
    pools = rotation_pools(rotated, s.pools)
    assert len(pools) == 4 * len(s.pools)
    assert sorted(np.concatenate(pools).tolist()) == sorted(np.concatenate(s.pools).tolist())
    s.pools = pools
    for _ in range(50):
        chars = s.characters()
        names = [rotated.characters[c] for c in chars]
        assert len({rotation_of(n) for n in names}) == 1, names
        assert len({rotated.char_alphabet[c] for c in chars}) == 1


def test_share_zero_draws_the_uniform_stream(rotated):
    a, b = EpisodeSampler(rotated, 20, 1, 2, seed=3), EpisodeSampler(rotated, 20, 1, 2, seed=3)
    hard = HardClasses(b, 0.0, 10)
    hard.step(_line_ctx(rotated))
    assert hard.protos is None
    for _ in range(5):
        for x, y in zip(a.sample(), b.episode(hard.characters())):
            np.testing.assert_array_equal(x, y)


def _spans(rotated, share):
    s = EpisodeSampler(rotated, 5, 1, 2, seed=0)
    s.pools = rotation_pools(rotated, s.pools)  # contiguous class numbers: c, c + 1, ...
    hard = HardClasses(s, share, 100)
    hard.step(_line_ctx(rotated))
    out = []
    for _ in range(40):
        chars = hard.characters()
        assert len(chars) == 5 and len(set(chars.tolist())) == 5
        assert any(set(chars.tolist()) <= set(p.tolist()) for p in s.pools)
        out.append(int(chars.max() - chars.min()))
    return out


def test_hard_episodes_take_classes_near_the_anchor(rotated):
    # class c embedded at c: the anchor and 4 of its 8 nearest lie within 8 of it
    assert max(_spans(rotated, 1.0)) <= 16
    assert sum(span > 16 for span in _spans(rotated, 0.0)) > 10  # uniform draws spread out


def test_refresh_cadence_eval_mode_and_saved_state(rotated):
    s = EpisodeSampler(rotated, 5, 1, 2, seed=0)
    hard = HardClasses(s, 0.5, 3)
    net, calls = torch.nn.Sequential(torch.nn.BatchNorm1d(1)), []
    modes = []
    net.register_forward_pre_hook(lambda m, x: modes.append(m.training))
    for step in range(7):
        hard.step(_line_ctx(rotated, step, net, calls))
    assert sum(calls) == 3 * len(s.cls)  # steps 0, 3 and 6
    assert not any(modes) and net.training  # embedded in eval mode, training mode restored
    assert float(net[0].num_batches_tracked) == 0  # batch-norm statistics untouched
    net.eval()
    hard.step(_line_ctx(rotated, 9, net))
    assert not net.training  # eval mode stays eval mode
    again = HardClasses(EpisodeSampler(rotated, 5, 1, 2, seed=0), 0.5, 3)
    again.load_state_dict(hard.state_dict())
    calls.clear()
    again.step(_line_ctx(rotated, 10, net, calls))  # not a refresh step: the saved embeddings
    assert not calls and torch.equal(again.protos, hard.protos)


@pytest.mark.parametrize("args, word", [
    ({"hard": 1.5}, "hard=1.5"), ({"hard": -0.1}, "hard"), ({"hard": "0.5"}, "hard='0.5'"),
    ({"hard": True}, "hard=True"), ({"hard": 0.5, "refresh": 0}, "refresh=0"),
    ({"hard": 0.5, "refresh": 2.5}, "refresh=2.5"), ({"same_rotation": "no"}, "same_rotation"),
    ({"same_rotation": True, "rotations": False}, "needs rotations"),
    ({"label_smoothing": 1.0}, "label_smoothing=1.0"),
    ({"label_smoothing": -0.1}, "in \\[0, 1\\)")])
def test_bad_options_are_named(rotated, args, word):
    args = dict(args)
    cfg = TrainConfig(ways=5, rotations=args.pop("rotations", True))
    with pytest.raises(ConfigError, match=word):
        EpisodesObjective(cfg, rotated, np.random.default_rng(0), **args)


def test_label_smoothing_softens_the_episode_target(rotated):
    logits, target = torch.tensor([[4.0, 0.0, -1.0], [0.5, 2.0, 0.0]]), torch.tensor([0, 1])
    plain = EpisodesObjective(TrainConfig(ways=5), rotated, np.random.default_rng(0))
    smooth = EpisodesObjective(TrainConfig(ways=5), rotated, np.random.default_rng(0),
                               label_smoothing=0.3)
    # smoothing 0.3 over 3 classes: target 0.8 on the right one, 0.1 on each other
    soft = torch.tensor([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1]])
    want = -(soft * torch.log_softmax(logits, 1)).sum(1).mean()
    assert torch.allclose(smooth._episode_loss(logits, target), want)
    assert plain._episode_loss(logits, target) < want  # confident and right: penalised less


def _losses(run):
    rows = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return [r["loss"] for r in rows if "loss" in r]


def test_training_with_hard_episodes_learns_and_resumes_exactly(tmp_path, data_dir, cache_dir):
    """Stopped at step 20 (the class embeddings were made at step 14) and resumed: the same
    losses as the uninterrupted run, so the saved embeddings came back."""
    cfg = TrainConfig(encoder="conv", encoder_args={"input_size": 28, "width": 16},
                      head="euclidean", objective="episodes", ways=10, queries=2, lr=2e-3,
                      rotations=True, distort=True, steps=30, val_every=10, val_ways=5,
                      val_tasks=100, threads=1,
                      objective_args={"same_rotation": True, "hard": 0.5, "refresh": 7})
    full = train(cfg, tmp_path / "full", data_dir, cache_dir, progress=False)
    assert full.best_val > 35.0, full  # 5-way: chance is 20 %
    train(cfg, tmp_path / "part", data_dir, cache_dir, progress=False, stop_after=20)
    train(cfg, tmp_path / "part", data_dir, cache_dir, progress=False, resume=True)
    assert _losses(tmp_path / "part") == _losses(tmp_path / "full")
