"""Data quality and issues in ClickHouse: the issues list and manual resolution, a
dataset's check results and metrics per run, a job's run durations with their usual band.

SQL and rows in, plain dicts out (snake_case, times ISO-8601 UTC); no HTTP. The rules of
`catalog.py` hold: every user value is a server-side parameter; aggregated tables are read
with FINAL and their Tuple parts with tupleElement() over a `SELECT * FROM t FINAL`
subquery; issues are read through the view `issue_states` (it does that). Lists are
limited to the namespaces the caller may read (an issue's `namespace` column: its
dataset's, else its job's); callers check access to single objects themselves.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

from clickhouse_connect.driver.client import Client

from lineagehouse.api.access import Caller
from lineagehouse.api.catalog import Page, Where, dict_rows, iso, parse_json, runs_of_jobs, utc
from lineagehouse.processors.issues import ISSUE_COLUMNS, mean_and_spread, public_issue

# Metrics of one column reported under several directions in one run: the output's win
# (what the run wrote), then the input's, then a DatasetEvent's.
DIRECTION_RANK = {"output": 0, "input": 1, "": 2}
COLUMN_METRICS = ("null_count", "distinct_count", "sum", "count", "min", "max")


def duration_band(durations: list[int]) -> dict[str, Any]:
    """Mean, population standard deviation and the usual band of durations (ms): mean
    plus or minus max(3 standard deviations, 10% of the mean), the rule of the
    duration_outlier issue (processors/issues.py)."""
    if not durations:
        return {"complete_runs": 0, "mean_ms": None, "stddev_ms": None, "band": None}
    mean, spread = mean_and_spread(durations)
    allowed = max(3 * spread, 0.1 * mean)
    return {
        "complete_runs": len(durations),
        "mean_ms": round(mean, 3),
        "stddev_ms": round(spread, 3),
        "band": {"low_ms": round(mean - allowed, 3), "high_ms": round(mean + allowed, 3)},
    }


def issue_json(row: dict[str, Any]) -> dict[str, Any]:
    """An `issue_states` row as the API shows it: what webhooks send
    (`processors/issues.public_issue`), plus when it was last written."""
    return {**public_issue(row), "updated_at": iso(row["updated_at"])}


def _finite(value: float | None) -> float | None:
    return None if value is None or not math.isfinite(value) else value


class Quality:
    """Reads of quality results and issues, and manual resolution, on one client and
    database."""

    def __init__(self, client: Client, db: str) -> None:
        self.client = client
        self.db = db

    def _rows(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return dict_rows(self.client, sql, params)

    # -- issues -------------------------------------------------------------------------

    def list_issues(
        self,
        caller: Caller,
        kind: str | None = None,
        status: str | None = None,
        severity: str | None = None,
        namespace: str | None = None,
        dataset: tuple[str | None, str | None] = (None, None),
        job: tuple[str | None, str | None] = (None, None),
        run_id: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Page:
        """Issues, most recently opened first. `dataset` and `job` are (namespace, name),
        either part None for any; `since`/`until` bound `opened_at` (inclusive)."""
        where = Where().scope("namespace", caller)
        for column, value in (
            ("kind", kind),
            ("status", status),
            ("severity", severity),
            ("namespace", namespace),
            ("dataset_namespace", dataset[0]),
            ("dataset_name", dataset[1]),
            ("job_namespace", job[0]),
            ("job_name", job[1]),
            ("run_id", run_id),
        ):
            if value is not None:
                where.add(f"{column} = {{{column}:String}}", **{column: value})
        if since is not None:
            where.add("opened_at >= {since:DateTime64(3, 'UTC')}", since=utc(since))
        if until is not None:
            where.add("opened_at <= {until:DateTime64(3, 'UTC')}", until=utc(until))
        sql = f"SELECT * FROM {self.db}.issue_states {where.sql()}"
        rows = self._rows(
            f"{sql} ORDER BY opened_at DESC, issue_id LIMIT {{limit:UInt32}} "
            "OFFSET {offset:UInt64}",
            {**where.params, "limit": limit, "offset": offset},
        )
        total = int(self.client.command(f"SELECT count() FROM ({sql})", parameters=where.params))
        return Page([issue_json(r) for r in rows], total)

    def _issue_row(self, issue_id: str) -> dict[str, Any] | None:
        rows = self._rows(
            f"SELECT * FROM {self.db}.issue_states WHERE issue_id = {{id:String}}",
            {"id": issue_id},
        )
        return rows[0] if rows else None

    def get_issue(self, issue_id: str) -> dict[str, Any] | None:
        row = self._issue_row(issue_id)
        return issue_json(row) if row is not None else None

    def resolve_issue(self, issue_id: str, by: str = "") -> tuple[dict[str, Any] | None, bool]:
        """Resolve an open issue by hand: (the issue now, True), or (the unchanged issue,
        False) when it was already resolved, or (None, False) when there is no such issue.

        A row with resolution (now, '', 'resolved by <by>') joins the issue's rows: every
        other column is copied from the current state, so max() keeps them and min() keeps
        `detected_at`. The issues stage may later find a run that resolved it earlier (by
        event time); min() then moves the resolution to that run.
        """
        row = self._issue_row(issue_id)
        if row is None or row["status"] != "open":
            return (issue_json(row) if row is not None else None), False
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        kept = [c for c in ISSUE_COLUMNS if c not in ("resolution", "updated_at")]
        self.client.insert(
            f"{self.db}.issues",
            [[*(row[c] for c in kept), (now, "", f"resolved by {by or 'api'}"), now]],
            column_names=[*kept, "resolution", "updated_at"],
        )
        after = self._issue_row(issue_id)
        return (issue_json(after) if after is not None else None), True

    def open_issue_count(self, namespace: str, name: str) -> int:
        return int(
            self.client.command(
                f"SELECT count() FROM {self.db}.issue_states WHERE status = 'open' "
                "AND dataset_namespace = {namespace:String} AND dataset_name = {name:String}",
                parameters={"namespace": namespace, "name": name},
            )
        )

    # -- existence ----------------------------------------------------------------------

    def dataset_exists(self, namespace: str, name: str) -> bool:
        return self._exists("datasets", namespace, name)

    def job_exists(self, namespace: str, name: str) -> bool:
        return self._exists("jobs", namespace, name)

    def _exists(self, table: str, namespace: str, name: str) -> bool:
        """Any row of `table` for the name (soft-deleted ones too: their history stays)."""
        return bool(
            self.client.command(
                f"SELECT count() FROM {self.db}.{table} WHERE namespace = {{namespace:String}} "
                "AND name = {name:String}",
                parameters={"namespace": namespace, "name": name},
            )
        )

    # -- a dataset's quality ------------------------------------------------------------

    def dataset_quality(self, namespace: str, name: str, runs: int = 20) -> dict[str, Any]:
        """The last `runs` runs (by the time of their latest result, newest first) that
        reported checks or metrics on the dataset, each with its check results and
        metrics; a summary per check over those runs; the dataset's open issues.

        Results from DatasetEvents (no run) count as one entry with `run_id` null.
        """
        key = {"namespace": namespace, "name": name}
        cond = "namespace = {namespace:String} AND name = {name:String}"
        picked = self._rows(
            "SELECT run_id, max(seen) AS time, max(job_ns) AS job_namespace, "
            "max(job) AS job_name FROM ("
            "SELECT run_id, last_seen AS seen, job_namespace AS job_ns, job_name AS job "
            f"FROM (SELECT * FROM {self.db}.quality_assertions FINAL WHERE {cond}) "
            "UNION ALL SELECT run_id, last_seen, job_namespace, job_name "
            f"FROM (SELECT * FROM {self.db}.dataset_metrics FINAL WHERE {cond})) "
            "GROUP BY run_id ORDER BY time DESC, run_id LIMIT {runs:UInt32}",
            {**key, "runs": runs},
        )
        ids = [r["run_id"] for r in picked]
        params = {**key, "ids": ids}
        assertions = self._rows(
            "SELECT run_id, assertion, column_name, check_name, "
            "tupleElement(result, 'time') AS time, tupleElement(result, 'status') AS status, "
            "tupleElement(result, 'severity') AS severity, "
            "tupleElement(result, 'expected') AS expected, "
            "tupleElement(result, 'actual') AS actual, "
            "tupleElement(result, 'description') AS description "
            f"FROM (SELECT * FROM {self.db}.quality_assertions FINAL WHERE {cond} "
            "AND run_id IN {ids:Array(String)}) ORDER BY assertion, column_name, check_name",
            params,
        )
        final = (
            f"(SELECT * FROM {self.db}.dataset_metrics FINAL WHERE {cond} "
            "AND run_id IN {ids:Array(String)})"
        )
        whole = ", ".join(
            f"tupleElement(dataset, '{p}') AS {p}"
            for p in ("row_count", "byte_count", "file_count", "last_updated")
        )
        metrics = self._rows(
            f"SELECT run_id, direction, '' AS column_name, {whole} FROM {final} "
            "WHERE tupleElement(dataset, 'time') > 0",
            params,
        )
        parts = ", ".join(f"tupleElement(c, '{p}') AS {p}" for p in (*COLUMN_METRICS, "quantiles"))
        metrics += self._rows(
            f"SELECT run_id, direction, tupleElement(c, 'name') AS column_name, {parts} "
            f"FROM (SELECT run_id, direction, tupleElement(columns, 'metrics') AS cs FROM {final}) "
            "ARRAY JOIN cs AS c ORDER BY column_name",
            params,
        )
        states = {
            r["run_id"]: r["state_name"]
            for r in self._rows(
                f"SELECT run_id, state_name FROM {self.db}.run_states "
                "WHERE run_id IN {ids:Array(String)}",
                {"ids": [i for i in ids if i]},
            )
        }

        by_run: dict[str, dict[str, Any]] = {}
        for r in picked:
            job = None
            if r["job_namespace"] or r["job_name"]:
                job = {"namespace": r["job_namespace"], "name": r["job_name"]}
            by_run[r["run_id"]] = {
                "run_id": r["run_id"] or None,
                "job": job,
                "time": iso(r["time"]),
                "state": states.get(r["run_id"]),
                "counts": {"pass": 0, "fail": 0, "skipped": 0},
                "assertions": [],
                "metrics": {"dataset": None, "columns": {}},
            }
        checks: dict[tuple[str, str, str], dict[str, Any]] = {}
        order = {r["run_id"]: i for i, r in enumerate(picked)}  # 0: the newest run
        for a in assertions:
            entry = by_run[a["run_id"]]
            status = a["status"]
            entry["assertions"].append(
                {
                    "assertion": a["assertion"],
                    "column": a["column_name"] or None,
                    "check_name": a["check_name"] or None,
                    "status": status,
                    "severity": a["severity"] or None,
                    "expected": a["expected"] or None,
                    "actual": a["actual"] or None,
                    "description": a["description"] or None,
                }
            )
            if status in entry["counts"]:
                entry["counts"][status] += 1
            ident = (a["assertion"], a["column_name"], a["check_name"])
            summary = checks.setdefault(
                ident,
                {
                    "assertion": a["assertion"],
                    "column": a["column_name"] or None,
                    "check_name": a["check_name"] or None,
                    "passed": 0,
                    "failed": 0,
                    "skipped": 0,
                    "last_status": None,
                    "_last": None,
                },
            )
            summary[{"pass": "passed", "fail": "failed"}.get(status, "skipped")] += 1
            rank = (-order[a["run_id"]], a["time"])
            if summary["_last"] is None or rank > summary["_last"]:
                summary["_last"] = rank
                summary["last_status"] = status

        best: dict[tuple[str, str], int] = {}
        for m in metrics:
            rank = DIRECTION_RANK.get(m["direction"], 3)
            slot = (m["run_id"], m["column_name"])
            if slot in best and best[slot] <= rank:
                continue
            best[slot] = rank
            target = by_run[m["run_id"]]["metrics"]
            if m["column_name"] == "":
                target["dataset"] = {
                    "direction": m["direction"] or None,
                    "row_count": m["row_count"],
                    "byte_count": m["byte_count"],
                    "file_count": m["file_count"],
                    "last_updated": iso(m["last_updated"]),
                }
            else:
                target["columns"][m["column_name"]] = {
                    "direction": m["direction"] or None,
                    **{
                        p: _finite(m[p]) if p in ("sum", "count", "min", "max") else m[p]
                        for p in COLUMN_METRICS
                    },
                    "quantiles": parse_json(m["quantiles"]),
                }
        summaries = []
        for summary in sorted(
            checks.values(),
            key=lambda s: (s["assertion"], s["column"] or "", s["check_name"] or ""),
        ):
            del summary["_last"]
            summaries.append(summary)
        return {
            "namespace": namespace,
            "name": name,
            "runs": [by_run[i] for i in ids],
            "assertions": summaries,
            "open_issues": self.open_issue_count(namespace, name),
        }

    # -- a job's durations --------------------------------------------------------------

    def job_durations(self, namespace: str, name: str, runs: int = 30) -> dict[str, Any]:
        """The job's last `runs` finished runs, oldest first (a chart's order), each with
        its duration (null without a START event, as the duration_outlier rule has it) and
        whether a duration_outlier issue was raised for it; mean, standard deviation and
        band over the COMPLETE ones with a duration."""
        of_job = "job_namespace = {namespace:String} AND job_name = {name:String}"
        job = f"{of_job} AND {runs_of_jobs(self.db, of_job)}"  # its runs, by key
        rows = self._rows(
            "SELECT s.run_id AS run_id, s.state_name AS state, s.started AS started, "
            "s.ended_at AS ended_at, s.duration_ms AS duration_ms, "
            "r.started_at IS NOT NULL AS has_start FROM "
            f"(SELECT run_id, state_name, started, ended_at, duration_ms FROM {self.db}.run_states "
            f"WHERE {job} AND ended_at IS NOT NULL ORDER BY ended_at DESC, run_id DESC "
            "LIMIT {runs:UInt32}) AS s "
            f"LEFT JOIN (SELECT run_id, started_at FROM {self.db}.runs FINAL WHERE {job}) AS r "
            "ON r.run_id = s.run_id ORDER BY ended_at, run_id",
            {"namespace": namespace, "name": name, "runs": runs},
        )
        outliers = {
            r["run_id"]
            for r in self._rows(
                f"SELECT run_id FROM {self.db}.issue_states WHERE kind = 'duration_outlier' "
                "AND job_namespace = {namespace:String} AND job_name = {name:String} "
                "AND run_id IN {ids:Array(String)}",
                {"namespace": namespace, "name": name, "ids": [r["run_id"] for r in rows]},
            )
        }
        items = []
        for r in rows:
            duration = None
            if r["has_start"] and r["duration_ms"] is not None:
                duration = int(r["duration_ms"])
            items.append(
                {
                    "run_id": r["run_id"],
                    "state": r["state"],
                    "started_at": iso(r["started"]) if r["has_start"] else None,
                    "ended_at": iso(r["ended_at"]),
                    "duration_ms": duration,
                    "outlier": r["run_id"] in outliers,
                }
            )
        complete = [
            i["duration_ms"]
            for i in items
            if i["state"] == "COMPLETE" and i["duration_ms"] is not None
        ]
        return {"namespace": namespace, "name": name, "runs": items, **duration_band(complete)}
