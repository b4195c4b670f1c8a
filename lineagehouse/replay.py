"""`lineagehouse replay --from-raw`: rebuild the derived tables from `events_raw`.

After a derivation fix, every stored event is derived again with the current code and
written with the same sink as the worker's, then the issues of every job, check and
output it touched are recomputed as the issues stage would. Rows have content-derived
identities, so a replay is idempotent: run it twice, or while the worker runs, and
nothing is counted twice. `truncate=True` first empties the derived tables, so values
that an old bug wrote cannot win a max() against the corrected ones.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import orjson

from lineagehouse.processors.derive import Records, derive
from lineagehouse.processors.issue_stage import (
    ISSUE_COLUMNS,
    WATCHED_KINDS,
    IssueDetector,
    Subjects,
    issue_rows,
)
from lineagehouse.processors.records import KIND_NAMES
from lineagehouse.processors.sink import ClickHouseSink, write_records
from lineagehouse.settings import Settings
from lineagehouse.store.client import connect

log = logging.getLogger("lineagehouse.replay")

# The tables rebuilt from events_raw (dead letters are not derived from events).
DERIVED_TABLES = tuple(k for k in KIND_NAMES if k not in ("events_raw", "dead_letters"))
# Indexes that materialized views fill from the derived tables (schemas/clickhouse/0008
# and 0010): emptied with them, refilled as the replay writes.
VIEW_TABLES = ("job_runs", "dataset_io")
PAGE_SIZE = 5000  # events read, derived and written at once


@dataclass(frozen=True)
class ReplayResult:
    events: int
    rows: dict[str, int]
    failed: int  # events the current code cannot derive (logged with their id)
    issues: int = 0  # issues recomputed from the replayed subjects


def count_events(settings: Settings, since: datetime | None) -> int:
    client = connect(settings.clickhouse)
    where, params = _where(since)
    db = settings.clickhouse.database
    return int(client.command(f"SELECT count() FROM {db}.events_raw FINAL {where}", params))


def _where(since: datetime | None) -> tuple[str, dict]:
    if since is None:
        return "", {}
    return "WHERE event_time >= {since:DateTime64(3, 'UTC')}", {"since": since}


def replay_from_raw(
    settings: Settings,
    since: datetime | None = None,
    truncate: bool = False,
    page_size: int = PAGE_SIZE,
    on_progress: Callable[[int], None] = lambda n: None,
) -> ReplayResult:
    """Derive every stored event (from `since`, by event time) again and write the rows."""
    if truncate and since is not None:
        raise ValueError("truncate rebuilds everything; it cannot be combined with since")
    client = connect(settings.clickhouse)
    db = settings.clickhouse.database
    if truncate:
        cluster = settings.clickhouse.cluster
        for table in (*DERIVED_TABLES, *VIEW_TABLES):
            if cluster:  # the rows live in the shards' local tables
                client.command(f"TRUNCATE TABLE IF EXISTS {db}.{table}_local ON CLUSTER {cluster}")
            else:
                client.command(f"TRUNCATE TABLE IF EXISTS {db}.{table}")
        log.info("derived tables truncated", extra={"tables": list(DERIVED_TABLES)})
    sink = ClickHouseSink(settings.clickhouse, settings.worker.insert_retry_max_backoff_s)
    where, params = _where(since)
    joiner = "AND" if where else "WHERE"
    last = "00000000-0000-0000-0000-000000000000"
    events = failed = 0
    rows = dict.fromkeys(DERIVED_TABLES, 0)
    first = True
    subjects = Subjects()  # what the issues stage would have seen
    while True:
        page = client.query(
            f"SELECT event_id, payload, custom_facets FROM {db}.events_raw FINAL {where} "
            f"{joiner} event_id {'>=' if first else '>'} {{last:UUID}} "
            f"ORDER BY event_id LIMIT {int(page_size)}",
            {**params, "last": last},
        ).result_rows
        first = False
        if not page:
            break
        out: Records = {}
        for identity, payload, custom in page:
            try:
                derive(
                    orjson.loads(payload),
                    str(identity),
                    out,
                    custom,
                    settings.ingest.max_facet_bytes,
                )
            except Exception:
                failed += 1
                log.exception("event could not be derived", extra={"event_id": str(identity)})
        for kind, count in write_records(sink, db, out).items():
            rows[kind] += count
        for kind in WATCHED_KINDS:
            subjects.add(kind, out.get(kind, ()))
        events += len(page)
        last = str(page[-1][0])
        on_progress(len(page))
    issues = IssueDetector(settings, client).evaluate(subjects)
    if issues:
        sink.write_rows(f"{db}.issues", issue_rows(issues, int(time.time() * 1000)), ISSUE_COLUMNS)
    return ReplayResult(events, rows, failed, len(issues))
