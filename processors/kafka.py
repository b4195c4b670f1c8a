"""Thin confluent-kafka adapter shared by the processor and the sink stages.

Both stages read batches with manual commits: offsets are committed only after what the
batch produced was acknowledged (by the broker, or by ClickHouse for the sink).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from lineagehouse import metrics
from lineagehouse.settings import Settings

log = logging.getLogger("lineagehouse.kafka")


def batch_consumer(settings: Settings, group_id: str, max_message_bytes: int) -> Consumer:
    kafka = settings.kafka
    return Consumer(
        {
            **kafka.consumer_config(),
            "group.id": group_id,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "session.timeout.ms": int(kafka.session_timeout_s * 1000),
            "heartbeat.interval.ms": int(kafka.heartbeat_interval_s * 1000),
            "max.poll.interval.ms": 600_000,
            "fetch.max.bytes": max(52_428_800, 2 * max_message_bytes),
            "max.partition.fetch.bytes": max(1_048_576, 2 * max_message_bytes),
            "queued.max.messages.kbytes": 262_144,
            "enable.partition.eof": False,
        }
    )


def acked_producer(settings: Settings, max_message_bytes: int) -> Producer:
    """An idempotent producer (acks=all) whose sends the caller waits for."""
    return Producer(
        {
            **settings.kafka.confluent_config(),
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
            "message.max.bytes": max(1_048_576, max_message_bytes + 65_536),
            "queue.buffering.max.kbytes": 1_048_576,
        }
    )


class DeliveryFailed(Exception):
    pass


class Sender:
    """Produce messages, then `wait()` until the broker acknowledged every one; raises
    DeliveryFailed if any was not."""

    def __init__(self, producer: Producer) -> None:
        self.producer = producer
        self.errors: list[str] = []
        self.pending = 0

    def _on_delivery(self, err: KafkaError | None, _msg: Message) -> None:
        self.pending -= 1
        if err is not None:
            self.errors.append(str(err))

    def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        partition: int | None = None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        args: dict[str, Any] = {"key": key, "headers": headers, "on_delivery": self._on_delivery}
        if partition is not None:
            args["partition"] = partition
        while True:
            try:
                self.producer.produce(topic, value, **args)
                self.pending += 1
                return
            except BufferError:  # local queue full: let deliveries drain
                self.producer.poll(0.05)

    def wait(self, timeout_s: float = 60.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.pending > 0 and time.monotonic() < deadline:
            self.producer.flush(min(1.0, max(0.0, deadline - time.monotonic())))
        errors, self.errors = self.errors, []
        if self.pending > 0:
            self.pending = 0
            raise DeliveryFailed(f"no broker acknowledgement within {timeout_s} s")
        if errors:
            raise DeliveryFailed(f"{len(errors)} message(s) not delivered: {errors[0]}")


def next_offsets(messages: Iterable[Message]) -> list[TopicPartition]:
    """The offsets to commit after `messages`: per partition, the last offset + 1."""
    last: dict[tuple[str, int], int] = {}
    for msg in messages:
        key = (msg.topic(), msg.partition())
        offset = msg.offset()
        if offset > last.get(key, -1):
            last[key] = offset
    return [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]


def commit(consumer: Consumer, offsets: list[TopicPartition]) -> None:
    """Commit synchronously; a partition revoked meanwhile is not an error (its messages
    replay on the new owner, which the idempotent tables absorb)."""
    if not offsets:
        return
    try:
        consumer.commit(offsets=offsets, asynchronous=False)
    except KafkaException as exc:
        code = exc.args[0].code() if exc.args else None
        if code in (
            KafkaError._NO_OFFSET,
            KafkaError.REBALANCE_IN_PROGRESS,
            KafkaError.ILLEGAL_GENERATION,
            KafkaError.UNKNOWN_MEMBER_ID,
        ):
            log.warning(
                "commit skipped after a rebalance; the batch will replay", extra={"error": str(exc)}
            )
            return
        raise


def record_lag(consumer: Consumer, messages: list[Message]) -> None:
    """Set `lineagehouse_consumer_lag` for the partitions of a batch: the partition's high
    watermark (from the last fetch, no extra request) minus the next offset to read. The
    embedded broker's watermark can lag, so there it reads low, never high."""
    last: dict[tuple[str, int], int] = {}
    for msg in messages:
        last[(msg.topic(), msg.partition())] = msg.offset()
    for (topic, partition), offset in last.items():
        try:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), cached=True)
        except KafkaException:
            continue
        if high >= 0:
            metrics.CONSUMER_LAG.labels(topic=topic, partition=str(partition)).set(
                max(high - offset - 1, 0)
            )


def usable(messages: list[Message], consumer: Consumer | None = None) -> list[Message]:
    """Messages without a consumer error (errors are logged: none of them is data); with
    `consumer`, the lag of their partitions is recorded too."""
    good = []
    for msg in messages:
        err = msg.error()
        if err is None:
            good.append(msg)
        else:
            log.warning("consumer error", extra={"error": str(err)})
    if consumer is not None and good:
        record_lag(consumer, good)
    return good
