"""Keeping freed memory for the next batch, in the processes that derive events in batches
(the worker's stages, `lineagehouse replay`).

Each batch's objects are built and freed together. By default Python's allocator and
glibc's return that memory to the system at once, and the next batch takes fresh pages,
each at the cost of a page fault: ~1.6-2 us on the benchmark's machine, ~17 times
writing the page (`bench/bench_pipeline.py` measures it; BENCHMARKS.md, session 16).
Kept, the memory is reused: the resident size stays near the peak of a batch instead of
falling after it.
"""

from __future__ import annotations

import logging

from lineagehouse import metrics
from lineagehouse.processors.records import NATIVE, native_module

log = logging.getLogger("lineagehouse.memory")

_MB = 1024 * 1024


def keep_freed_memory(max_mb: int) -> bool:
    """Keep up to `max_mb` MiB of Python's empty arenas mapped for reuse and stop glibc from
    returning freed memory (`_memory.c`). False when nothing was changed: `max_mb` is 0 or
    the C module is not built."""
    if max_mb <= 0 or not NATIVE:
        return False
    if not native_module().keep_freed_memory(max_mb * _MB):
        log.info("freed memory kept for Python objects only (malloc is not glibc's)")
    metrics.MEMORY_KEPT.set_function(lambda: kept_memory()[0])
    metrics.MEMORY_KEEP_LIMIT.set_function(lambda: kept_memory()[1])
    return True


def kept_memory() -> tuple[int, int]:
    """(bytes of empty arenas kept now, how many bytes may be kept); (0, 0) when nothing
    is kept."""
    return native_module().kept_memory() if NATIVE else (0, 0)
