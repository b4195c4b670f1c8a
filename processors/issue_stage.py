"""The issues stage: recompute the issues of whatever a batch of derived records touched,
from ClickHouse, and call webhooks (adapter for the pure rules in `issues.py`).

Commit protocol of this stage:

1. Consume a batch from the derived `runs`, `quality_assertions`, `io_edges` and
   `dataset_versions` topics (consumer group `issues.group_id`, manual commits).
2. Wait until the sink group has committed past every message of the batch: its rows
   are then in ClickHouse (the sink commits after the insert).
3. Decode the records and collect the subjects they touch, with the runs that touched
   them: jobs (runs), checks on datasets (assertions), output datasets with a schema
   (io edges; a dataset with a new schema version is read whole, see `Subjects`).
4. Bring each subject's history up to date: read it from ClickHouse (the latest
   `issues.history_runs`) the first time, or once it is `issues.history_cache_ttl_s`
   old; otherwise read only the touched runs' rows (`issue_history.py`). Apply the rules
   and write the issues that are new or changed since this process last wrote them
   (`issues` merges copies: same id, same content, resolution = the earliest seen).
5. Commit the batch's offsets; wake the webhook dispatcher.

The state behind every issue is in ClickHouse, so a restart (or the embedded broker
losing its topics) loses nothing: a replayed batch recomputes the same issues. What the
process remembers between batches is a cache of ClickHouse: it is dropped when the
stage's partitions are reassigned, and a new process starts by reading whole. The
dispatcher works from the tables alone (`webhook_deliveries` is its outbox), so a call
that was due when the process died is made after the restart.
"""

from __future__ import annotations

import logging
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson
from clickhouse_connect.driver.client import Client
from confluent_kafka import Message, TopicPartition

from lineagehouse import metrics
from lineagehouse.processors import avro, webhooks
from lineagehouse.processors.faults import Faults
from lineagehouse.processors.issue_history import HistoryCache
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

WATCHED_KINDS = ("runs", "quality_assertions", "io_edges", "dataset_versions")
_CHUNK = 1000  # subjects per query
_SCHEMAS_KEPT = 10_000  # distinct output schemas whose fields the detector keeps


def _in_json(parameter: str, of: str) -> str:
    """A subquery of the values of `parameter`, a JSON array of `of` (see `_query`)."""
    return f"(SELECT arrayJoin(JSONExtract({{{parameter}:String}}, 'Array({of})')))"


def _query(client: Client, sql: str, **values: Iterable[Any]) -> list[Any]:
    """The rows of `sql`, each `{name:String}` in it replaced by a string literal of the
    JSON array of `values[name]`, sorted. Not clickhouse-connect's parameters: binding a
    long string escapes it character by character in Python, which cost more than the
    query (0.13 s for 4,000 run ids)."""

    def literal(match: re.Match) -> str:
        text = orjson.dumps(sorted(values[match[1]])).decode()
        return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"

    sql = re.sub(r"\{(\w+):String\}", literal, sql)
    return client.query(sql, settings={"max_query_size": len(sql) + 65_536}).result_rows


_IN_PAIRS = _in_json("subjects", "Tuple(String, String)")
_IN_CHECKS = _in_json("subjects", "Tuple(String, String, String, String, String)")
_IN_TRIPLES = _in_json("triples", "Tuple(String, String, String)")
_IN_RUNS = _in_json("runs", "String")
_IN_HASHES = _in_json("hashes", "String")


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


Job = tuple[str, str]
Check = tuple[str, str, str, str, str]  # dataset namespace and name, assertion, column, check
Dataset = tuple[str, str]
JobRun = tuple[str, str, str]  # job namespace, job name, run id


