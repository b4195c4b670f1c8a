"""Crash safety of the worker, end to end: real broker, real ClickHouse, real processes.

Every step of the commit protocol has a fault point (`worker.fault_point`): the worker
kills itself there, is restarted without the fault, and the stored model must then hold
exactly the expected runs, edges and facets, no more and no fewer. Then random SIGKILLs
of the processor and of the sink in a 20,000-event stream, and ClickHouse stopped for 30 s.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, TopicPartition

from lineagehouse.embedded.process import free_port, stop_process
from lineagehouse.processors.faults import FAULT_EXIT_CODE
from lineagehouse.settings import FAULT_POINTS, Settings
from lineagehouse.store.migrations import migrate
from lineagehouse.topics import ensure_topics
from tests.conftest import produce, start_clickhouse, wait_for
from tests.events import encode, lineage_event, run_key
from tests.model import (
    expected_counts,
    expected_run_issues,
    raw_rows,
    stored_counts,
    stored_issues,
)

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


def stream(n: int, jobs: int = 40) -> list[dict[str, Any]]:
    """START + COMPLETE events of n/2 runs, interleaved as emitters send them."""
    events = []
    for i in range(n // 2):
        job = f"job_{i % jobs}"
        start = lineage_event(i, job=job, event_type="START", columns=3)
        end = "FAIL" if i % 7 == 3 else "COMPLETE"  # failed runs raise issues
        complete = lineage_event(i, job=job, event_type=end, columns=3)
        events += [start, complete]
    return events


def load(settings: Settings, events: list[dict[str, Any]]) -> dict[str, int]:
    migrate(settings)
    ensure_topics(settings)
    produce(settings, [(run_key(e), encode(e)) for e in events])
    return expected_counts(events)


def wait_complete(ch: Client, settings: Settings, expected: dict[str, int], alive: Any) -> None:
    db = settings.clickhouse.database
    wait_for(
        lambda: stored_counts(ch, db) == expected,
        240,
        f"the stored model to equal {expected} (now {stored_counts(ch, db)})",
        alive=alive,
    )
    time.sleep(1.5)  # nothing more may arrive: no double counting either
    assert stored_counts(ch, db) == expected


@pytest.mark.parametrize("point", FAULT_POINTS)
def test_crash_at_each_commit_step_loses_and_duplicates_nothing(
    point: str, make_settings: Callable[..., Settings], ch: Client, start_worker: Any
) -> None:
    # The second time, so that some work was committed before the crash; the issues
    # stage may see the whole stream in one batch, so there the first time.
    after = 1 if point.startswith("issues.") else 2
    settings = make_settings(
        worker={
            "batch_size": 200,
            "sink_batch_rows": 2000,
            "fault_point": point,
            "fault_after": after,
        }
    )
    events = stream(1200, jobs=12)
    expected = load(settings, events)
    worker = start_worker(settings)
    assert worker.wait(120) == FAULT_EXIT_CODE, f"the worker did not stop at {point}"

    recovered = settings.model_copy(
        update={"worker": settings.worker.model_copy(update={"fault_point": None})}
    )
    worker = start_worker(recovered)
    wait_complete(ch, settings, expected, worker)
    issues = expected_run_issues(events)
    assert len(issues) > 10
    db = settings.clickhouse.database
    wait_for(lambda: stored_issues(ch, db) == issues, 120, "the issues", alive=worker)
    assert ch.command(f"SELECT count() FROM {db}.issues FINAL") == len(issues)


def committed_total(settings: Settings, group: str, topic: str) -> int:
    consumer = Consumer({**settings.kafka.confluent_config(), "group.id": group})
    try:
        parts = [TopicPartition(topic, p) for p in range(settings.topics.events_partitions)]
        return sum(max(tp.offset, 0) for tp in consumer.committed(parts, timeout=10))
    finally:
        consumer.close()


def test_random_sigkill_of_processor_and_sink_mid_stream(
    make_settings: Callable[..., Settings], ch: Client, start_worker: Any
) -> None:
    rng = random.Random()
    settings = make_settings(worker={"batch_size": 250, "sink_batch_rows": 5000})
    events = stream(20_000)
    expected = load(settings, events)
    db = settings.clickhouse.database

    sink = start_worker(settings, "sink")
    processor = start_worker(settings, "processor")
    kill_at = rng.randint(2_000, 10_000)
    wait_for(
        lambda: (
            committed_total(settings, settings.worker.group_id, settings.topics.events) >= kill_at
        ),
        120,
        f"the processor to commit {kill_at} events",
        alive=processor,
    )
    processor.send_signal(signal.SIGKILL)
    processor.wait(10)
    done = committed_total(settings, settings.worker.group_id, settings.topics.events)
    assert done < 20_000, "the processor finished before it could be killed mid-stream"
    processor = start_worker(settings, "processor")

    kill_at = rng.randint(done + 1, 19_000)
    wait_for(lambda: raw_rows(ch, db) >= kill_at, 120, f"{kill_at} raw rows", alive=sink)
    sink.send_signal(signal.SIGKILL)
    sink.wait(10)
    assert stored_counts(ch, db) != expected, "the sink finished before it was killed"
    sink = start_worker(settings, "sink")

    wait_complete(ch, settings, expected, sink)
    assert processor.poll() is None


def test_clickhouse_stopped_for_30_s_mid_stream(
    make_settings: Callable[..., Settings], ch: Client, start_worker: Any, tmp_path: Path
) -> None:
    """A ClickHouse server of its own, stopped mid-stream and started again 30 s later."""
    port = free_port()
    data_dir = tmp_path / "own-clickhouse"
    log = open(tmp_path / "own-clickhouse.log", "ab")  # noqa: SIM115
    server = start_clickhouse(data_dir, port, log)
    import clickhouse_connect

    own = clickhouse_connect.get_client(host="127.0.0.1", port=port)
    settings = make_settings(
        clickhouse={"url": f"http://127.0.0.1:{port}"},
        worker={"batch_size": 250, "sink_batch_rows": 5000, "insert_retry_max_backoff_s": 2.0},
    )
    events = stream(10_000)
    expected = load(settings, events)
    db = settings.clickhouse.database
    worker = start_worker(settings)
    wait_for(lambda: raw_rows(own, db) >= 1000, 120, "the first rows", alive=worker)
    stop_process(server)
    stopped_at = time.monotonic()
    try:
        while time.monotonic() - stopped_at < 30:
            assert worker.poll() is None, "the worker died while ClickHouse was down"
            time.sleep(1)
        server = start_clickhouse(data_dir, port, log)
        own = clickhouse_connect.get_client(host="127.0.0.1", port=port)
        wait_complete(own, settings, expected, worker)
        logs = b"".join(p.read_bytes() for p in tmp_path.glob("worker-*.log"))
        assert b"insert failed; retrying" in logs
    finally:
        stop_process(server)
        log.close()
