"""Versioned, idempotent ClickHouse migrations from `schemas/clickhouse/NNNN_name.sql`.

Each file is a list of `;`-terminated statements with placeholders: `{db}` (database),
`{on_cluster}` (empty, or `ON CLUSTER name`), `{engine:Default()}` (the table engine; in
cluster mode the Replicated variant, as `<table>_local`, with a Distributed table
`<table>` over it that every reader and writer uses). Every statement is itself idempotent (IF NOT
EXISTS), so a migration interrupted half-way is simply run again. Applied versions are
recorded in `{db}.schema_migrations`.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

from clickhouse_connect.driver.client import Client

from lineagehouse.settings import Settings
from lineagehouse.store.client import connect

log = logging.getLogger("lineagehouse.migrate")

_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_ENGINE_RE = re.compile(r"\{engine:([A-Za-z]+)\(([^)]*)\)\}")
_CREATE_TABLE_RE = re.compile(r"CREATE TABLE IF NOT EXISTS \S+?\.(\w+) ")
_ALTER_RE = re.compile(r"ALTER TABLE \S+?\.(\w+) ")
_MODIFY_SETTING_RE = re.compile(r"\bMODIFY SETTING\b")
_ORDER_BY_RE = re.compile(r"\bORDER BY\s+(\([^;]*?\)|\w+)\s*(?:SETTINGS\b[^;]*)?$", re.S)
LOCAL_SUFFIX = "_local"


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()[:16]


def available() -> list[Migration]:
    folder = resources.files("lineagehouse.schemas") / "clickhouse"
    found = []
    for entry in folder.iterdir():
        match = _FILE_RE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text()))
    return sorted(found, key=lambda m: m.version)


def render(sql: str, database: str, cluster: str | None) -> list[str]:
    """The statements of one migration with placeholders filled in."""
    on_cluster = f"ON CLUSTER {cluster}" if cluster else ""

    def engine(match: re.Match[str]) -> str:
        name, args = match[1], match[2]
        if not cluster:
            return f"{name}({args})"
        replicated_args = "'/clickhouse/tables/{shard}/{database}/{table}', '{replica}'"
        joined = f"{replicated_args}, {args}" if args else replicated_args
        return f"Replicated{name}({joined})"

    text = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    text = _ENGINE_RE.sub(engine, text)
    text = text.replace("{db}", database).replace("{on_cluster}", on_cluster)
    statements = [
        stmt.strip().rstrip(";") for stmt in text.split(";\n") if stmt.strip().rstrip(";")
    ]
    if not cluster:
        return statements
    return [out for stmt in statements for out in _distributed(stmt, database, cluster)]


def _distributed(stmt: str, database: str, cluster: str) -> list[str]:
    """Cluster mode: a table becomes `<name>_local` (Replicated, on every node) plus a
    Distributed table `<name>` over it, sharded by a hash of the table's identity (its
    ORDER BY), so every row about one thing lands on one shard and FINAL merges them
    there. Everything else keeps using `<name>`; an ALTER applies to both, except a
    MergeTree setting (`MODIFY SETTING`), which only the `_local` table has."""
    created = _CREATE_TABLE_RE.match(stmt)
    if created:
        table = created[1]
        local = stmt.replace(f"{database}.{table} ", f"{database}.{table}{LOCAL_SUFFIX} ", 1)
        key = _ORDER_BY_RE.search(stmt)
        if key is None:
            raise ValueError(f"cluster mode: table {table} has no ORDER BY to shard by")
        identity = key[1] if key[1].startswith("(") else f"({key[1]})"
        distributed = (
            f"CREATE TABLE IF NOT EXISTS {database}.{table} ON CLUSTER {cluster} "
            f"AS {database}.{table}{LOCAL_SUFFIX} "
            f"ENGINE = Distributed({cluster}, {database}, {table}{LOCAL_SUFFIX}, "
            f"cityHash64{identity})"
        )
        return [local, distributed]
    altered = _ALTER_RE.match(stmt)
    if altered:
        table = altered[1]
        local = stmt.replace(f"{database}.{table} ", f"{database}.{table}{LOCAL_SUFFIX} ", 1)
        return [local] if _MODIFY_SETTING_RE.search(stmt) else [local, stmt]
    return [stmt]


# Table families and the time their retention counts from (settings.retention).
RETENTION: dict[str, tuple[tuple[str, str], ...]] = {
    "raw_events_days": (
        ("events_raw", "ingested_at"),
        ("dead_letters", "dead_lettered_at"),
        ("facets", "event_time"),
        ("dataset_facets", "last_seen"),
    ),
    "lineage_days": (
        ("runs", "last_event_time"),
        ("job_runs", "last_seen"),
        ("jobs", "last_seen"),
        ("datasets", "last_seen"),
        ("io_edges", "last_seen"),
        ("dataset_io", "last_seen"),
        ("dataset_aliases", "last_seen"),
    ),
    "quality_days": (("quality_assertions", "last_seen"), ("dataset_metrics", "last_seen")),
    "issues_days": (("issues", "updated_at"), ("webhook_deliveries", "updated_at")),
}


def apply_retention(settings: Settings, client: Client) -> list[str]:
    """Set (or remove) each table's TTL to match `settings.retention`; returns the
    statements run (none when every TTL is already as configured)."""
    ch = settings.clickhouse
    db, cluster = ch.database, ch.cluster
    on_cluster = f" ON CLUSTER {cluster}" if cluster else ""
    suffix = LOCAL_SUFFIX if cluster else ""
    current = dict(
        client.query(
            "SELECT name, create_table_query FROM system.tables WHERE database = {db:String}",
            parameters={"db": db},
        ).result_rows
    )
    ran = []
    for family, tables in RETENTION.items():
        days = getattr(settings.retention, family)
        for table, column in tables:
            target = f"{table}{suffix}"
            query = current.get(target, "")
            ttl = f"toDateTime({column}) + toIntervalDay({days})"
            has_ttl = " TTL " in query
            if days and ttl not in query:
                stmt = f"ALTER TABLE {db}.{target}{on_cluster} MODIFY TTL {ttl}"
            elif not days and has_ttl:
                stmt = f"ALTER TABLE {db}.{target}{on_cluster} REMOVE TTL"
            else:
                continue
            client.command(stmt)
            ran.append(stmt)
            log.info("retention set", extra={"table": target, "days": days})
    return ran


# MergeTree settings for fewer background merges (BENCHMARKS.md, session 17). ClickHouse's
# merge selector takes ~5 parts of similar size per merge by default, and fewer when a
# partition holds many parts; the pipeline inserts into a dozen tables every second or
# so, and merges were a third of the embedded server's CPU. Taking ~10 parts per merge
# rewrites each row fewer times (on the pipeline's inserts: merged rows -40%, the
# server's CPU per event -23%) for ~30% more parts at rest, which FINAL reads merge.
# Applied where the server knows the setting (ClickHouse 24.11 and later, and chDB).
MERGE_SETTINGS = {
    "merge_selector_base": "10",
    "merge_selector_enable_heuristic_to_lower_max_parts_to_merge_at_once": "0",
}


def tune_merges(
    settings: Settings, client: Client, wanted: dict[str, str] | None = None
) -> list[str]:
    """Give every MergeTree table of the database `MERGE_SETTINGS` (those the server
    knows); returns the statements run (none when every table has them already)."""
    wanted = MERGE_SETTINGS if wanted is None else wanted
    ch = settings.clickhouse
    db, cluster = ch.database, ch.cluster
    on_cluster = f" ON CLUSTER {cluster}" if cluster else ""
    known = {
        row[0]
        for row in client.query(
            "SELECT name FROM system.merge_tree_settings WHERE has({names:Array(String)}, name)",
            parameters={"names": list(wanted)},
        ).result_rows
    }
    assignments = [f"{name} = {value}" for name, value in wanted.items() if name in known]
    tables = client.query(
        "SELECT name, create_table_query FROM system.tables"
        " WHERE database = {db:String} AND engine LIKE '%MergeTree' ORDER BY name",
        parameters={"db": db},
    ).result_rows
    ran = []
    for table, query in tables:
        # each assignment whole: "merge_selector_base = 10" is not "... = 100"
        missing = [a for a in assignments if not re.search(rf"\b{re.escape(a)}(?![\w.])", query)]
        if not missing:
            continue
        stmt = f"ALTER TABLE {db}.{table}{on_cluster} MODIFY SETTING {', '.join(missing)}"
        client.command(stmt)
        ran.append(stmt)
    if ran:
        log.info("merge settings set", extra={"tables": len(ran), "settings": assignments})
    return ran


_LEDGER = """CREATE TABLE IF NOT EXISTS {db}.schema_migrations {on_cluster}
(version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC'))
ENGINE = {engine:ReplacingMergeTree(applied_at)} ORDER BY version"""


def applied_versions(client: Client, database: str) -> dict[int, str]:
    rows = client.query(
        f"SELECT version, argMax(checksum, applied_at) FROM {database}.schema_migrations "
        "GROUP BY version"
    ).result_rows
    return {int(v): c for v, c in rows}


def migrate(
    settings: Settings, client: Client | None = None, migrations: list[Migration] | None = None
) -> list[Migration]:
    """Bring the schema to the newest version; returns the migrations applied now."""
    ch = settings.clickhouse
    client = client or connect(ch, database=None)
    db, cluster = ch.database, ch.cluster
    on_cluster = f" ON CLUSTER {cluster}" if cluster else ""
    client.command(f"CREATE DATABASE IF NOT EXISTS {db}{on_cluster}")
    for stmt in render(_LEDGER, db, cluster):
        client.command(stmt)
    done = applied_versions(client, db)
    applied = []
    for migration in migrations if migrations is not None else available():
        if migration.version in done:
            if done[migration.version] != migration.checksum:
                log.warning(
                    "applied migration differs from the shipped file",
                    extra={"version": migration.version, "migration": migration.name},
                )
            continue
        for stmt in render(migration.sql, db, cluster):
            client.command(stmt)
        client.insert(
            f"{db}.schema_migrations",
            [[migration.version, migration.name, migration.checksum, datetime.now(UTC)]],
            column_names=["version", "name", "checksum", "applied_at"],
            settings={"distributed_foreground_insert": 1} if cluster else None,
        )
        log.info(
            "migration applied", extra={"version": migration.version, "migration": migration.name}
        )
        applied.append(migration)
    apply_retention(settings, client)
    if ch.tune_merges:
        tune_merges(settings, client)
    return applied
