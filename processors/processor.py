"""The processor stage: `openlineage.events` -> derived topics (Avro) and the DLQ.

Commit protocol of this stage (at-least-once in; see ARCHITECTURE.md for the whole):

1. Consume a batch from the events topic (confluent-kafka, manual commits).
2. Validate and derive, per input partition (`ingest.process_message`, pure): every
   accepted message gives its raw event and derived records; every other message a dead
   letter with all its reasons. A few hundred messages at a time, whose records are then
   folded into the batch's (`batch.BatchRecords`: encoded, or combined per key).
3. Produce the dead letters to the DLQ topic, and per input partition and record kind one
   or a few Avro messages (rows combined per key over the whole batch, `records.Combiner`,
   and content already sent left out) to the kind's topic, keyed by the input partition
   (so one partition's records stay in order); wait until the broker acknowledged every
   one. On a delivery failure, produce the whole batch again (duplicates are harmless
   downstream).
4. Commit the batch's offsets.

A crash before 4 replays the batch: the same records are produced again, and the sink's
tables collapse the copies.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from datetime import UTC, datetime

from confluent_kafka import KafkaException, Message

from lineagehouse import metrics
from lineagehouse.processors.avro import INPUT_TIME_HEADER, ROWS_HEADER, SCHEMA_HEADER, schema_tag
from lineagehouse.processors.batch import CHUNK_EVENTS, BatchRecords
from lineagehouse.processors.deadletter import DeadLetter
from lineagehouse.processors.derive import Record, Records
from lineagehouse.processors.events import Source
from lineagehouse.processors.faults import Faults
from lineagehouse.processors.ingest import process_message
from lineagehouse.processors.kafka import (
    DeliveryFailed,
    Sender,
    acked_producer,
    batch_consumer,
    commit,
    next_offsets,
    usable,
)
from lineagehouse.processors.records import BY_NAME
from lineagehouse.processors.validate import EventValidator
from lineagehouse.settings import Settings

log = logging.getLogger("lineagehouse.processor")


def derive_batch(
    messages: list[Message],
    validator: EventValidator,
    settings: Settings,
    now: datetime,
    chunk: int = CHUNK_EVENTS,
) -> tuple[BatchRecords, list[DeadLetter]]:
    """The records of a batch of messages, per input partition (folded in `chunk`
    messages at a time, see `batch.py`; each dead letter's record among them), and the
    dead letters."""
    batch = BatchRecords()
    dead: list[DeadLetter] = []
    rules = settings.ingest
    for start in range(0, len(messages), chunk):
        by_partition: dict[int, Records] = {}
        for msg in messages[start : start + chunk]:
            partition = msg.partition()
            out = by_partition.get(partition)
            if out is None:
                out = by_partition[partition] = {}
            source = Source(msg.topic(), partition, msg.offset(), msg.key())
            letter = process_message(
                msg.value(), source, now, validator, out, rules.max_reasons, rules.max_facet_bytes
            )
            if letter is not None:
                dead.append(letter)
                out.setdefault("dead_letters", []).append(letter.record())
        for partition, records in by_partition.items():
            batch.add(partition, records)
    return batch, dead


class SentContent:
    """Content records (dataset versions, column lineage) this process has sent and the
    broker acknowledged, by kind and the values of the kind's `content` fields: their rows
    are a pure function of those, so sending them again would change nothing. An
    optimisation only; a restart forgets it."""

    def __init__(self, maxsize: int = 200_000) -> None:
        self._sent: OrderedDict[tuple, None] = OrderedDict()
        self._maxsize = maxsize

    def unsent(self, kind: str, rows: list[Record], new: set[tuple]) -> list[Record]:
        """The rows of `kind` whose content was not sent yet (their identities go to `new`)."""
        fields = BY_NAME[kind].content
        if not fields:
            return rows
        fresh = []
        for row in rows:
            content = (kind, *[row[field] for field in fields])
            if content in self._sent:
                self._sent.move_to_end(content)
            else:
                fresh.append(row)
                new.add(content)
        return fresh

    def sent(self, contents: set[tuple]) -> None:
        """Remember contents whose rows the broker acknowledged."""
        for content in contents:
            self._sent[content] = None
        while len(self._sent) > self._maxsize:
            self._sent.popitem(last=False)


class ProcessorStage:
    def __init__(self, settings: Settings, faults: Faults | None = None) -> None:
        self.settings = settings
        worker = settings.worker
        self.faults = faults or Faults(worker.fault_point, worker.fault_after)
        self.validator = EventValidator(
            settings.ingest.max_event_bytes, settings.ingest.extra_schema_dirs
        )
        limit = max(worker.derived_message_bytes, settings.ingest.max_event_bytes)
        self.consumer = batch_consumer(settings, worker.group_id, settings.ingest.max_event_bytes)
        self.sender = Sender(acked_producer(settings, limit))
        self.content = SentContent()

    def run(self, stop: threading.Event) -> None:
        worker = self.settings.worker
        self.consumer.subscribe([self.settings.topics.events])
        log.info("processor started", extra={"topic": self.settings.topics.events})
        try:
            while not stop.is_set():
                batch = self.consumer.consume(worker.batch_size, worker.batch_timeout_s)
                messages = usable(batch, self.consumer)
                if not messages:
                    continue
                self.faults.reached("processor.after_consume")
                self.process(messages)
                self.faults.reached("processor.after_produce")
                try:
                    commit(self.consumer, next_offsets(messages))
                except Exception as exc:  # the batch replays; tables absorb it
                    log.warning("commit failed", extra={"error": str(exc)})
                self.faults.reached("processor.after_commit")
        finally:
            self.consumer.close()
            log.info("processor stopped")

    def process(self, messages: list[Message]) -> None:
        """Derive and produce one batch; returns once the broker acknowledged all of it."""
        started = time.perf_counter()
        batch, dead = derive_batch(messages, self.validator, self.settings, datetime.now(UTC))
        metrics.EVENTS_CONSUMED.inc(len(messages))
        for letter in dead:
            metrics.EVENTS_REJECTED.labels(origin=letter.origin).inc()
            log.warning(
                "event dead-lettered",
                extra={
                    "topic": letter.source.topic,
                    "partition": letter.source.partition,
                    "offset": letter.source.offset,
                    "dead_letter_id": str(letter.id),
                    "reasons": [f"{p.path}: {p.message}" for p in letter.problems[:3]],
                    "reason_count": letter.total_problems,
                },
            )
        outgoing, new_content, rows = self._messages(batch, dead, _input_times(messages))
        backoff = 0.2
        while True:
            try:
                for message in outgoing:
                    self.sender.send(*message)
                self.sender.wait()
                break
            except (KafkaException, DeliveryFailed) as exc:  # produce the whole batch again
                log.warning(
                    "producing derived records failed; retrying",
                    extra={"error": str(exc)[:300], "retry_in_s": backoff},
                )
                time.sleep(backoff)
                backoff = min(backoff * 2, 10.0)
        self.content.sent(new_content)
        metrics.DERIVED_MESSAGES.inc(len(outgoing) - len(dead))
        for kind, count in rows.items():
            metrics.DERIVED_ROWS.labels(kind=kind).inc(count)
        metrics.EVENTS_ACCEPTED.inc(len(messages) - len(dead))
        metrics.PROCESSOR_BATCH_SECONDS.observe(time.perf_counter() - started)

    def _messages(
        self, batch: BatchRecords, dead: list[DeadLetter], input_times: dict[int, int]
    ) -> tuple[list[tuple], set[tuple], dict[str, int]]:
        """Everything one batch sends, as `Sender.send` arguments: the dead letters, then
        per input partition and kind the Avro containers of its records (combined, content
        already sent left out); also the new contents and the rows per kind. An error
        here is a bug, not bad input or an outage: it stops the worker, uncommitted."""
        topics = self.settings.topics
        max_event = self.settings.ingest.max_event_bytes
        outgoing: list[tuple] = [
            (topics.dlq, letter.topic_value(max_event), letter.key, None, letter.headers(max_event))
            for letter in dead
        ]
        new_content: set[tuple] = set()
        rows_by_kind: dict[str, int] = {}
        # per input partition: the messages' key and their input-time header
        per_partition: dict[int, tuple[bytes, tuple[str, bytes]]] = {}

        def unsent(kind: str, rows: list[Record]) -> list[Record]:
            return self.content.unsent(kind, rows, new_content)

        limit = self.settings.worker.derived_message_bytes
        for input_partition, kind, payload, count in batch.containers(limit, unsent):
            if input_partition not in per_partition:
                per_partition[input_partition] = (
                    f"{topics.events}/{input_partition}".encode(),
                    (INPUT_TIME_HEADER, str(input_times.get(input_partition, 0)).encode()),
                )
            key, input_time = per_partition[input_partition]
            rows_by_kind[kind] = rows_by_kind.get(kind, 0) + count
            headers = [
                (SCHEMA_HEADER, schema_tag(kind).encode()),
                (ROWS_HEADER, str(count).encode()),
                input_time,
            ]
            outgoing.append((topics.derived(kind), payload, key, None, headers))
        return outgoing, new_content, rows_by_kind


def _input_times(messages: list[Message]) -> dict[int, int]:
    """Per input partition, when its oldest message of the batch was produced (epoch
    ms; 0 when the broker gives no timestamp)."""
    oldest: dict[int, int] = {}
    for msg in messages:
        partition = msg.partition()
        millis = msg.timestamp()[1]
        if millis > 0 and millis < oldest.get(partition, 1 << 62):
            oldest[partition] = millis
    return oldest
