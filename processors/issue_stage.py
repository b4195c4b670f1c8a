"""The issues stage: recompute the issues of whatever a batch of derived records touched,
from ClickHouse, and call webhooks (adapter for the pure rules in `issues.py`).

Commit protocol of this stage:

1. Consume a batch from the derived `runs`, `quality_assertions` and `io_edges` topics
   (consumer group `issues.group_id`, manual commits).
2. Wait until the sink group has committed past every message of the batch: its rows
   are then in ClickHouse (the sink commits after the insert).
3. Decode the records and collect the subjects they touch: jobs (runs), checks on
   datasets (assertions), output datasets with a schema (io edges).
4. Read each subject's history from ClickHouse (the latest `issues.history_runs`) and
   apply the rules; write every issue found (`issues` merges copies: same id, same
   content, resolution = the earliest seen).
5. Commit the batch's offsets; wake the webhook dispatcher.

The state behind every issue is in ClickHouse, so a restart (or the embedded broker
losing its topics) loses nothing: a replayed batch recomputes the same issues. The
dispatcher works from the tables alone (`webhook_deliveries` is its outbox), so a call
that was due when the process died is made after the restart.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from clickhouse_connect.driver.client import Client
from confluent_kafka import Message, TopicPartition

from lineagehouse import metrics
from lineagehouse.processors import avro, webhooks
from lineagehouse.processors.faults import Faults
from lineagehouse.processors.issues import (
    ISSUE_COLUMNS,
    CheckResult,
    Issue,
    RunFact,
    SchemaFact,
    assertion_issues,
    public_issue,
    run_issues,
    schema_issues,
)
from lineagehouse.processors.kafka import batch_consumer, commit, next_offsets, usable
from lineagehouse.processors.sink import ClickHouseSink, SinkStopped
from lineagehouse.settings import Settings
from lineagehouse.store.client import connect
from lineagehouse.store.webhooks import list_webhooks

log = logging.getLogger("lineagehouse.issues")

WATCHED_KINDS = ("runs", "quality_assertions", "io_edges")
_CHUNK = 1000  # subjects per query
_IN_PAIRS = "(SELECT arrayJoin({subjects:Array(Tuple(String, String))}))"
_IN_CHECKS = "(SELECT arrayJoin({subjects:Array(Tuple(String, String, String, String, String))}))"


def _dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def _ms(value: datetime) -> int:
    """A stored time (naive means UTC) in ms since the epoch."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return int(value.timestamp() * 1000)


def issue_rows(issues: Iterable[Issue], now_ms: int) -> list[list[Any]]:
    """`issues` rows for clickhouse-connect (times as datetimes)."""
    rows = []
    for issue in issues:
        row = issue.row(now_ms)
        resolved_at, run_id, how = row["resolution"]
        row["resolution"] = (_dt(resolved_at), run_id, how)
        for column in ("opened_at", "detected_at", "updated_at"):
            row[column] = _dt(row[column])
        rows.append([row[column] for column in ISSUE_COLUMNS])
    return rows


@dataclass
class Subjects:
    """What a batch of derived records touched."""

    jobs: set[tuple[str, str]] = field(default_factory=set)
    checks: set[tuple[str, str, str, str, str]] = field(default_factory=set)
    outputs: set[tuple[str, str]] = field(default_factory=set)

    # The fields `add` reads, per kind: the stage decodes only these.
    FIELDS: ClassVar[dict[str, tuple[str, ...]]] = {
        "runs": ("job_namespace", "job_name"),
        "quality_assertions": ("namespace", "name", "assertion", "column_name", "check_name"),
        "io_edges": ("namespace", "name", "direction", "version_id", "run_id"),
    }

    def add(self, kind: str, records: Iterable[dict[str, Any]]) -> None:
        if kind == "runs":
            self.jobs.update((r["job_namespace"], r["job_name"]) for r in records)
        elif kind == "quality_assertions":
            self.checks.update(
                (r["namespace"], r["name"], r["assertion"], r["column_name"], r["check_name"])
                for r in records
            )
        elif kind == "io_edges":
            self.outputs.update(
                (r["namespace"], r["name"])
                for r in records
                if r["direction"] == "output" and r["version_id"] and r["run_id"]
            )

    def __len__(self) -> int:
        return len(self.jobs) + len(self.checks) + len(self.outputs)


def _chunks(items: Iterable[Any]) -> Iterable[list[Any]]:
    items = sorted(items)
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


