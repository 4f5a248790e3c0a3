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


