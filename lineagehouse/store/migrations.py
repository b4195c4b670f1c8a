"""Versioned, idempotent ClickHouse migrations from `schemas/clickhouse/NNNN_name.sql`.

Each file is a list of `;`-terminated statements with placeholders: `{db}` (database),
`{on_cluster}` (empty, or `ON CLUSTER name`), `{engine:Default()}` (the table engine; in
cluster mode the Replicated variant). Every statement is itself idempotent (IF NOT
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
    return [stmt.strip() for stmt in text.split(";\n") if stmt.strip().rstrip(";")]


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
        )
        log.info(
            "migration applied", extra={"version": migration.version, "migration": migration.name}
        )
        applied.append(migration)
    return applied
