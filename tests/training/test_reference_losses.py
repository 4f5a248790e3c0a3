"""Behaviour is unchanged by refactors: the loss sequences of a 200-step ``fast`` training and a
20-step ``tutorial`` training match those recorded with known-good code, step for step.

Bit-level float results differ between CPU kernel families (``support.cpu_kernels``: vendor,
vector ISA, AMX) and training amplifies them (Koch's network at its initialisation is
ill-conditioned in float32; bf16 autocast rounds differently on AMX), so the fixture holds one
sequence per family, and the strict test runs where this machine's family has one. On any CPU
the first loss (one forward pass, no update yet) agrees with every recorded family's, and the
training converges the same way: the loose test."""

from __future__ import annotations

import json

import numpy as np
import pytest
from support import FIXTURES, cpu_kernels, reference_losses

FIXTURE = json.loads((FIXTURES / "reference_losses.json").read_text())
RECORD = "tests/training/record_reference_losses.py"


@pytest.fixture(scope="module", params=["fast", "tutorial"])
def run(request, tmp_path_factory, data_dir, cache_dir):
    name = request.param
    ref = FIXTURE[name]
    got = reference_losses(name, ref["overrides"], tmp_path_factory.mktemp(name), data_dir,
                           cache_dir)
    return name, got, ref["losses"]


def test_reference_losses(run):
    name, got, recorded = run
    kernels = cpu_kernels()
    if kernels not in recorded:
        pytest.skip(f"no {name} losses recorded for CPU kernels {kernels!r} (recorded: "
                    f"{sorted(recorded)}); record them with {RECORD} from a known-good commit")
    ref = recorded[kernels]
    assert len(got) == len(ref)
    # metrics are logged rounded to 6 decimals; fused kernels leave ~1e-5
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-5)


def test_losses_agree_with_every_cpu_family(run):
    name, got, recorded = run
    for kernels, ref in recorded.items():
        assert len(got) == len(ref), kernels
        assert got[0] == pytest.approx(ref[0], rel=1e-3), kernels  # before any update
        quarter = len(ref) // 4  # the same convergence: the last quarter's mean loss
        assert np.mean(got[-quarter:]) == pytest.approx(np.mean(ref[-quarter:]), rel=0.05), \
            kernels
