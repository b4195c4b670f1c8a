"""The sink batches more while the pipeline works through a backlog (pure decision)."""

from __future__ import annotations

from confluent_kafka import Message

from lineagehouse.processors.avro import INPUT_TIME_HEADER
from lineagehouse.processors.sink import flush_interval
from lineagehouse.settings import WorkerSettings

WORKER = WorkerSettings(sink_flush_interval_s=0.5, sink_backlog_flush_interval_s=3.0)
NOW = 1_764_000_000.0


def message(input_time: bytes | None) -> Message:
    headers = [("lineagehouse.schema", b"runs.v1")]
    if input_time is not None:
        headers.append((INPUT_TIME_HEADER, input_time))
    return Message(topic="t", value=b"", headers=headers)


def ms_ago(seconds: float) -> bytes:
    return str(int((NOW - seconds) * 1000)).encode()


def test_fresh_input_flushes_at_the_flush_interval() -> None:
    assert flush_interval(message(ms_ago(0.2)), WORKER, NOW) == 0.5
    assert flush_interval(message(ms_ago(2.9)), WORKER, NOW) == 0.5


def test_input_behind_by_more_than_the_backlog_interval_waits_for_larger_inserts() -> None:
    assert flush_interval(message(ms_ago(3.5)), WORKER, NOW) == 3.0
    assert flush_interval(message(ms_ago(3600)), WORKER, NOW) == 3.0


def test_unknown_input_time_is_treated_as_fresh() -> None:
    for header in (None, b"0", b"", b"soon", b"-5"):
        assert flush_interval(message(header), WORKER, NOW) == 0.5


def test_the_backlog_interval_never_shortens_the_flush_interval() -> None:
    slow = WorkerSettings(sink_flush_interval_s=5.0, sink_backlog_flush_interval_s=3.0)
    assert flush_interval(message(ms_ago(60)), slow, NOW) == 5.0
