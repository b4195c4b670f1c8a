"""Create the Kafka topics explicitly (production clusters often disable auto-create)."""

from __future__ import annotations

import logging

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic

from lineagehouse.settings import Settings

log = logging.getLogger("lineagehouse.topics")


def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> list[str]:
    """Create the events, DLQ and derived-record topics if missing; returns the names
    created now. Derived topics get the events topic's partition count: the processor
    writes each input partition's records to the same partition number."""
    from lineagehouse.processors.records import KIND_NAMES

    topics = settings.topics
    admin = AdminClient(settings.kafka.confluent_config())
    wanted = {
        topics.events: topics.events_partitions,
        topics.dlq: topics.dlq_partitions,
    }
    wanted.update({topics.derived(kind): topics.events_partitions for kind in KIND_NAMES})
    existing = admin.list_topics(timeout=timeout_s).topics
    missing = [
        NewTopic(name, num_partitions=parts, replication_factor=topics.replication_factor)
        for name, parts in wanted.items()
        if name not in existing
    ]
    created = []
    if missing:
        for name, future in admin.create_topics(missing, request_timeout=timeout_s).items():
            try:
                future.result()
                created.append(name)
            except KafkaException as exc:  # a concurrent creator is fine
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise
    for name, parts in wanted.items():
        if name in existing and len(existing[name].partitions) < parts:
            log.warning(
                "topic has fewer partitions than configured",
                extra={
                    "topic": name,
                    "partitions": len(existing[name].partitions),
                    "wanted": parts,
                },
            )
    if created:
        log.info("topics created", extra={"topics": created})
    return created
