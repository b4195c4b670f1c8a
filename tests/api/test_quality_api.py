"""The /api/v2 quality routes (api/v2_quality.py, api/quality.py) and the webhook
subscriptions (lineagehouse/store/webhooks.py, `lineagehouse webhooks`) against the real
`lineagehouse api`, ClickHouse and broker.

One store per module: OpenLineage events with check results and metrics stored through
the real derivation (`load_events`), and the issues those same facts raise, computed by
the pure rules of processors/issues.py and written to the `issues` table as the issues
stage writes them. Tests that write (resolve, webhooks) use objects of their own, so the
others see a fixed store.
"""

from __future__ import annotations

import json
import statistics
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from clickhouse_connect.driver.client import Client

from lineagehouse.apikeys import create_key
from lineagehouse.embedded.process import stop_process
from lineagehouse.processors.issues import (
    CheckResult,
    Issue,
    RunFact,
    SchemaFact,
    assertion_issues,
    run_issues,
    schema_issues,
)
from lineagehouse.settings import Settings
from lineagehouse.store.client import connect
from lineagehouse.store.migrations import migrate
from lineagehouse.store.webhooks import add_webhook, get_webhook, list_webhooks, remove_webhook
from tests.conftest import launch_api, load_events, run_cli, unique_settings
from tests.events import BASE_TIME, PRODUCER, SCHEMA_URL, facet

pytestmark = [pytest.mark.timeout(300)]

NS = "qa-a"
NS_B = "qa-b"
NS_W = "qa-w"  # only the resolve test's issue lives here
JOB = "load.orders"
DATASET = "orders"
DURATIONS_S = [100, 110, 90, 105, 95, 400, 100]  # r5 is far outside the usual band
FAIL_AFTER_S = 50
DETECTED_MS = int(datetime(2024, 6, 1, tzinfo=UTC).timestamp() * 1000)


def at(minutes: float) -> datetime:
    return BASE_TIME + timedelta(minutes=minutes)


def iso(value: datetime | int | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, int):
        value = datetime.fromtimestamp(value / 1000, UTC)
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def seg(text: str) -> str:
    return quote(text, safe="")


def run_id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"quality-test/{name}"))


RUNS = [run_id(f"r{i}") for i in range(len(DURATIONS_S) + 1)]  # r7: FAIL
SECRET_RUN = run_id("secret")
NOSTART_RUN = run_id("nostart")


def started(i: int) -> datetime:
    return at(i * 60)


def ended(i: int) -> datetime:
    seconds = DURATIONS_S[i] if i < len(DURATIONS_S) else FAIL_AFTER_S
    return started(i) + timedelta(seconds=seconds)


def checks(i: int) -> list[dict[str, Any]]:
    """What run i's checks said: not_null skipped in r6, unique failed in r4 and r6."""
    not_null = {
        "assertion": "not_null",
        "column": "id",
        "name": "not_null_orders_id",
        "success": True,
        "severity": "error",
    }
    if i == 6:
        not_null["status"] = "skip"
    unique_ok = i not in (4, 6)
    return [
        not_null,
        {
            "assertion": "unique",
            "column": "id",
            "name": "unique_orders_id",
            "success": unique_ok,
            "severity": "warn",
            "expected": "0",
            "actual": "0" if unique_ok else str(i),
        },
        {"assertion": "row_count", "success": True, "expected": ">0", "actual": str(1000 + i)},
    ]


def input_metrics(i: int) -> dict[str, Any]:
    return facet(
        "DataQualityMetricsInputDatasetFacet",
        "1-0-3",
        rowCount=1000 + i,
        bytes=50_000 + i,
        fileCount=3,
        lastUpdated=iso(started(i)),
        columnMetrics={
            "id": {
                "nullCount": i,
                "distinctCount": 1000 + i,
                "sum": 1.5 * i,
                "count": 1000 + i,
                "min": 1,
                "max": 1000 + i,
                "quantiles": {"0.5": 500 + i, "0.9": 900.5},
            },
            "amount": {"nullCount": 2 * i},
        },
    )


