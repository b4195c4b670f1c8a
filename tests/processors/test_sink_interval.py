"""When the sink writes what it buffered (pure decision): once the input events are the
flush interval old, counted from when they were produced; larger inserts in a backlog."""

from __future__ import annotations

import pytest
from confluent_kafka import TIMESTAMP_CREATE_TIME, Message

from lineagehouse.processors.avro import INPUT_TIME_HEADER
from lineagehouse.processors.sink import (
    MIN_FLUSH_WAIT_S,
    QUIET_FLUSH_S,
    flush_due,
    flush_now,
)
from lineagehouse.settings import WorkerSettings

WORKER = WorkerSettings(sink_flush_interval_s=1.0, sink_backlog_flush_interval_s=3.0)
NOW = 1_764_000_000.0  # wall clock when the message was read
READ = 500.0  # monotonic clock at the same moment


def ms_ago(seconds: float) -> int:
    return round((NOW - seconds) * 1000)


def message(
    input_ago: float | None, produced_ago: float | None, header: bytes | None = None
) -> Message:
    headers = [("lineagehouse.schema", b"runs.v1")]
    if header is None and input_ago is not None:
        header = str(ms_ago(input_ago)).encode()
    if header is not None:
        headers.append((INPUT_TIME_HEADER, header))
    if produced_ago is None:
        return Message(topic="t", value=b"", headers=headers)
    stamp = (TIMESTAMP_CREATE_TIME, ms_ago(produced_ago))
    return Message(topic="t", value=b"", headers=headers, timestamp=stamp)


def wait(msg: Message, worker: WorkerSettings = WORKER) -> float:
    """Seconds from reading `msg` until its flush is due (negative: overdue)."""
    return flush_due(msg, worker, READ, NOW)[0] - READ


def backlog(msg: Message) -> bool:
    """Whether `msg` begins a flush that waits for a backlog's larger inserts."""
    return flush_due(msg, WORKER, READ, NOW)[1]


def test_rows_wait_until_their_input_events_are_the_flush_interval_old() -> None:
    # The processor held the events 0.4 s and sent the rows 0.1 s ago: 0.6 s to go.
    assert wait(message(input_ago=0.5, produced_ago=0.1)) == pytest.approx(0.5)
    assert wait(message(input_ago=0.2, produced_ago=0.0)) == pytest.approx(0.8)


def test_rows_that_arrive_late_still_wait_a_little_for_company() -> None:
    # Input 0.95 s old: due in 0.05 s by age, but a flush waits MIN_FLUSH_WAIT_S after the
    # message was produced (0.05 s ago).
    late = message(input_ago=0.95, produced_ago=0.05)
    assert wait(late) == pytest.approx(MIN_FLUSH_WAIT_S - 0.05)
    # Long produced already: due now (overdue, in fact).
    assert wait(message(input_ago=2.9, produced_ago=1.0)) < 0


def test_input_behind_by_more_than_the_backlog_interval_waits_for_larger_inserts() -> None:
    assert wait(message(input_ago=6.5, produced_ago=0.0)) == pytest.approx(3.0)
    assert wait(message(input_ago=3600, produced_ago=1.0)) == pytest.approx(2.0)


def test_the_backlog_wait_grows_with_the_lag_without_a_step() -> None:
    # Just past the threshold the wait is the least wait, and it grows one for one.
    assert wait(message(input_ago=3.01, produced_ago=0.0)) == pytest.approx(MIN_FLUSH_WAIT_S)
    assert wait(message(input_ago=4.0, produced_ago=0.0)) == pytest.approx(1.0)
    assert wait(message(input_ago=5.0, produced_ago=0.5)) == pytest.approx(1.5)
    # Either side of the threshold: the same wait.
    below = wait(message(input_ago=2.999, produced_ago=0.0))
    above = wait(message(input_ago=3.001, produced_ago=0.0))
    assert below == pytest.approx(above, abs=0.01)


def test_unknown_input_time_counts_from_the_message_itself() -> None:
    for header in (b"0", b"", b"soon", b"-5"):
        assert wait(message(None, produced_ago=0.3, header=header)) == pytest.approx(0.7)
    assert wait(message(None, produced_ago=None, header=b"")) == pytest.approx(1.0)


def test_clock_skew_is_bounded() -> None:
    # A producer clock in the future counts as age 0; an input time older than the
    # message is never younger than the message.
    assert wait(message(input_ago=0.0, produced_ago=-5.0)) == pytest.approx(1.0)
    assert wait(message(input_ago=0.1, produced_ago=0.6)) == pytest.approx(0.4)


def test_the_backlog_interval_never_shortens_the_flush_interval() -> None:
    slow = WorkerSettings(sink_flush_interval_s=5.0, sink_backlog_flush_interval_s=3.0)
    assert wait(message(input_ago=60, produced_ago=0.0), slow) == pytest.approx(5.0)


def test_a_short_flush_interval_shortens_the_least_wait_too() -> None:
    quick = WorkerSettings(sink_flush_interval_s=0.1, sink_backlog_flush_interval_s=3.0)
    assert wait(message(input_ago=1.0, produced_ago=0.0), quick) == pytest.approx(0.1)


def test_a_backlog_flush_goes_once_no_more_rows_come() -> None:
    """In a backlog, rows wait for more rows; once nothing came for QUIET_FLUSH_S (the
    backlog is worked off) they are written without waiting out the rest."""
    assert backlog(message(input_ago=6.5, produced_ago=0.0))
    assert not backlog(message(input_ago=0.5, produced_ago=0.1))
    assert not backlog(message(input_ago=None, produced_ago=9.0))
    due, arrived = READ + 3.0, READ
    quiet = READ + QUIET_FLUSH_S
    assert not flush_now(quiet - 0.01, due, True, arrived)  # rows may still come
    assert flush_now(quiet, due, True, arrived)  # none came: write them
    assert not flush_now(quiet, due, True, quiet - 0.1)  # one just came: keep waiting
    # Outside a backlog the wait is the flush interval's, quiet or not.
    assert not flush_now(quiet + 1.0, due, False, arrived)
    assert flush_now(due, due, False, arrived) and flush_now(due, due, True, due - 0.01)
