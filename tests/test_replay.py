"""`lineagehouse replay --from-raw` rebuilds the derived tables from events_raw."""

from __future__ import annotations

import gc
import logging
import subprocess
from datetime import UTC, datetime, timedelta

from clickhouse_connect.driver.client import Client
from typer.testing import CliRunner

from lineagehouse.cli import app
from lineagehouse.gc_tuning import gc_threshold
from lineagehouse.processors.events import EVENTS_RAW_COLUMNS, Source
from lineagehouse.replay import PAGE_SIZE
from lineagehouse.settings import Settings
from lineagehouse.store.migrations import migrate
from tests.conftest import run_cli, settings_env
from tests.events import BASE_TIME, encode, lineage_event, raw_row_of
from tests.model import expected_counts, stored_counts


def replay(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    return run_cli(settings, "replay", *args)


def test_replay_rebuilds_idempotently_and_truncate_drops_stale_rows(
    settings: Settings, ch: Client
) -> None:
    migrate(settings)
    db = settings.clickhouse.database
    events = [
        lineage_event(i, job=f"job_{i % 9}", event_type=("START", "COMPLETE")[i % 2])
        for i in range(1200)
    ]
    rows = [
        raw_row_of(encode(e), Source("t", 0, i, None), datetime.now(UTC))
        for i, e in enumerate(events)
    ]
    ch.insert(f"{db}.events_raw", rows, column_names=list(EVENTS_RAW_COLUMNS))
    expected = expected_counts(events)

    done = replay(settings, "--from-raw")
    assert done.returncode == 0, done.stderr
    assert "Replayed 1,200 events" in done.stdout
    assert stored_counts(ch, db) == expected
    assert replay(settings, "--from-raw").returncode == 0
    assert stored_counts(ch, db) == expected  # twice: nothing counted twice

    # A row an old bug wrote: it would win max() forever unless the tables are rebuilt.
    ch.command(
        f"INSERT INTO {db}.jobs (namespace, name, sql) VALUES "
        "('tests', 'job_1', ('2099-01-01 00:00:00', 'WRONG'))"
    )
    assert ch.command(f"SELECT tupleElement(sql, 2) FROM {db}.jobs FINAL WHERE name = 'job_1'") == (
        "WRONG"
    )
    assert replay(settings, "--from-raw", "--truncate").returncode == 0
    assert stored_counts(ch, db) == expected
    fixed = ch.command(f"SELECT tupleElement(sql, 2) FROM {db}.jobs FINAL WHERE name = 'job_1'")
    assert fixed.startswith("INSERT INTO shop.analytics")


def test_replay_since_derives_only_later_events(settings: Settings, ch: Client) -> None:
    migrate(settings)
    db = settings.clickhouse.database
    events = [lineage_event(i, job="j") for i in range(100)]  # one second apart
    rows = [
        raw_row_of(encode(e), Source("t", 0, i, None), datetime.now(UTC))
        for i, e in enumerate(events)
    ]
    ch.insert(f"{db}.events_raw", rows, column_names=list(EVENTS_RAW_COLUMNS))
    since = (BASE_TIME + timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%S")
    done = replay(settings, "--from-raw", "--since", since)
    assert done.returncode == 0, done.stderr
    assert stored_counts(ch, db)["runs"] == 40
    refused = replay(settings, "--from-raw", "--since", since, "--truncate")
    assert refused.returncode == 2 and "--truncate" in refused.stderr


def test_replay_recomputes_issues_once(settings: Settings, ch: Client) -> None:
    migrate(settings)
    db = settings.clickhouse.database
    # job_0: its runs alternate FAIL and COMPLETE; every event is a run of its own
    events = [
        lineage_event(i, job="job_0", event_type=("FAIL", "COMPLETE")[i % 2]) for i in range(40)
    ]
    rows = [
        raw_row_of(encode(e), Source("t", 0, i, None), datetime.now(UTC))
        for i, e in enumerate(events)
    ]
    ch.insert(f"{db}.events_raw", rows, column_names=list(EVENTS_RAW_COLUMNS))
    for _ in range(2):  # replaying again recomputes the same issues: same ids
        done = replay(settings, "--from-raw")
        assert done.returncode == 0, done.stderr
        assert "Issues recomputed: 20" in done.stdout
        states = ch.query(
            f"SELECT status, count() FROM {db}.issue_states WHERE kind = 'run_failed' "
            "GROUP BY status"
        ).result_rows
        assert dict(states) == {"resolved": 20}


def test_replay_derives_with_the_workers_collector_settings(settings: Settings, ch: Client) -> None:
    """The replay raises the collector's thresholds as the worker does (the command, run in
    this process, changes them; they are put back after)."""
    migrate(settings)
    db = settings.clickhouse.database
    events = [lineage_event(i, job=f"job_{i % 5}") for i in range(300)]
    rows = [
        raw_row_of(encode(e), Source("t", 0, i, None), datetime.now(UTC))
        for i, e in enumerate(events)
    ]
    ch.insert(f"{db}.events_raw", rows, column_names=list(EVENTS_RAW_COLUMNS))
    thresholds = gc.get_threshold()
    assert thresholds[0] != gc_threshold(PAGE_SIZE)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        result = CliRunner().invoke(
            app, ["replay", "--from-raw"], env=settings_env(settings), catch_exceptions=False
        )
        tuned = gc.get_threshold()
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
        root.handlers[:] = handlers  # the command installed its log handler on the runner's stderr
        root.setLevel(level)
    assert result.exit_code == 0, result.output
    assert "Replayed 300 events" in result.output
    assert tuned[0] == gc_threshold(PAGE_SIZE)
    assert stored_counts(ch, db) == expected_counts(events)
