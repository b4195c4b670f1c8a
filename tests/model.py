"""What the stored lineage model must hold for a set of events, from the pure derivation.

`expected_counts(events)` gives, per table, the number of distinct identities the events
derive (each table's ORDER BY key); `stored_counts` reads the same from ClickHouse with
FINAL. Crash and emitter tests compare the two.
"""

from __future__ import annotations

from typing import Any

from clickhouse_connect.driver.client import Client

from lineagehouse.processors.derive import derive
from lineagehouse.processors.events import event_id
from lineagehouse.processors.issues import RunFact, run_issues
from lineagehouse.processors.records import KINDS, combine

# The identity (ORDER BY) of each table.
IDENTITIES: dict[str, tuple[str, ...]] = {
    "events_raw": ("event_id",),
    "facets": (
        "run_id",
        "entity_kind",
        "entity_namespace",
        "entity_name",
        "facet_group",
        "event_id",
    ),
    **{kind.name: kind.key for kind in KINDS if kind.key},
    # filled by a materialized view (schemas/clickhouse/0010_dataset_index.sql)
    "dataset_io": ("namespace", "name", "direction", "job_namespace", "job_name", "run_id"),
}


def expected_counts(events: list[dict[str, Any]]) -> dict[str, int]:
    keys: dict[str, set[tuple]] = {kind: set() for kind in IDENTITIES}
    for event in events:
        identity = str(event_id(event))
        keys["events_raw"].add((identity,))
        for kind, rows in derive(event, identity).items():
            names = IDENTITIES[kind]
            keys[kind].update(tuple(row[name] for name in names) for row in rows)
            if kind == "io_edges":
                names = IDENTITIES["dataset_io"]
                keys["dataset_io"].update(tuple(row[name] for name in names) for row in rows)
    return {kind: len(found) for kind, found in keys.items()}


def stored_counts(ch: Client, database: str) -> dict[str, int]:
    return {
        kind: int(ch.command(f"SELECT count() FROM {database}.{kind} FINAL")) for kind in IDENTITIES
    }


def raw_rows(ch: Client, database: str) -> int:
    """Rows in events_raw before merging (copies included): progress of the sink."""
    return int(ch.command(f"SELECT count() FROM {database}.events_raw"))


def expected_run_issues(events: list[dict[str, Any]]) -> dict[str, str]:
    """issue id -> the run that resolved it ('' while open), for the run_failed and
    duration_outlier issues the events raise (final run states from the pure derivation,
    then the pure rules with their default settings)."""
    rows = []
    for event in events:
        rows += derive(event, str(event_id(event))).get("runs", [])
    by_job: dict[tuple[str, str], list[RunFact]] = {}
    for run in combine("runs", rows):
        state = run["state"]
        if state["terminal"]:
            fact = RunFact(run["run_id"], state["name"], state["time"], run["started_at"])
            by_job.setdefault((run["job_namespace"], run["job_name"]), []).append(fact)
    return {
        issue.issue_id: issue.resolved_by_run
        for (namespace, name), facts in by_job.items()
        for issue in run_issues(namespace, name, facts)
    }


def stored_issues(ch: Client, database: str) -> dict[str, str]:
    rows = ch.query(f"SELECT issue_id, resolved_by_run FROM {database}.issue_states").result_rows
    return dict(rows)
