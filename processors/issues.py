"""Pure: the issues a subject's history raises (a job's runs, a check's results on a
dataset, an output dataset's schemas). Imports nothing from Kafka or ClickHouse.

Every rule is a function of the history it is given, sorted by event time (never by
arrival), and an issue's id is a hash of its kind, its subject and the run that raised
it: computing it again from the same or a longer history gives the same id, so replays
and redeliveries never duplicate an issue. A resolution is "the first later run that
..."; a late event can only make it earlier, which is why the table keeps the minimum.

- `run_failed`: a run ended FAIL or ABORT; resolved by the job's next COMPLETE run.
- `duration_outlier`: a completed run of a batch job whose duration is further from the
  mean of the job's previous completed runs (the last `window`, at least `min_history`
  of them) than max(3 standard deviations, 10% of the mean); resolved by the next
  completed run back in range.
- `assertion_failed`: a check failed on a dataset (or column); resolved by the next run in
  which the same check on the same dataset and column passes. Skipped checks count for
  neither.
- `schema_changed`: an output dataset's schema differs from the one the previous run
  wrote. Breaking (a column removed or retyped) stays open until someone resolves it;
  informational (columns added only) is resolved as it opens.
"""

from __future__ import annotations

import hashlib
import math
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

import orjson

ISSUE_KINDS = ("assertion_failed", "run_failed", "duration_outlier", "schema_changed")
SEVERITIES = ("info", "warning", "error", "breaking")
TRANSITIONS = ("opened", "resolved")

# An open issue's resolution time in the table (2299-12-31T00:00:00Z, the last day of
# ClickHouse's DateTime64 range): min() over resolutions then picks any real one.
OPEN_UNTIL_MS = 10_413_705_600_000

# The `issues` table's columns, in the order of `Issue.row`.
ISSUE_COLUMNS = (
    "issue_id",
    "kind",
    "severity",
    "namespace",
    "dataset_namespace",
    "dataset_name",
    "column_name",
    "assertion",
    "job_namespace",
    "job_name",
    "run_id",
    "opened_at",
    "summary",
    "details",
    "resolution",
    "detected_at",
    "updated_at",
)

DEFAULT_MIN_HISTORY = 5
DEFAULT_WINDOW = 30


def issue_id(kind: str, *subject: str) -> str:
    """The identity of an issue: its kind, its subject and the run that raised it."""
    return hashlib.blake2b("\0".join((kind, *subject)).encode(), digest_size=16).hexdigest()


@dataclass(frozen=True)
class Issue:
    issue_id: str
    kind: str
    severity: str
    namespace: str
    opened_at: int  # event time of the cause, ms
    run_id: str  # the run that raised it
    summary: str
    dataset_namespace: str = ""
    dataset_name: str = ""
    column_name: str = ""
    assertion: str = ""
    job_namespace: str = ""
    job_name: str = ""
    details: dict[str, Any] = field(default_factory=dict)
    resolved_at: int | None = None
    resolved_by_run: str = ""
    resolved_how: str = ""

    def row(self, now_ms: int) -> dict[str, Any]:
        """The `issues` table row (times in ms)."""
        resolved = self.resolved_at is not None
        return {
            "issue_id": self.issue_id,
            "kind": self.kind,
            "severity": self.severity,
            "namespace": self.namespace,
            "dataset_namespace": self.dataset_namespace,
            "dataset_name": self.dataset_name,
            "column_name": self.column_name,
            "assertion": self.assertion,
            "job_namespace": self.job_namespace,
            "job_name": self.job_name,
            "run_id": self.run_id,
            "opened_at": self.opened_at,
            "summary": self.summary,
            "details": orjson.dumps(self.details, option=orjson.OPT_SORT_KEYS).decode(),
            "resolution": (
                self.resolved_at if resolved else OPEN_UNTIL_MS,
                self.resolved_by_run if resolved else "",
                self.resolved_how if resolved else "",
            ),
            "detected_at": now_ms,
            "updated_at": now_ms,
        }


# --- runs: run_failed and duration_outlier -------------------------------------------


def mean_and_spread(values: Sequence[float]) -> tuple[float, float]:
    """Mean and population standard deviation of `values` (not empty), in floats, two
    passes. The `statistics` module computes the deviation exactly, with fractions: ~50 us
    for 30 values, which made it most of the cost of judging a job's runs."""
    mean = math.fsum(values) / len(values)
    return mean, math.sqrt(math.fsum([(value - mean) ** 2 for value in values]) / len(values))


@dataclass(frozen=True, slots=True)
class RunFact:
    """A finished run of a job, as `runs` holds it."""

    run_id: str
    state: str  # COMPLETE, FAIL or ABORT
    ended_at: int
    started_at: int | None = None  # START event time; no duration without it
    error_message: str = ""

    @property
    def duration_ms(self) -> int | None:
        return None if self.started_at is None else self.ended_at - self.started_at


