"""Migrations: create, idempotent re-run, in-place upgrade, events_raw dedup rules."""

from __future__ import annotations

from datetime import UTC, datetime

from clickhouse_connect.driver.client import Client

from lineagehouse.processors.events import EVENTS_RAW_COLUMNS, Source
from lineagehouse.settings import Settings
from lineagehouse.store.migrations import Migration, available, migrate, render
from tests.events import encode, raw_row_of, run_event


def tables(ch: Client, db: str) -> set[str]:
    return set(
        ch.query(f"SELECT name FROM system.tables WHERE database = '{db}'").result_columns[0]
    )


def test_migrate_creates_schema_and_is_idempotent(settings: Settings, ch: Client) -> None:
    db = settings.clickhouse.database
    first = migrate(settings)
    assert [m.version for m in first] == [m.version for m in available()]
    assert {"events_raw", "schema_migrations"} <= tables(ch, db)
    assert migrate(settings) == []
    recorded = ch.command(f"SELECT count() FROM {db}.schema_migrations FINAL")
    assert recorded == len(available())


def test_later_version_upgrades_in_place(settings: Settings, ch: Client) -> None:
    db = settings.clickhouse.database
    migrate(settings)
    row = raw_row_of(encode(run_event(1)), Source("t", 0, 0, None), datetime.now(UTC))
    ch.insert(f"{db}.events_raw", [row], column_names=list(EVENTS_RAW_COLUMNS))
    extra = Migration(
        9999,
        "add_note",
        "ALTER TABLE {db}.events_raw {on_cluster} "
        "ADD COLUMN IF NOT EXISTS note String DEFAULT 'kept';\n",
    )
    applied = migrate(settings, migrations=[*available(), extra])
    assert [m.version for m in applied] == [9999]
    assert ch.query(f"SELECT count(), any(note) FROM {db}.events_raw").result_rows == [(1, "kept")]
    assert migrate(settings, migrations=[*available(), extra]) == []


def test_redelivered_event_counts_once(settings: Settings, ch: Client) -> None:
    db = settings.clickhouse.database
    migrate(settings)
    value = encode(run_event(5))
    rows = [
        raw_row_of(value, Source("t", p, o, None), datetime.now(UTC))
        for p, o in [(0, 1), (3, 77), (0, 1)]
    ]
    rows.append(raw_row_of(encode(run_event(6)), Source("t", 0, 2, None), datetime.now(UTC)))
    for row in rows:  # separate inserts, as separate deliveries would be
        ch.insert(f"{db}.events_raw", [row], column_names=list(EVENTS_RAW_COLUMNS))
    assert ch.command(f"SELECT count() FROM {db}.events_raw") == 4
    assert ch.command(f"SELECT count() FROM {db}.events_raw FINAL") == 2


def test_render_cluster_mode() -> None:
    sql = available()[0].sql
    (plain,) = render(sql, "lineagehouse", None)
    assert "ENGINE = ReplacingMergeTree()" in plain and "ON CLUSTER" not in plain
    (clustered,) = render(sql, "lineagehouse", "prod")
    assert "ON CLUSTER prod" in clustered
    assert "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}'" in (
        clustered
    )