@dataclass
class Subjects:
    """What a batch of derived records touched: per subject, the runs it touched."""

    jobs: dict[Job, set[str]] = field(default_factory=dict)
    checks: dict[Check, set[str]] = field(default_factory=dict)
    outputs: dict[Dataset, set[JobRun]] = field(default_factory=dict)
    # Datasets with a schema version in the batch: their outputs are read whole. The sink
    # may insert a version in a later flush than the edges that name it (a flush does not
    # follow the processor's batches), and an edge whose version is not stored yet is not
    # a schema fact; the version's own message brings it back once it is stored.
    versions: set[Dataset] = field(default_factory=set)

    # The fields `add` reads, per kind: the stage decodes only these.
    FIELDS: ClassVar[dict[str, tuple[str, ...]]] = {
        "runs": ("job_namespace", "job_name", "run_id"),
        "quality_assertions": (
            "namespace",
            "name",
            "assertion",
            "column_name",
            "check_name",
            "run_id",
        ),
        "io_edges": (
            "namespace",
            "name",
            "direction",
            "version_id",
            "run_id",
            "job_namespace",
            "job_name",
        ),
        "dataset_versions": ("namespace", "name"),
    }

    def add(self, kind: str, records: Iterable[dict[str, Any]]) -> None:
        if kind == "runs":
            for r in records:
                self.jobs.setdefault((r["job_namespace"], r["job_name"]), set()).add(r["run_id"])
        elif kind == "quality_assertions":
            for r in records:
                check = tuple(r[f] for f in Subjects.FIELDS["quality_assertions"][:5])
                self.checks.setdefault(check, set()).add(r["run_id"])  # type: ignore[arg-type]
        elif kind == "io_edges":
            for r in records:
                if r["direction"] == "output" and r["version_id"] and r["run_id"]:
                    run = (r["job_namespace"], r["job_name"], r["run_id"])
                    self.outputs.setdefault((r["namespace"], r["name"]), set()).add(run)
        elif kind == "dataset_versions":
            self.versions.update((r["namespace"], r["name"]) for r in records)

    def __len__(self) -> int:
        return len(self.jobs) + len(self.checks) + len(self.outputs) + len(self.versions)


def _chunks(items: Iterable[Any]) -> Iterable[list[Any]]:
    items = sorted(items)
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


@dataclass(frozen=True, slots=True)
class _JobRun:
    """A finished run as the job rules need it, with the processing type."""

    fact: RunFact
    processing_type: str

    @property
    def run_id(self) -> str:
        return self.fact.run_id


def _by_time(fact: Any) -> tuple[int, str]:
    return fact.time, fact.run_id


def _by_end(run: _JobRun) -> tuple[int, str]:
    return run.fact.ended_at, run.run_id