def run_issues(
    job_namespace: str,
    job_name: str,
    runs: Iterable[RunFact],
    *,
    streaming: bool = False,
    history_complete: bool = True,
    min_history: int = DEFAULT_MIN_HISTORY,
    window: int = DEFAULT_WINDOW,
) -> list[Issue]:
    """The run_failed and duration_outlier issues of one job's finished runs.

    `history_complete` is false when `runs` are only the latest of the job's runs: then
    the first `window` completed runs lack their full history and are not judged.
    """
    ordered = sorted(runs, key=lambda r: (r.ended_at, r.run_id))
    issues: list[Issue] = []
    failed: list[RunFact] = []  # not yet followed by a COMPLETE
    outliers: list[tuple[RunFact, dict[str, Any]]] = []  # not yet followed by a run in range
    history: deque[int] = deque(maxlen=window)
    judged = 0  # completed runs with a duration seen so far

    def job_issue(kind: str, run: RunFact, severity: str, summary: str, **extra: Any) -> Issue:
        return Issue(
            issue_id=issue_id(kind, job_namespace, job_name, run.run_id),
            kind=kind,
            severity=severity,
            namespace=job_namespace,
            job_namespace=job_namespace,
            job_name=job_name,
            run_id=run.run_id,
            opened_at=run.ended_at,
            summary=summary,
            **extra,
        )

    def failure(run: RunFact, resolver: RunFact | None) -> Issue:
        verb = "failed" if run.state == "FAIL" else "was aborted"
        resolution: dict[str, Any] = {}
        if resolver is not None:
            resolution = {
                "resolved_at": resolver.ended_at,
                "resolved_by_run": resolver.run_id,
                "resolved_how": "next run completed",
            }
        return job_issue(
            "run_failed",
            run,
            "error" if run.state == "FAIL" else "warning",
            f"{job_name} {verb}" + (f": {run.error_message}" if run.error_message else ""),
            details={"state": run.state, "error_message": run.error_message},
            **resolution,
        )

    for run in ordered:
        if run.state in ("FAIL", "ABORT"):
            failed.append(run)
            continue
        if run.state != "COMPLETE":
            continue
        issues += [failure(earlier, run) for earlier in failed]
        failed = []
        duration = run.duration_ms
        if streaming or duration is None:
            continue
        judged += 1
        if len(history) >= min_history and (history_complete or judged > window):
            mean, spread = mean_and_spread(history)
            allowed = max(3 * spread, 0.1 * mean)
            if abs(duration - mean) > allowed:
                facts = {
                    "duration_ms": duration,
                    "mean_ms": round(mean, 3),
                    "stddev_ms": round(spread, 3),
                    "low_ms": round(mean - allowed, 3),
                    "high_ms": round(mean + allowed, 3),
                    "history_runs": len(history),
                }
                outliers.append((run, facts))
            else:
                for outlier, outlier_facts in outliers:
                    issues.append(_outlier_issue(job_issue, outlier, outlier_facts, run))
                outliers = []
        history.append(duration)
    issues += [failure(run, None) for run in failed]
    for outlier, facts in outliers:
        issues.append(_outlier_issue(job_issue, outlier, facts, None))
    return issues


def _outlier_issue(job_issue: Any, run: RunFact, facts: dict, resolver: RunFact | None) -> Issue:
    slower = facts["duration_ms"] > facts["mean_ms"]
    summary = (
        f"run took {facts['duration_ms'] / 1000:.1f} s, "
        f"{'above' if slower else 'below'} the usual "
        f"{facts['low_ms'] / 1000:.1f}-{facts['high_ms'] / 1000:.1f} s"
    )
    resolution: dict[str, Any] = {}
    if resolver is not None:
        resolution = {
            "resolved_at": resolver.ended_at,
            "resolved_by_run": resolver.run_id,
            "resolved_how": "next run back in range",
        }
    return job_issue("duration_outlier", run, "warning", summary, details=facts, **resolution)


# --- checks: assertion_failed -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One run's result of one check on one dataset (column)."""

    run_id: str
    time: int
    status: str  # pass, fail or skipped
    severity: str = ""
    expected: str = ""
    actual: str = ""
    job_namespace: str = ""
    job_name: str = ""


