"""Shared fixtures. The real Omniglot archives are required (no skipping): they are found at
$ONESHOT_DATA, else at ../shared/omniglot beside the repository."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import TINY_SPEC, find_data_dir


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return find_data_dir()


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """One decoded cache for the whole session (decoding takes a few seconds)."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def splits(data_dir, cache_dir):
    from oneshot.data.splits import load_split

    return {name: load_split(name, data_dir, cache_dir)
            for name in ("background", "evaluation", "validation", "test")}


@pytest.fixture(scope="session")
def lake_runs(data_dir):
    from oneshot.data.lake import load_lake_runs

    return load_lake_runs(data_dir)


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory) -> Path:
    """A model file of a tiny random network (conv, width 8, 28 px, Euclidean head)."""
    from oneshot.checkpoint import export_model
    from oneshot.models import build_model

    path = tmp_path_factory.mktemp("tiny-model") / "model.pt"
    export_model(build_model(TINY_SPEC, seed=0), path, {"note": "random init"})
    return path
