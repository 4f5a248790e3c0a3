"""Keep freed memory in the process for reuse: glibc's allocator tuned for training on a CPU.

glibc hands every allocation above its mmap threshold (at most 32 MB, adjusted as the process
runs) straight to the kernel and gives it back on free. A training step on the CPU allocates
the same large buffers every step (the Koch network's bf16 copy of its 4096x9216 fc weight,
that weight's gradient, the first layers' activations and their gradients), so every step
page-faults and zero-fills a few hundred fresh megabytes: profiled at 60 ms per cast of the fc
weight, of which the cast itself is 7 ms. With the threshold raised and trimming off, freed
blocks stay in the heap and the next step reuses them (the Koch step under bf16: about 20 %
faster; docs/speed.md). The price is that the process keeps its peak heap until it exits, so
this is for training processes, not for a long-lived server (the demo does not call it).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD = -1   # mallopt parameters (glibc's malloc.h)
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 1 << 30        # allocations below 1 GiB come from the heap
_TRIM_THRESHOLD = (1 << 31) - 1  # never give the heap's free top back while running
_done: bool | None = None


def keep_freed_memory() -> bool:
    """Tune glibc's malloc (once per process) so that freed large blocks are reused instead of
    returned to the kernel; True if applied. A no-op (False) off glibc, or when the environment
    sets ``ONESHOT_MALLOC=system`` or glibc's own ``MALLOC_MMAP_THRESHOLD_``."""
    global _done
    if _done is not None:
        return _done
    _done = False
    if os.environ.get("ONESHOT_MALLOC") == "system" or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl, macOS, Windows): their allocators are left alone
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _done = bool(mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD)
                 and mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
    return _done