def assertion_issues(
    namespace: str,
    name: str,
    assertion: str,
    column: str,
    check_name: str,
    results: Iterable[CheckResult],
) -> list[Issue]:
    """One issue per failed result; each resolved by the next passing result."""
    issues: list[Issue] = []
    open_failures: list[CheckResult] = []

    def issue(failure: CheckResult, resolver: CheckResult | None) -> Issue:
        where = f"{name}.{column}" if column else name
        label = check_name or assertion
        return Issue(
            issue_id=issue_id(
                "assertion_failed", namespace, name, column, assertion, check_name, failure.run_id
            ),
            kind="assertion_failed",
            severity="warning" if failure.severity in ("warn", "warning") else "error",
            namespace=namespace,
            dataset_namespace=namespace,
            dataset_name=name,
            column_name=column,
            assertion=assertion,
            job_namespace=failure.job_namespace,
            job_name=failure.job_name,
            run_id=failure.run_id,
            opened_at=failure.time,
            summary=f"{label} failed on {where}",
            details={
                "check_name": check_name,
                "expected": failure.expected,
                "actual": failure.actual,
                "check_severity": failure.severity,
            },
            resolved_at=resolver.time if resolver else None,
            resolved_by_run=resolver.run_id if resolver else "",
            resolved_how="check passed" if resolver else "",
        )

    for result in sorted(results, key=lambda r: (r.time, r.run_id)):
        if result.status == "fail":
            open_failures.append(result)
        elif result.status == "pass":
            issues += [issue(failure, result) for failure in open_failures]
            open_failures = []
    issues += [issue(failure, None) for failure in open_failures]
    return issues


# --- schemas: schema_changed --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SchemaFact:
    """The schema a run wrote to an output dataset."""

    run_id: str
    time: int
    schema_hash: str
    fields: Sequence[tuple[str, str]]  # (dotted name, type)
    job_namespace: str = ""
    job_name: str = ""


def schema_diff(before: Sequence[tuple[str, str]], after: Sequence[tuple[str, str]]) -> dict:
    old, new = dict(before), dict(after)
    return {
        "added": [name for name in new if name not in old],
        "removed": [name for name in old if name not in new],
        "retyped": [
            {"name": name, "from": old[name], "to": new[name]}
            for name in new
            if name in old and old[name] != new[name]
        ],
    }


def schema_issues(namespace: str, name: str, writes: Iterable[SchemaFact]) -> list[Issue]:
    """One issue per run whose output schema differs from the previous run's."""
    issues: list[Issue] = []
    previous: SchemaFact | None = None
    for write in sorted(writes, key=lambda w: (w.time, w.run_id)):
        if not write.schema_hash:
            continue
        if previous is not None and write.schema_hash != previous.schema_hash:
            diff = schema_diff(previous.fields, write.fields)
            breaking = bool(diff["removed"] or diff["retyped"])
            parts = [
                f"{len(diff[part])} column(s) {part}"
                for part in ("removed", "retyped", "added")
                if diff[part]
            ]
            issues.append(
                Issue(
                    issue_id=issue_id(
                        "schema_changed",
                        namespace,
                        name,
                        previous.schema_hash,
                        write.schema_hash,
                        write.run_id,
                    ),
                    kind="schema_changed",
                    severity="breaking" if breaking else "info",
                    namespace=namespace,
                    dataset_namespace=namespace,
                    dataset_name=name,
                    job_namespace=write.job_namespace,
                    job_name=write.job_name,
                    run_id=write.run_id,
                    opened_at=write.time,
                    summary=f"schema of {name} changed: " + ", ".join(parts or ["types"]),
                    details={**diff, "previous_run_id": previous.run_id},
                    # Informational changes need no action: resolved as they open.
                    resolved_at=None if breaking else write.time,
                    resolved_by_run="" if breaking else write.run_id,
                    resolved_how="" if breaking else "informational",
                )
            )
        previous = write
    return issues


def _iso(value: Any) -> str | None:
    """A stored time (datetime, naive = UTC) as ISO 8601 with milliseconds and 'Z'."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="milliseconds") + "Z"


def public_issue(row: dict[str, Any]) -> dict[str, Any]:
    """An `issue_states` row as the API and webhooks show it."""
    try:
        details = orjson.loads(row["details"]) if row["details"] else {}
    except orjson.JSONDecodeError:
        details = {"raw": row["details"]}
    return {
        "issue_id": row["issue_id"],
        "kind": row["kind"],
        "severity": row["severity"],
        "status": row["status"],
        "namespace": row["namespace"],
        "dataset": {"namespace": row["dataset_namespace"], "name": row["dataset_name"]}
        if row["dataset_name"]
        else None,
        "column": row["column_name"] or None,
        "assertion": row["assertion"] or None,
        "job": {"namespace": row["job_namespace"], "name": row["job_name"]}
        if row["job_name"]
        else None,
        "run_id": row["run_id"] or None,
        "opened_at": _iso(row["opened_at"]),
        "resolved_at": _iso(row["resolved_at"]),
        "resolved_by_run": row["resolved_by_run"] or None,
        "resolved_how": row["resolved_how"] or None,
        "summary": row["summary"],
        "details": details,
        "detected_at": _iso(row["detected_at"]),
    }
