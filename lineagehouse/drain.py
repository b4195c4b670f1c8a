"""Has the worker consumed everything the broker holds? (Used by `up` before it stops.)

The embedded broker's high watermark can lag the real end of a partition (Tansu reports
the base offset of the last record batch + 1), so "drained" is decided by trying to read
at the worker group's committed offset, never by comparing with the high watermark.
"""

from __future__ import annotations

import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from lineagehouse.settings import Settings


def _consumer(settings: Settings, group: str) -> Consumer:
    return Consumer(
        {
            **settings.kafka.confluent_config(),
            "group.id": group,
            "enable.auto.commit": False,
            "enable.partition.eof": False,
        }
    )


def pending_partitions(settings: Settings, probe: Consumer, group: Consumer) -> list[int]:
    """Partitions of the events topic with messages at or after the committed offset."""
    topic = settings.topics.events
    meta = probe.list_topics(topic, timeout=10).topics.get(topic)
    if meta is None or meta.error is not None:
        return []
    committed = group.committed(
        [TopicPartition(topic, p) for p in sorted(meta.partitions)], timeout=10
    )
    probe.assign(
        [
            TopicPartition(topic, tp.partition, tp.offset if tp.offset >= 0 else OFFSET_BEGINNING)
            for tp in committed
        ]
    )
    try:
        messages = probe.consume(len(committed), timeout=1.5)
    finally:
        probe.unassign()
    return sorted({m.partition() for m in messages if m.error() is None})


def wait_until_drained(settings: Settings, timeout_s: float) -> list[int]:
    """Block until no partition has unconsumed messages; returns those still pending."""
    probe = _consumer(settings, f"lineagehouse-drain-probe-{uuid.uuid4().hex[:8]}")
    group = _consumer(settings, settings.worker.group_id)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            pending = pending_partitions(settings, probe, group)
            if not pending or time.monotonic() >= deadline:
                return pending
            time.sleep(0.5)
    finally:
        probe.close()
        group.close()
