"""The sink stage: derived topics (Avro) -> ClickHouse, batched; and the insert adapter.

Commit protocol of this stage (see ARCHITECTURE.md for the whole):

1. Consume messages from every derived topic (confluent-kafka, manual commits) and keep
   them per table and schema version; nothing is decoded in Python.
2. When `worker.sink_batch_rows` rows are buffered (the `lineagehouse.rows` header), or
   the input events behind the oldest message are due (`flush_due`; in a backlog, also
   once no more messages come: `flush_now`), join each table's messages into one Avro
   container (`avro.splice`) and insert it (`FORMAT Avro`), retrying with backoff until
   ClickHouse acknowledged (blocking is the backpressure; nothing is dropped). The
   tables are written together, then `runs` last (a reader who sees a run sees the
   edges, datasets and facets that reached the sink with it; a flush's boundary does not
   follow the processor's batches, so in a backlog one kind's rows can be several
   flushes ahead of another's; ARCHITECTURE.md, step 6).
3. Only then commit the offsets of every message whose rows were inserted.

A crash before 3 replays those messages; every table collapses the copies (identities
and versions come from the events' content, see schemas/clickhouse/0005_lineage.sql).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from clickhouse_connect.driver.client import Client
from confluent_kafka import TIMESTAMP_NOT_AVAILABLE, Message

from lineagehouse import metrics
from lineagehouse.processors.avro import (
    DEFAULT_MAX_MESSAGE_BYTES,
    INPUT_TIME_HEADER,
    ROWS_HEADER,
    SCHEMA_HEADER,
    encode,
    schema_tag,
    splice,
)
from lineagehouse.processors.faults import Faults
from lineagehouse.processors.kafka import batch_consumer, commit, next_offsets, usable
from lineagehouse.processors.records import KIND_NAMES, combine
from lineagehouse.settings import ClickHouseSettings, Settings, WorkerSettings
from lineagehouse.store.client import connect, is_retryable

log = logging.getLogger("lineagehouse.sink")

# A batch may span many months (backfills, replays, odd emitter clocks); ClickHouse's
# default of 100 partitions per insert would fail such a batch forever and wedge the
# pipeline, so the sink lifts the limit for its own inserts. A column the Avro schema of
# a message does not have (a message written before the column was added) gets the
# column's default: old messages stay insertable. The tables' merges collapse copies of a
# row and readers read the final state, so the sink does not ask ClickHouse to collapse
# each insert block as well (`optimize_on_insert`): the processor already combined its
# rows per key, and that pass cost ~9% of ClickHouse's CPU per event for nothing
# (`python bench/bench_clickhouse_tables.py`, BENCHMARKS.md).
INSERT_SETTINGS = {
    "max_partitions_per_insert_block": 0,
    "input_format_avro_allow_missing_fields": 1,
    "optimize_on_insert": 0,
}

# The least time a flush waits after its first message was produced (see flush_due).
MIN_FLUSH_WAIT_S = 0.25
# In a backlog, rows wait for more rows; after this long with no message, none are coming
# (the backlog is worked off): write them without waiting out the rest (see flush_now).
QUIET_FLUSH_S = 0.5


class SinkStopped(Exception):
    """The worker is stopping while ClickHouse refuses an insert: leave it uncommitted."""


class ClickHouseSink:
    """Inserts into ClickHouse; `write*` return only once ClickHouse acknowledged."""

    def __init__(self, settings: ClickHouseSettings, max_backoff_s: float = 10.0) -> None:
        self._settings = settings
        self._max_backoff_s = max_backoff_s
        self._client: Client | None = None
        # On a cluster, an insert into a Distributed table is acknowledged only once every
        # shard has its rows (not when queued on the receiving node): commits stay honest.
        self._insert_settings = {
            **INSERT_SETTINGS,
            **({"distributed_foreground_insert": 1} if settings.cluster else {}),
        }

    def write_avro(
        self,
        table: str,
        container: bytes,
        rows: int = 0,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        """Insert one Avro object container (columns matched by field name)."""

        # As a memoryview the container is the request body as it is; as bytes,
        # clickhouse-connect would copy it behind the INSERT statement first.
        body = memoryview(container)

        def insert(client: Client) -> None:
            client.raw_insert(table, insert_block=body, settings=self._insert_settings, fmt="Avro")

        self._retry(table, rows, insert, should_stop)

    def write_rows(
        self,
        table: str,
        rows: list[list[Any]],
        column_names: Sequence[str],
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        """Insert Python rows (for tables the pipeline does not feed with Avro)."""

        def insert(client: Client) -> None:
            client.insert(
                table, rows, column_names=list(column_names), settings=self._insert_settings
            )

        self._retry(table, len(rows), insert, should_stop)

    def _retry(
        self,
        table: str,
        rows: int,
        insert: Callable[[Client], None],
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        """Run `insert` until it succeeds, backing off between attempts; raise SinkStopped
        instead when `should_stop()` says the worker is stopping."""
        backoff = 0.2
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                client = self._client or connect(self._settings)
                self._client = client
                insert(client)
            except Exception as exc:
                self._client = None
                metrics.SINK_RETRIES.labels(table=table).inc()
                level = logging.WARNING if is_retryable(exc) else logging.ERROR
                log.log(
                    level,
                    "insert failed; retrying",
                    extra={
                        "table": table,
                        "rows": rows,
                        "attempt": attempt,
                        "retry_in_s": backoff,
                        "error": str(exc)[:500],
                    },
                )
                if should_stop():
                    raise SinkStopped(table) from exc
                time.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff_s)
                continue
            metrics.SINK_BATCH_ROWS.labels(table=table).observe(rows)
            metrics.SINK_BATCH_SECONDS.labels(table=table).observe(time.perf_counter() - started)
            return


class SinkStage:
    def __init__(self, settings: Settings, faults: Faults | None = None) -> None:
        self.settings = settings
        worker = settings.worker
        self.faults = faults or Faults(worker.fault_point, worker.fault_after)
        # One client per table, so a flush inserts into every table at once (the chDB
        # server and ClickHouse both run inserts in parallel); runs wait for the rest.
        self.sinks = {
            kind: ClickHouseSink(settings.clickhouse, worker.insert_retry_max_backoff_s)
            for kind in KIND_NAMES
        }
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sink-insert")
        self.consumer = batch_consumer(settings, worker.sink_group_id, worker.derived_message_bytes)
        self.topics = {settings.topics.derived(kind): kind for kind in KIND_NAMES}
        self.database = settings.clickhouse.database

    def run(self, stop: threading.Event) -> None:
        worker = self.settings.worker
        self.consumer.subscribe(sorted(self.topics))
        log.info("sink started", extra={"topics": sorted(self.topics)})
        buffers: dict[str, dict[str, list[tuple[bytes, int]]]] = {}
        consumed: list[Message] = []
        rows = 0
        due = 0.0  # when the rows buffered now are written (monotonic clock)
        backlog = False  # whether they wait for larger inserts (see flush_now)
        arrived = 0.0  # when the last message came (monotonic clock)
        try:
            while not stop.is_set():
                wait = worker.sink_flush_interval_s
                if consumed:
                    wait = max(0.0, due - time.monotonic())
                called = time.monotonic()
                messages = usable(self.consumer.consume(1000, min(wait, 0.1)), self.consumer)
                if messages:
                    arrived = time.monotonic()
                for msg in messages:  # a flush holds at most about sink_batch_rows rows
                    if not consumed:
                        due, backlog = flush_due(msg, worker, called, time.time())
                    consumed.append(msg)
                    rows += self._buffer(msg, buffers)
                    self.faults.reached("sink.after_consume")
                    if rows >= worker.sink_batch_rows:
                        self._flush(buffers, consumed, stop)
                        buffers, consumed, rows = {}, [], 0
                if consumed and flush_now(time.monotonic(), due, backlog, arrived):
                    self._flush(buffers, consumed, stop)
                    buffers, consumed, rows = {}, [], 0
            if consumed:  # a clean stop writes what it holds
                self._flush(buffers, consumed, stop)
        except SinkStopped:
            log.error(
                "stopping with rows ClickHouse has not taken; they replay on restart",
                extra={"messages": len(consumed)},
            )
        finally:
            self.consumer.close()
            self.pool.shutdown()
            log.info("sink stopped")

    def _buffer(self, msg: Message, buffers: dict[str, dict[str, list[tuple[bytes, int]]]]) -> int:
        """Keep one message for its table; returns its row count."""
        headers = dict(msg.headers() or ())
        tag = headers.get(SCHEMA_HEADER)
        kind = self.topics.get(msg.topic())
        if tag is None or kind is None:
            log.error(
                "derived message without a known schema; skipped",
                extra={"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset()},
            )
            return 0
        count = int(headers.get(ROWS_HEADER, b"1"))
        buffers.setdefault(kind, {}).setdefault(tag.decode(), []).append((msg.value(), count))
        return count

    def _flush(
        self,
        buffers: dict[str, dict[str, list[tuple[bytes, int]]]],
        consumed: list[Message],
        stop: threading.Event,
    ) -> None:
        """Insert everything buffered (every table at once, then runs), then commit."""
        inserts = [
            (kind, splice(tag, [value for value, _ in messages]), sum(n for _, n in messages))
            for kind in KIND_NAMES
            for tag, messages in buffers.get(kind, {}).items()
        ]
        self._insert_all([i for i in inserts if i[0] != "runs"], stop)
        self.faults.reached("sink.mid_insert")
        self._insert_all([i for i in inserts if i[0] == "runs"], stop)
        self.faults.reached("sink.after_insert")
        try:
            commit(self.consumer, next_offsets(consumed))
            metrics.SINK_COMMITTED_MESSAGES.inc(len(consumed))
        except Exception as exc:  # the messages replay; the tables absorb them
            log.warning("commit failed", extra={"error": str(exc)})
        self.faults.reached("sink.after_commit")

    def _insert_all(self, inserts: list[tuple[str, bytes, int]], stop: threading.Event) -> None:
        """Insert containers in parallel; returns when ClickHouse acknowledged all of them
        (raises SinkStopped, once all have ended, if the worker stopped meanwhile)."""
        futures = [
            self.pool.submit(
                self.sinks[kind].write_avro,
                f"{self.database}.{kind}",
                container,
                rows,
                stop.is_set,
            )
            for kind, container, rows in inserts
        ]
        for future in futures:
            future.exception()  # wait for every insert before raising any error
        for future in futures:
            future.result()


def flush_due(
    msg: Message, worker: WorkerSettings, received: float, now: float
) -> tuple[float, bool]:
    """When the rows of a flush that begins with `msg` are written, on the monotonic clock
    of `received` (when `msg` was read; `now` is the wall clock then), and whether theirs
    is a backlog's wait (`flush_now` ends it early when no more rows come).

    Rows wait until the input events they come from are `sink_flush_interval_s` old (the
    oldest input of the message's processor batch, its `lineagehouse.input-time` header),
    so the time an event spent in the processor's batch counts towards the wait instead of
    adding to it. While the pipeline works through a backlog (that input was produced over
    `sink_backlog_flush_interval_s` ago), the rows wait after the message itself was
    produced instead, by as much as the input is past that threshold, up to that interval:
    larger inserts cost ClickHouse less per row (BENCHMARKS.md), and the latency is then
    the backlog's anyway. Without a usable input time, the message's own produce time
    counts."""
    produced_age = 0.0
    kind, millis = msg.timestamp()
    if kind != TIMESTAMP_NOT_AVAILABLE:
        produced_age = min(max(now - millis / 1000, 0.0), 60.0)
    sent = dict(msg.headers() or ()).get(INPUT_TIME_HEADER, b"")
    input_age = now - int(sent) / 1000 if sent.isdigit() and int(sent) > 0 else None
    least = min(MIN_FLUSH_WAIT_S, worker.sink_flush_interval_s)
    backlog = worker.sink_backlog_flush_interval_s
    if input_age is not None and input_age > backlog:
        # The wait grows with how far past the threshold the input is, up to the backlog
        # interval: a pipeline that falls just behind does not get a whole interval more
        # (that step once turned a 3 s lag into 6-7 s of latency).
        most = max(backlog, worker.sink_flush_interval_s)
        return received - produced_age + min(most, max(input_age - backlog, least)), True
    age = produced_age if input_age is None else min(max(input_age, produced_age), 60.0)
    # ... but never sooner than MIN_FLUSH_WAIT_S after the message was produced: rows that
    # arrive late anyway still gather into inserts of several processor batches.
    due = max(received - age + worker.sink_flush_interval_s, received - produced_age + least)
    return due, False


def flush_now(now: float, due: float, backlog: bool, arrived: float) -> bool:
    """Whether buffered rows are written now (monotonic clock): once due; in a backlog
    also once no message came for QUIET_FLUSH_S. Their wait was for more rows, and at the
    end of a backlog no more come: the last rows of a backlog waited up to
    `sink_backlog_flush_interval_s` with the whole pipeline idle (BENCHMARKS.md,
    session 14)."""
    return now >= due or (backlog and now - arrived >= QUIET_FLUSH_S)


def write_records(
    sink: ClickHouseSink,
    database: str,
    records: dict[str, list[dict[str, Any]]],
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> dict[str, int]:
    """Write derived records straight to ClickHouse the way the pipeline does (combine,
    Avro containers, one insert per table, runs last), without Kafka. For the replay,
    tests and benchmarks; returns the rows written per kind."""
    written: dict[str, int] = {}
    for kind in KIND_NAMES:
        rows = combine(kind, records.get(kind, ()))
        if not rows:
            continue
        tag = schema_tag(kind)
        containers = [payload for payload, _ in encode(kind, rows, max_message_bytes)]
        sink.write_avro(f"{database}.{kind}", splice(tag, containers), len(rows))
        written[kind] = len(rows)
    return written
