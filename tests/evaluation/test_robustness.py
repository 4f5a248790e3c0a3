"""The robustness suite on a few trials: the table's structure, clean accuracy equal to the normal
evaluation on the same trials, and the benchmark script end to end."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from support import REPO

from oneshot.checkpoint import load_model
from oneshot.evaluation.lake import lake_benchmark
from oneshot.evaluation.nway import evaluate_tasks
from oneshot.evaluation.robustness import (
    CONDITIONS,
    RobustnessScorer,
    lake_trials,
    robustness_markdown,
    run_robustness,
    task_trials,
)
from oneshot.evaluation.scorers import EncoderScorer
from oneshot.preprocess import LEGACY
from oneshot.sampling import sample_tasks

NAMES = ["clean", "gaussian-0.2", "invert", "border-line"]


@pytest.fixture(scope="module")
def shipped():
    return load_model(None)[0]


@pytest.fixture(scope="module")
def setting(shipped, splits, lake_runs):
    ds = splits["test"]
    tasks = sample_tasks(ds, 5, 16, "within-alphabet", seed=3)
    trials = [lake_trials(lake_runs[:2]), task_trials(ds, tasks, "5-way")]
    return ds, tasks, trials


def test_table_structure_and_clean_equals_the_normal_evaluation(shipped, setting, lake_runs):
    ds, tasks, trials = setting
    rows = run_robustness(RobustnessScorer(shipped), trials, NAMES, seed=0)
    assert len(rows) == len(trials) * (1 + len(CONDITIONS) * (len(NAMES) - 1))
    assert {r["applied_to"] for r in rows} == {"none", *CONDITIONS}
    clean = {r["trials"]: r for r in rows if r["perturbation"] == "clean"}
    lake = lake_benchmark(EncoderScorer(shipped), lake_runs[:2]).accuracy
    nway = evaluate_tasks(EncoderScorer(shipped), ds.images, tasks)
    assert (clean["Lake's 2 runs"]["correct"], clean["Lake's 2 runs"]["tasks"]) == (
        lake.correct, lake.total) == (lake.correct, 40)
    assert (clean["5-way"]["correct"], clean["5-way"]["tasks"]) == (nway.correct, 16)
    # polarity is undone by the preprocessing: inverted images score exactly as clean ones
    for r in rows:
        if r["perturbation"] == "invert":
            assert r["correct"] == clean[r["trials"]]["correct"]
        assert 0 <= r["ci95_low"] <= r["accuracy"] <= r["ci95_high"] <= 100

    md = robustness_markdown(rows).strip().splitlines()
    assert len(md) == 2 + len(NAMES)
    assert md[0].count("|") == 2 + 2 * len(CONDITIONS)
    assert "Lake's 2 runs (n=40), query" in md[0] and "5-way (n=16), query+support" in md[0]
    assert md[2].startswith("| clean |") and md[2].count("[") == 4

    again = run_robustness(RobustnessScorer(shipped), trials[1:], ["gaussian-0.2"], seed=0)
    first = [r for r in rows if r["trials"] == "5-way" and r["perturbation"] == "gaussian-0.2"]
    assert [r["correct"] for r in again] == [r["correct"] for r in first]


def test_legacy_preprocessing_gives_the_harness_input_too(shipped, setting):
    _, _, trials = setting
    x = trials[0].images[:30]
    from oneshot.preprocess import images_to_tensor

    want = images_to_tensor(x, shipped.encoder.input_size)
    assert np.array_equal(RobustnessScorer(shipped, options=LEGACY).inputs(x), want)
    assert np.array_equal(RobustnessScorer(shipped).inputs(x), want)


def test_benchmark_script(tmp_path, data_dir, cache_dir):
    out = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "robustness.py"), "--tasks", "12",
         "--no-lake", "--perturb", "clean", "salt-pepper-5%", "--preprocessing", "legacy",
         "--set", "min_ink=0", "--data-dir", str(data_dir), "--cache", str(cache_dir),
         "--json", str(tmp_path / "r.json")],
        capture_output=True, text=True, timeout=300, cwd=REPO)
    assert out.returncode == 0, out.stderr
    assert "| salt-pepper-5% |" in out.stdout
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["task_file"] == "test-within-alphabet-20way-3000-seed1300.npz"
    assert [r["tasks"] for r in rep["rows"]] == [12, 12, 12]
    assert rep["preprocessing"]["background"] == "median"
