"""Encoders, heads, distortions, pair and episode samplers."""

from __future__ import annotations

import numpy as np

from oneshot.sampling import EpisodeSampler, PairSampler


def test_pair_sampler_invariants(splits):
    ds = splits["background"]
    s = PairSampler(ds, same_alphabet=0.5, seed=0)
    a, b, t = s.sample(4000)
    pos, neg = t == 1, t == 0
    assert pos.sum() == neg.sum() == 2000
    assert (ds.labels[a[pos]] == ds.labels[b[pos]]).all()
    assert (a[pos] != b[pos]).all()  # never the same image twice
    assert (ds.labels[a[neg]] != ds.labels[b[neg]]).all()
    same_alpha = (ds.image_alphabet[a[neg]] == ds.image_alphabet[b[neg]]).mean()
    assert 0.45 < same_alpha < 0.56
    # drawer restriction: only drawers 1..12 appear
    d12 = ds.select(drawers=range(1, 13))
    a, b, _ = PairSampler(d12, seed=1).sample(1000)
    assert set(d12.drawers[np.concatenate([a, b])]) <= set(range(1, 13))
    # the same seed gives the same pairs
    x1 = PairSampler(ds, seed=5).sample(64)
    x2 = PairSampler(ds, seed=5).sample(64)
    assert all(np.array_equal(u, v) for u, v in zip(x1, x2))


def test_pair_sampler_alphabet_balance(splits):
    ds = splits["background"]
    a, _, _ = PairSampler(ds, balance="alphabet", seed=0).sample(30000)
    per_alpha = np.bincount(ds.image_alphabet[a], minlength=30) / len(a)
    assert per_alpha.min() > 0.8 / 30 and per_alpha.max() < 1.2 / 30


def test_episode_sampler(splits):
    ds = splits["background"]
    s = EpisodeSampler(ds, ways=20, queries=3, seed=0)
    sup, q, y = s.sample()
    assert sup.shape[1] == 1 and len(q) == 3 * len(sup) and len(y) == len(q)
    assert len(set(ds.image_alphabet[np.concatenate([sup.ravel(), q])])) == 1
    assert (ds.labels[q] == ds.labels[sup[y, 0]]).all()
    assert not set(q) & set(sup.ravel())




def _ragged(seed: int = 0):
    """Two alphabets of classes with 2 to 9 images each (a user's folder, made in memory)."""
    from oneshot.data.dataset import Dataset

    rng = np.random.default_rng(seed)
    counts = rng.integers(2, 10, size=12)
    labels = np.repeat(np.arange(12), counts)
    return Dataset(images=np.zeros((len(labels), 4, 4), np.uint8), labels=labels,
                   drawers=np.concatenate([np.arange(1, k + 1) for k in counts]),
                   characters=tuple(f"{'ab'[c // 6]}/c{c}" for c in range(12)),
                   char_alphabet=np.arange(12) // 6, alphabets=("a", "b"),
                   char_ids=np.zeros(12, np.int64), name="ragged", digest="x"), counts


def test_samplers_take_classes_of_any_size():
    from oneshot.sampling import sample_tasks

    ds, counts = _ragged()
    a, b, t = PairSampler(ds, seed=0).sample(2000)
    pos = t == 1
    assert (ds.labels[a[pos]] == ds.labels[b[pos]]).all() and (a[pos] != b[pos]).all()
    assert (ds.labels[a[~pos]] != ds.labels[b[~pos]]).all()
    used = np.bincount(np.concatenate([a, b]), minlength=len(ds))
    assert (used > 0).all()  # every image of every class, big or small, is drawn
    tl = sample_tasks(ds, 6, 300, "within-alphabet", seed=1)
    q_class = ds.labels[tl.query]
    assert (ds.labels[tl.support[np.arange(300), tl.answer]] == q_class).all()
    assert (tl.support[np.arange(300), tl.answer] != tl.query).all()
    assert (ds.image_alphabet[tl.support] == ds.image_alphabet[tl.query][:, None]).all()
    s = EpisodeSampler(ds, ways=6, shots=1, queries=3, seed=2)
    for _ in range(50):
        sup, q, y = s.sample()
        assert (ds.labels[q] == ds.labels[sup[y, 0]]).all()
        assert not set(q) & set(sup.ravel())
        per_class = np.bincount(y, minlength=len(sup))
        assert (per_class == np.minimum(3, counts[ds.labels[sup[:, 0]]] - 1)).all()


def test_class_images_refuses_a_lonely_image():
    import pytest

    from oneshot.data.dataset import DataError
    from oneshot.sampling import ClassImages

    ds, _ = _ragged()
    lonely = ds.select(drawers=[1, 2])
    lonely = lonely.select(characters=lonely.characters)  # still 2 each: fine
    ClassImages(lonely)
    with pytest.raises(DataError, match=r"'a/c0' of dataset 'ragged' has 1 image"):
        ClassImages(ds.select(drawers=[1]))


def test_class_images_match_the_grid_when_counts_agree(splits):
    from oneshot.sampling import ClassImages, character_grid

    ds = splits["test"]
    cls, grid = ClassImages(ds), character_grid(ds)
    assert cls.uniform
    chars = np.arange(len(grid))
    for d in (0, 7, 19):
        assert np.array_equal(cls.at(chars, np.full(len(chars), d)), grid[:, d])
