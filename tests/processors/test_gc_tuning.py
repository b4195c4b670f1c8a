"""The worker's garbage-collector threshold is above what a processor batch keeps alive."""

from __future__ import annotations

import gc
from datetime import UTC, datetime

from lineagehouse.gc_tuning import gc_threshold
from lineagehouse.processors.derive import Records
from lineagehouse.processors.events import Source
from lineagehouse.processors.ingest import process_message
from lineagehouse.processors.validate import EventValidator
from lineagehouse.settings import load_settings
from tests.events import encode, lineage_event


def live_objects_per_event(events: int, columns: int) -> float:
    """Tracked objects a batch of large events keeps alive until it is produced, per
    event: what the collector's youngest generation counts while the batch is built."""
    validator = EventValidator()
    values = [
        encode(lineage_event(i, job=f"job_{i % 300}", columns=columns, rows=1000 + i))
        for i in range(events)
    ]
    out: Records = {}
    now = datetime.now(UTC)
    gc.collect()
    gc.disable()
    try:
        before = gc.get_count()[0]
        for offset, value in enumerate(values):
            assert process_message(value, Source("t", 0, offset, None), now, validator, out) is None
        alive = gc.get_count()[0] - before
    finally:
        gc.enable()
    assert sum(len(rows) for rows in out.values()) > events * 10  # the records are all there
    return alive / events


def test_a_whole_batch_of_large_events_stays_under_the_threshold() -> None:
    per_event = live_objects_per_event(400, columns=30)  # ~21 KB events, 30 columns each
    assert per_event > 20  # the count saw the batch at all
    for batch_size in (load_settings().worker.batch_size, 1, 10_000):
        assert per_event * batch_size < gc_threshold(batch_size)
