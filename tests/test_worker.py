"""The worker end to end: real broker, real ClickHouse, the real `lineagehouse worker`."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Callable

import orjson
import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer

from lineagehouse.processors.derive import derive
from lineagehouse.processors.events import event_id
from lineagehouse.settings import Settings
from lineagehouse.store.migrations import migrate
from lineagehouse.topics import ensure_topics
from tests.conftest import lineagehouse_cmd, produce, wait_for
from tests.events import encode, lineage_event, run_event, run_key

pytestmark = pytest.mark.timeout(300)


def counts(ch: Client, settings: Settings) -> tuple[int, int, int]:
    """(rows, rows FINAL, distinct event ids) in events_raw."""
    db = settings.clickhouse.database
    raw = ch.query(f"SELECT count(), uniqExact(event_id) FROM {db}.events_raw").result_rows[0]
    final = ch.command(f"SELECT count() FROM {db}.events_raw FINAL")
    return raw[0], final, raw[1]


def test_sigkill_mid_stream_every_event_once(
    make_settings: Callable[..., Settings], ch: Client, start_worker
) -> None:
    # Small inserts, so that the stream is still being written when the kill comes: when
    # the sink starts, the processor may have derived the whole stream already, and one
    # table's rows then arrive one flush after another.
    settings = make_settings(worker={"batch_size": 250, "sink_batch_rows": 250})
    migrate(settings)
    ensure_topics(settings)
    events = [run_event(i, job=f"job_{i % 40}") for i in range(20_000)]
    produce(settings, [(run_key(e), encode(e)) for e in events])
    db = settings.clickhouse.database

    worker = start_worker(settings)
    # One cheap query per poll, and the kill right after it.
    wait_for(
        lambda: ch.command(f"SELECT count() FROM {db}.events_raw") > 0,
        120,
        "the worker to write its first batches",
        alive=worker,
    )
    worker.send_signal(signal.SIGKILL)
    worker.wait(10)
    # The worker is dead: this is what it left. Not finished means some table is short.
    runs_final = f"SELECT count() FROM {db}.runs FINAL"
    at_kill = counts(ch, settings)
    runs_at_kill = ch.command(runs_final)
    assert (at_kill[2], runs_at_kill) != (20_000, 20_000), (
        "the worker finished before it could be killed mid-stream"
    )

    worker = start_worker(settings)
    wait_for(
        lambda: counts(ch, settings)[1] == 20_000,
        180,
        "all 20,000 events after restart",
        alive=worker,
    )
    rows, final, distinct = counts(ch, settings)
    assert (final, distinct) == (20_000, 20_000)
    assert rows >= 20_000  # replays are allowed to write twice; FINAL collapses them
    stored = set(ch.query(f"SELECT run_id FROM {db}.events_raw FINAL").result_columns[0])
    assert stored == {e["run"]["runId"] for e in events}
    # runs are written last in each flush: once they are all in, each is there once
    wait_for(
        lambda: ch.command(runs_final) == 20_000,
        60,
        "all 20,000 runs after restart",
        alive=worker,
    )
    run_ids = ch.query(f"SELECT run_id FROM {db}.runs FINAL").result_columns[0]
    assert sorted(run_ids) == sorted(e["run"]["runId"] for e in events)


def test_datasets_with_equal_schemas_each_get_their_version(
    make_settings: Callable[..., Settings], ch: Client, start_worker
) -> None:
    # Three datasets, then three others with the same columns in a later batch: a version
    # id hashes the schema alone, so "already sent" must go by dataset too.
    settings = make_settings()
    migrate(settings)
    ensure_topics(settings)
    db = settings.clickhouse.database
    worker = start_worker(settings)
    first, second = lineage_event(0), lineage_event(1)
    versions = f"SELECT namespace, name, version_id FROM {db}.dataset_versions FINAL"

    def stored() -> set[tuple]:
        return set(ch.query(versions).result_rows)

    def expected(*events: dict) -> set[tuple]:
        return {
            (row["namespace"], row["name"], row["version_id"])
            for event in events
            for row in derive(event, str(event_id(event)))["dataset_versions"]
        }

    assert len({version for _, _, version in expected(first, second)}) == 1
    produce(settings, [(run_key(first), encode(first))])
    wait_for(lambda: stored() == expected(first), 60, "the first versions", alive=worker)
    produce(settings, [(run_key(second), encode(second))])
    wait_for(lambda: counts(ch, settings)[1] == 2, 60, "the second event", alive=worker)
    wait_for(lambda: stored() == expected(first, second), 30, "the second versions", alive=worker)


def test_bad_messages_go_to_dlq_with_reason_bytes_and_key(
    settings: Settings, ch: Client, start_worker
) -> None:
    migrate(settings)
    ensure_topics(settings)
    good = [run_event(i, job="dlq_job") for i in range(50)]
    bad = [
        (b"k-utf8", b"\xff\xfe not utf8"),
        (b"k-json", b"{oops"),
        (None, b'{"run": {}, "job": {}, "eventTime": "soon"}'),
    ]
    messages = (
        [(run_key(e), encode(e)) for e in good[:25]]
        + bad
        + [(run_key(e), encode(e)) for e in good[25:]]
    )
    produce(settings, messages)
    worker = start_worker(settings)
    wait_for(
        lambda: counts(ch, settings)[1] == 50, 120, "50 good events in ClickHouse", alive=worker
    )

    consumer = Consumer(
        {
            **settings.kafka.confluent_config(),
            "group.id": "dlq-reader",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([settings.topics.dlq])
    got = []
    try:
        wait_for(
            lambda: (
                got.extend(m for m in consumer.consume(10, 1.0) if not m.error()) or len(got) >= 3
            ),
            60,
            "3 DLQ records",
        )
    finally:
        consumer.close()
    by_value = {m.value(): m for m in got}
    assert set(by_value) == {value for _, value in bad}
    for key, value in bad:
        record = by_value[value]
        headers = dict(record.headers())
        assert record.key() == key
        assert headers["lineagehouse.reason"]
        assert headers["lineagehouse.source"].decode().startswith(settings.topics.events + "/")
    reasons = {m.value(): orjson.loads(dict(m.headers())["lineagehouse.reasons"]) for m in got}
    assert reasons[b"{oops"]["reasons"][0]["message"].startswith("not JSON")
    assert reasons[b"\xff\xfe not utf8"]["reasons"][0]["message"].startswith("not UTF-8")
    paths = {r["path"] for r in reasons[bad[2][1]]["reasons"]}
    assert {"$.producer", "$.run.runId", "$.eventTime"} <= paths, paths

    # Every dead letter is in ClickHouse too (the embedded broker forgets its topics).
    db = settings.clickhouse.database
    stored = ch.query(
        f"SELECT value, message_key, reason_count, source_topic FROM {db}.dead_letters FINAL",
        column_formats={"value": "bytes", "message_key": "bytes"},
    ).result_rows
    assert sorted((v, k) for v, k, _, _ in stored) == sorted(
        (value, key or b"") for key, value in bad
    )
    assert all(n >= 1 and topic == settings.topics.events for _, _, n, topic in stored)


def test_worker_retries_until_clickhouse_can_take_the_rows(
    settings: Settings, ch: Client, start_worker
) -> None:
    ensure_topics(settings)
    events = [run_event(i, job="late_schema") for i in range(300)]
    produce(settings, [(run_key(e), encode(e)) for e in events])
    worker = start_worker(settings)  # the database does not exist yet: every insert fails
    wait_for(
        lambda: b"insert failed; retrying" in _worker_logs(settings),
        60,
        "the worker to report a failed insert",
        alive=worker,
    )
    migrate(settings)
    wait_for(
        lambda: counts(ch, settings)[1] == 300,
        120,
        "300 events after the schema exists",
        alive=worker,
    )


def _worker_logs(settings: Settings) -> bytes:
    logs = sorted(settings.data_dir.parent.glob("worker-*.log"))
    return b"".join(p.read_bytes() for p in logs)


def test_derived_messages_say_how_old_their_input_is(
    make_settings: Callable[..., Settings], ch: Client, start_worker
) -> None:
    """Each derived message carries when its oldest input event was produced, which the
    sink uses to batch more while it works through a backlog."""
    import time

    from confluent_kafka import Producer

    from lineagehouse.processors.avro import INPUT_TIME_HEADER, decode

    settings = make_settings(worker={"batch_size": 100})
    migrate(settings)
    ensure_topics(settings)
    start = int(time.time() * 1000) - 3_600_000  # an hour behind: a backlog
    events = [run_event(i, job=f"job_{i % 5}") for i in range(300)]
    produced = {e["run"]["runId"]: start + 1000 * i for i, e in enumerate(events)}
    producer = Producer(settings.kafka.confluent_config())
    for event in events:
        producer.produce(
            settings.topics.events,
            encode(event),
            run_key(event),
            timestamp=produced[event["run"]["runId"]],
        )
    assert producer.flush(30) == 0

    worker = start_worker(settings)
    db = settings.clickhouse.database
    wait_for(
        lambda: ch.command(f"SELECT count() FROM {db}.runs FINAL") == 300,
        120,
        "every run",
        alive=worker,
    )
    consumer = Consumer(
        {
            **settings.kafka.confluent_config(),
            "group.id": "t-input",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([settings.topics.derived("runs")])
    seen: set[str] = set()
    deadline = time.monotonic() + 60
    while len(seen) < 300 and time.monotonic() < deadline:
        for msg in consumer.consume(100, 1.0):
            if msg.error():
                continue
            runs = [r["run_id"] for r in decode(msg.value())]
            header = dict(msg.headers())[INPUT_TIME_HEADER]
            assert int(header) == min(produced[r] for r in runs)
            seen.update(runs)
    consumer.close()
    assert seen == set(produced)


def test_stage_lists_name_the_stages_a_process_runs(make_settings: Callable[..., Settings]) -> None:
    """`--stage` takes `all`, one stage or several joined by commas (what `lineagehouse up`
    gives its worker next to processor processes); anything else is refused with the fix."""
    from lineagehouse.processors.app import parse_stages, stage_factories

    settings = make_settings()
    assert parse_stages("all") == ("all",)
    assert parse_stages("issues, sink") == ("sink", "issues")  # pipeline order
    names = {text: [n for n, _ in stage_factories(settings, text)] for text in ("all", "sink")}
    names["sink,issues"] = [n for n, _ in stage_factories(settings, "sink,issues")]
    assert names == {
        "all": ["processor", "sink", "issues"],
        "sink": ["sink"],
        "sink,issues": ["sink", "issues"],
    }
    quiet = make_settings(issues={"enabled": False})
    assert [n for n, _ in stage_factories(quiet, "all")] == ["processor", "sink"]
    assert [n for n, _ in stage_factories(quiet, "sink,issues")] == ["sink", "issues"]
    for bad in ("", "sinks", "all,sink", "sink,,bogus"):
        with pytest.raises(ValueError, match="joined by commas"):
            parse_stages(bad)
    refused = subprocess.run(
        lineagehouse_cmd("worker", "--stage", "sink,bogus"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert "--stage 'sink,bogus'" in refused.stderr and "e.g. sink,issues" in refused.stderr
