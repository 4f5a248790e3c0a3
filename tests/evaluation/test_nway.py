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
    """Brute force, float64: every point pair of the two centred ink sets (Lake's definition)."""
    pa = np.argwhere(a > 0.5).astype(float)
    pb = np.argwhere(b > 0.5).astype(float)
    pa -= pa.mean(0)
    pb -= pb.mean(0)
    d = np.sqrt(((pa[:, None, :] - pb[None, :, :]) ** 2).sum(-1))
    return max(d.min(1).mean(), d.min(0).mean())


MHD_TOL = 1e-4  # pixels; the separable transform is exact, float32 sums agree to ~2e-6


def _mhd_pairs(images, pairs):
    sc = ModifiedHausdorffScorer()
    cache = sc.embed(images)
    a, b = torch.tensor([p[0] for p in pairs]), torch.tensor([p[1] for p in pairs])
    return -sc.score(cache, a, b).double().numpy()


def _assert_mhd_matches_brute_force(images, pairs):
    got = _mhd_pairs(images, pairs)
    want = np.array([_mhd_reference(images[i], images[j]) for i, j in pairs])
    err = np.abs(got - want)
    assert err.max() <= MHD_TOL, (err.max(), pairs[int(err.argmax())])


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
            assert mhd[t, j].item() == pytest.approx(-_mhd_reference(q, s), abs=MHD_TOL)


def test_shared_cache_gives_the_same_scores(splits):
    # one embedding of the whole split, shared by task lists, scores exactly as per-list ones
    ds = splits["validation"]
    for sc in (NearestNeighbourScorer(), ModifiedHausdorffScorer()):
        cache = sc.embed(ds.images)
        for ways, mode in ((3, "within-alphabet"), (7, "unstructured")):
            tl = sample_tasks(ds, ways, 20, mode, seed=ways)
            per_list = score_tasks(sc, ds.images, tl).scores
            assert torch.equal(score_tasks(sc, ds.images, tl, cache).scores, per_list)


def test_modified_hausdorff_reproduces_lake(lake_runs):
    r = lake_benchmark(ModifiedHausdorffScorer(), lake_runs)
    assert abs((100 - r.accuracy.value) - 38.8) <= 0.1, r.to_dict()
    assert r.accuracy.total == 400
    assert r.accuracy.correct == 245  # 61.25 %, as the brute force gets (Lake: 38.8 % error)


def test_modified_hausdorff_matches_brute_force_on_real_images(lake_runs, splits):
    # Lake's trials (small centroid offsets) and cross-alphabet pairs (large ones, points
    # shifted beyond the other image's border), every pair against the float64 brute force
    rng = np.random.default_rng(0)
    lake = np.concatenate([np.concatenate([r.test_images, r.train_images]) for r in lake_runs[:3]])
    pairs = [(40 * k + i, 40 * k + 20 + j) for k in range(3)
             for i, j in rng.integers(0, 20, size=(15, 2))]
    _assert_mhd_matches_brute_force(lake, pairs)
    bg = splits["background"].images
    idx = rng.choice(len(bg), size=60, replace=False)
    _assert_mhd_matches_brute_force(bg[idx], [(2 * k, 2 * k + 1) for k in range(30)])


def _image(size, pixels):
    img = np.zeros(size, np.uint8)
    for r, c in pixels:
        img[r, c] = 1
    return img


def test_modified_hausdorff_edge_cases_match_brute_force():
    n = 105
    line = [(50, c) for c in range(10, 95)]
    frame = ([(0, c) for c in range(n)] + [(n - 1, c) for c in range(n)]
             + [(r, 0) for r in range(n)] + [(r, n - 1) for r in range(n)])
    images = np.stack([
        _image((n, n), [(52, 52)]),                        # 0: a single ink pixel
        _image((n, n), [(0, 0)]),                          # 1: single pixel in a corner
        _image((n, n), frame),                             # 2: ink touching all four borders
        _image((n, n), line),                              # 3: one long horizontal stroke
        _image((n, n), [(r, 3) for r in range(n)]),        # 4: a vertical stroke at the left
        _image((n, n), [(0, 0), (n - 1, n - 1)]),          # 5: two far corners (empty rows)
        _image((n, n), [(0, n - 1), (1, n - 2), (n - 1, 0)]),  # 6: corners, sub-pixel centroid
        _image((n, n), [(r, c) for r in range(40, 60) for c in range(30, 33)]
               + [(10, 90), (95, 12)]),                    # 7: a bar and two outliers
    ])
    pairs = [(i, j) for i in range(len(images)) for j in range(len(images))]
    _assert_mhd_matches_brute_force(images, pairs)
    assert _mhd_pairs(images, [(3, 3), (0, 1)]) == pytest.approx([0.0, 0.0], abs=1e-6)


@pytest.mark.parametrize("size", [(9, 9), (20, 31), (31, 20), (12, 140)])  # 140: int16 tables
def test_modified_hausdorff_random_images(size):
    rng = np.random.default_rng(size[1])
    images = np.stack([(rng.random(size) < p).astype(np.float32)
                       for p in rng.uniform(0.01, 0.5, size=24)])
    images[:, 0, 0] = 1  # no empty image
    pairs = [tuple(p) for p in rng.integers(0, len(images), size=(60, 2))]
    _assert_mhd_matches_brute_force(images, pairs)


def test_modified_hausdorff_rejects_an_empty_image():
    images = np.zeros((3, 10, 10), np.uint8)
    images[0, 4, 4] = images[2, 1, 1] = 1
    with pytest.raises(ValueError, match="image 1 has no ink"):
        ModifiedHausdorffScorer().embed(images)


def test_nearest_neighbour_uint8_and_float_agree(splits):
    ds = splits["test"]
    sc = NearestNeighbourScorer()
    a, b = torch.arange(0, 600), torch.arange(600, 1200)  # more pairs than one chunk
    u = sc.score(sc.embed(ds.images[:1200]), a, b)
    f = sc.score(sc.embed(ds.images[:1200].astype(np.float32)), a, b)
    assert torch.equal(u, f)
    want = -np.sqrt(((ds.images[:600].astype(float) - ds.images[600:1200]) ** 2).sum((1, 2)))
    assert np.allclose(u.numpy(), want, rtol=1e-6)


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


def test_a_saved_task_file_must_hold_what_its_name_says(splits, tmp_path):
    """A 3-way file copied under the 5-way name was scored as the 5-way point (review)."""
    from oneshot.evaluation.runner import task_list_for
    from oneshot.sampling import TaskFileError

    ds = splits["test"]
    three, path = task_list_for(ds, 3, 20, "unstructured", 3, tmp_path)
    assert np.array_equal(task_list_for(ds, 3, 20, "unstructured", 3, tmp_path)[0].query,
                          three.query)  # read back
    path.rename(tmp_path / path.name.replace("3way", "5way").replace("seed3", "seed5"))
    with pytest.raises(TaskFileError, match="drawn with ways=3, not 5"):
        task_list_for(ds, 5, 20, "unstructured", 5, tmp_path)
