"""OneShotClassifier: enrol/predict/verify/save/load, the unknown threshold, preprocessing, bad
input; and agreement with the evaluation harness on real Omniglot images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from support import glyph

from oneshot.checkpoint import CheckpointError, export_model
from oneshot.evaluation.nway import score_tasks
from oneshot.evaluation.scorers import EncoderScorer
from oneshot.inference import UNKNOWN, GalleryError, OneShotClassifier
from oneshot.models import ModelSpec, build_model
from oneshot.preprocess import ImageError, preprocess, to_ink
from oneshot.sampling import sample_tasks

SPEC = ModelSpec("conv", {"input_size": 28, "width": 8}, "euclidean")


@pytest.fixture
def model_file(tmp_path):
    path = tmp_path / "model.pt"
    export_model(build_model(SPEC, seed=0), path, {"note": "random init"})
    return path


def _save(img: np.ndarray, path, mode="L", invert=True):
    a = ((1 - img) if invert else img) * 255
    Image.fromarray(a.astype(np.uint8)).convert(mode).save(path)
    return path


def test_preprocessing_is_polarity_colour_and_size_invariant(tmp_path):
    g = glyph("cross")
    dark_on_light = _save(g, tmp_path / "a.png")
    light_on_dark = _save(g, tmp_path / "b.png", invert=False)
    colour = _save(g, tmp_path / "c.jpg", mode="RGB")
    big = Image.fromarray(((1 - g) * 255).astype(np.uint8)).resize((420, 420), Image.NEAREST)
    big.save(tmp_path / "d.png")
    files = [dark_on_light, light_on_dark, colour, tmp_path / "d.png"]
    x = preprocess([str(f) for f in files], 28)
    assert x.shape == (4, 1, 28, 28)
    assert x.amax() <= 1 and x.amin() >= 0 and x[0].mean() < 0.3  # ink = 1, mostly background
    for i in (1, 2):
        assert torch.allclose(x[0], x[i], atol=0.06), i
    # 4x larger: the same shape, edges resampled differently
    assert (x[0] - x[3]).abs().mean() < 0.03
    # non-square input is padded, not stretched
    wide = np.zeros((50, 100), np.float32)
    wide[20:30, 10:90] = 1
    y = preprocess(wide, 28)[0, 0]
    assert y[:7].sum() == 0 and y[13].sum() > 5


def test_omniglot_png_matches_harness_input(splits, tmp_path):
    from oneshot.preprocess import images_to_tensor

    ds = splits["test"]
    p = _save(ds.images[0].astype(np.float32), tmp_path / "o.png", mode="1")
    assert torch.equal(preprocess(str(p), 28), images_to_tensor(ds.images[:1], 28))


def test_bad_images(tmp_path):
    (tmp_path / "x.png").write_text("not an image")
    with pytest.raises(ImageError, match="x.png: not a readable image"):
        preprocess(str(tmp_path / "x.png"), 28)
    with pytest.raises(ImageError, match="blank"):
        to_ink(np.ones((30, 30)))
    with pytest.raises(ImageError, match="no images"):
        preprocess([], 28)


def test_enrol_predict_verify_round_trip(model_file, tmp_path):
    clf = OneShotClassifier.load(model_file)
    glyphs = {k: glyph(k) for k in ("bar", "cross", "eq")}
    clf.enrol(list(glyphs.values()), list(glyphs))
    assert clf.classes == ["bar", "cross", "eq"]
    preds = clf.predict(list(glyphs.values()), top_k=2)
    assert [p.label for p in preds] == ["bar", "cross", "eq"]  # an image matches itself
    assert all(len(p.top) == 2 and 0 <= p.probability <= 1 for p in preds)
    assert clf.verify(glyphs["bar"], glyphs["bar"]) >= clf.verify(glyphs["bar"], glyphs["cross"])
    # more later, then remove
    clf.enrol([glyph("bar")], ["bar"])
    assert len(clf) == 4 and clf.remove("bar") == 2 and clf.classes == ["cross", "eq"]
    with pytest.raises(KeyError):
        clf.remove("bar")
    # save / load
    clf.save(tmp_path / "g.npz")
    other = OneShotClassifier.load(model_file)
    other.load_gallery(tmp_path / "g.npz")
    assert other.classes == clf.classes
    q = [glyphs["cross"]]
    assert other.predict(q)[0].probability == pytest.approx(clf.predict(q)[0].probability)


def test_unknown_threshold(model_file):
    clf = OneShotClassifier.load(model_file)
    clf.enrol([glyph("bar")], ["bar"])
    p = clf.predict([glyph("cross")])[0]
    assert clf.predict([glyph("cross")], threshold=min(1.0, p.probability + 1e-6))[0].label \
        == UNKNOWN
    assert clf.predict([glyph("cross")], threshold=p.probability)[0].label == "bar"
    with pytest.raises(ValueError, match="threshold"):
        clf.predict([glyph("bar")], threshold=2.0)


def test_bad_input_leaves_gallery_intact(model_file, tmp_path):
    clf = OneShotClassifier.load(model_file)
    clf.enrol([glyph("bar")], ["bar"])
    (tmp_path / "junk.png").write_bytes(b"\x89PNG broken")
    with pytest.raises(ImageError):
        clf.enrol([glyph("cross"), str(tmp_path / "junk.png")], ["cross", "junk"])
    assert clf.classes == ["bar"] and len(clf) == 1
    with pytest.raises(ValueError, match="2 images but 1 labels"):
        clf.enrol([glyph("cross"), glyph("eq")], ["x"])
    empty = OneShotClassifier.load(model_file)
    with pytest.raises(ValueError, match="gallery is empty"):
        empty.predict([glyph("bar")])


def test_gallery_from_another_model_is_refused(model_file, tmp_path):
    clf = OneShotClassifier.load(model_file)
    clf.enrol([glyph("bar")], ["bar"])
    clf.save(tmp_path / "g.npz")
    before = (tmp_path / "g.npz").read_bytes()
    export_model(build_model(SPEC, seed=1), tmp_path / "other.pt")
    other = OneShotClassifier.load(tmp_path / "other.pt")
    other.enrol([glyph("eq")], ["eq"])
    with pytest.raises(GalleryError, match="another model"):
        other.load_gallery(tmp_path / "g.npz")
    assert other.classes == ["eq"] and (tmp_path / "g.npz").read_bytes() == before
    (tmp_path / "bad.npz").write_bytes(b"garbage")
    with pytest.raises(GalleryError, match="not a readable gallery .not a zip archive"):
        other.load_gallery(tmp_path / "bad.npz")  # was numpy's advice to unpickle unsafely


def test_damaged_or_foreign_model(tmp_path, model_file):
    raw = model_file.read_bytes()
    (tmp_path / "cut.pt").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError, match="not a zip archive, as these files are"):
        OneShotClassifier.load(tmp_path / "cut.pt")  # the reason was torch's bare "(101)"
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="the file is empty"):
        OneShotClassifier.load(tmp_path / "empty.pt")
    torch.save({"state_dict": {}}, tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="format"):
        OneShotClassifier.load(tmp_path / "foreign.pt")
    with pytest.raises(CheckpointError, match="no such"):
        OneShotClassifier.load(tmp_path / "missing.pt")


def test_predict_agrees_with_evaluation_harness(splits, model_file):
    """Enrol one drawer's images of test characters; the classifier's scores for other drawers'
    images equal the harness's scores for the same pairs and model."""
    ds = splits["test"]
    tl = sample_tasks(ds, 10, 5, "within-alphabet", seed=2)
    clf = OneShotClassifier.load(model_file)
    harness = score_tasks(EncoderScorer(clf.model), ds.images, tl).scores
    for t in range(len(tl)):
        c = OneShotClassifier(clf.model)
        c.enrol([ds.images[i].astype(np.float32) for i in tl.support[t]],
                [str(k) for k in range(tl.ways)])
        scores, classes = c.class_scores(c.embed([ds.images[tl.query[t]].astype(np.float32)]))
        assert classes == [str(k) for k in range(tl.ways)]
        assert torch.allclose(scores[0], harness[t], rtol=1e-4, atol=1e-3)


