"""Fixtures of the demo tests: a tiny random model, the app on the real test alphabets, a
Starlette test client."""

from __future__ import annotations

from pathlib import Path

import pytest
from starlette.testclient import TestClient  # the dev extra installs the demo's packages

from oneshot import demo
from oneshot.checkpoint import export_model
from oneshot.data.splits import load_split
from oneshot.models import ModelSpec, build_model

SPEC = ModelSpec("conv", {"input_size": 28, "width": 8}, "euclidean")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("model") / "model.pt"
    export_model(build_model(SPEC, seed=0), path, {"note": "random init"})
    return path


@pytest.fixture(scope="module")
def test_split(data_dir, cache_dir):
    return load_split("test", data_dir, cache_dir)


@pytest.fixture(scope="module")
def app(model_file, data_dir, cache_dir):
    return demo.create_app(model_file, data_dir, cache_dir)


@pytest.fixture(scope="module")
def client(app):
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c










