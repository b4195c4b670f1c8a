"""Property: the stored model does not depend on event order or on duplicates.

Events of many runs (several terminal events per run, equal event times, schema changes,
changing job facets) are derived and written to the real ClickHouse engine twice: once in
order, delivered once, in one batch; once shuffled, with duplicates, in many small
batches (so rows meet in background merges and in FINAL). Every table must read the same.
"""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from lineagehouse.processors.derive import derive
from lineagehouse.processors.events import event_id
from lineagehouse.processors.records import KIND_NAMES
from lineagehouse.processors.sink import ClickHouseSink, write_records
from lineagehouse.settings import Settings
from lineagehouse.store.migrations import migrate
from tests.events import BASE_TIME, facet, lineage_event

DERIVED_KINDS = [k for k in KIND_NAMES if k not in ("events_raw", "dead_letters")]


def run_events(rng: random.Random, runs: int) -> list[dict[str, Any]]:
    """Events of `runs` runs of a few jobs, with the awkward cases real emitters produce."""
    events = []
    for r in range(runs):
        job = f"job_{r % 5}"
        run_id = str(uuid.UUID(int=rng.getrandbits(128)))
        start = BASE_TIME + timedelta(minutes=r)
        states = ["START", "RUNNING", "COMPLETE"]
        if r % 4 == 1:
            states = ["START", "FAIL"]
        elif r % 4 == 2:
            states = ["START", "COMPLETE", "COMPLETE", "COMPLETE"]  # Spark's habit
        elif r % 4 == 3:
            states = ["START", "COMPLETE", "FAIL"]  # two terminal events...
        for s, state in enumerate(states):
            offset = timedelta(seconds=s * 7 + rng.randint(0, 3))
            if r % 4 == 3 and s == 2:
                offset = timedelta(seconds=7 + 0)  # ... at the same time as the COMPLETE
            event = lineage_event(
                r,
                job=job,
                event_type=state,
                run_id=run_id,
                event_time=start + offset,
                columns=3 + (r % 3),
                rows=100 * r + s,
            )
            if r % 4 == 3 and s >= 1:
                event["eventTime"] = (start + timedelta(seconds=7)).isoformat()
            if s == 0:
                event["job"]["facets"]["documentation"] = facet(
                    "DocumentationJobFacet", description=f"run {r} docs"
                )
            events.append(event)
    return events


def write(sink: ClickHouseSink, db: str, batch: list[dict[str, Any]]) -> None:
    """The pipeline's path without Kafka: derive, combine, Avro containers, inserts."""
    out: dict[str, list] = {}
    for event in batch:
        derive(event, str(event_id(event)), out)
    write_records(sink, db, out, max_message_bytes=50_000)


def snapshot(ch: Client, db: str) -> dict[str, list[tuple]]:
    tables = {}
    for kind in DERIVED_KINDS:
        extra = ", arraySort(event_types)" if kind == "runs" else ""
        columns = "* EXCEPT (event_types)" if kind == "runs" else "*"
        rows = ch.query(f"SELECT {columns}{extra} FROM {db}.{kind} FINAL ORDER BY ALL").result_rows
        tables[kind] = rows
    return tables


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_shuffled_duplicated_batches_store_the_same_model(
    make_settings: Any, ch: Client, seed: int
) -> None:
    rng = random.Random(seed)
    events = run_events(rng, runs=24)
    ordered: Settings = make_settings()
    shuffled: Settings = make_settings()
    for settings in (ordered, shuffled):
        migrate(settings)
    sink = ClickHouseSink(ordered.clickhouse)

    write(sink, ordered.clickhouse.database, events)

    deliveries = events + rng.sample(events, len(events) // 3)
    rng.shuffle(deliveries)
    while deliveries:
        size = rng.randint(1, 12)
        write(sink, shuffled.clickhouse.database, deliveries[:size])
        deliveries = deliveries[size:]

    expected = snapshot(ch, ordered.clickhouse.database)
    got = snapshot(ch, shuffled.clickhouse.database)
    for kind in DERIVED_KINDS:
        assert got[kind] == expected[kind], kind
    assert len(expected["runs"]) == 24
    # Also merge the parts for real and read again: merges must agree with FINAL.
    ch.command(f"OPTIMIZE TABLE {shuffled.clickhouse.database}.runs FINAL")
    assert snapshot(ch, shuffled.clickhouse.database)["runs"] == expected["runs"]


def test_final_run_state_rule(make_settings: Any, ch: Client) -> None:
    """Latest terminal event wins; START/RUNNING never override it; ties by hash."""
    settings: Settings = make_settings()
    migrate(settings)
    db = settings.clickhouse.database
    sink = ClickHouseSink(settings.clickhouse)
    run_id = str(uuid.uuid4())

    def event(state: str, second: int) -> dict[str, Any]:
        return lineage_event(
            1, event_type=state, run_id=run_id, event_time=BASE_TIME + timedelta(seconds=second)
        )

    write(sink, db, [event("COMPLETE", 10), event("RUNNING", 50), event("START", 0)])
    state = ch.query(f"SELECT state_name, started, duration_ms FROM {db}.run_states").result_rows
    assert state[0][0] == "COMPLETE" and state[0][2] == 10_000
    write(sink, db, [event("FAIL", 20)])
    assert ch.command(f"SELECT state_name FROM {db}.run_states") == "FAIL"
    write(sink, db, [event("ABORT", 5)])  # older terminal event: does not win
    assert ch.command(f"SELECT state_name FROM {db}.run_states") == "FAIL"
    # Same time, both terminal: the greater event id wins, whatever the order.
    tie = [event("COMPLETE", 20)]
    write(sink, db, tie)
    winner = max(
        (str(event_id(e)), e["eventType"]) for e in [event("FAIL", 20), event("COMPLETE", 20)]
    )
    got = ch.query(f"SELECT tupleElement(state, 3), tupleElement(state, 4) FROM {db}.runs FINAL")
    assert tuple(got.result_rows[0]) == winner
