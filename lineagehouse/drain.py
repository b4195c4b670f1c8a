"""Has the worker consumed everything the broker holds? (Used by `up` before it stops.)

Three consumer groups must be at the end: the processor's on `openlineage.events`, the
sink's on every derived topic and the issues stage's on the topics it watches. The
embedded broker's high watermark can lag the real end of a partition (Tansu reports the
base offset of the last record batch + 1), so
"drained" is decided by trying to read at each group's committed offset, never by
comparing with the high watermark.
"""

from __future__ import annotations

import time
import uuid

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from lineagehouse.processors.records import KIND_NAMES
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


def watched(settings: Settings) -> list[tuple[str, str]]:
    """(topic, consumer group) pairs that must be fully consumed."""
    topics, worker = settings.topics, settings.worker
    pairs = [(topics.events, worker.group_id)]
    pairs += [(topics.derived(kind), worker.sink_group_id) for kind in KIND_NAMES]
    if settings.issues.enabled:
        from lineagehouse.processors.issue_stage import WATCHED_KINDS

        pairs += [(topics.derived(kind), settings.issues.group_id) for kind in WATCHED_KINDS]
    return pairs


def pending_partitions(
    settings: Settings, probe: Consumer, groups: dict[str, Consumer]
) -> list[str]:
    """`topic/partition` of every watched partition with messages at or after the
    committed offset of its group."""
    behind: dict[tuple[str, int], int] = {}  # a partition two groups read: the one behind
    for topic, group in watched(settings):
        meta = probe.list_topics(topic, timeout=10).topics.get(topic)
        if meta is None or meta.error is not None:
            continue
        committed = groups[group].committed(
            [TopicPartition(topic, p) for p in sorted(meta.partitions)], timeout=10
        )
        for tp in committed:
            offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            key = (topic, tp.partition)
            behind[key] = min(behind.get(key, offset), offset)
    assignment = [TopicPartition(t, p, offset) for (t, p), offset in behind.items()]
    if not assignment:
        return []
    probe.assign(assignment)
    found: set[str] = set()
    try:
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            for msg in probe.consume(len(assignment), timeout=0.3):
                if msg.error() is None:
                    found.add(f"{msg.topic()}/{msg.partition()}")
    finally:
        probe.unassign()
    return sorted(found)


def wait_until_drained(settings: Settings, timeout_s: float) -> list[str]:
    """Block until no watched partition has unconsumed messages; returns those pending."""
    probe = _consumer(settings, f"lineagehouse-drain-probe-{uuid.uuid4().hex[:8]}")
    group_ids = {group for _, group in watched(settings)}
    groups = {group: _consumer(settings, group) for group in group_ids}
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            pending = pending_partitions(settings, probe, groups)
            if not pending or time.monotonic() >= deadline:
                return pending
            time.sleep(0.5)
    finally:
        probe.close()
        for consumer in groups.values():
            consumer.close()