def test_empty_copy_shares_the_model(model_file):
    clf = OneShotClassifier.load(model_file)
    clf.enrol([glyph("bar")], ["bar"])
    other = clf.empty_copy()
    assert other.model is clf.model and other.fingerprint == clf.fingerprint
    assert len(other) == 0 and clf.classes == ["bar"]
    other.enrol([glyph("eq")], ["eq"])
    assert clf.classes == ["bar"] and other.classes == ["eq"]


def test_api_mistakes_are_clear_errors(model_file, tmp_path):
    """Each was a raw TypeError or KeyError, a silently wrong value (a class named "None",
    crop="no" taken as True, threshold=True as 1), or numpy numbers refused (found by a review
    helper)."""
    from oneshot.errors import OneshotError

    with pytest.raises(OneshotError, match="crop='no'; True, False or None"):
        OneShotClassifier.load(model_file, crop="no")
    with pytest.raises(OneshotError, match="model 123: a path, a run folder or 'default'"):
        OneShotClassifier.load(123)
    clf = OneShotClassifier.load(model_file)
    for labels in (None, ["bar", None]):
        with pytest.raises(OneshotError, match="a class name per image expected, not None"):
            clf.enrol([glyph("bar"), glyph("eq")], labels)
    with pytest.raises(OneshotError, match=r"labels b'ab': a class name \(str\) expected, not"):
        clf.enrol([glyph("bar"), glyph("eq")], b"ab")  # was two classes, "97" and "98"
    with pytest.raises(OneshotError, match="not None or bytes"):
        clf.enrol([glyph("bar")], [b"bar"])  # was a class named "b'bar'"
    clf.enrol([glyph("bar"), glyph("eq")], ["bar", "eq"])
    assert clf.predict([glyph("bar")], top_k=np.int64(2), threshold=np.float32(0.0))[0].label \
        == "bar"
    with pytest.raises(OneshotError, match="threshold=True; a probability"):
        clf.predict([glyph("bar")], threshold=True)
    with pytest.raises(OneshotError, match="class 'zz' is not enrolled") as e:
        clf.remove("zz")
    assert isinstance(e.value, KeyError)  # as before, for callers that catch KeyError
    with pytest.raises(OneshotError, match="ends in /; a file name expected"):
        clf.save(f"{tmp_path}/new/")
    assert not (tmp_path / "new").exists()


def test_verify_many_yields_as_it_goes(model_file, monkeypatch):
    """10,000 pairs of large photos were read, all of them, before the first line came out."""
    import oneshot.batch as batch

    read = []
    monkeypatch.setattr(batch, "BATCH", 2)
    monkeypatch.setattr(batch, "preprocess", lambda im, *a: read.append(im) or preprocess(im, *a))
    clf = OneShotClassifier.load(model_file)
    images = [glyph(n) for n in ("bar", "eq", "cross", "bar", "eq", "cross")]
    pairs = [(0, 1), (0, 0), (2, 3), (4, 5), (1, 0)]
    ims = [(images[a], images[b]) for a, b in pairs]
    results = batch.verify_many(clf, ims)
    first = next(results)
    assert len(read) == 2  # the first two pairs' two distinct images, nothing more
    rest = list(results)
    assert len(read) == 6 and len(rest) == 4  # (1, 0) reuses embedded images
    want = [clf.verify_pair(a, b).probability for a, b in ims]
    assert [first.probability] + [r.probability for r in rest] == pytest.approx(want, abs=1e-5)