class IssueDetector:
    """Reads subjects' histories from ClickHouse and applies the rules."""

    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self.settings = settings
        self.client: Any = client  # connected on first use when None
        self.db = settings.clickhouse.database

    def evaluate(self, subjects: Subjects) -> list[Issue]:
        if self.client is None:
            self.client = connect(self.settings.clickhouse)
        found: list[Issue] = []
        for chunk in _chunks(subjects.jobs):
            found += self._job_issues(chunk)
        for chunk in _chunks(subjects.checks):
            found += self._check_issues(chunk)
        for chunk in _chunks(subjects.outputs):
            found += self._schema_issues(chunk)
        return found

    def _job_issues(self, jobs: list[tuple[str, str]]) -> list[Issue]:
        limit = self.settings.issues.history_runs
        rows = self.client.query(
            f"""
            SELECT job_namespace, job_name, run_id, tupleElement(state, 'name'),
                   toUnixTimestamp64Milli(tupleElement(state, 'time')) AS ended,
                   toUnixTimestamp64Milli(started_at), error_message, processing_type
            FROM (
                SELECT job_namespace, job_name, run_id, state, started_at, error_message,
                       processing_type
                FROM {self.db}.runs FINAL
                WHERE run_id IN (
                    SELECT run_id FROM {self.db}.job_runs
                    WHERE (job_namespace, job_name) IN {_IN_PAIRS}
                )
            )
            WHERE tupleElement(state, 'terminal') = 1
            ORDER BY ended DESC, run_id DESC
            LIMIT {limit + 1} BY job_namespace, job_name
            """,
            parameters={"subjects": jobs},
        ).result_rows
        by_job: dict[tuple[str, str], list[Any]] = {}
        for row in rows:
            by_job.setdefault((row[0], row[1]), []).append(row)
        issues_settings = self.settings.issues
        found: list[Issue] = []
        for (namespace, name), job_rows in by_job.items():
            complete = len(job_rows) <= limit
            facts = [
                RunFact(run_id, state, ended, started, error or "")
                for _, _, run_id, state, ended, started, error, _ in job_rows[:limit]
            ]
            streaming = any(row[7] == "STREAMING" for row in job_rows)
            found += run_issues(
                namespace,
                name,
                facts,
                streaming=streaming,
                history_complete=complete,
                min_history=issues_settings.duration_min_history,
                window=issues_settings.duration_window,
            )
        return found

    def _check_issues(self, checks: list[tuple[str, str, str, str, str]]) -> list[Issue]:
        rows = self.client.query(
            f"""
            SELECT namespace, name, assertion, column_name, check_name, run_id,
                   toUnixTimestamp64Milli(tupleElement(result, 'time')) AS t,
                   tupleElement(result, 'status'), tupleElement(result, 'severity'),
                   tupleElement(result, 'expected'), tupleElement(result, 'actual'),
                   job_namespace, job_name
            FROM (
                SELECT * FROM {self.db}.quality_assertions FINAL
                WHERE (namespace, name, assertion, column_name, check_name) IN {_IN_CHECKS}
            )
            ORDER BY t DESC, run_id DESC
            LIMIT {self.settings.issues.history_runs}
                BY namespace, name, assertion, column_name, check_name
            """,
            parameters={"subjects": checks},
        ).result_rows
        by_check: dict[tuple, list[CheckResult]] = {}
        for row in rows:
            by_check.setdefault(tuple(row[:5]), []).append(CheckResult(*row[5:]))
        found: list[Issue] = []
        for (namespace, name, assertion, column, check_name), results in by_check.items():
            found += assertion_issues(namespace, name, assertion, column, check_name, results)
        return found

    def _schema_issues(self, outputs: list[tuple[str, str]]) -> list[Issue]:
        rows = self.client.query(
            f"""
            SELECT e.namespace, e.name, e.run_id, e.t, v.schema_hash, v.field_names,
                   v.field_types, e.job_namespace, e.job_name
            FROM (
                SELECT namespace, name, run_id, version_id, job_namespace, job_name,
                       toUnixTimestamp64Milli(last_seen) AS t
                FROM {self.db}.io_edges FINAL
                WHERE direction = 'output' AND run_id != '' AND version_id != ''
                  AND (namespace, name) IN {_IN_PAIRS}
            ) AS e
            INNER JOIN (
                SELECT namespace, name, version_id, schema_hash, field_names, field_types
                FROM {self.db}.dataset_versions FINAL
                WHERE (namespace, name) IN {_IN_PAIRS}
            ) AS v ON e.namespace = v.namespace AND e.name = v.name AND e.version_id = v.version_id
            ORDER BY e.t DESC, e.run_id DESC
            LIMIT {self.settings.issues.history_runs} BY e.namespace, e.name
            """,
            parameters={"subjects": outputs},
        ).result_rows
        by_dataset: dict[tuple[str, str], list[SchemaFact]] = {}
        for ns, name, run_id, t, schema_hash, names, types, job_ns, job_name in rows:
            fact = SchemaFact(
                run_id, t, schema_hash, list(zip(names, types, strict=False)), job_ns, job_name
            )
            by_dataset.setdefault((ns, name), []).append(fact)
        found: list[Issue] = []
        for (namespace, name), writes in by_dataset.items():
            found += schema_issues(namespace, name, writes)
        return found


