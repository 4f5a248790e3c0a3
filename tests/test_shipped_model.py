"""The model shipped in the package: small, safe to load, and as good as its model card says."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from support import FIXTURES

from oneshot.checkpoint import default_model_path, load_model
from oneshot.evaluation.lake import lake_benchmark
from oneshot.evaluation.scorers import EncoderScorer

CARD = Path(__file__).resolve().parents[1] / "docs" / "MODEL_CARD.md"


@pytest.fixture(scope="module")
def shipped():
    path = default_model_path()
    if path is None:
        pytest.fail("the package ships no default model (src/oneshot/weights/default.pt)")
    return path, *load_model(path)


def test_small_and_safe(shipped):
    path, model, record = shipped
    assert path.stat().st_size < 5_000_000
    assert record["lake"]["tasks"] == 400


def test_scores_lake_as_the_model_card_says(shipped, lake_runs):
    _, model, record = shipped
    acc = lake_benchmark(EncoderScorer(model), lake_runs).accuracy
    assert acc.correct == record["lake"]["correct"]
    m = re.search(r"Lake's 20 runs \(400 trials\): \*\*([\d.]+) %\*\*", CARD.read_text())
    assert m, "the model card states no Lake accuracy"
    assert float(m.group(1)) == pytest.approx(acc.value, abs=0.005)


def test_lake_predictions_unchanged(shipped, lake_runs):
    """Every one of the 400 choices equals the one recorded before the refactor of the
    embedding path (tests/fixtures/shipped_lake_predictions.json)."""
    _, model, _ = shipped
    want = json.loads((FIXTURES / "shipped_lake_predictions.json").read_text())["predictions"]
    got = lake_benchmark(EncoderScorer(model), lake_runs).predictions
    np.testing.assert_array_equal(got, np.array(want))


def test_open_set_by_default(shipped, splits):
    """The shipped model carries a threshold calibrated on the validation alphabets; below it
    the classifier answers "unknown" by default: for a character of another alphabet, and
    not for another drawer's image of an enrolled one."""
    from oneshot.inference import UNKNOWN, OneShotClassifier

    _, model, record = shipped
    cal = record["open_set"]
    assert cal["split"] == "validation" and 0 < cal["threshold"] < 1
    assert cal["false_accept"] < 0.1 and cal["false_reject"] < 0.1
    test = splits["test"]
    teng = test.select(alphabets=["Tengwar"])
    clf = OneShotClassifier(model, record)
    one = teng.drawers == 1
    clf.enrol(list(teng.images[one].astype(np.float32)),
              [teng.characters[c] for c in teng.labels[one]])
    known = clf.predict(list(teng.images[teng.drawers == 2].astype(np.float32)))
    assert np.mean([p.label != UNKNOWN for p in known]) > 0.85
    other = test.select(alphabets=["Atlantean"])
    unknown = clf.predict(list(other.images[other.drawers == 2].astype(np.float32)))
    assert np.mean([p.label == UNKNOWN for p in unknown]) > 0.8
    assert all(p.threshold == cal["threshold"] for p in known + unknown)
