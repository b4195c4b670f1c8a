"""The issues stage's remembered histories (real ClickHouse): a detector that keeps each
subject's history and reads only what each batch touched finds exactly the issues of one
that reads every history whole for every batch, over random histories delivered late and
out of order, with failures, duration outliers, failed checks and schema changes, and
histories longer than `issues.history_runs`; and it writes each issue once, until it
changes."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from lineagehouse.processors.derive import derive
from lineagehouse.processors.events import event_id
from lineagehouse.processors.issue_history import HistoryCache
from lineagehouse.processors.issue_stage import WATCHED_KINDS, IssueDetector, Subjects
from lineagehouse.processors.issues import Issue
from lineagehouse.processors.sink import ClickHouseSink, write_records
from lineagehouse.settings import Settings
from lineagehouse.store.migrations import migrate
from tests.events import BASE_TIME, lineage_event

ASSERTIONS_URL = "https://openlineage.io/spec/facets/1-0-1/DataQualityAssertionsDatasetFacet.json"


def history_events(rng: random.Random) -> list[dict[str, Any]]:
    """START and terminal events of 3 jobs x 30 runs (some runs with two terminal events)."""
    events = []
    for j in range(3):
        job = f"job_{j}"
        for r in range(30):
            run_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            started = BASE_TIME + timedelta(hours=r, minutes=j)
            seconds = 60 + rng.uniform(-2, 2) if rng.random() > 0.15 else 400
            columns = 3 if rng.random() > 0.1 else rng.choice((2, 4))
            state = rng.choices(("COMPLETE", "FAIL", "ABORT"), (8, 2, 1))[0]
            ended = started + timedelta(seconds=seconds)
            run = [
                lineage_event(r, job, event_type="START", run_id=run_id, event_time=started),
                lineage_event(r, job, event_type=state, run_id=run_id, event_time=ended),
            ]
            if rng.random() < 0.1:  # a second, later terminal event overrides the first
                later = ended + timedelta(seconds=5)
                run.append(
                    lineage_event(r, job, event_type="FAIL", run_id=run_id, event_time=later)
                )
            for event in run:
                event["outputs"][0]["name"] = f"out_{j}"
                event["outputs"][0]["facets"]["schema"]["fields"] = [
                    {"name": f"c{c}", "type": "BIGINT"} for c in range(columns)
                ]
                event["inputs"][0]["inputFacets"]["dataQualityAssertions"] = {
                    "_producer": "tests",
                    "_schemaURL": ASSERTIONS_URL,
                    "assertions": [
                        {"assertion": "not_null", "success": rng.random() > 0.2, "column": "id"}
                    ],
                }
            events += run
    return events


def deliveries(events: list[dict[str, Any]], rng: random.Random) -> list[list[dict]]:
    """Batches in roughly time order, with a fifth of the events held back a while."""
    pending = sorted(events, key=lambda e: e["eventTime"])
    batches: list[list[dict]] = []
    held: list[dict] = []
    while pending or held:
        size = rng.randint(5, 25)
        batch, pending = pending[:size], pending[size:]
        late = [e for e in batch if rng.random() < 0.2]
        batch = [e for e in batch if e not in late] + held[: rng.randint(0, len(held))]
        held = [e for e in held if e not in batch] + late
        if not pending:
            batch += held
            held = []
        batches.append(batch)
    return batches


def _latest(found: dict[str, Issue], issues: list[Issue]) -> None:
    for issue in issues:
        found[issue.issue_id] = issue


@pytest.mark.parametrize("seed", [1, 2])
def test_remembered_histories_find_what_whole_reads_find(
    make_settings: Callable[..., Settings], seed: int
) -> None:
    rules = {"history_runs": 12, "duration_min_history": 3, "duration_window": 5}
    settings = make_settings(issues=rules)
    migrate(settings)
    no_cache = settings.issues.model_copy(update={"history_cache_subjects": 0})
    whole = IssueDetector(settings.model_copy(update={"issues": no_cache}))
    kept = IssueDetector(settings)
    sink = ClickHouseSink(settings.clickhouse)
    rng = random.Random(seed)
    by_whole: dict[str, Issue] = {}
    by_kept: dict[str, Issue] = {}
    delta_batches = 0
    for batch in deliveries(history_events(rng), rng):
        records: dict[str, list] = {}
        for event in batch:
            derive(event, str(event_id(event)), records)
        write_records(sink, settings.clickhouse.database, records)
        subjects = Subjects()
        for kind in WATCHED_KINDS:
            subjects.add(kind, records.get(kind, ()))
        delta_batches += all(kept.jobs.fresh(job, 0.0) for job in subjects.jobs)
        _latest(by_whole, whole.evaluate(subjects))
        whole.written()
        _latest(by_kept, kept.evaluate(subjects))
        kept.written()
        assert by_kept == by_whole
    kinds = {issue.kind for issue in by_whole.values()}
    assert kinds == {"run_failed", "duration_outlier", "assertion_failed", "schema_changed"}
    assert delta_batches > 10  # most batches read only the runs they touched
    for j in range(3):  # each job's 30 runs: the latest history_runs + 1 are kept
        assert len(kept.jobs.facts(("tests", f"job_{j}"))) == 13


def test_an_issue_is_returned_again_only_when_it_changes(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    migrate(settings)
    sink = ClickHouseSink(settings.clickhouse)
    detector = IssueDetector(settings)

    def deliver(*events: dict[str, Any]) -> list[Issue]:
        records: dict[str, list] = {}
        for event in events:
            derive(event, str(event_id(event)), records)
        write_records(sink, settings.clickhouse.database, records)
        subjects = Subjects()
        subjects.add("runs", records["runs"])
        found = detector.evaluate(subjects)
        detector.written()
        return found

    failed = lineage_event(0, "flaky", event_type="FAIL")
    [opened] = deliver(failed)
    assert opened.kind == "run_failed" and opened.resolved_at is None
    assert deliver(failed) == []  # the same history again: nothing to write
    later = BASE_TIME + timedelta(hours=1)
    [resolved] = deliver(lineage_event(1, "flaky", event_type="COMPLETE", event_time=later))
    assert resolved.issue_id == opened.issue_id
    assert resolved.resolved_at == int(later.timestamp() * 1000)
    detector.forget()  # partitions reassigned: read whole again, and write again
    assert deliver(failed) == [resolved]


def test_history_cache_keeps_the_latest_facts_and_the_most_recent_subjects() -> None:
    cache = HistoryCache(limit=3, order=lambda fact: fact, max_subjects=2, ttl_s=10)
    cache.load("a", [(str(t), (t, str(t))) for t in (5, 1, 4, 2)], now=0)
    assert cache.facts("a") == [(2, "2"), (4, "4"), (5, "5")]
    cache.update("a", {"3": (3, "3"), "4": None, "9": (9, "9")})
    assert cache.facts("a") == [(3, "3"), (5, "5"), (9, "9")]
    assert cache.fresh("a", now=9.9) and not cache.fresh("a", now=10)
    assert cache.changed("a")
    cache.mark_written("a", [])
    cache.update("a", {"3": (3, "3"), "7": None})  # what it knew already: nothing to judge
    assert not cache.changed("a")
    cache.update("a", {"5": None})
    assert cache.changed("a") and cache.facts("a") == [(3, "3"), (9, "9")]
    cache.load("b", [], now=0)
    cache.load("c", [], now=0)
    cache.fresh("b", now=1)  # touched: "a" is now the least recent
    cache.trim()
    assert not cache.fresh("a", now=1) and cache.fresh("b", now=1) and cache.fresh("c", now=1)


def test_names_that_need_escaping_reach_clickhouse_intact(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings()
    migrate(settings)
    detector = IssueDetector(settings)
    job = 'we\'ird \\ name {subjects:String} "quoted" ü \u0001'
    records: dict[str, list] = {}
    for i, state in enumerate(("FAIL", "FAIL")):
        event = lineage_event(i, job, event_type=state)
        derive(event, str(event_id(event)), records)
    write_records(ClickHouseSink(settings.clickhouse), settings.clickhouse.database, records)
    subjects = Subjects()
    subjects.add("runs", records["runs"])
    found = detector.evaluate(subjects)  # read whole
    assert {(i.kind, i.job_name) for i in found} == {("run_failed", job)} and len(found) == 2
    detector.written()
    later = BASE_TIME + timedelta(hours=1)
    records = {}
    event = lineage_event(2, job, event_type="COMPLETE", event_time=later)
    derive(event, str(event_id(event)), records)
    write_records(ClickHouseSink(settings.clickhouse), settings.clickhouse.database, records)
    subjects = Subjects()
    subjects.add("runs", records["runs"])
    resolved = detector.evaluate(subjects)  # only the touched run read
    assert len(resolved) == 2 and all(i.resolved_at is not None for i in resolved)


@pytest.mark.parametrize("remembered", [True, False])
def test_a_schema_version_stored_after_its_edge_still_counts(
    make_settings: Callable[..., Settings], remembered: bool
) -> None:
    """The sink can insert a run's output edge one flush before the schema version it
    names. The stage then sees the edge without a schema; when the version's own message
    comes (after the sink stored it), the dataset is read whole and the change is found,
    whether its history was remembered or not."""
    settings = make_settings()
    migrate(settings)
    db = settings.clickhouse.database
    sink = ClickHouseSink(settings.clickhouse)
    detector = IssueDetector(settings)

    def run_writing(hour: int, columns: int) -> dict[str, list]:
        event = lineage_event(hour, "build", event_time=BASE_TIME + timedelta(hours=hour))
        event["outputs"][0]["name"] = "users"
        event["outputs"][0]["facets"]["schema"]["fields"] = [
            {"name": f"c{c}", "type": "BIGINT"} for c in range(columns)
        ]
        records: dict[str, list] = {}
        derive(event, str(event_id(event)), records)
        return records

    def stage(records: dict[str, list], kinds: set[str]) -> list[Issue]:
        """Store `kinds` of `records` (as one sink flush) and evaluate what the issues
        stage would read of them."""
        write_records(sink, db, {kind: rows for kind, rows in records.items() if kind in kinds})
        subjects = Subjects()
        for kind in kinds & set(WATCHED_KINDS):
            subjects.add(kind, records.get(kind, ()))
        found = detector.evaluate(subjects)
        detector.written()
        return found

    for hour in (0, 1):
        records = run_writing(hour, 3)
        assert stage(records, set(records)) == []
    if not remembered:
        detector.forget()
    dropped = run_writing(2, 2)
    assert stage(dropped, set(dropped) - {"dataset_versions"}) == []  # its version: not yet
    [change] = stage(dropped, {"dataset_versions"})
    assert change.kind == "schema_changed" and change.run_id == dropped["runs"][0]["run_id"]