class IssueStage:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        worker = settings.worker
        self.consumer = batch_consumer(
            settings, settings.issues.group_id, worker.derived_message_bytes
        )
        self.topics = {settings.topics.derived(kind): kind for kind in WATCHED_KINDS}
        self.sink = ClickHouseSink(settings.clickhouse, worker.insert_retry_max_backoff_s)
        self.dispatcher = WebhookDispatcher(settings)
        self.faults = Faults(worker.fault_point, worker.fault_after)

    def run(self, stop: threading.Event) -> None:
        self.consumer.subscribe(sorted(self.topics))
        dispatcher = threading.Thread(
            target=self.dispatcher.run, args=(stop,), name="webhooks", daemon=True
        )
        dispatcher.start()
        probe = batch_consumer(self.settings, self.settings.worker.sink_group_id, 1_048_576)
        detector = IssueDetector(self.settings)  # connects when first needed
        log.info("issues stage started", extra={"topics": sorted(self.topics)})
        try:
            while not stop.is_set():
                messages = self._gather(stop)
                if not messages:
                    continue
                if not self._wait_for_sink(probe, messages, stop):
                    break  # stopping: the batch replays
                subjects = Subjects()
                for msg in messages:
                    kind = self.topics.get(msg.topic())
                    if kind is not None and msg.value():
                        records = avro.decode(msg.value(), kind, Subjects.FIELDS[kind])
                        subjects.add(kind, records)
                found = self._evaluate(detector, subjects, stop)
                if found is None:
                    break
                if found:
                    rows = issue_rows(found, int(time.time() * 1000))
                    try:
                        self.sink.write_rows(
                            f"{self.settings.clickhouse.database}.issues",
                            rows,
                            ISSUE_COLUMNS,
                            stop.is_set,
                        )
                    except SinkStopped:
                        break
                    metrics.ISSUES_WRITTEN.inc(len(found))
                    self.faults.reached("issues.after_write")
                    self.dispatcher.wake()
                commit(self.consumer, next_offsets(messages))
                self.faults.reached("issues.after_commit")
        finally:
            probe.close()
            self.consumer.close()
            dispatcher.join(timeout=self.settings.issues.webhook_timeout_s + 1)
            log.info("issues stage stopped")

    def _gather(self, stop: threading.Event) -> list[Message]:
        """The messages of one batch: what arrives within `issues.batch_interval_s` of
        the first one (at most 20,000). Jobs and datasets recur from event to event, so
        a longer batch reads each history once for many events."""
        messages = usable(self.consumer.consume(1000, 0.5), self.consumer)
        if not messages:
            return messages
        until = time.monotonic() + self.settings.issues.batch_interval_s
        while len(messages) < 20_000 and not stop.is_set():
            left = until - time.monotonic()
            if left <= 0:
                break
            messages += usable(self.consumer.consume(1000, min(left, 0.5)), self.consumer)
        return messages

    def _evaluate(
        self, detector: IssueDetector, subjects: Subjects, stop: threading.Event
    ) -> list[Issue] | None:
        """The issues of `subjects`, retrying while ClickHouse fails; None if stopping."""
        backoff = 0.2
        while True:
            try:
                return detector.evaluate(subjects)
            except Exception as exc:
                log.warning(
                    "issue evaluation failed; retrying",
                    extra={"subjects": len(subjects), "error": str(exc)[:500]},
                )
                if stop.wait(backoff):
                    return None
                backoff = min(backoff * 2, 10.0)
                detector.client = None

    def _wait_for_sink(self, probe: Any, messages: list[Message], stop: threading.Event) -> bool:
        """Block until the sink group committed past every message (their rows are in
        ClickHouse); False if the worker is stopping first."""
        wanted = {(tp.topic, tp.partition): tp.offset for tp in next_offsets(messages)}
        while not stop.is_set():
            try:
                committed = probe.committed(
                    [TopicPartition(topic, part) for topic, part in wanted], timeout=10
                )
                if all(tp.offset >= wanted[(tp.topic, tp.partition)] for tp in committed):
                    return True
            except Exception as exc:
                log.warning("reading the sink's offsets failed", extra={"error": str(exc)})
            stop.wait(0.2)
        return False


