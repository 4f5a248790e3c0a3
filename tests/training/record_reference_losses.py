"""Record this CPU's reference losses in tests/fixtures/reference_losses.json.

The float arithmetic of a training run differs in its last bits between CPU kernels (vendor,
vector ISA, AMX), and training amplifies those bits, so the fixture holds one loss sequence per
kernel family (``support.cpu_kernels``). Run this **from a commit whose losses are already known
to be right** (one that passes test_reference_losses on a CPU with a recorded sequence), on the
new kind of CPU, then commit the fixture::

    git worktree add /tmp/known-good <commit>
    PYTHONPATH=/tmp/known-good/src:tests python tests/training/record_reference_losses.py

Existing sequences are kept; the fixture is replaced atomically.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

from support import FIXTURES, cpu_kernels, find_data_dir, reference_losses

import oneshot


def main() -> int:
    path = FIXTURES / "reference_losses.json"
    fixture = json.loads(path.read_text())
    kernels = cpu_kernels()
    print(f"recording for {kernels!r} with oneshot from {Path(oneshot.__file__).parent}")
    with tempfile.TemporaryDirectory() as tmp:
        for name, ref in fixture.items():
            if name.startswith("_"):
                continue
            losses = reference_losses(name, ref["overrides"], Path(tmp) / name, find_data_dir(),
                                      Path(tmp) / "cache")
            ref["losses"][kernels] = losses
            print(f"{name}: {len(losses)} losses, first {losses[0]}, last {losses[-1]}")
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".reference_losses.")
    with os.fdopen(fd, "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")
    os.replace(tmp_name, path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
