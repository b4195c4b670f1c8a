"""Validation end to end through Kafka and the real worker: the corpus and a seeded fuzz.

Expected verdicts come from the corpus split and from how each fuzz case was made, never
from running our validator; totals reconcile on stored rows (counters reset on restart).
"""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest
from clickhouse_connect.driver.client import Client

from lineagehouse.processors.deadletter import dead_letter_id
from lineagehouse.processors.events import event_id
from lineagehouse.settings import Settings
from lineagehouse.store.migrations import migrate
from lineagehouse.topics import ensure_topics
from tests.conftest import CORPUS, produce, wait_for
from tests.fuzz_cases import MAX_BYTES, fuzz_cases

pytestmark = pytest.mark.timeout(600)


def stored_ids(ch: Client, settings: Settings) -> tuple[set[str], set[str]]:
    db = settings.clickhouse.database
    accepted = ch.query(f"SELECT DISTINCT toString(event_id) FROM {db}.events_raw")
    dead = ch.query(f"SELECT DISTINCT toString(dead_letter_id) FROM {db}.dead_letters")
    return set(accepted.result_columns[0] if accepted.result_rows else []), set(
        dead.result_columns[0] if dead.result_rows else []
    )


def run_through_worker(
    settings: Settings, ch: Client, start_worker: Callable, messages: list, accept: list[bool]
) -> tuple[set[str], set[str], set[str], set[str]]:
    """Send messages; wait until every one is stored; return (accepted, dead) stored and
    expected id sets."""
    migrate(settings)
    ensure_topics(settings)
    want_accepted = {
        str(event_id(orjson.loads(v))) for (_, v), ok in zip(messages, accept, strict=True) if ok
    }
    want_dead = {
        str(dead_letter_id(k, v)) for (k, v), ok in zip(messages, accept, strict=True) if not ok
    }
    produce(settings, messages, message_max_bytes=4 * MAX_BYTES)
    worker = start_worker(settings)
    target = len(want_accepted) + len(want_dead)
    wait_for(
        lambda: sum(map(len, stored_ids(ch, settings))) >= target,
        300,
        f"{target} distinct stored messages",
        alive=worker,
    )
    accepted, dead = stored_ids(ch, settings)
    assert worker.poll() is None, "the worker died"
    return accepted, dead, want_accepted, want_dead


def test_corpus_valid_accepted_invalid_dead_lettered(
    make_settings: Callable[..., Settings], ch: Client, start_worker
) -> None:
    settings = make_settings(ingest={"max_event_bytes": MAX_BYTES})
    valid = [v for v in (CORPUS / "valid.jsonl").read_bytes().splitlines() if v.strip()]
    invalid = [v for v in (CORPUS / "invalid.jsonl").read_bytes().splitlines() if v.strip()]
    messages = [(b"k", v) for v in valid] + [(None, v) for v in invalid]
    accepted, dead, want_accepted, want_dead = run_through_worker(
        settings, ch, start_worker, messages, [True] * len(valid) + [False] * len(invalid)
    )
    assert (len(valid), len(invalid)) == (61, 31)
    assert accepted == want_accepted and dead == want_dead
    db = settings.clickhouse.database
    reasons = ch.query(
        f"SELECT reason_count, reason_paths[1], reason_messages[1] FROM {db}.dead_letters FINAL"
    ).result_rows
    assert len(reasons) == 31 and all(n >= 1 and p and m for n, p, m in reasons)


def test_fuzz_through_kafka_verdicts_and_reconciliation(
    make_settings: Callable[..., Settings], ch: Client, start_worker
) -> None:
    settings = make_settings(ingest={"max_event_bytes": MAX_BYTES})
    cases = fuzz_cases(seed=20261125, n=5000)
    messages = [(c.key, c.value) for c in cases]
    accepted, dead, want_accepted, want_dead = run_through_worker(
        settings, ch, start_worker, messages, [c.expect_accept for c in cases]
    )
    assert len(want_accepted) > 1000 and len(want_dead) > 1000  # both verdicts exercised
    # Every case got its expected verdict...
    assert want_accepted - accepted == set(), "accepted cases missing from events_raw"
    assert want_dead - dead == set(), "rejected cases missing from dead_letters"
    # ...and nothing else was stored: distinct consumed = accepted + dead-lettered.
    assert accepted == want_accepted and dead == want_dead
    db = settings.clickhouse.database
    no_reason = ch.command(
        f"SELECT count() FROM {db}.dead_letters FINAL "
        "WHERE reason_count = 0 OR empty(reason_messages)"
    )
    assert no_reason == 0
    oversized = ch.command(
        f"SELECT count() FROM {db}.dead_letters FINAL WHERE value_bytes > {MAX_BYTES}"
    )
    over_limit = {dead_letter_id(c.key, c.value) for c in cases if c.how == "over_limit"}
    assert oversized == len(over_limit) > 0
