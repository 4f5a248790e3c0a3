"""Task sampling, scorers, baselines and Lake's benchmark on real data."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from oneshot.evaluation.baselines import ModifiedHausdorffScorer, NearestNeighbourScorer
from oneshot.evaluation.lake import lake_benchmark
from oneshot.evaluation.metrics import Accuracy, wilson_interval
from oneshot.evaluation.nway import evaluate_tasks, predict_positions, score_tasks
from oneshot.evaluation.scorers import ConstantScorer, RandomScorer
from oneshot.sampling import TaskList, character_grid, sample_tasks


class OracleScorer:
    """Knows the labels (looked up by image bytes): 1 for the same character, 0 otherwise."""

    name = "oracle"

    def __init__(self, ds):
        self.by_image = {img.tobytes(): lab for img, lab in zip(ds.images, ds.labels)}

    def embed(self, images):
        return torch.tensor([self.by_image[i.tobytes()] for i in images])

    def score(self, cache, a, b):
        return (cache[a] == cache[b]).float()


@pytest.mark.parametrize("mode", ["within-alphabet", "unstructured"])
def test_task_invariants(splits, mode):
    ds = splits["test"]
    tl = sample_tasks(ds, 20, 300, mode, seed=3)
    assert tl.support.shape == (300, 20)
    for t in range(len(tl)):
        chars = ds.labels[tl.support[t]]
        assert len(set(chars)) == 20
        assert chars[tl.answer[t]] == ds.labels[tl.query[t]]
        assert ds.drawers[tl.query[t]] != ds.drawers[tl.support[t, tl.answer[t]]]
        assert len(set(ds.drawers[tl.support[t]])) == 1
        if mode == "within-alphabet":
            assert len(set(ds.char_alphabet[chars])) == 1
    # the true match's position is uniform, not always 0
    counts = np.bincount(tl.answer, minlength=20)
    assert counts.max() < 40 and (counts > 0).sum() >= 18


@pytest.mark.parametrize("ways", [2, 5, 20])
def test_constant_scorer_gets_chance(splits, ways):
    ds = splits["validation"]
    tl = sample_tasks(ds, ways, 3000, "within-alphabet", seed=ways)
    acc = evaluate_tasks(ConstantScorer(), ds.images, tl)
    lo, hi = acc.interval
    assert lo <= 100.0 / ways <= hi, acc


def test_oracle_scores_100(splits):
    ds = splits["test"]
    tl = sample_tasks(ds, 19, 500, "within-alphabet", seed=1)
    assert evaluate_tasks(OracleScorer(ds), ds.images, tl).value == 100.0


def test_ties_never_favour_the_match():
    scores = torch.tensor([[1.0, 1.0, 0.0], [0.0, 2.0, 2.0]])
    assert predict_positions(scores).tolist() == [0, 1]  # first of the tied, by position


def test_task_list_round_trip(splits, tmp_path):
    ds = splits["test"]
    tl = sample_tasks(ds, 5, 50, "unstructured", seed=7)
    sha = tl.save(tmp_path / "t.npz")
    back = TaskList.load(tmp_path / "t.npz", ds)
    assert sha == back.sha256 == tl.sha256
    for k in ("query", "support", "answer"):
        assert np.array_equal(getattr(tl, k), getattr(back, k))
    assert back.meta["seed"] == 7 and back.meta["mode"] == "unstructured"
    again = sample_tasks(ds, 5, 50, "unstructured", seed=7)
    assert again.sha256 == sha  # the same seed gives the same tasks
    with pytest.raises(ValueError, match="drawn with split"):
        TaskList.load(tmp_path / "t.npz", splits["validation"])


def _mhd_reference(a, b):
    pa = np.argwhere(a > 0.5).astype(float)
    pb = np.argwhere(b > 0.5).astype(float)
    pa -= pa.mean(0)
    pb -= pb.mean(0)
    d = np.sqrt(((pa[:, None, :] - pb[None, :, :]) ** 2).sum(-1))
    return max(d.min(1).mean(), d.min(0).mean())


def test_vectorised_scores_equal_brute_force(splits):
    ds = splits["test"]
    tl = sample_tasks(ds, 4, 5, "within-alphabet", seed=11)
    nn = score_tasks(NearestNeighbourScorer(), ds.images, tl).scores
    mhd = score_tasks(ModifiedHausdorffScorer(), ds.images, tl).scores
    for t in range(len(tl)):
        q = ds.images[tl.query[t]].astype(float)
        for j, c in enumerate(tl.support[t]):
            s = ds.images[c].astype(float)
            assert nn[t, j].item() == pytest.approx(-np.sqrt(((q - s) ** 2).sum()), rel=1e-5)
            assert mhd[t, j].item() == pytest.approx(-_mhd_reference(q, s), abs=1e-3)


def test_modified_hausdorff_reproduces_lake(lake_runs):
    r = lake_benchmark(ModifiedHausdorffScorer(), lake_runs)
    assert abs((100 - r.accuracy.value) - 38.8) <= 0.1, r.to_dict()
    assert r.accuracy.total == 400


def test_random_and_constant_on_lake(lake_runs):
    for sc in (RandomScorer(0), ConstantScorer()):
        lo, hi = lake_benchmark(sc, lake_runs).accuracy.interval
        assert lo <= 5.0 <= hi


def test_wilson_interval():
    lo, hi = wilson_interval(90, 100)
    assert lo == pytest.approx(0.8256, abs=1e-3) and hi == pytest.approx(0.9448, abs=1e-3)
    assert Accuracy(0, 10).interval[0] == 0.0
    with pytest.raises(ValueError):
        wilson_interval(0, 0)


def test_character_grid(splits):
    ds = splits["test"]
    g = character_grid(ds)
    assert g.shape == (len(ds.characters), 20)
    assert (ds.labels[g] == np.arange(len(g))[:, None]).all()
