"""keep_freed_memory: applied once on glibc, skipped when the user asks for the system's."""

import os
import platform
import subprocess
import sys

import pytest

CODE = ("from oneshot.allocator import keep_freed_memory as k; "
        "import torch; a = k(); x = torch.empty(300_000_000, dtype=torch.uint8).fill_(1); "
        "del x; print(a, k())")


def run(env: dict) -> str:
    out = subprocess.run([sys.executable, "-c", CODE], env={**os.environ, **env},
                         capture_output=True, text=True, timeout=120, check=True)
    return out.stdout.strip()


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="mallopt is glibc's")
def test_applied_once_on_glibc():
    assert run({"ONESHOT_MALLOC": ""}) == "True True"


def test_system_allocator_on_request():
    assert run({"ONESHOT_MALLOC": "system"}) == "False False"
    assert run({"ONESHOT_MALLOC": "", "MALLOC_MMAP_THRESHOLD_": "65536"}) == "False False"