class WebhookDispatcher:
    """Calls webhooks for issue transitions not yet delivered. Works from the tables only:
    pending = (webhook, issue, transition) with no `delivered` or `failed` row in
    `webhook_deliveries`; a failed call is retried with doubling delays up to
    `issues.webhook_max_attempts`, then recorded as failed (given up)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.db = settings.clickhouse.database
        self._wake = threading.Event()

    def wake(self) -> None:
        self._wake.set()

    def run(self, stop: threading.Event) -> None:
        client: Client | None = None
        interval = self.settings.issues.webhook_sweep_interval_s
        while not stop.is_set():
            try:
                client = client or connect(self.settings.clickhouse)
                self.sweep(client, stop)
            except Exception as exc:
                client = None
                log.warning("webhook sweep failed", extra={"error": str(exc)[:500]})
            self._wake.wait(interval)
            self._wake.clear()

    def sweep(self, client: Client, stop: threading.Event | None = None) -> int:
        """Make every due call once; returns how many were made."""
        hooks = list_webhooks(client, self.db)
        if not hooks:
            return 0
        lookback = self.settings.issues.webhook_lookback_s
        issues = client.query(
            f"""
            SELECT * FROM {self.db}.issue_states
            WHERE updated_at >= now64(3) - toIntervalSecond({int(lookback)})
            ORDER BY detected_at, issue_id
            """
        ).named_results()
        issues = list(issues)
        if not issues:
            return 0
        done = {
            (w, i, t): (status, attempts, next_at)
            for w, i, t, status, attempts, next_at in client.query(
                f"""
                SELECT webhook_id, issue_id, transition, status, attempts,
                       toUnixTimestamp64Milli(next_attempt_at)
                FROM {self.db}.webhook_deliveries FINAL
                WHERE webhook_id IN {{hooks:Array(String)}}
                """,
                parameters={"hooks": [hook.webhook_id for hook in hooks]},
            ).result_rows
        }
        now_ms = int(time.time() * 1000)
        calls = 0
        for hook in hooks:
            for issue in issues:
                if _ms(issue["detected_at"]) < hook.created_at_ms:
                    continue
                if not webhooks.matches(hook.kinds, hook.namespaces, hook.severities, issue):
                    continue
                transitions = ["opened"] + (["resolved"] if issue["status"] == "resolved" else [])
                for transition in transitions:
                    status, attempts, next_at = done.get(
                        (hook.webhook_id, issue["issue_id"], transition), ("", 0, 0)
                    )
                    if status == "delivered" or status == "failed":
                        continue
                    if status == "retrying" and next_at > now_ms:
                        break  # not due yet; a resolution waits for its opening
                    if stop is not None and stop.is_set():
                        return calls
                    ok = self._call(client, hook, public_issue(issue), transition, attempts)
                    calls += 1
                    if not ok:
                        break
        return calls

    def _call(
        self, client: Client, hook: Any, issue: dict[str, Any], transition: str, attempts: int
    ) -> bool:
        settings = self.settings.issues
        payload = webhooks.body(issue, transition)
        headers = webhooks.headers(
            hook.webhook_id, hook.secret, issue["issue_id"], transition, payload
        )
        request = urllib.request.Request(hook.url, data=payload, headers=headers, method="POST")
        code, error = 0, ""
        try:
            with urllib.request.urlopen(request, timeout=settings.webhook_timeout_s) as response:
                code = response.status
        except urllib.error.HTTPError as exc:
            code, error = exc.code, f"HTTP {exc.code}"
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        attempts += 1
        ok = 200 <= code < 300
        if ok:
            status = "delivered"
        elif attempts >= settings.webhook_max_attempts:
            status = "failed"
        else:
            status = "retrying"
        delay = webhooks.retry_delay_s(attempts, settings.webhook_backoff_s)
        now = time.time()
        client.insert(
            f"{self.db}.webhook_deliveries",
            [
                [
                    hook.webhook_id,
                    issue["issue_id"],
                    transition,
                    status,
                    attempts,
                    code,
                    error,
                    datetime.fromtimestamp(now + (0 if ok else delay), UTC),
                    datetime.fromtimestamp(now, UTC),
                    time.time_ns(),
                ]
            ],
            column_names=[
                "webhook_id",
                "issue_id",
                "transition",
                "status",
                "attempts",
                "response_code",
                "last_error",
                "next_attempt_at",
                "updated_at",
                "version",
            ],
        )
        metrics.WEBHOOK_CALLS.labels(outcome=status).inc()
        level = logging.INFO if ok else logging.WARNING
        log.log(
            level,
            "webhook called",
            extra={
                "webhook_id": hook.webhook_id,
                "issue_id": issue["issue_id"],
                "transition": transition,
                "status": status,
                "response_code": code,
                "error": error,
                "attempts": attempts,
            },
        )
        return ok
