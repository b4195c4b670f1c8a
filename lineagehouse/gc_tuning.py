"""The cyclic garbage collector's settings for processes that derive events in batches
(the worker's stages, `lineagehouse replay`).

Their records are plain dicts and lists freed by reference counting: the collector only
ever finds nothing in them. With its default thresholds it ran ~1,400 times per 12,000
events, and py-spy found it in ~40% of the worker's busy samples (BENCHMARKS.md,
session 4). With a young-generation threshold of 50,000 a processor batch still set off
collections over its own live records (BENCHMARKS.md, session 12).
"""

from __future__ import annotations

import gc

# Tracked objects (dicts, lists) one event's validation and records keep alive until its
# batch is written: ~96 measured on the benchmark's events (191,000 for 2,000 events),
# 157 for events with 30 columns (~21 KB).
_LIVE_OBJECTS_PER_EVENT = 250


def gc_threshold(batch_size: int) -> int:
    """The youngest generation's threshold for batches of `batch_size` events: above what
    a whole batch keeps alive, so its records are freed before a collection scans them."""
    return max(50_000, batch_size * _LIVE_OBJECTS_PER_EVENT)


def tune_gc(batch_size: int) -> None:
    """Freeze everything alive now (compiled schemas, libraries) out of the collector's
    scans, and raise its thresholds for batches of `batch_size` events."""
    gc.freeze()
    gc.set_threshold(gc_threshold(batch_size), 50, 100)