class IssueDetector:
    """Reads subjects' histories from ClickHouse and applies the rules.

    Each subject's history is read whole once, then only the runs each batch touched
    (`issue_history.HistoryCache`); `evaluate` returns only issues not written yet (or
    changed), and `written` records them once ClickHouse has them.
    """

    def __init__(self, settings: Settings, client: Client | None = None) -> None:
        self.settings = settings
        self.client: Any = client  # connected on first use when None
        self.db = settings.clickhouse.database
        issues = settings.issues
        size, ttl = issues.history_cache_subjects, issues.history_cache_ttl_s
        self.jobs = HistoryCache(issues.history_runs + 1, _by_end, size, ttl)
        self.checks = HistoryCache(issues.history_runs, _by_time, size, ttl)
        self.outputs = HistoryCache(issues.history_runs, _by_time, size, ttl)
        self._pending: list[tuple[HistoryCache, Any, list[Issue]]] = []
        self._schemas: dict[str, list[tuple[str, str]]] = {}  # schema hash -> fields

    def forget(self) -> None:
        """Drop every remembered history (partitions reassigned: others may have moved)."""
        for cache in (self.jobs, self.checks, self.outputs):
            cache.clear()
        self._pending = []

    def evaluate(self, subjects: Subjects) -> list[Issue]:
        """The new or changed issues of `subjects`; call `written` once they are stored."""
        if self.client is None:
            self.client = connect(self.settings.clickhouse)
        self._pending = []
        now = time.monotonic()
        self._refresh(self.jobs, subjects.jobs, now, self._read_jobs, self._read_job_runs)
        self._refresh(self.checks, subjects.checks, now, self._read_checks, self._read_results)
        outputs = dict(subjects.outputs)
        for dataset in subjects.versions:  # read whole (see Subjects.versions)
            self.outputs.forget(dataset)
            outputs.setdefault(dataset, set())
        self._refresh(self.outputs, outputs, now, self._read_outputs, self._read_output_runs)
        for job in subjects.jobs:
            if self.jobs.changed(job):
                self._judge(self.jobs, job, self._job_issues(job, self.jobs.facts(job)))
        for check in subjects.checks:
            if self.checks.changed(check):
                found = assertion_issues(*check, self.checks.facts(check))
                self._judge(self.checks, check, found)
        for dataset in outputs:
            if self.outputs.changed(dataset):
                found = schema_issues(*dataset, self.outputs.facts(dataset))
                self._judge(self.outputs, dataset, found)
        return [issue for _, _, issues in self._pending for issue in issues]

    def written(self) -> None:
        """The issues the last `evaluate` returned are in ClickHouse."""
        for cache, subject, issues in self._pending:
            cache.mark_written(subject, issues)
        self._pending = []
        for cache in (self.jobs, self.checks, self.outputs):
            cache.trim()

    def _judge(self, cache: HistoryCache, subject: Any, issues: list[Issue]) -> None:
        """Keep the issues of `subject` not written yet, for `evaluate` and `written`."""
        self._pending.append((cache, subject, cache.unwritten(subject, issues)))

    def _refresh(
        self,
        cache: HistoryCache,
        touched: dict[Any, set[Any]],
        now: float,
        read_whole: Any,
        read_runs: Any,
    ) -> None:
        """Bring the cache up to date for `touched`: unknown or old subjects read whole,
        the others only for the runs touched."""
        stale = [subject for subject in touched if not cache.fresh(subject, now)]
        for chunk in _chunks(stale):
            found: dict[Any, list[tuple[str, Any]]] = {subject: [] for subject in chunk}
            for subject, fact in read_whole(chunk):
                if subject in found:
                    found[subject].append((fact.run_id, fact))
            for subject, facts in found.items():
                cache.load(subject, facts, now)
        known = set(touched) - set(stale)
        for chunk in _chunks(known):
            changed: dict[Any, dict[str, Any]] = {
                subject: dict.fromkeys(_run_ids(touched[subject])) for subject in chunk
            }
            for subject, fact in read_runs({subject: touched[subject] for subject in chunk}):
                if subject in changed:
                    changed[subject][fact.run_id] = fact
            for subject, facts in changed.items():
                cache.update(subject, facts)

    # --- jobs: the latest finished runs ---------------------------------------------------

    _RUN_COLUMNS = """
        job_namespace, job_name, run_id, tupleElement(state, 'name'),
        toUnixTimestamp64Milli(tupleElement(state, 'time')) AS ended,
        toUnixTimestamp64Milli(started_at), error_message, processing_type
    """

    def _job_runs(self, rows: Iterable[Any]) -> Iterable[tuple[Job, _JobRun]]:
        for ns, name, run_id, state, ended, started, error, processing_type in rows:
            fact = RunFact(run_id, state, ended, started, error or "")
            yield (ns, name), _JobRun(fact, processing_type)

    def _read_jobs(self, jobs: list[Job]) -> Iterable[tuple[Job, _JobRun]]:
        rows = _query(
            self.client,
            f"""
            SELECT {self._RUN_COLUMNS}
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
            LIMIT {self.jobs.limit} BY job_namespace, job_name
            """,
            subjects=jobs,
        )
        return self._job_runs(rows)

    def _read_job_runs(self, touched: dict[Job, set[str]]) -> Iterable[tuple[Job, _JobRun]]:
        rows = _query(
            self.client,
            f"""
            SELECT {self._RUN_COLUMNS}
            FROM {self.db}.runs FINAL
            WHERE run_id IN {_IN_RUNS} AND tupleElement(state, 'terminal') = 1
            """,
            runs=set().union(*touched.values()),
        )
        return self._job_runs(rows)

    def _job_issues(self, job: Job, runs: list[_JobRun]) -> list[Issue]:
        """The rules on the latest `history_runs` (one more says the history goes on)."""
        settings = self.settings.issues
        limit = settings.history_runs
        return run_issues(
            *job,
            [run.fact for run in runs[-limit:]],
            streaming=any(run.processing_type == "STREAMING" for run in runs),
            history_complete=len(runs) <= limit,
            min_history=settings.duration_min_history,
            window=settings.duration_window,
        )

    # --- checks: the latest results of each check -----------------------------------------

    _CHECK_COLUMNS = """
        namespace, name, assertion, column_name, check_name, run_id,
        toUnixTimestamp64Milli(tupleElement(result, 'time')) AS t,
        tupleElement(result, 'status'), tupleElement(result, 'severity'),
        tupleElement(result, 'expected'), tupleElement(result, 'actual'),
        job_namespace, job_name
    """

    def _read_checks(self, checks: list[Check]) -> Iterable[tuple[Check, CheckResult]]:
        rows = _query(
            self.client,
            f"""
            SELECT {self._CHECK_COLUMNS}
            FROM (
                SELECT * FROM {self.db}.quality_assertions FINAL
                WHERE (namespace, name, assertion, column_name, check_name) IN {_IN_CHECKS}
            )
            ORDER BY t DESC, run_id DESC
            LIMIT {self.checks.limit} BY namespace, name, assertion, column_name, check_name
            """,
            subjects=checks,
        )
        return ((tuple(row[:5]), CheckResult(*row[5:])) for row in rows)

    def _read_results(self, touched: dict[Check, set[str]]) -> Iterable[tuple[Check, CheckResult]]:
        runs = {(check[0], check[1], run_id) for check, ids in touched.items() for run_id in ids}
        rows = _query(
            self.client,
            f"""
            SELECT {self._CHECK_COLUMNS}
            FROM {self.db}.quality_assertions FINAL
            WHERE (namespace, name, run_id) IN {_IN_TRIPLES}
              AND (namespace, name, assertion, column_name, check_name) IN {_IN_CHECKS}
            """,
            subjects=touched,
            triples=runs,
        )
        return ((tuple(row[:5]), CheckResult(*row[5:])) for row in rows)

    # --- outputs: the schema each run wrote -------------------------------------------------

    def _schema_facts(
        self, rows: list[Any], datasets: list[Dataset]
    ) -> Iterable[tuple[Dataset, SchemaFact]]:
        """Facts of output edge rows; each distinct schema's fields are read once."""
        missing = sorted({row[4] for row in rows if row[4] not in self._schemas})
        if missing:
            if len(self._schemas) + len(missing) > _SCHEMAS_KEPT:
                self._schemas.clear()
            self._schemas.update(self._read_schemas(datasets, missing))
        for ns, name, run_id, t, schema_hash, job_ns, job_name in rows:
            fields = self._schemas.get(schema_hash, ())
            yield (ns, name), SchemaFact(run_id, t, schema_hash, fields, job_ns, job_name)

    def _read_schemas(self, datasets: list[Dataset], hashes: list[str]) -> dict[str, list]:
        rows = _query(
            self.client,
            f"""
            SELECT schema_hash, any(field_names), any(field_types)
            FROM {self.db}.dataset_versions
            WHERE (namespace, name) IN {_IN_PAIRS} AND schema_hash IN {_IN_HASHES}
            GROUP BY schema_hash
            """,
            subjects=datasets,
            hashes=hashes,
        )
        return {h: list(zip(names, types, strict=False)) for h, names, types in rows}

    def _read_outputs(self, outputs: list[Dataset]) -> Iterable[tuple[Dataset, SchemaFact]]:
        rows = _query(
            self.client,
            self._schema_query(
                f"(namespace, name) IN {_IN_PAIRS}",
                f"LIMIT {self.outputs.limit} BY e.namespace, e.name",
                "dataset_io",  # the edges by dataset: io_edges is ordered by job and run
            ),
            subjects=outputs,
        )
        return self._schema_facts(rows, outputs)

    def _read_output_runs(
        self, touched: dict[Dataset, set[JobRun]]
    ) -> Iterable[tuple[Dataset, SchemaFact]]:
        datasets = sorted(touched)
        rows = _query(
            self.client,
            self._schema_query(
                f"(job_namespace, job_name, run_id) IN {_IN_TRIPLES} "
                f"AND (namespace, name) IN {_IN_PAIRS}",
                "",
            ),
            subjects=datasets,
            triples=set().union(*touched.values()),
        )
        return self._schema_facts(rows, datasets)

    def _schema_query(self, edges_where: str, limit: str, edges: str = "io_edges") -> str:
        """Output edges matching `edges_where` (read from the `edges` table), with the
        schema hash of the version written."""
        return f"""
            SELECT e.namespace, e.name, e.run_id, e.t, v.schema_hash, e.job_namespace,
                   e.job_name
            FROM (
                SELECT namespace, name, run_id, version_id, job_namespace, job_name,
                       toUnixTimestamp64Milli(last_seen) AS t
                FROM {self.db}.{edges} FINAL
                WHERE direction = 'output' AND run_id != '' AND version_id != ''
                  AND {edges_where}
            ) AS e
            INNER JOIN (
                SELECT namespace, name, version_id, schema_hash
                FROM {self.db}.dataset_versions FINAL
                WHERE (namespace, name) IN {_IN_PAIRS}
            ) AS v ON e.namespace = v.namespace AND e.name = v.name AND e.version_id = v.version_id
            ORDER BY e.t DESC, e.run_id DESC
            {limit}
            """


def _run_ids(touched: set[Any]) -> list[str]:
    """Run ids of a subject's touched runs (outputs name them with their job)."""
    return [run if isinstance(run, str) else run[2] for run in touched]


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
        detector = IssueDetector(self.settings)  # connects when first needed

        def reassigned(consumer: Any, partitions: list[TopicPartition]) -> None:
            detector.forget()  # another process may have judged our subjects meanwhile

        self.consumer.subscribe(sorted(self.topics), on_assign=reassigned, on_revoke=reassigned)
        dispatcher = threading.Thread(
            target=self.dispatcher.run, args=(stop,), name="webhooks", daemon=True
        )
        dispatcher.start()
        probe = batch_consumer(self.settings, self.settings.worker.sink_group_id, 1_048_576)
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
                detector.written()
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
