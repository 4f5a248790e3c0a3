"""Shared fixtures. The real Omniglot archives are required (no skipping): they are found at
$ONESHOT_DATA, else at ../shared/omniglot beside the repository."""

from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def _data_dir() -> Path:
    env = os.environ.get("ONESHOT_DATA")
    d = Path(env) if env else REPO.parent / "shared" / "omniglot"
    if not (d / "images_background.zip").is_file():
        raise RuntimeError(f"Omniglot archives not found at {d}; set ONESHOT_DATA")
    return d


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return _data_dir()


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


def png_bytes(img: np.ndarray, mode: str = "1") -> bytes:
    """PNG of an ink-1 array in Omniglot's convention (black ink on white)."""
    buf = io.BytesIO()
    Image.fromarray(((1 - img) * 255).astype(np.uint8)).convert(mode).save(buf, format="PNG")
    return buf.getvalue()


def make_zip(path: Path, entries: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return path


def tiny_entries(alphabets=2, chars=2, drawers=20, top="images_tiny", size=105, seed=0):
    """A synthetic archive in Omniglot's layout: {zip name: PNG bytes}."""
    rng = np.random.default_rng(seed)
    out = {}
    cid = 1
    for a in range(alphabets):
        for c in range(chars):
            for d in range(1, drawers + 1):
                img = (rng.random((size, size)) < 0.1).astype(np.uint8)
                out[f"{top}/Alpha{a}/character{c + 1:02d}/{cid:04d}_{d:02d}.png"] = png_bytes(img)
            cid += 1
    return out


def glyph(kind: str, size: int = 105) -> np.ndarray:
    """A synthetic character, float32 (size, size), ink = 1: "bar", "cross" or "eq"."""
    img = np.zeros((size, size), np.float32)
    s = size // 8
    if kind == "bar":
        img[2 * s: 6 * s, 3 * s: 4 * s] = 1
    elif kind == "cross":
        img[4 * s: 5 * s, s: 7 * s] = 1
        img[s: 7 * s, 4 * s: 5 * s] = 1
    else:
        img[2 * s: 3 * s, 2 * s: 6 * s] = 1
        img[5 * s: 6 * s, 2 * s: 6 * s] = 1
    return img
