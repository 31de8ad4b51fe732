"""Memory the C allocator keeps after a batch of model work, handed back to the system.

A batch of generation or scoring allocates tensors of sizes that vary with its prompts (key/value
buffers, logits, activations). glibc's ``malloc`` serves most of them from its heap (its mmap
threshold rises after the first large block is freed) and keeps what is freed for later. Measured
with SmolLM2-135M (``benchmarks/bench_memory.py``): after a batch of 64 generations 244 MiB of the
heap were free but still resident, through the tests that ran next; released, the process's
resident memory after the batch was 960 MiB instead of 1201 MiB. The peak inside a batch is the
same either way: it is the memory in use then.

:func:`release` calls ``malloc_trim(0)`` after a backend call: glibc returns every whole free
page of its heaps to the system (``madvise``), which takes a few milliseconds; the next call's
allocations fault their pages in again. Nothing in use moves and no value changes. Under another
C library (musl, macOS) there is no ``malloc_trim`` and :func:`release` does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from typing import Any, Callable

__all__ = ["release", "trimmer"]


@functools.lru_cache(maxsize=1)
def trimmer() -> Callable[[int], Any] | None:
    """glibc's ``malloc_trim``, or None where the C library has none."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def release() -> bool:
    """Hand the allocator's free pages back to the system; whether there was a way to (glibc)."""
    trim = trimmer()
    if trim is None:
        return False
    trim(0)
    return True