def run_event(
    namespace: str,
    job: str,
    event_type: str,
    when: datetime,
    run: str,
    inputs: list[dict[str, Any]] | None = None,
    outputs: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    return {
        "eventType": event_type,
        "eventTime": iso(when),
        "run": {"runId": run},
        "job": {"namespace": namespace, "name": job},
        "inputs": inputs or [],
        "outputs": outputs or [],
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
    }


def store_events() -> list[dict[str, Any]]:
    events = []
    for i in range(len(RUNS)):
        events.append(run_event(NS, JOB, "START", started(i), RUNS[i]))
        if i == len(RUNS) - 1:
            events.append(run_event(NS, JOB, "FAIL", ended(i), RUNS[i]))
            continue
        inputs = [
            {
                "namespace": NS,
                "name": DATASET,
                "inputFacets": {
                    "dataQualityAssertions": facet(
                        "DataQualityAssertionsDatasetFacet", "1-1-0", assertions=checks(i)
                    ),
                    "dataQualityMetrics": input_metrics(i),
                },
            }
        ]
        outputs = []
        if i == 6:  # the run also writes the dataset: its output metrics win
            outputs = [
                {
                    "namespace": NS,
                    "name": DATASET,
                    "facets": {
                        "dataQualityMetrics": facet(
                            "DataQualityMetricsDatasetFacet",
                            rowCount=2000,
                            columnMetrics={"id": {"nullCount": 0}},
                        )
                    },
                }
            ]
        events.append(run_event(NS, JOB, "COMPLETE", ended(i), RUNS[i], inputs, outputs))
    # a DatasetEvent with metrics (no run), newer than every run
    events.append(
        {
            "eventTime": iso(at(1000)),
            "producer": PRODUCER,
            "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
            "dataset": {
                "namespace": NS,
                "name": DATASET,
                "facets": {
                    "dataQualityMetrics": facet(
                        "DataQualityMetricsDatasetFacet",
                        rowCount=5000,
                        columnMetrics={"id": {"nullCount": 7}},
                    )
                },
            },
        }
    )
    # a run without a START event: no duration
    events.append(run_event(NS, "load.nostart", "COMPLETE", at(5), NOSTART_RUN))
    # team b: a failed run and a dataset of its own
    events.append(run_event(NS_B, "secret.job", "START", at(10), SECRET_RUN))
    events.append(
        run_event(
            NS_B,
            "secret.job",
            "FAIL",
            at(11),
            SECRET_RUN,
            inputs=[{"namespace": NS_B, "name": "secret_table"}],
        )
    )
    return events


def store_issues() -> list[Issue]:
    """The issues the stored facts raise, by the pure rules."""
    facts = [
        RunFact(
            RUNS[i],
            "COMPLETE" if i < len(DURATIONS_S) else "FAIL",
            ms(ended(i)),
            ms(started(i)),
        )
        for i in range(len(RUNS))
    ]
    results = [
        CheckResult(
            RUNS[i],
            ms(ended(i)),
            "pass" if i not in (4, 6) else "fail",
            "warn",
            "0",
            "0" if i not in (4, 6) else str(i),
            NS,
            JOB,
        )
        for i in range(len(DURATIONS_S))
    ]
    schemas = [
        SchemaFact(run_id("c1"), ms(at(200)), "h1", [("id", "INT"), ("x", "INT")], NS, "load.c"),
        SchemaFact(run_id("c2"), ms(at(230)), "h2", [("id", "INT")], NS, "load.c"),
    ]
    return [
        *run_issues(NS, JOB, facts),
        *assertion_issues(NS, DATASET, "unique", "id", "unique_orders_id", results),
        *schema_issues(NS, "customers", schemas),
        *run_issues(NS_B, "secret.job", [RunFact(SECRET_RUN, "FAIL", ms(at(11)), ms(at(10)))]),
    ]


def _dt(value: int) -> datetime:
    return datetime.fromtimestamp(value / 1000, UTC)


def insert_issues(client: Client, db: str, issues: list[Issue], now_ms: int) -> None:
    """Write issues as the issues stage does (`Issue.row`)."""
    rows = []
    for issue in issues:
        row = issue.row(now_ms)
        for column in ("opened_at", "detected_at", "updated_at"):
            row[column] = _dt(row[column])
        when, by_run, how = row["resolution"]
        row["resolution"] = (_dt(when), by_run, how)
        rows.append(row)
    client.insert(f"{db}.issues", [list(r.values()) for r in rows], column_names=list(rows[0]))


@dataclass
class Stack:
    settings: Settings
    client: Client
    url: str
    issues: dict[str, Issue]  # by a short name
    admin: dict[str, str]
    admin_a: dict[str, str]  # admin limited to qa-a*
    read_all: dict[str, str]
    read_a: dict[str, str]  # read, qa-a*
    write_a: dict[str, str]  # write, qa-a*
    write_w: dict[str, str]  # write, qa-w*
    key_ids: dict[str, str]

    @property
    def db(self) -> str:
        return self.settings.clickhouse.database


def _name(issue: Issue) -> str:
    if issue.kind == "assertion_failed":
        return f"unique_{RUNS.index(issue.run_id)}"
    if issue.kind == "run_failed":
        return "secret_failed" if issue.namespace == NS_B else "orders_failed"
    return {"duration_outlier": "outlier", "schema_changed": "schema"}[issue.kind]


@pytest.fixture(scope="module")
def stack(
    broker: str, clickhouse_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("quality")
    settings = unique_settings(broker, clickhouse_url, tmp / "data")
    tag = settings.clickhouse.database.removeprefix("test_")
    migrate(settings)
    load_events(settings, store_events())
    client = connect(settings.clickhouse)
    issues = {_name(i): i for i in store_issues()}
    assert sorted(issues) == [
        "orders_failed",
        "outlier",
        "schema",
        "secret_failed",
        "unique_4",
        "unique_6",
    ]
    insert_issues(client, settings.clickhouse.database, list(issues.values()), DETECTED_MS)
    key_ids: dict[str, str] = {}

    def key(label: str, role: str, *namespaces: str) -> dict[str, str]:
        plaintext, record = create_key(client, settings, f"{label}-{tag}", role, namespaces)
        key_ids[label] = record.key_id
        return {"Authorization": f"Bearer {plaintext}"}

    keys = {
        "admin": key("admin", "admin"),
        "admin_a": key("admin_a", "admin", "qa-a*"),
        "read_all": key("read_all", "read"),
        "read_a": key("read_a", "read", "qa-a*"),
        "write_a": key("write_a", "write", "qa-a*"),
        "write_w": key("write_w", "write", "qa-w*"),
    }
    proc, url = launch_api(settings, tmp / "api.log")
    try:
        yield Stack(settings, client, url, issues, key_ids=key_ids, **keys)
    finally:
        stop_process(proc)
        client.close()


def get(stack: Stack, path: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
    resp = httpx.get(f"{stack.url}/api/v2{path}", params=params, headers=headers or stack.admin)
    assert resp.status_code == 200, (path, resp.status_code, resp.text)
    return resp.json()


def status_of(stack: Stack, method: str, path: str, headers: dict[str, str], **kw: Any) -> int:
    return httpx.request(method, f"{stack.url}/api/v2{path}", headers=headers, **kw).status_code


def ids(page: dict[str, Any]) -> list[str]:
    return [item["issue_id"] for item in page["items"]]


def newest_first(stack: Stack, *names: str) -> list[str]:
    chosen = [stack.issues[n] for n in names]
    return [i.issue_id for i in sorted(chosen, key=lambda i: (-i.opened_at, i.issue_id))]


# --- issues -----------------------------------------------------------------------------


def test_issue_filters(stack: Stack) -> None:
    every_a = ["outlier", "orders_failed", "unique_4", "unique_6", "schema"]
    page = get(stack, "/issues", namespace=NS)
    assert ids(page) == newest_first(stack, *every_a)
    assert page["total"] == 5 and page["limit"] == 100 and page["offset"] == 0

    assert ids(get(stack, "/issues", kind="duration_outlier")) == newest_first(stack, "outlier")
    assert ids(get(stack, "/issues", namespace=NS, status="open")) == newest_first(
        stack, "orders_failed", "unique_6", "schema"
    )
    assert ids(get(stack, "/issues", namespace=NS, status="resolved")) == newest_first(
        stack, "outlier", "unique_4"
    )
    assert ids(get(stack, "/issues", namespace=NS, severity="warning")) == newest_first(
        stack, "outlier", "unique_4", "unique_6"
    )
    assert ids(get(stack, "/issues", severity="breaking")) == newest_first(stack, "schema")
    assert ids(get(stack, "/issues", dataset_namespace=NS, dataset_name=DATASET)) == newest_first(
        stack, "unique_4", "unique_6"
    )
    assert ids(get(stack, "/issues", job_namespace=NS, job_name=JOB)) == newest_first(
        stack, "outlier", "orders_failed", "unique_4", "unique_6"
    )
    assert ids(get(stack, "/issues", run_id=RUNS[5])) == newest_first(stack, "outlier")
    assert ids(get(stack, "/issues", namespace=NS_B)) == newest_first(stack, "secret_failed")
    # opened_at between r4's end and r5's end, both inclusive
    window = get(stack, "/issues", since=iso(ended(4)), until=iso(ended(5)))
    assert ids(window) == newest_first(stack, "unique_4", "outlier")
    assert (
        get(stack, "/issues", since=iso(ended(4) + timedelta(milliseconds=1)), until=iso(ended(5)))[
            "total"
        ]
        == 1
    )

    paged = get(stack, "/issues", namespace=NS, limit=2, offset=1)
    assert ids(paged) == newest_first(stack, *every_a)[1:3]
    assert paged["total"] == 5 and paged["limit"] == 2 and paged["offset"] == 1

    for bad in ({"kind": "broken"}, {"status": "closed"}, {"severity": "fatal"}):
        resp = httpx.get(f"{stack.url}/api/v2/issues", params=bad, headers=stack.admin)
        assert resp.status_code == 422, resp.text
        assert next(iter(bad.values())) in resp.json()["error"]


def test_issue_json(stack: Stack) -> None:
    open_issue = stack.issues["unique_6"]
    body = get(stack, f"/issues/{open_issue.issue_id}")
    assert body == {
        "issue_id": open_issue.issue_id,
        "kind": "assertion_failed",
        "severity": "warning",
        "status": "open",
        "namespace": NS,
        "dataset": {"namespace": NS, "name": DATASET},
        "column": "id",
        "assertion": "unique",
        "job": {"namespace": NS, "name": JOB},
        "run_id": RUNS[6],
        "opened_at": iso(ended(6)),
        "resolved_at": None,
        "resolved_by_run": None,
        "resolved_how": None,
        "summary": "unique_orders_id failed on orders.id",
        "details": {
            "check_name": "unique_orders_id",
            "expected": "0",
            "actual": "6",
            "check_severity": "warn",
        },
        "detected_at": iso(DETECTED_MS),
        "updated_at": iso(DETECTED_MS),
    }
    outlier = get(stack, f"/issues/{stack.issues['outlier'].issue_id}")
    assert outlier["status"] == "resolved"
    assert outlier["resolved_at"] == iso(ended(6))
    assert outlier["resolved_by_run"] == RUNS[6]
    assert outlier["resolved_how"] == "next run back in range"
    assert outlier["dataset"] is None and outlier["column"] is None
    assert outlier["details"]["duration_ms"] == 400_000
    resp = httpx.get(f"{stack.url}/api/v2/issues/nope", headers=stack.admin)
    assert resp.status_code == 404 and "nope" in resp.json()["error"]


def test_scope_hides_other_namespaces(stack: Stack) -> None:
    secret = stack.issues["secret_failed"].issue_id
    page = get(stack, "/issues", stack.read_a)
    assert secret not in ids(page)
    assert {item["namespace"] for item in page["items"]} == {NS}
    assert page["total"] == len(page["items"]) == 5  # counted in SQL, not after
    assert get(stack, "/issues", stack.read_a, namespace=NS_B)["total"] == 0
    assert secret in ids(get(stack, "/issues", stack.read_all))

    assert status_of(stack, "GET", f"/issues/{secret}", stack.read_a) == 404
    assert status_of(stack, "GET", f"/issues/{secret}", stack.read_all) == 200
    dataset_b = f"/datasets/{NS_B}/secret_table/quality"
    job_b = f"/jobs/{NS_B}/{seg('secret.job')}/durations"
    for path in (dataset_b, job_b):
        assert status_of(stack, "GET", path, stack.read_a) == 404, path
        assert status_of(stack, "GET", path, stack.read_all) == 200, path
    # a write-only key cannot read
    assert status_of(stack, "GET", "/issues", stack.write_a) == 403
    # no key at all
    assert httpx.get(f"{stack.url}/api/v2/issues").status_code == 401


def test_manual_resolve(stack: Stack) -> None:
    [issue] = run_issues(NS_W, "w.job", [RunFact(run_id("w1"), "FAIL", ms(at(50)), ms(at(49)))])
    insert_issues(stack.client, stack.db, [issue], DETECTED_MS)
    path = f"/issues/{issue.issue_id}/resolve"
    before = get(stack, f"/issues/{issue.issue_id}")
    assert before["status"] == "open"

    assert status_of(stack, "POST", path, stack.read_all) == 403  # read role only
    assert status_of(stack, "POST", path, stack.write_a) == 404  # not its namespace
    assert status_of(stack, "POST", "/issues/unknown/resolve", stack.write_w) == 404

    started_at = datetime.now(UTC) - timedelta(seconds=1)
    resp = httpx.post(f"{stack.url}/api/v2{path}", headers=stack.write_w)
    assert resp.status_code == 200, resp.text
    after = resp.json()
    assert after["status"] == "resolved"
    assert after["resolved_how"] == f"resolved by {stack.key_ids['write_w']}"
    assert after["resolved_by_run"] is None
    resolved_at = datetime.fromisoformat(after["resolved_at"].replace("Z", "+00:00"))
    assert started_at <= resolved_at <= datetime.now(UTC) + timedelta(seconds=1)
    assert after["updated_at"] == after["resolved_at"]
    # every other field is what it was (detected_at too: min keeps the first)
    unchanged = ("status", "resolved_at", "resolved_how", "resolved_by_run", "updated_at")
    assert {k: v for k, v in after.items() if k not in unchanged} == {
        k: v for k, v in before.items() if k not in unchanged
    }
    assert get(stack, f"/issues/{issue.issue_id}") == after
    assert ids(get(stack, "/issues", namespace=NS_W, status="open")) == []
    assert ids(get(stack, "/issues", namespace=NS_W, status="resolved")) == [issue.issue_id]

    again = httpx.post(f"{stack.url}/api/v2{path}", headers=stack.admin)
    assert again.status_code == 409 and "resolved already" in again.json()["error"]
    assert get(stack, f"/issues/{issue.issue_id}") == after  # left as it was


# --- dataset quality --------------------------------------------------------------------


def test_dataset_quality_numbers_are_the_events(stack: Stack) -> None:
    body = get(stack, f"/datasets/{NS}/{DATASET}/quality")
    assert body["namespace"] == NS and body["name"] == DATASET
    assert body["open_issues"] == 1  # unique_6 (unique_4 was resolved by r5)
    runs = body["runs"]
    # newest first: the DatasetEvent, then r6 .. r0 (r7 failed without checks)
    assert [r["run_id"] for r in runs] == [None, *reversed(RUNS[:7])]

    dataset_event = runs[0]
    assert dataset_event["job"] is None and dataset_event["state"] is None
    assert dataset_event["time"] == iso(at(1000))
    assert dataset_event["assertions"] == []
    assert dataset_event["metrics"]["dataset"]["row_count"] == 5000
    assert dataset_event["metrics"]["dataset"]["direction"] is None
    assert dataset_event["metrics"]["columns"]["id"]["null_count"] == 7

    for run in runs[1:]:
        i = RUNS.index(run["run_id"])
        assert run["job"] == {"namespace": NS, "name": JOB}
        assert run["state"] == "COMPLETE"
        assert run["time"] == iso(ended(i))
        by_check = {a["assertion"]: a for a in run["assertions"]}
        assert sorted(by_check) == ["not_null", "row_count", "unique"]
        assert by_check["not_null"]["status"] == ("skipped" if i == 6 else "pass")
        unique_ok = i not in (4, 6)
        assert by_check["unique"] == {
            "assertion": "unique",
            "column": "id",
            "check_name": "unique_orders_id",
            "status": "pass" if unique_ok else "fail",
            "severity": "warn",
            "expected": "0",
            "actual": "0" if unique_ok else str(i),
            "description": None,
        }
        assert by_check["row_count"]["column"] is None
        assert by_check["row_count"]["check_name"] is None
        assert by_check["row_count"]["actual"] == str(1000 + i)
        assert run["counts"] == {
            "pass": 1 + unique_ok + (i != 6),
            "fail": int(not unique_ok),
            "skipped": int(i == 6),
        }
        metrics = run["metrics"]
        if i == 6:  # the output's metrics win over the input's
            assert metrics["dataset"] == {
                "direction": "output",
                "row_count": 2000,
                "byte_count": None,
                "file_count": None,
                "last_updated": None,
            }
            assert metrics["columns"]["id"]["direction"] == "output"
            assert metrics["columns"]["id"]["null_count"] == 0
            assert metrics["columns"]["id"]["quantiles"] is None
            assert metrics["columns"]["amount"] == {
                "direction": "input",
                "null_count": 12,
                "distinct_count": None,
                "sum": None,
                "count": None,
                "min": None,
                "max": None,
                "quantiles": None,
            }
            continue
        assert metrics["dataset"] == {
            "direction": "input",
            "row_count": 1000 + i,
            "byte_count": 50_000 + i,
            "file_count": 3,
            "last_updated": iso(started(i)),
        }
        assert metrics["columns"]["id"] == {
            "direction": "input",
            "null_count": i,
            "distinct_count": 1000 + i,
            "sum": 1.5 * i,
            "count": 1000 + i,
            "min": 1,
            "max": 1000 + i,
            "quantiles": {"0.5": 500 + i, "0.9": 900.5},
        }
        assert metrics["columns"]["amount"]["null_count"] == 2 * i

    assert body["assertions"] == [
        {
            "assertion": "not_null",
            "column": "id",
            "check_name": "not_null_orders_id",
            "passed": 6,
            "failed": 0,
            "skipped": 1,
            "last_status": "skipped",
        },
        {
            "assertion": "row_count",
            "column": None,
            "check_name": None,
            "passed": 7,
            "failed": 0,
            "skipped": 0,
            "last_status": "pass",
        },
        {
            "assertion": "unique",
            "column": "id",
            "check_name": "unique_orders_id",
            "passed": 5,
            "failed": 2,
            "skipped": 0,
            "last_status": "fail",
        },
    ]

    # the window: the DatasetEvent, r6 and r5 only
    recent = get(stack, f"/datasets/{NS}/{DATASET}/quality", runs=3)
    assert [r["run_id"] for r in recent["runs"]] == [None, RUNS[6], RUNS[5]]
    unique = next(a for a in recent["assertions"] if a["assertion"] == "unique")
    assert (unique["passed"], unique["failed"], unique["last_status"]) == (1, 1, "fail")

    missing = httpx.get(f"{stack.url}/api/v2/datasets/{NS}/nope/quality", headers=stack.admin)
    assert missing.status_code == 404 and "nope" in missing.json()["error"]
    # a dataset without checks: known, empty
    plain = get(stack, f"/datasets/{NS_B}/secret_table/quality")
    assert plain["runs"] == [] and plain["assertions"] == [] and plain["open_issues"] == 0


# --- job durations ----------------------------------------------------------------------


def band(durations_ms: list[int]) -> tuple[float, float, float, float]:
    mean = statistics.fmean(durations_ms)
    spread = statistics.pstdev(durations_ms)
    allowed = max(3 * spread, 0.1 * mean)
    return mean, spread, mean - allowed, mean + allowed


def test_job_durations_and_band(stack: Stack) -> None:
    body = get(stack, f"/jobs/{NS}/{seg(JOB)}/durations")
    runs = body["runs"]
    assert [r["run_id"] for r in runs] == RUNS  # oldest first, r7 (FAIL) included
    for i, run in enumerate(runs):
        assert run["started_at"] == iso(started(i))
        assert run["ended_at"] == iso(ended(i))
        assert run["duration_ms"] == int((ended(i) - started(i)).total_seconds() * 1000)
        assert run["state"] == ("FAIL" if i == 7 else "COMPLETE")
        assert run["outlier"] is (i == 5)
    completed = [s * 1000 for s in DURATIONS_S]  # the FAIL run does not count
    mean, spread, low, high = band(completed)
    assert body["namespace"] == NS and body["name"] == JOB and body["complete_runs"] == 7
    assert body["mean_ms"] == pytest.approx(mean, abs=0.001)
    assert body["stddev_ms"] == pytest.approx(spread, abs=0.001)
    assert body["band"] == {
        "low_ms": pytest.approx(low, abs=0.001),
        "high_ms": pytest.approx(high, abs=0.001),
    }
    # only the last three finished runs: r5, r6 (COMPLETE) and r7 (FAIL)
    recent = get(stack, f"/jobs/{NS}/{seg(JOB)}/durations", runs=3)
    assert [r["run_id"] for r in recent["runs"]] == RUNS[5:]
    mean, spread, low, high = band([400_000, 100_000])
    assert recent["mean_ms"] == pytest.approx(mean) and recent["stddev_ms"] == pytest.approx(spread)
    assert recent["band"]["low_ms"] == pytest.approx(low)  # 10% of the mean is smaller here
    assert mean - low == pytest.approx(3 * spread)

    # no START event: no duration, nothing to average
    nostart = get(stack, f"/jobs/{NS}/{seg('load.nostart')}/durations")
    assert [(r["run_id"], r["duration_ms"]) for r in nostart["runs"]] == [(NOSTART_RUN, None)]
    assert nostart["mean_ms"] is None and nostart["band"] is None

    missing = httpx.get(f"{stack.url}/api/v2/jobs/{NS}/nope/durations", headers=stack.admin)
    assert missing.status_code == 404 and "nope" in missing.json()["error"]


# --- webhooks -----------------------------------------------------------------------------


def test_webhooks_api_admin_only(stack: Stack) -> None:
    body = {
        "url": "https://hooks.example.com/lh",
        "secret": "s3cret",
        "kinds": ["assertion_failed", "run_failed"],
        "namespaces": ["qa-*"],
        "severities": ["error"],
    }
    for headers in (stack.read_all, stack.write_a, stack.admin_a):
        assert status_of(stack, "GET", "/webhooks", headers) == 403
        assert status_of(stack, "POST", "/webhooks", headers, json=body) == 403
        assert status_of(stack, "DELETE", "/webhooks/wh_0000000000000000", headers) == 403

    resp = httpx.post(f"{stack.url}/api/v2/webhooks", json=body, headers=stack.admin)
    assert resp.status_code == 201, resp.text
    created = resp.json()
    assert created["webhook_id"].startswith("wh_") and len(created["webhook_id"]) == 19
    assert created["has_secret"] is True and "secret" not in created
    assert created["url"] == body["url"]
    assert (created["kinds"], created["namespaces"], created["severities"]) == (
        body["kinds"],
        body["namespaces"],
        body["severities"],
    )
    assert created["created_by"] == stack.key_ids["admin"]
    created_at = datetime.fromisoformat(created["created_at"].replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - created_at).total_seconds()) < 60

    listed = httpx.get(f"{stack.url}/api/v2/webhooks", headers=stack.admin)
    assert listed.status_code == 200
    assert created in listed.json()
    assert "s3cret" not in listed.text
    # the worker reads the secret through the adapter
    stored = get_webhook(stack.client, stack.db, created["webhook_id"])
    assert stored is not None and stored.secret == "s3cret"

    bare = httpx.post(
        f"{stack.url}/api/v2/webhooks", json={"url": "http://h:8080/x"}, headers=stack.admin
    ).json()
    assert (bare["has_secret"], bare["kinds"], bare["namespaces"]) == (False, [], [])

    bad = {
        "url": ({"url": "ftp://example.com/x"}, "url"),
        "no host": ({"url": "https:///x"}, "url"),
        "kind": ({**body, "kinds": ["run_failed", "exploded"]}, "kinds"),
        "severity": ({**body, "severities": ["fatal"]}, "severities"),
        "namespace": ({**body, "namespaces": ["qa-*", ""]}, "namespaces"),
    }
    for label, (payload, field) in bad.items():
        resp = httpx.post(f"{stack.url}/api/v2/webhooks", json=payload, headers=stack.admin)
        assert resp.status_code == 400, (label, resp.text)
        assert resp.json()["error"].startswith(field), (label, resp.text)

    path = f"/webhooks/{created['webhook_id']}"
    assert status_of(stack, "DELETE", path, stack.admin) == 204
    assert status_of(stack, "DELETE", path, stack.admin) == 404
    remaining = httpx.get(f"{stack.url}/api/v2/webhooks", headers=stack.admin).json()
    assert created["webhook_id"] not in [h["webhook_id"] for h in remaining]
    assert bare in remaining


def test_webhook_store_versions(stack: Stack) -> None:
    hook = add_webhook(
        stack.client, stack.db, " https://a.example.com/h ", kinds=["schema_changed"] * 2
    )
    assert hook.url == "https://a.example.com/h" and hook.kinds == ("schema_changed",)
    assert hook in list_webhooks(stack.client, stack.db)
    assert remove_webhook(stack.client, stack.db, hook.webhook_id) is True
    assert get_webhook(stack.client, stack.db, hook.webhook_id) is None
    assert hook.webhook_id not in [h.webhook_id for h in list_webhooks(stack.client, stack.db)]
    assert remove_webhook(stack.client, stack.db, hook.webhook_id) is False
    assert remove_webhook(stack.client, stack.db, "wh_unknown") is False
    with pytest.raises(ValueError, match=r"^severities: unknown value"):
        add_webhook(stack.client, stack.db, "https://a.example.com", severities=["low"])


def test_webhooks_cli(stack: Stack, tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("file-secret\n")
    added = run_cli(
        stack.settings,
        "webhooks",
        "add",
        "https://cli.example.com/hook",
        "--secret-file",
        str(secret_file),
        "--kind",
        "run_failed",
        "--namespace",
        "qa-*",
        "--namespace",
        "etl-*",
        "--severity",
        "error",
    )
    assert added.returncode == 0, added.stderr
    webhook_id = added.stdout.split()[2]
    assert webhook_id.startswith("wh_"), added.stdout
    stored = get_webhook(stack.client, stack.db, webhook_id)
    assert stored is not None
    assert stored.secret == "file-secret" and stored.created_by == "cli"
    assert (stored.kinds, stored.namespaces, stored.severities) == (
        ("run_failed",),
        ("qa-*", "etl-*"),
        ("error",),
    )

    listed = run_cli(stack.settings, "webhooks", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    views = [json.loads(line) for line in listed.stdout.splitlines()]
    assert stored.public() in views
    assert "file-secret" not in listed.stdout
    table = run_cli(stack.settings, "webhooks", "list")
    assert webhook_id in table.stdout and "https://cli.example.com/hook" in table.stdout
    # the API shows the same subscription
    api_view = httpx.get(f"{stack.url}/api/v2/webhooks", headers=stack.admin).json()
    assert stored.public() in api_view

    removed = run_cli(stack.settings, "webhooks", "remove", webhook_id)
    assert removed.returncode == 0, removed.stderr
    assert get_webhook(stack.client, stack.db, webhook_id) is None
    again = run_cli(stack.settings, "webhooks", "remove", webhook_id)
    assert again.returncode == 1 and webhook_id in again.stderr

    before = len(list_webhooks(stack.client, stack.db))
    for args, needle in (
        (("https://x.example.com", "--kind", "exploded"), "kinds"),
        (("https://x.example.com", "--severity", "fatal"), "severities"),
        (("mailto:someone@example.com",), "url"),
        (("https://x.example.com", "--secret", "a", "--secret-file", str(secret_file)), "both"),
        (("https://x.example.com", "--secret-file", str(tmp_path / "missing")), "secret-file"),
    ):
        result = run_cli(stack.settings, "webhooks", "add", *args)
        assert result.returncode == 2, (args, result.stdout, result.stderr)
        assert needle in result.stderr, (args, result.stderr)
    assert len(list_webhooks(stack.client, stack.db)) == before
