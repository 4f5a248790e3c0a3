"""The README's user example runs as written (Python and shell), with the shipped model."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def _block(kind: str) -> str:
    m = re.search(rf"<!-- readme-example: {kind} -->\n```\w+\n(.*?)```", README.read_text(), re.S)
    assert m, f"README has no {kind} example block"
    return m.group(1)


@pytest.fixture
def workdir(tmp_path, data_dir, cache_dir, monkeypatch):
    from oneshot.checkpoint import default_model_path

    if default_model_path() is None:
        pytest.fail("the package ships no default model (src/oneshot/weights/default.pt)")
    # the examples use ../shared/omniglot relative to the working directory, like the README
    (tmp_path / "work").mkdir()
    (tmp_path / "shared").mkdir()
    (tmp_path / "shared" / "omniglot").symlink_to(data_dir)
    monkeypatch.chdir(tmp_path / "work")
    return {**os.environ, "ONESHOT_DATA": str(data_dir), "ONESHOT_CACHE": str(cache_dir),
            "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


def test_python_example(workdir):
    out = subprocess.run([sys.executable, "-c", _block("python")], env=workdir, check=True,
                         capture_output=True, text=True).stdout
    m = re.search(r"25-way one-shot: ([\d.]+)% of 475 images", out)
    assert m, out
    assert float(m.group(1)) > 60.0  # far above chance (4 %) for the shipped model
    assert Path("tengwar.npz").is_file()


def test_shell_example(workdir):
    out = subprocess.run(["bash", "-e", "-c", _block("bash")], env=workdir, check=True,
                         capture_output=True, text=True).stdout.split()
    acc, n = float(out[-2]), int(out[-1])
    assert n == 475 and acc > 0.6, out
