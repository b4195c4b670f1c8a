"""The faust worker: consume `openlineage.events` in batches, write to ClickHouse, commit.

Commit protocol (at-least-once in, exactly-once effect out):

1. Take a batch of messages from the events topic (`take_events`: faust does not ack them
   yet).
2. Validate each message and turn it into rows with the pure functions
   (`processors.ingest.classify`); a message that is not a valid event becomes a dead
   letter (original bytes and key, every reason, source topic/partition/offset, time).
3. Send the dead letters to the DLQ topic and wait until the broker acknowledged each.
4. Insert the rows into ClickHouse (`dead_letters`, then `events_raw`), one insert per
   table, retrying with backoff until
   ClickHouse acknowledged (never raising out of the agent: faust would ack the batch).
5. Only then does the batch end; faust acks its messages and commits their offsets on
   its next commit tick (or on a clean shutdown).

A crash anywhere before 5 replays the batch; rows carry content-derived identities, so
the replay collapses in ReplacingMergeTree and reads with FINAL see each event once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
from datetime import UTC, datetime
from typing import Any

import faust
from faust.types import EventT

from lineagehouse import metrics
from lineagehouse.processors.deadletter import DEAD_LETTERS_COLUMNS, DeadLetter
from lineagehouse.processors.events import EVENTS_RAW_COLUMNS, Source
from lineagehouse.processors.ingest import classify
from lineagehouse.processors.sink import ClickHouseSink
from lineagehouse.processors.validate import EventValidator
from lineagehouse.settings import Settings
from lineagehouse.topics import ensure_topics

log = logging.getLogger("lineagehouse.worker")


def _credentials(settings: Settings) -> Any:
    kafka = settings.kafka
    if kafka.security_protocol == "PLAINTEXT":
        return None
    context = (
        ssl.create_default_context(cafile=kafka.ssl_cafile)
        if "SSL" in (kafka.security_protocol)
        else None
    )
    if kafka.sasl_mechanism:
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password.get_secret_value() if kafka.sasl_password else None,
            mechanism=kafka.sasl_mechanism,
            ssl_context=context,
        )
    return faust.SSLCredentials(context)


def create_app(settings: Settings) -> faust.App:
    kafka, worker, topics = settings.kafka, settings.worker, settings.topics
    app = faust.App(
        worker.group_id,
        broker=[f"kafka://{server.strip()}" for server in kafka.bootstrap_servers.split(",")],
        broker_credentials=_credentials(settings),
        broker_session_timeout=kafka.session_timeout_s,
        broker_heartbeat_interval=kafka.heartbeat_interval_s,
        broker_rebalance_timeout=kafka.rebalance_timeout_s,
        broker_commit_interval=1.0,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # A partition whose next message is larger than the fetch size stalls silently,
        # so both limits sit well above the largest event we accept.
        consumer_max_fetch_size=max(8 * 1024 * 1024, 4 * settings.ingest.max_event_bytes),
        producer_max_request_size=max(8 * 1024 * 1024, 4 * settings.ingest.max_event_bytes),
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=topics.events_partitions,
        topic_replication_factor=topics.replication_factor,
        store="memory://",
        web_enabled=worker.web_port != 0,
        web_port=worker.web_port or 6066,
        web_host=worker.web_host,
        datadir=str(settings.data_dir / "worker"),
    )
    events_topic = app.topic(topics.events, value_type=bytes, key_type=bytes)
    dlq_topic = app.topic(topics.dlq, value_type=bytes, key_type=bytes)
    sink = ClickHouseSink(settings.clickhouse, worker.insert_retry_max_backoff_s)
    rules = settings.ingest
    validator = EventValidator(rules.max_event_bytes, rules.extra_schema_dirs)
    events_table = f"{settings.clickhouse.database}.events_raw"
    dead_letters_table = f"{settings.clickhouse.database}.dead_letters"

    async def process(batch: list[EventT]) -> None:
        now = datetime.now(UTC)
        rows: list[list[Any]] = []
        dead: list[DeadLetter] = []
        for event in batch:
            msg = event.message
            source = Source(msg.topic, msg.partition, msg.offset, msg.key)
            result = classify(msg.value, source, now, validator, rules.max_reasons)
            if isinstance(result, DeadLetter):
                dead.append(result)
            else:
                rows.append(result)
        metrics.EVENTS_CONSUMED.inc(len(batch))
        loop = asyncio.get_running_loop()
        if dead:
            await send_to_dlq(dead)
            await loop.run_in_executor(
                None,
                sink.write,
                dead_letters_table,
                DEAD_LETTERS_COLUMNS,
                [d.row() for d in dead],
            )
        await loop.run_in_executor(None, sink.write, events_table, EVENTS_RAW_COLUMNS, rows)
        metrics.EVENTS_ACCEPTED.inc(len(rows))

    async def send_to_dlq(dead: list[DeadLetter]) -> None:
        pending = []
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
            pending.append(
                await dlq_topic.send(
                    key=letter.key,
                    value=letter.topic_value(rules.max_event_bytes),
                    headers=letter.headers(rules.max_event_bytes),
                )
            )
        await asyncio.gather(*pending)  # acknowledged by the broker before we go on

    async def process_until_written(batch: list[EventT]) -> None:
        while True:
            try:
                await process(batch)
                return
            except Exception:  # never let faust ack a batch we did not write
                log.exception("batch failed; retrying in 1 s")
                await asyncio.sleep(1.0)

    @app.agent(events_topic)
    async def ingest(stream: faust.StreamT) -> None:
        async for batch in stream.take_events(worker.batch_size, within=worker.batch_timeout_s):
            written = asyncio.ensure_future(process_until_written(list(batch)))
            try:
                await asyncio.shield(written)
            except asyncio.CancelledError:
                # Faust is stopping: it acks this batch and commits on the way out, so
                # finish the write first, or exit without committing (the batch replays).
                done, _ = await asyncio.wait({written}, timeout=worker.shutdown_grace_s)
                if not done:
                    log.error(
                        "stopping with an unwritten batch; exiting without commit",
                        extra={"messages": len(batch)},
                    )
                    os._exit(70)
                raise

    return app


def run_worker(settings: Settings) -> None:
    """`lineagehouse worker`: create topics if missing, then run faust until stopped."""
    ensure_topics(settings)
    (settings.data_dir / "worker").mkdir(parents=True, exist_ok=True)
    app = create_app(settings)
    if settings.worker.web_port:
        from faust.sensors.prometheus import setup_prometheus_sensors

        setup_prometheus_sensors(app, name_prefix="lineagehouse_faust")
    worker = faust.Worker(
        app,
        loglevel=settings.log_level,
        override_logging=False,
        redirect_stdouts=False,
        quiet=True,
    )
    worker.execute_from_commandline()
