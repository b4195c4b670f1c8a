"""The sink stage: derived topics (Avro) -> ClickHouse, batched; and the insert adapter.

Commit protocol of this stage (see ARCHITECTURE.md for the whole):

1. Consume messages from every derived topic (confluent-kafka, manual commits) and
   decode each into columns (`avro.decode`), buffered per table.
2. When `worker.sink_batch_rows` rows are buffered, or the oldest is
   `worker.sink_flush_interval_s` old, insert each table's buffer with one
   clickhouse-connect insert, retrying with backoff until ClickHouse acknowledged it
   (blocking is the backpressure; nothing is dropped).
3. Only then commit the offsets of every message whose rows were inserted.

A crash before 3 replays those messages; every table collapses the copies (identities
and versions come from the events' content, see schemas/clickhouse/0005_lineage.sql).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.insert import InsertContext
from confluent_kafka import Message

from lineagehouse import metrics
from lineagehouse.processors.avro import SCHEMA_HEADER, decode
from lineagehouse.processors.faults import Faults
from lineagehouse.processors.kafka import batch_consumer, commit, next_offsets, usable
from lineagehouse.processors.records import KIND_NAMES, ROW_TYPES, table_columns
from lineagehouse.settings import ClickHouseSettings, Settings
from lineagehouse.store.client import connect, is_retryable

log = logging.getLogger("lineagehouse.sink")

# A batch may span many months (backfills, replays, odd emitter clocks); ClickHouse's
# default of 100 partitions per insert would fail such a batch forever and wedge the
# pipeline, so the sink lifts the limit for its own inserts.
INSERT_SETTINGS = {"max_partitions_per_insert_block": 0}


class SinkStopped(Exception):
    """The worker is stopping while ClickHouse refuses an insert: leave it uncommitted."""


class ClickHouseSink:
    """Inserts into ClickHouse; `write*` return only once ClickHouse acknowledged."""

    def __init__(self, settings: ClickHouseSettings, max_backoff_s: float = 10.0) -> None:
        self._settings = settings
        self._max_backoff_s = max_backoff_s
        self._client: Client | None = None
        self._contexts: dict[tuple[str, bool], InsertContext] = {}  # no DESCRIBE per batch

    def write(self, table: str, columns: Sequence[str], rows: list[Sequence[Any]]) -> None:
        """Insert row-oriented `rows`."""
        if rows:
            self._insert(table, columns, rows, column_oriented=False)

    def write_columns(
        self,
        table: str,
        columns: dict[str, list[Any]],
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        """Insert column-oriented data ({column: values}, all of equal length)."""
        if columns and len(next(iter(columns.values()))):
            names = list(columns)
            self._insert(table, names, list(columns.values()), True, should_stop)

    def _insert(
        self,
        table: str,
        columns: Sequence[str],
        data: list,
        column_oriented: bool,
        should_stop: Callable[[], bool] = lambda: False,
    ) -> None:
        rows = len(data[0]) if column_oriented else len(data)
        backoff = 0.2
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                client = self._client or connect(self._settings)
                self._client = client
                context = self._contexts.get((table, column_oriented))
                if context is None:
                    context = client.create_insert_context(
                        table,
                        column_names=list(columns),
                        settings=INSERT_SETTINGS,
                        column_oriented=column_oriented,
                    )
                    self._contexts[(table, column_oriented)] = context
                context.data = data
                client.insert(context=context)
            except Exception as exc:
                self._client = None
                self._contexts.clear()
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


class TableBuffer:
    """Decoded columns of one table, appended message by message."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.layout = table_columns(kind)
        self.fields: dict[str, list[Any]] = {}
        self.rows = 0

    def add_rows(self, rows: list[tuple]) -> int:
        """Append records (row tuples of the kind's record type)."""
        if not rows:
            return 0
        names = ROW_TYPES[self.kind]._fields
        return self.add(dict(zip(names, map(list, zip(*rows, strict=True)), strict=True)))

    def add(self, columns: dict[str, list[Any]]) -> int:
        count = len(next(iter(columns.values()))) if columns else 0
        if not self.fields:
            self.fields = {name: list(values) for name, values in columns.items()}
        else:
            for name, values in columns.items():
                self.fields[name].extend(values)
        self.rows += count
        return count

    def table_columns(self) -> dict[str, list[Any]]:
        """The buffer as ClickHouse columns (Tuple columns zipped from their parts)."""
        out: dict[str, list[Any]] = {}
        for column, parts in self.layout:
            if len(parts) == 1:
                out[column] = self.fields[parts[0]]
            else:
                out[column] = list(zip(*(self.fields[part] for part in parts), strict=True))
        return out


