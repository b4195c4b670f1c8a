"""Migrations: create, idempotent re-run, in-place upgrade, events_raw dedup rules."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from clickhouse_connect.driver.client import Client

from lineagehouse.processors.events import EVENTS_RAW_COLUMNS, Source
from lineagehouse.settings import RetentionSettings, Settings
from lineagehouse.store.migrations import (
    MERGE_SETTINGS,
    RETENTION,
    Migration,
    apply_retention,
    available,
    migrate,
    render,
    tune_merges,
)
from tests.conftest import load_events
from tests.events import encode, lineage_event, raw_row_of, run_event
from tests.model import expected_counts, stored_counts


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
    local, distributed = render(sql, "lineagehouse", "prod")
    assert local.startswith("CREATE TABLE IF NOT EXISTS lineagehouse.events_raw_local ON CLUSTER")
    assert "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}'" in local
    assert distributed == (
        "CREATE TABLE IF NOT EXISTS lineagehouse.events_raw ON CLUSTER prod "
        "AS lineagehouse.events_raw_local "
        "ENGINE = Distributed(prod, lineagehouse, events_raw_local, cityHash64(event_id))"
    )


def test_cluster_ddl_parses_and_shards_every_table_by_its_identity(ch: Client) -> None:
    """Every statement of every migration in cluster mode is valid SQL to the engine's own
    parser; each table becomes a Replicated `_local` table plus a Distributed table of
    the plain name, sharded by a hash of the table's ORDER BY (its identity), so the rows
    about one thing meet on one shard; every ALTER reaches both, but a MergeTree setting,
    which the Distributed table does not have."""
    for migration in available():
        plain = render(migration.sql, "lineagehouse", None)
        clustered = render(migration.sql, "lineagehouse", "prod")
        for stmt in clustered:
            formatted = ch.command("SELECT formatQuery({q:String})", parameters={"q": stmt})
            assert formatted, stmt
            assert "ON CLUSTER prod" in stmt or stmt.startswith("INSERT")
        creates = [s for s in plain if s.startswith("CREATE TABLE")]
        alters = [s for s in plain if s.startswith("ALTER TABLE")]
        settings = [s for s in alters if "MODIFY SETTING" in s]  # MergeTree only: `_local`
        others = [s for s in plain if s not in creates and s not in alters]
        assert len(clustered) == (2 * len(creates) + 2 * len(alters) - len(settings) + len(others))
        for stmt in clustered:
            if "MODIFY SETTING" in stmt:
                assert stmt.split()[2].endswith("_local"), stmt
        for stmt in creates:
            table = stmt.split()[5].split(".")[1]
            key = stmt.rsplit("ORDER BY", 1)[1].strip()
            identity = key if key.startswith("(") else f"({key})"
            local = next(s for s in clustered if f"lineagehouse.{table}_local ON CLUSTER" in s)
            assert "ENGINE = Replicated" in local, local
            assert (
                f"ENGINE = Distributed(prod, lineagehouse, {table}_local, cityHash64{identity})"
                in next(
                    s
                    for s in clustered
                    if s.startswith(f"CREATE TABLE IF NOT EXISTS lineagehouse.{table} ")
                )
            )
        for stmt in clustered:  # views read the Distributed tables, never a shard's
            if stmt.startswith(("CREATE VIEW", "CREATE MATERIALIZED VIEW", "INSERT")):
                assert "_local" not in stmt


def test_every_table_writes_its_parts_compact_up_to_256_mib(settings: Settings, ch: Client) -> None:
    """Every MergeTree table keeps parts below 256 MiB in the Compact format (one data
    file, not two files per column): the file churn of Wide parts was ~a fifth of the
    embedded server's CPU. A ~14 MB insert into `events_raw`, Wide by ClickHouse's
    default (10 MiB), is written Compact."""
    db = settings.clickhouse.database
    migrate(settings)
    engines = dict(
        ch.query(
            "SELECT name, engine_full FROM system.tables WHERE database = {db:String}"
            " AND engine LIKE '%MergeTree' AND name != 'schema_migrations'",  # a row a version
            parameters={"db": db},
        ).result_rows
    )
    assert set(engines) >= {"events_raw", "facets", "io_edges", "runs", "dataset_metrics"}
    compact = "min_bytes_for_wide_part = 268435456"
    loose = [name for name, engine in engines.items() if compact not in engine]
    assert not loose, f"tables whose parts go Wide at ClickHouse's default: {loose}"
    rows = [
        raw_row_of(encode(lineage_event(i)), Source("t", 0, i, None), datetime.now(UTC))
        for i in range(3000)
    ]
    ch.insert(f"{db}.events_raw", rows, column_names=list(EVENTS_RAW_COLUMNS))
    parts = ch.query(
        "SELECT part_type, data_uncompressed_bytes FROM system.parts"
        " WHERE database = {db:String} AND table = 'events_raw' AND active",
        parameters={"db": db},
    ).result_rows
    assert parts and all(kind == "Compact" for kind, _ in parts), parts
    assert sum(size for _, size in parts) > 10 * 1024 * 1024, parts


def test_every_table_merges_about_ten_parts_at_once(settings: Settings, ch: Client) -> None:
    """`migrate` gives every MergeTree table `MERGE_SETTINGS` (fewer, wider merges) unless
    `clickhouse.tune_merges` is false, and the merge selector then leaves more small parts
    unmerged than ClickHouse's default does; a setting the server does not know is
    skipped, not an error."""
    db = settings.clickhouse.database

    def create_queries() -> dict[str, str]:
        return dict(
            ch.query(
                "SELECT name, create_table_query FROM system.tables WHERE database = {db:String}"
                " AND engine LIKE '%MergeTree'",
                parameters={"db": db},
            ).result_rows
        )

    untuned = settings.clickhouse.model_copy(update={"tune_merges": False})
    migrate(settings.model_copy(update={"clickhouse": untuned}))
    assert not any("merge_selector_base" in query for query in create_queries().values())
    migrate(settings)
    queries = create_queries()
    assert {"events_raw", "facets", "runs", "io_edges", "job_runs"} <= set(queries)
    for table, query in queries.items():
        for name, value in MERGE_SETTINGS.items():
            assert f"{name} = {value}" in query, table
    assert tune_merges(settings, ch) == []  # already set: nothing to do
    ch.command(f"ALTER TABLE {db}.runs MODIFY SETTING merge_selector_base = 100")
    assert len(tune_merges(settings, ch)) == 1  # 100 is not 10
    assert "merge_selector_base = 10," in create_queries()["runs"]
    assert tune_merges(settings, ch, {"no_such_merge_setting": "1"}) == []

    # The effect, on two tables alike but for the settings (`tune_merges` runs between
    # their creations, so it tunes the first only): 8 inserts of one part each.
    columns = "(k UInt64, v String) ENGINE = MergeTree ORDER BY k"
    ch.command(f"CREATE TABLE {db}.merges_tuned {columns}")
    (statement,) = tune_merges(settings, ch)
    assert f"{db}.merges_tuned MODIFY SETTING" in statement
    ch.command(f"CREATE TABLE {db}.merges_default {columns}")
    for table in ("merges_tuned", "merges_default"):
        ch.command(f"SYSTEM STOP MERGES {db}.{table}")
        for i in range(8):
            ch.command(f"INSERT INTO {db}.{table} SELECT number, 'x' FROM numbers({i}000, 1000)")

    def active_parts(table: str) -> int:
        return ch.command(
            "SELECT count() FROM system.parts WHERE database = {db:String}"
            " AND table = {t:String} AND active",
            parameters={"db": db, "t": table},
        )

    assert active_parts("merges_default") == active_parts("merges_tuned") == 8
    for table in ("merges_default", "merges_tuned"):
        ch.command(f"SYSTEM START MERGES {db}.{table}")
    deadline = time.monotonic() + 30
    while active_parts("merges_default") == 8 and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2)  # as long again for the tuned table's merge selector, at least
    assert active_parts("merges_default") < 8
    assert active_parts("merges_tuned") == 8


def test_retention_drops_old_rows_and_keeps_new_ones(settings: Settings, ch: Client) -> None:
    db = settings.clickhouse.database
    migrate(settings)  # retention off: rows of any age are kept
    recent = datetime.now(UTC) - timedelta(days=1)
    old = datetime.now(UTC) - timedelta(days=400)
    old_run, new_run = (f"0195f6a0-0000-7000-8000-00000000000{c}" for c in "ab")
    load_events(settings, [quality_event(old_run, old), quality_event(new_run, recent)])
    ch.command(  # as if the old event had been received back then
        f"ALTER TABLE {db}.events_raw UPDATE ingested_at = event_time WHERE 1",
        settings={"mutations_sync": 1},
    )
    families = [t for tables in RETENTION.values() for t, _ in tables]
    before = {t: ch.command(f"SELECT count() FROM {db}.{t} FINAL") for t in families}
    kept = ("events_raw", "facets", "runs", "io_edges", "dataset_metrics", "job_runs")
    assert all(before[t] >= 2 for t in kept), before

    days = {"raw_events_days": 30, "lineage_days": 30, "quality_days": 30, "issues_days": 30}
    limited = settings.model_copy(update={"retention": RetentionSettings(**days)})
    assert len(apply_retention(limited, ch)) == len(families)
    assert apply_retention(limited, ch) == []  # already as configured: nothing to do
    for table in families:
        ch.command(f"OPTIMIZE TABLE {db}.{table} FINAL")
    assert ch.query(f"SELECT run_id FROM {db}.runs FINAL").result_columns == [[new_run]]
    for table in ("events_raw", "facets", "io_edges", "dataset_metrics", "job_runs"):
        assert ch.command(f"SELECT count() FROM {db}.{table} FINAL") == before[table] // 2, table
    # a job seen recently stays even though one of its runs expired
    assert ch.command(f"SELECT count() FROM {db}.jobs FINAL") == 1

    # 0 keeps rows forever again: the TTL is removed
    assert len(apply_retention(settings, ch)) == len(families)
    query = ch.command(
        f"SELECT create_table_query FROM system.tables WHERE database = '{db}' AND name = 'runs'"
    )
    assert " TTL " not in query


def quality_event(run_id: str, when: datetime) -> dict[str, Any]:
    """A run event with an input carrying quality metrics and an output."""
    facet_url = "https://openlineage.io/spec/facets/1-0-1/DataQualityMetricsInputDatasetFacet.json"
    return {
        "eventType": "COMPLETE",
        "eventTime": when.isoformat(),
        "producer": "https://github.com/lineagehouse/tests",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": run_id},
        "job": {"namespace": "retention", "name": "job"},
        "inputs": [
            {
                "namespace": "pg://db",
                "name": "public.src",
                "inputFacets": {
                    "dataQualityMetrics": {
                        "_producer": "https://github.com/lineagehouse/tests",
                        "_schemaURL": facet_url,
                        "rowCount": 10,
                        "columnMetrics": {"id": {"nullCount": 0}},
                    }
                },
            }
        ],
        "outputs": [{"namespace": "pg://db", "name": "public.dst"}],
    }


def test_upgrade_regroups_per_column_metrics_into_one_row_per_dataset(
    settings: Settings, ch: Client
) -> None:
    """0009 copies what the per-column `quality_metrics` table held: each part is the
    latest that any event of the run reported, as it read before the upgrade."""
    db = settings.clickhouse.database
    migrate(settings, migrations=[m for m in available() if m.version < 9])
    t1, t2 = "2026-11-01 10:00:00.000", "2026-11-01 11:00:00.000"

    def old_row(run: str, column: str, time: str, event: str, rows: str, nulls: str) -> str:
        metrics = (
            f"('{time}', '{event}', {rows}, NULL, NULL, NULL, {nulls}, 3, NULL, NULL, 1, 9, '')"
        )
        return (
            f"('pg://db', 'public.orders', '{run}', 'input', '{column}', 'k', 'ns', 'job', "
            f"'{time}', '{time}', {metrics})"
        )

    ch.command(
        f"INSERT INTO {db}.quality_metrics VALUES "
        + ", ".join(
            [
                old_row("r1", "", t1, "a", "10", "NULL"),
                old_row("r1", "id", t1, "a", "NULL", "1"),
                old_row("r1", "email", t1, "a", "NULL", "2"),
                old_row("r1", "", t2, "b", "20", "NULL"),  # a later event of the same run
                old_row("r1", "id", t2, "b", "NULL", "5"),
                old_row("r2", "id", t1, "c", "NULL", "7"),  # columns only
            ]
        )
    )
    applied = migrate(settings, migrations=[m for m in available() if m.version <= 9])
    assert [m.version for m in applied] == [9]
    got = {
        run: (whole, columns)
        for run, whole, columns in ch.query(
            "SELECT run_id, (tupleElement(dataset, 'event_id'), "
            "tupleElement(dataset, 'row_count')), (tupleElement(columns, 'event_id'), "
            "arrayMap(c -> (tupleElement(c, 'name'), tupleElement(c, 'null_count')), "
            f"tupleElement(columns, 'metrics'))) FROM (SELECT * FROM {db}.dataset_metrics FINAL)"
        ).result_rows
    }
    assert got == {
        "r1": (("b", 20), ("b", [("email", 2), ("id", 5)])),
        "r2": (("", None), ("c", [("id", 7)])),
    }


def test_upgrade_fills_the_dataset_indexes_from_what_is_stored(
    settings: Settings, ch: Client
) -> None:
    """0010 fills `dataset_io` and `dataset_facets` from the edges and facets stored before
    it, and its view keeps `dataset_io` current afterwards (since 0012 the processor writes
    `dataset_facets` itself): both then read as the source tables do, whichever the rows
    came from."""
    db = settings.clickhouse.database
    migrate(settings, migrations=[m for m in available() if m.version < 10])
    before = [lineage_event(i, job=f"job_{i % 3}") for i in range(30)]
    load_events(settings, before, before_facet_values=True)
    migrate(settings)
    after = [lineage_event(i, job=f"job_{i % 3}") for i in range(30, 60)]
    load_events(settings, after)
    expected = expected_counts(before + after)
    stored = stored_counts(ch, db)
    for table in ("io_edges", "dataset_io", "dataset_facets"):
        assert stored[table] == expected[table], table

    edges_by_dataset = (
        "SELECT namespace, name, direction, job_namespace, job_name, run_id, version_id, "
        "first_seen, last_seen FROM {table} FINAL ORDER BY ALL"
    )
    assert ch.query(edges_by_dataset.format(table=f"{db}.dataset_io")).result_rows == (
        ch.query(edges_by_dataset.format(table=f"{db}.io_edges")).result_rows
    )
    latest = ch.query(
        "SELECT namespace, name, facet, tupleElement(latest, 'json') FROM "
        f"(SELECT * FROM {db}.dataset_facets FINAL) ORDER BY ALL"
    ).result_rows
    assert latest == dataset_facets_from_facets(ch, db)
    assert len(latest) == expected["dataset_facets"]


def dataset_facets_from_facets(ch: Client, db: str) -> list[tuple]:
    """The latest value of each dataset facet, recomputed from every `facets` row: JSON
    kept in the row (before 0012) or found by id in `facet_values`."""
    datasets = "entity_kind IN ('dataset', 'input', 'output') AND facet_group = 'facets'"
    return ch.query(
        "SELECT ns, n, facet, argMax(json, (t, id)) FROM ("
        "SELECT entity_namespace AS ns, entity_name AS n, kv.1 AS facet, kv.2 AS json, "
        "event_time AS t, toString(event_id) AS id "
        f"FROM {db}.facets FINAL ARRAY JOIN JSONExtractKeysAndValuesRaw(facets_json) AS kv "
        f"WHERE {datasets} "
        "UNION ALL "
        "SELECT entity_namespace, entity_name, facet, v.facet_json, event_time, "
        "toString(event_id) "
        f"FROM (SELECT * FROM {db}.facets FINAL WHERE {datasets}) AS f "
        "ARRAY JOIN facet_names AS facet, facet_ids AS value_id "
        f"INNER JOIN (SELECT facet_id, any(facet_json) AS facet_json FROM {db}.facet_values "
        "GROUP BY facet_id) AS v ON v.facet_id = value_id"
        ") GROUP BY ALL ORDER BY ALL"
    ).result_rows


def test_upgrade_to_facet_values_keeps_what_was_stored_readable(
    settings: Settings, ch: Client
) -> None:
    """0012: facets stored before it keep their JSON (and the `facets` map), new ones name
    their values' ids; the latest dataset facets follow events from either side, and the
    values of facets that repeat are stored once."""
    db = settings.clickhouse.database
    migrate(settings, migrations=[m for m in available() if m.version < 12])
    before = [lineage_event(i, job=f"job_{i % 3}") for i in range(20)]
    load_events(settings, before, before_facet_values=True)
    assert "facet_values" not in tables(ch, db)
    migrate(settings)
    after = [lineage_event(i, job=f"job_{i % 3}") for i in range(20, 40)]
    load_events(settings, after)
    inline, by_id = ch.query(
        "SELECT countIf(facets_json != '' AND empty(facet_ids)), "
        f"countIf(facets_json = '' AND notEmpty(facet_ids)) FROM {db}.facets FINAL"
    ).result_rows[0]
    # 8 facets objects per event: all inline before; since, the job's and the 3 datasets'
    # by id, the run's and the 3 statistics inline
    assert (inline, by_id) == (20 * 8 + 20 * 4, 20 * 4)
    sql = ch.command(
        f"SELECT facets['sql'] FROM {db}.facets FINAL WHERE entity_kind = 'job' "
        "AND facets_json != '' LIMIT 1"
    )
    assert orjson.loads(sql)["query"].startswith("INSERT INTO shop.analytics.daily_")
    latest = ch.query(
        "SELECT namespace, name, facet, tupleElement(latest, 'json') FROM "
        f"(SELECT * FROM {db}.dataset_facets FINAL) ORDER BY ALL"
    ).result_rows
    assert latest == dataset_facets_from_facets(ch, db)
    assert len(latest) == expected_counts(before + after)["dataset_facets"]
    referenced, values = ch.query(
        f"SELECT (SELECT count() FROM {db}.facets FINAL ARRAY JOIN facet_ids), "
        f"(SELECT count() FROM {db}.facet_values FINAL)"
    ).result_rows[0]
    assert values < referenced / 2, (values, referenced)
    # a facets.v1 message still waiting in the topic at the upgrade inserts as it is
    load_events(settings, [lineage_event(40, job="job_0")], before_facet_values=True)
    kept = ch.command(f"SELECT count() FROM {db}.facets FINAL WHERE facets_json != ''")
    assert kept == 21 * 8 + 20 * 4


def test_upgrade_gives_every_job_run_its_time(settings: Settings, ch: Client) -> None:
    """0011 adds `job_runs.last_seen` (retention counts from it): runs stored before it get
    their last event time from `runs`, later ones through the view; none is left at 0."""
    db = settings.clickhouse.database
    migrate(settings, migrations=[m for m in available() if m.version < 11])
    first = [lineage_event(i, job=f"job_{i % 3}") for i in range(10)]
    load_events(settings, first, before_facet_values=True)
    migrate(settings)
    load_events(settings, [lineage_event(i, job=f"job_{i % 3}") for i in range(10, 20)])
    by_job = ch.query(
        f"SELECT job_namespace, job_name, run_id, last_seen FROM {db}.job_runs FINAL ORDER BY ALL"
    ).result_rows
    from_runs = ch.query(
        f"SELECT job_namespace, job_name, run_id, max(last_event_time) FROM {db}.runs "
        "GROUP BY ALL ORDER BY ALL"
    ).result_rows
    assert len(by_job) == 20
    assert by_job == from_runs
