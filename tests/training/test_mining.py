"""Episode options of the ``episodes`` objective: one orientation per episode, hard classes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from oneshot.errors import ConfigError
from oneshot.sampling import EpisodeSampler
from oneshot.training import TrainConfig, train
from oneshot.training.mining import HardClasses, rotation_of, rotation_pools


@pytest.fixture(scope="module")
def rotated(splits):
    return splits["validation"].with_rotations(images=False)


def test_rotation_of_reads_the_names_with_rotations_gives():
    assert [rotation_of(n) for n in ("a/c01", "a/c01@rot90", "a/c01@rot180", "a/c01@rot270",
                                     "a/c@rot45", "a/@rotten")] == [0, 1, 2, 3, 0, 0]


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
    hard.step(torch.nn.Identity(), lambda idx: torch.zeros(len(idx), 4))
    for _ in range(5):
        for x, y in zip(a.sample(), b.episode(hard.characters())):
            np.testing.assert_array_equal(x, y)


def test_hard_episodes_take_the_anchors_nearest_classes(rotated):
    s = EpisodeSampler(rotated, 5, 1, 2, seed=0)
    hard = HardClasses(s, 1.0, 100)
    # class c embedded at c
    hard.step(torch.nn.Identity(),
              lambda idx: torch.as_tensor(rotated.labels[idx], dtype=torch.float32)[:, None])
    assert hard.protos is not None and len(hard.protos) == len(s.cls)
    for _ in range(30):
        chars = hard.characters()
        assert len(chars) == 5 and len(set(chars.tolist())) == 5
        pool = next(p for p in s.pools if chars[0] in p)
        assert set(chars.tolist()) <= set(pool.tolist())
        # some class is the anchor; the others are among its 8 nearest in its pool
        assert any(all(sorted(np.abs(pool - a))[8] >= abs(c - a) for c in chars)
                   for a in chars)


def test_refresh_cadence_and_eval_mode(rotated):
    s = EpisodeSampler(rotated, 5, 1, 2, seed=0)
    hard = HardClasses(s, 0.5, 3)
    net = torch.nn.Sequential(torch.nn.BatchNorm1d(1))
    seen = []

    def images(idx):
        seen.append(net.training)
        return torch.as_tensor(rotated.labels[idx], dtype=torch.float32)[:, None]

    net.train()
    for _ in range(7):
        hard.step(net, images)
    batches = -(-len(s.cls) // 512)
    assert len(seen) == 3 * batches  # steps 0, 3 and 6
    assert not any(seen) and net.training  # embedded in eval mode, training mode restored
    assert float(net[0].num_batches_tracked) == 0  # batch-norm statistics untouched


@pytest.mark.parametrize("args, word", [({"hard": 1.5}, "hard"), ({"hard": -0.1}, "hard"),
                                        ({"hard": 0.5, "refresh": 0}, "refresh")])
def test_bad_options_are_named(rotated, args, word):
    with pytest.raises(ConfigError, match=word):
        HardClasses(EpisodeSampler(rotated, 5, seed=0), args.get("hard", 0.0),
                    args.get("refresh", 10))


def test_training_with_both_options_learns(tmp_path, data_dir, cache_dir):
    cfg = TrainConfig(encoder="conv", encoder_args={"input_size": 28, "width": 16},
                      head="euclidean", objective="episodes", ways=10, queries=2, lr=2e-3,
                      rotations=True, steps=60, val_every=60, val_ways=5, val_tasks=200,
                      threads=1, objective_args={"same_rotation": True, "hard": 0.5,
                                                 "refresh": 20})
    r = train(cfg, tmp_path / "run", data_dir, cache_dir, progress=False)
    assert r.best_val > 40.0, r  # 5-way: chance is 20 %