class SinkStage:
    def __init__(self, settings: Settings, faults: Faults | None = None) -> None:
        self.settings = settings
        worker = settings.worker
        self.faults = faults or Faults(worker.fault_point, worker.fault_after)
        self.sink = ClickHouseSink(settings.clickhouse, worker.insert_retry_max_backoff_s)
        self.consumer = batch_consumer(settings, worker.sink_group_id, worker.derived_message_bytes)
        self.topics = {settings.topics.derived(kind): kind for kind in KIND_NAMES}
        self.database = settings.clickhouse.database

    def run(self, stop: threading.Event) -> None:
        worker = self.settings.worker
        self.consumer.subscribe(sorted(self.topics))
        log.info("sink started", extra={"topics": sorted(self.topics)})
        buffers: dict[str, TableBuffer] = {}
        consumed: list[Message] = []
        rows = 0
        oldest = 0.0
        try:
            while not stop.is_set():
                wait = worker.sink_flush_interval_s
                if consumed:
                    wait = max(0.0, oldest + worker.sink_flush_interval_s - time.monotonic())
                messages = usable(self.consumer.consume(1000, min(wait, 0.5)))
                if messages:
                    if not consumed:
                        oldest = time.monotonic()
                    consumed.extend(messages)
                    rows += self._decode(messages, buffers)
                    self.faults.reached("sink.after_consume")
                due = time.monotonic() >= oldest + worker.sink_flush_interval_s
                if consumed and (rows >= worker.sink_batch_rows or due):
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
            log.info("sink stopped")

    def _decode(self, messages: list[Message], buffers: dict[str, TableBuffer]) -> int:
        rows = 0
        for msg in messages:
            tag = dict(msg.headers() or ()).get(SCHEMA_HEADER)
            kind = self.topics.get(msg.topic())
            if tag is None or kind is None:
                log.error(
                    "derived message without a known schema; skipped",
                    extra={
                        "topic": msg.topic(),
                        "partition": msg.partition(),
                        "offset": msg.offset(),
                    },
                )
                continue
            buffer = buffers.get(kind)
            if buffer is None:
                buffer = buffers[kind] = TableBuffer(kind)
            rows += buffer.add(decode(tag.decode(), msg.value()))
        return rows

    def _flush(
        self, buffers: dict[str, TableBuffer], consumed: list[Message], stop: threading.Event
    ) -> None:
        # One insert per table, in KIND_NAMES order (raw events first, runs last).
        order = sorted(buffers, key=lambda kind: KIND_NAMES.index(kind))
        for index, kind in enumerate(order):
            self.sink.write_columns(
                f"{self.database}.{kind}", buffers[kind].table_columns(), stop.is_set
            )
            if index == 0:
                self.faults.reached("sink.mid_insert")
        self.faults.reached("sink.after_insert")
        try:
            commit(self.consumer, next_offsets(consumed))
            metrics.SINK_COMMITTED_MESSAGES.inc(len(consumed))
        except Exception as exc:  # the messages replay; the tables absorb them
            log.warning("commit failed", extra={"error": str(exc)})
        self.faults.reached("sink.after_commit")
