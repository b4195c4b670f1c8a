"""Keeps the in-memory lineage graph equal to ClickHouse (adapter for `graph.py`).

1. Read the sink group's committed offsets on the derived `io_edges` and `runs` topics:
   everything before them is already in ClickHouse (the sink commits after the insert).
2. Load `io_edges` and `runs` from ClickHouse into the graph; `ready` turns true.
3. Tail both topics from the offsets of step 1 (a consumer of its own that never
   commits), applying each record as it comes. Records already loaded in step 2 apply
   again harmlessly: every graph update is idempotent.

If anything fails the feed starts over at step 1, on top of what it already holds (again
harmless), so the API keeps answering from the last good graph while it recovers.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
import uuid
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from lineagehouse.api.graph import LineageGraph
from lineagehouse.processors import avro
from lineagehouse.settings import Settings
from lineagehouse.store.client import connect

log = logging.getLogger("lineagehouse.api.graph")

FED_KINDS = ("io_edges", "runs")
_LOAD_BLOCK_ROWS = 50_000


class GraphFeed:
    def __init__(self, settings: Settings, graph: LineageGraph) -> None:
        self.settings = settings
        self.graph = graph
        self.ready = False
        self.error: str | None = None
        self.loaded_at: float | None = None
        self.load_seconds: float | None = None
        self.records_applied = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._topics = {settings.topics.derived(kind): kind for kind in FED_KINDS}

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="lineage-graph-feed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def status(self) -> dict[str, Any]:
        with self.graph.lock:
            stats = self.graph.stats()
        return {
            "ready": self.ready,
            "error": self.error,
            "load_seconds": self.load_seconds,
            "records_applied": self.records_applied,
            **stats,
        }

    # --- the loop -------------------------------------------------------------------

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            try:
                offsets = self._sink_offsets()
                self._load()
                self.ready, self.error = True, None
                if offsets is None:  # topics not created yet: nothing can be in flight
                    self._stop.wait(5.0)
                    continue
                backoff = 0.5
                self._tail(offsets)
            except Exception as exc:
                self.error = f"{type(exc).__name__}: {exc}"[:500]
                log.warning("lineage graph feed failed; starting over", extra={"error": self.error})
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10.0)

    def _kafka(self, group: str) -> Consumer:
        return Consumer(
            {
                **self.settings.kafka.consumer_config(),
                "group.id": group,
                "enable.auto.commit": False,
                "enable.partition.eof": False,
                "auto.offset.reset": "earliest",
            }
        )

    def _sink_offsets(self) -> list[TopicPartition] | None:
        """Where the sink stands on each fed topic; None while a topic does not exist."""
        probe = self._kafka(self.settings.worker.sink_group_id)
        try:
            wanted = []
            for topic in self._topics:
                meta = probe.list_topics(topic, timeout=10).topics.get(topic)
                if meta is None or meta.error is not None or not meta.partitions:
                    return None
                wanted += [TopicPartition(topic, p) for p in sorted(meta.partitions)]
            committed = probe.committed(wanted, timeout=10)
        finally:
            probe.close()
        start = [tp.offset if tp.offset >= 0 else OFFSET_BEGINNING for tp in committed]
        return [
            TopicPartition(tp.topic, tp.partition, o)
            for tp, o in zip(committed, start, strict=True)
        ]

    def _load(self) -> None:
        started = time.monotonic()
        db = self.settings.clickhouse.database
        client = connect(self.settings.clickhouse)
        graph = self.graph
        try:
            for sql, apply in (
                (
                    "SELECT job_namespace, job_name, run_id, direction, namespace, name, "
                    "dataset_key, column_lineage_id, toUnixTimestamp64Milli(first_seen) "
                    f"FROM {db}.io_edges",
                    graph.add_edge,
                ),
                (
                    "SELECT run_id, job_namespace, job_name, toUnixTimestamp64Milli(started_at), "
                    f"toUnixTimestamp64Milli(first_event_time) FROM {db}.runs "
                    f"WHERE run_id IN (SELECT run_id FROM {db}.io_edges)",
                    graph.add_run,
                ),
            ):
                settings = {"max_block_size": _LOAD_BLOCK_ROWS}
                with client.query_row_block_stream(sql, settings=settings) as stream:
                    for block in stream:
                        with graph.lock:
                            for row in block:
                                apply(*row)
        finally:
            client.close()
        # The graph lives as long as the process: keep the collector from rescanning it
        # (a full collection over millions of objects is a latency spike).
        gc.collect()
        gc.freeze()
        self.load_seconds = round(time.monotonic() - started, 3)
        self.loaded_at = time.time()
        with graph.lock:
            stats = graph.stats()
        log.info("lineage graph loaded", extra={"seconds": self.load_seconds, **stats})

    def _tail(self, offsets: list[TopicPartition]) -> None:
        consumer = self._kafka(f"lineagehouse-api-graph-{uuid.uuid4().hex[:12]}")
        try:
            consumer.assign(offsets)
            while not self._stop.is_set():
                messages = consumer.consume(num_messages=500, timeout=0.5)
                for msg in messages:
                    if msg.error() is not None:
                        log.warning("graph feed consumer error", extra={"error": str(msg.error())})
                        continue
                    self._apply(self._topics[msg.topic()], msg.value() or b"")
        finally:
            consumer.close()

    def _apply(self, kind: str, payload: bytes) -> None:
        records = avro.decode(payload)
        graph = self.graph
        with graph.lock:
            if kind == "io_edges":
                for r in records:
                    graph.add_edge(
                        r["job_namespace"],
                        r["job_name"],
                        r["run_id"],
                        r["direction"],
                        r["namespace"],
                        r["name"],
                        r["dataset_key"],
                        r["column_lineage_id"],
                        r["first_seen"],
                    )
            else:
                for r in records:
                    graph.add_run(
                        r["run_id"],
                        r["job_namespace"],
                        r["job_name"],
                        r["started_at"],
                        r["first_event_time"],
                    )
        self.records_applied += len(records)
