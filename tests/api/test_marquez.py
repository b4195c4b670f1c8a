"""The Marquez-compatible `/api/v1` (api/marquez.py) against the real `lineagehouse api`,
ClickHouse and broker: Marquez's shapes with httpx, then the real marquez-python 0.50.0
client (its own virtualenv, tests/emitters/marquez_env.py).

One store per module (events stored through the real derivation with `load_events`):
datasets with '/' in their names, namespaces with '://', a job whose `sql` facet holds a
sentinel that no Marquez response may carry (SQL is hidden by default). Tests that write
(tags, deletes) use objects of their own.
"""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from lineagehouse.apikeys import create_key
from lineagehouse.embedded.process import http_ok, stop_process, wait_until
from lineagehouse.settings import Settings
from lineagehouse.store.client import connect
from lineagehouse.store.migrations import migrate
from tests.conftest import REPO, lineagehouse_cmd, load_events, settings_env, unique_settings
from tests.events import PRODUCER, SCHEMA_URL, facet

SENTINEL = "SENTINEL_SQL_MQ_91c2"
NS = "mq-a"
NS_B = "mq-b"
PG = "postgres://db:5432"
S3 = "s3://bucket"
RAW = "raw/orders"  # a '/' in a dataset name
ORDERS = "public.orders"
REPORT = "reports/daily"
# recent, so that the stats of the last day and week count them
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def iso(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def seg(text: str) -> str:
    return quote(text, safe="")


def run_id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"marquez-test/{name}"))


R_LOAD, R_REPORT, R_FAIL, R_SECRET = (run_id(n) for n in ("load", "report", "fail", "secret"))


def schema(*fields: tuple[str, str]) -> dict[str, Any]:
    return {
        "schema": facet(
            "SchemaDatasetFacet", "1-1-0", fields=[{"name": n, "type": t} for n, t in fields]
        )
    }


def column_lineage(fields: dict[str, tuple[str, str, str]]) -> dict[str, Any]:
    """output field -> (input namespace, input name, input field), DIRECT/IDENTITY."""
    return {
        "columnLineage": facet(
            "ColumnLineageDatasetFacet",
            "1-2-0",
            fields={
                out: {
                    "inputFields": [
                        {
                            "namespace": ns,
                            "name": name,
                            "field": field,
                            "transformations": [{"type": "DIRECT", "subtype": "IDENTITY"}],
                        }
                    ]
                }
                for out, (ns, name, field) in fields.items()
            },
        )
    }


def event(
    job: str,
    namespace: str,
    event_type: str,
    when: datetime,
    run: str,
    inputs: Sequence[tuple[str, str, dict[str, Any]]] = (),
    outputs: Sequence[tuple[str, str, dict[str, Any]]] = (),
    job_facets: dict[str, Any] | None = None,
    run_facets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "eventType": event_type,
        "eventTime": when.isoformat().replace("+00:00", "Z"),
        "run": {"runId": run, "facets": run_facets or {}},
        "job": {"namespace": namespace, "name": job, "facets": job_facets or {}},
        "inputs": [{"namespace": ns, "name": n, "facets": f} for ns, n, f in inputs],
        "outputs": [{"namespace": ns, "name": n, "facets": f} for ns, n, f in outputs],
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
    }
    return body


SQL = {"sql": facet("SQLJobFacet", "1-1-0", query=f"SELECT '{SENTINEL}' FROM raw")}
LOAD_FACETS = {
    **SQL,
    "documentation": facet("DocumentationJobFacet", description="loads orders"),
    "sourceCodeLocation": facet(
        "SourceCodeLocationJobFacet", type="git", url="https://git.example.com/etl/load.py"
    ),
}
RAW_FACETS = schema(("id", "BIGINT"), ("amt", "DECIMAL"))
ORDERS_FACETS = {
    **schema(("id", "BIGINT"), ("amount", "DECIMAL")),
    **column_lineage({"id": (PG, RAW, "id"), "amount": (PG, RAW, "amt")}),
}
REPORT_FACETS = {
    **schema(("total", "DECIMAL")),
    **column_lineage({"total": (PG, ORDERS, "amount")}),
}


def store_events() -> list[dict[str, Any]]:
    nominal = {
        "nominalTime": facet(
            "NominalTimeRunFacet", nominalStartTime=iso(at(-60)), nominalEndTime=iso(at(0))
        )
    }
    return [
        event("etl.load", NS, "START", at(0), R_LOAD, job_facets=LOAD_FACETS, run_facets=nominal),
        event(
            "etl.load",
            NS,
            "COMPLETE",
            at(10),
            R_LOAD,
            inputs=[(PG, RAW, RAW_FACETS)],
            outputs=[(PG, ORDERS, ORDERS_FACETS)],
            job_facets=LOAD_FACETS,
        ),
        event("etl.report", NS, "START", at(20), R_REPORT, job_facets=SQL),
        event(
            "etl.report",
            NS,
            "COMPLETE",
            at(25),
            R_REPORT,
            inputs=[(PG, ORDERS, {})],
            outputs=[(S3, REPORT, REPORT_FACETS)],
            job_facets=SQL,
        ),
        event("etl.fail", NS, "START", at(30), R_FAIL),
        event(
            "etl.fail",
            NS,
            "FAIL",
            at(35),
            R_FAIL,
            outputs=[(PG, "public.failed", {})],
            run_facets={
                "errorMessage": facet(
                    "ErrorMessageRunFacet", message="disk full", programmingLanguage="python"
                )
            },
        ),
        event(
            "secret.job",
            NS_B,
            "COMPLETE",
            at(40),
            R_SECRET,
            outputs=[(NS_B, "hidden.table", {})],
            job_facets=SQL,
        ),
        # only the write tests touch these
        event(
            "etl.tagged",
            NS,
            "COMPLETE",
            at(50),
            run_id("tagged"),
            outputs=[(S3, "curated/tagged", schema(("id", "BIGINT"), ("email", "VARCHAR")))],
        ),
        event(
            "etl.doomed",
            NS,
            "COMPLETE",
            at(60),
            run_id("doomed"),
            outputs=[(S3, "tmp/doomed", {})],
        ),
    ]


@dataclass
class Stack:
    settings: Settings
    url: str
    admin: dict[str, str]
    read: dict[str, str]  # read, every namespace
    read_a: dict[str, str]  # read, mq-a*, postgres://* and s3://*
    write: dict[str, str]  # write, mq-a* and s3://*
    read_plain: str  # the read key itself, for marquez-python


@pytest.fixture(scope="module")
def stack(
    broker: str, clickhouse_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("marquez")
    settings = unique_settings(broker, clickhouse_url, tmp / "data")
    tag = settings.clickhouse.database.removeprefix("test_")
    migrate(settings)
    load_events(settings, store_events())
    client = connect(settings.clickhouse)

    def key(role: str, *namespaces: str) -> str:
        plaintext, _ = create_key(client, settings, f"{role}-{tag}", role, namespaces)
        return plaintext

    def bearer(plaintext: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {plaintext}"}

    read_plain = key("read")
    keys = {
        "admin": bearer(key("admin")),
        "read": bearer(read_plain),
        "read_a": bearer(key("read", "mq-a*", "postgres://*", "s3://*")),
        "write": bearer(key("write", "mq-a*", "s3://*")),
    }
    log_path = tmp / "api.log"
    log = open(log_path, "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        lineagehouse_cmd("api"), env=settings_env(settings), stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{settings.api.port}"
    try:
        wait_until(lambda: http_ok(f"{url}/readyz"), "API readiness", 90, proc)
        yield Stack(settings, url, read_plain=read_plain, **keys)
    except Exception:
        raise AssertionError(f"API failed:\n{log_path.read_text()[-3000:]}") from None
    finally:
        stop_process(proc)
        log.close()
        client.close()


def call(
    stack: Stack,
    method: str,
    path: str,
    headers: dict[str, str] | None = None,
    expect: int = 200,
    **params: Any,
) -> Any:
    resp = httpx.request(
        method,
        f"{stack.url}/api/v1{path}",
        params=params,
        headers=stack.admin if headers is None else headers,
    )
    assert resp.status_code == expect, (method, path, resp.status_code, resp.text)
    return resp.json()


def get(stack: Stack, path: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
    return call(stack, "GET", path, headers, **params)


DATASET_KEYS = {
    "id",
    "type",
    "name",
    "physicalName",
    "createdAt",
    "updatedAt",
    "namespace",
    "sourceName",
    "fields",
    "tags",
    "lastModifiedAt",
    "lastLifecycleState",
    "description",
    "currentVersion",
    "columnLineage",
    "facets",
    "deleted",
}
JOB_KEYS = {
    "id",
    "type",
    "name",
    "simpleName",
    "parentJobName",
    "parentJobUuid",
    "createdAt",
    "updatedAt",
    "namespace",
    "inputs",
    "outputs",
    "location",
    "description",
    "latestRun",
    "latestRuns",
    "facets",
    "currentVersion",
    "labels",
    "tags",
}
RUN_KEYS = {
    "id",
    "createdAt",
    "updatedAt",
    "nominalStartTime",
    "nominalEndTime",
    "state",
    "startedAt",
    "endedAt",
    "durationMs",
    "args",
    "jobVersion",
    "inputDatasetVersions",
    "outputDatasetVersions",
    "facets",
}


def ids(datasets: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(d["namespace"], d["name"]) for d in datasets]


# --- namespaces, datasets ----------------------------------------------------------------


def test_namespaces_list_get_and_scope(stack: Stack) -> None:
    body = get(stack, "/namespaces", limit=100, offset=0)
    assert set(body) == {"namespaces"}
    by_name = {n["name"]: n for n in body["namespaces"]}
    assert set(by_name) == {NS, NS_B, PG, S3}
    assert set(by_name[NS]) == {
        "name",
        "createdAt",
        "updatedAt",
        "ownerName",
        "description",
        "isHidden",
    }
    assert by_name[NS]["createdAt"] == iso(at(0))
    assert by_name[NS]["ownerName"] == "anonymous" and by_name[NS]["description"] is None

    assert get(stack, f"/namespaces/{seg(PG)}")["name"] == PG
    scoped = get(stack, "/namespaces", stack.read_a)
    assert NS_B not in [n["name"] for n in scoped["namespaces"]]
    error = call(stack, "GET", f"/namespaces/{NS_B}", stack.read_a, expect=404)
    assert error["code"] == 404 and NS_B in error["message"]
    error = call(stack, "GET", "/namespaces/nope", expect=404)
    assert error == {"code": 404, "message": "Namespace 'nope' not found."}
    assert call(stack, "GET", "/namespaces", {}, expect=401)["code"] == 401


def test_dataset_with_slash_in_name_and_column_lineage(stack: Stack) -> None:
    raw = get(stack, f"/namespaces/{seg(PG)}/datasets/{seg(RAW)}")
    assert set(raw) == DATASET_KEYS
    assert raw["id"] == {"namespace": PG, "name": RAW}
    assert (raw["name"], raw["physicalName"], raw["type"]) == (RAW, RAW, "DB_TABLE")
    assert raw["fields"] == [
        {"name": "id", "type": "BIGINT", "tags": [], "description": None},
        {"name": "amt", "type": "DECIMAL", "tags": [], "description": None},
    ]
    assert raw["sourceName"] == "default" and raw["deleted"] is False
    assert raw["columnLineage"] is None and raw["lastModifiedAt"] is None  # only read
    assert "schema" in raw["facets"]

    orders = get(stack, f"/namespaces/{seg(PG)}/datasets/{ORDERS}")
    assert orders["lastModifiedAt"] == iso(at(10))  # the completed run that wrote it
    assert orders["currentVersion"]
    assert orders["columnLineage"] == [
        {
            "name": "amount",
            "inputFields": [
                {
                    "namespace": PG,
                    "dataset": RAW,
                    "field": "amt",
                    "transformationDescription": None,
                    "transformationType": "IDENTITY",
                }
            ],
            "transformationDescription": None,
            "transformationType": "IDENTITY",
        },
        {
            "name": "id",
            "inputFields": [
                {
                    "namespace": PG,
                    "dataset": RAW,
                    "field": "id",
                    "transformationDescription": None,
                    "transformationType": "IDENTITY",
                }
            ],
            "transformationDescription": None,
            "transformationType": "IDENTITY",
        },
    ]

    page = get(stack, f"/namespaces/{seg(PG)}/datasets", limit=2, offset=0)
    assert page["totalCount"] == 3
    assert ids(page["datasets"]) == [(PG, "public.failed"), (PG, ORDERS)]
    assert all(set(d) == DATASET_KEYS for d in page["datasets"])
    missing = call(stack, "GET", f"/namespaces/{seg(PG)}/datasets/nope", expect=404)
    assert missing == {"code": 404, "message": "Dataset 'nope' not found."}
    # '/' unencoded cannot be told from a sub-resource: not a dataset
    call(stack, "GET", f"/namespaces/{seg(PG)}/datasets/raw/orders", expect=404)


def test_dataset_versions_with_the_run_that_made_them(stack: Stack) -> None:
    body = get(stack, f"/namespaces/{seg(PG)}/datasets/{ORDERS}/versions")
    assert body["totalCount"] == 1
    (version,) = body["versions"]
    assert version["id"] == {"namespace": PG, "name": ORDERS}
    assert (
        version["version"]
        == get(stack, f"/namespaces/{seg(PG)}/datasets/{ORDERS}")["currentVersion"]
    )
    assert [f["name"] for f in version["fields"]] == ["id", "amount"]
    assert version["createdByRun"]["id"] == R_LOAD
    assert version["createdByRun"]["state"] == "COMPLETED"
    one = get(stack, f"/namespaces/{seg(PG)}/datasets/{ORDERS}/versions/{version['version']}")
    assert one == version
    call(stack, "GET", f"/namespaces/{seg(PG)}/datasets/{ORDERS}/versions/0000abcd", expect=404)


# --- jobs, runs --------------------------------------------------------------------------


def test_job_shape_latest_runs_and_sql_hidden(stack: Stack) -> None:
    job = get(stack, f"/namespaces/{NS}/jobs/etl.load")
    assert set(job) == JOB_KEYS
    assert job["id"] == {"namespace": NS, "name": "etl.load"}
    assert (job["type"], job["simpleName"], job["parentJobName"]) == ("BATCH", "etl.load", None)
    assert job["inputs"] == [{"namespace": PG, "name": RAW}]
    assert job["outputs"] == [{"namespace": PG, "name": ORDERS}]
    assert job["location"] == "https://git.example.com/etl/load.py"
    assert job["description"] == "loads orders"
    assert set(job["latestRun"]) == RUN_KEYS
    assert job["latestRun"]["id"] == R_LOAD and job["latestRuns"] == [job["latestRun"]]
    assert "_redacted" in job["facets"]["sql"] and SENTINEL not in json.dumps(job)

    page = get(stack, f"/namespaces/{NS}/jobs")
    assert page["totalCount"] == 5
    assert [j["name"] for j in page["jobs"]] == [
        "etl.doomed",
        "etl.fail",
        "etl.load",
        "etl.report",
        "etl.tagged",
    ]
    everything = get(stack, "/jobs")
    assert everything["totalCount"] == 6
    assert get(stack, "/jobs", stack.read_a)["totalCount"] == 5  # not mq-b's
    failed = get(stack, "/jobs", lastRunStates="failed")
    assert [j["name"] for j in failed["jobs"]] == ["etl.fail"]
    assert failed["jobs"][0]["latestRun"]["state"] == "FAILED"
    both = get(stack, "/jobs", lastRunStates=["FAILED", "COMPLETED"])
    assert both["totalCount"] == 6
    assert call(stack, "GET", "/jobs", expect=400, lastRunStates="SLEEPING")["code"] == 400
    call(stack, "GET", f"/namespaces/{NS_B}/jobs/secret.job", stack.read_a, expect=404)


def test_runs_states_durations_and_facets(stack: Stack) -> None:
    runs = get(stack, f"/namespaces/{NS}/jobs/etl.load/runs")
    assert runs["totalCount"] == 1
    run = get(stack, f"/jobs/runs/{R_LOAD}")
    assert runs["runs"] == [run]
    assert set(run) == RUN_KEYS
    assert run["state"] == "COMPLETED" and run["durationMs"] == 10_000
    assert (run["startedAt"], run["endedAt"]) == (iso(at(0)), iso(at(10)))
    assert (run["nominalStartTime"], run["nominalEndTime"]) == (iso(at(-60)), iso(at(0)))
    assert run["jobVersion"] == {"namespace": NS, "name": "etl.load", "version": None}
    assert [v["datasetVersionId"]["name"] for v in run["inputDatasetVersions"]] == [RAW]
    assert [v["datasetVersionId"]["name"] for v in run["outputDatasetVersions"]] == [ORDERS]
    assert "nominalTime" in run["facets"]

    failed = get(stack, f"/jobs/runs/{R_FAIL}")
    assert failed["state"] == "FAILED" and failed["durationMs"] == 5_000
    assert failed["facets"]["errorMessage"]["message"] == "disk full"

    facets = get(stack, f"/jobs/runs/{R_LOAD}/facets", type="run")
    assert facets["runId"] == R_LOAD and "nominalTime" in facets["facets"]
    job_facets = get(stack, f"/jobs/runs/{R_LOAD}/facets", type="JOB")
    assert "_redacted" in job_facets["facets"]["sql"]
    assert job_facets["facets"]["documentation"]["description"] == "loads orders"
    call(stack, "GET", f"/jobs/runs/{R_SECRET}", stack.read_a, expect=404)
    call(stack, "GET", f"/jobs/runs/{run_id('nope')}", expect=404)


# --- lineage -----------------------------------------------------------------------------


def node_ids(body: dict[str, Any]) -> list[str]:
    return [n["id"] for n in body["graph"]]


def test_lineage_graph_is_up_and_downstream(stack: Stack) -> None:
    body = get(stack, "/lineage", nodeId=f"dataset:{PG}:{ORDERS}", depth=20)
    d_raw, d_orders, d_report = (
        f"dataset:{PG}:{RAW}",
        f"dataset:{PG}:{ORDERS}",
        f"dataset:{S3}:{REPORT}",
    )
    j_load, j_report = f"job:{NS}:etl.load", f"job:{NS}:etl.report"
    assert node_ids(body) == sorted([d_raw, d_orders, d_report, j_load, j_report])
    nodes = {n["id"]: n for n in body["graph"]}
    assert list(nodes[d_orders]) == ["id", "type", "data", "inEdges", "outEdges"]
    assert nodes[d_orders]["type"] == "DATASET" and nodes[j_load]["type"] == "JOB"
    assert nodes[d_orders]["inEdges"] == [{"origin": j_load, "destination": d_orders}]
    assert nodes[d_orders]["outEdges"] == [{"origin": d_orders, "destination": j_report}]
    assert nodes[j_load]["inEdges"] == [{"origin": d_raw, "destination": j_load}]
    data = nodes[j_load]["data"]
    assert data["latestRun"]["id"] == R_LOAD and data["currentRunUuid"] == R_LOAD
    assert data["inputs"] == [{"namespace": PG, "name": RAW}]
    assert nodes[d_raw]["data"]["fields"][0]["name"] == "id"
    assert "facets" not in data and SENTINEL not in json.dumps(body)

    # the web UI puts encodeURIComponent'ed parts into the id
    web = httpx.get(
        f"{stack.url}/api/v1/lineage?nodeId=dataset:{seg(PG)}:{seg(ORDERS)}&depth=20",
        headers=stack.admin,
    )
    assert web.status_code == 200 and node_ids(web.json()) == node_ids(body)
    assert node_ids(get(stack, "/lineage", nodeId=f"dataset:{PG}:{ORDERS}", depth=0)) == [d_orders]
    job = get(stack, "/lineage", nodeId=f"job:{NS}:etl.report", depth=1)
    assert node_ids(job) == sorted([d_orders, d_report, j_load, j_report, d_raw])
    assert call(stack, "GET", "/lineage", expect=404, nodeId=f"dataset:{PG}:nope")["code"] == 404
    assert call(stack, "GET", "/lineage", expect=400, nodeId="table:x:y")["code"] == 400
    call(stack, "GET", "/lineage", stack.read_a, expect=404, nodeId=f"dataset:{NS_B}:hidden.table")


def test_column_lineage(stack: Stack) -> None:
    up = get(stack, "/column-lineage", nodeId=f"dataset:{PG}:{ORDERS}", depth=20)
    f = lambda ns, n, c: f"datasetField:{ns}:{n}:{c}"  # noqa: E731
    assert node_ids(up) == sorted(
        [f(PG, ORDERS, "id"), f(PG, ORDERS, "amount"), f(PG, RAW, "id"), f(PG, RAW, "amt")]
    )
    nodes = {n["id"]: n for n in up["graph"]}
    amount = nodes[f(PG, ORDERS, "amount")]
    assert amount["type"] == "DATASET_FIELD"
    assert amount["data"] == {
        "namespace": PG,
        "dataset": ORDERS,
        "datasetVersion": None,
        "field": "amount",
        "fieldType": "DECIMAL",
        "transformationDescription": None,
        "transformationType": "IDENTITY",
        "inputFields": [
            {
                "namespace": PG,
                "dataset": RAW,
                "datasetVersion": None,
                "field": "amt",
                "transformationDescription": None,
                "transformationType": "IDENTITY",
            }
        ],
    }
    # Marquez: inEdges start at the node itself and point upstream
    assert amount["inEdges"] == [
        {"origin": f(PG, ORDERS, "amount"), "destination": f(PG, RAW, "amt")}
    ]
    assert nodes[f(PG, RAW, "amt")]["outEdges"] == [
        {"origin": f(PG, RAW, "amt"), "destination": f(PG, ORDERS, "amount")}
    ]

    for flag in ("True", "true"):
        down = get(
            stack,
            "/column-lineage",
            nodeId=f"dataset:{PG}:{ORDERS}",
            depth=20,
            withDownstream=flag,
        )
        assert f(S3, REPORT, "total") in node_ids(down)
    assert node_ids(
        get(stack, "/column-lineage", nodeId=f"dataset:{PG}:{ORDERS}", withDownstream="False")
    ) == node_ids(up)
    field = get(stack, "/column-lineage", nodeId=f(PG, ORDERS, "id"), withDownstream="true")
    assert node_ids(field) == sorted([f(PG, ORDERS, "id"), f(PG, RAW, "id")])
    by_job = get(stack, "/column-lineage", nodeId=f"job:{NS}:etl.report")
    # the job's outputs, and on upstream from there
    assert node_ids(by_job) == sorted(
        [f(S3, REPORT, "total"), f(PG, ORDERS, "amount"), f(PG, RAW, "amt")]
    )
    call(stack, "GET", "/column-lineage", expect=404, nodeId=f(PG, ORDERS, "nope"))


# --- search, events, stats ---------------------------------------------------------------


def test_search(stack: Stack) -> None:
    body = get(stack, "/search", q="ORDERS", sort="name", limit=10)
    assert body["totalCount"] == len(body["results"]) == 2
    assert body["results"] == [
        {
            "type": "DATASET",
            "name": ORDERS,
            "updatedAt": iso(at(25)),
            "namespace": PG,
            "nodeId": f"dataset:{PG}:{ORDERS}",
        },
        {
            "type": "DATASET",
            "name": RAW,
            "updatedAt": iso(at(10)),
            "namespace": PG,
            "nodeId": f"dataset:{PG}:{RAW}",
        },
    ]
    jobs = get(stack, "/search", q="etl.", filter="JOB", sort="UPDATE_AT")
    assert [r["name"] for r in jobs["results"]] == [
        "etl.doomed",
        "etl.tagged",
        "etl.fail",
        "etl.report",
        "etl.load",
    ]
    assert get(stack, "/search", stack.read_a, q="secret")["results"] == []
    assert get(stack, "/search", q="secret")["totalCount"] == 1
    assert call(stack, "GET", "/search", expect=400, q=" ")["code"] == 400


def test_events_lineage_and_client_alias(stack: Stack) -> None:
    body = get(stack, "/events/lineage", limit=100, sortDirection="ASC")
    assert body["totalCount"] == len(store_events())
    assert body["events"][0]["run"]["runId"] == R_LOAD
    assert body["events"][0]["job"]["facets"]["sql"] == {
        "_redacted": body["events"][0]["job"]["facets"]["sql"]["_redacted"]
    }
    assert get(stack, "/events/lineage", before="", after="")["totalCount"] == body["totalCount"]
    window = get(stack, "/events/lineage", after=iso(at(20)), before=iso(at(35)))
    assert window["totalCount"] == 4
    assert get(stack, "/events", limit=3)["totalCount"] == body["totalCount"]
    assert get(stack, f"/events/{NS_B}")["totalCount"] == 1
    assert get(stack, "/events/lineage", stack.read_a)["totalCount"] == body["totalCount"] - 1


def test_stats(stack: Stack) -> None:
    day = get(stack, "/stats/lineage-events", period="DAY", timezone="UTC")
    assert len(day) == 24
    assert set(day[0]) == {"startInterval", "endInterval", "fail", "start", "complete", "abort"}
    events = store_events()
    for kind, name in (("start", "START"), ("complete", "COMPLETE"), ("fail", "FAIL")):
        assert sum(b[kind] for b in day) == sum(e["eventType"] == name for e in events)
    week = get(stack, "/stats/lineage-events", period="week", timezone="Europe/Berlin")
    assert len(week) == 7 and sum(b["start"] for b in week) == 3
    assert week[-1]["endInterval"] > iso(datetime.now(UTC))
    jobs = get(stack, "/stats/jobs", period="DAY")
    assert [b["count"] for b in jobs][-1] == 6 and jobs[0]["count"] == 0
    assert get(stack, "/stats/jobs", stack.read_a, period="DAY")[-1]["count"] == 5
    assert get(stack, "/stats/datasets", period="WEEK", timezone="UTC")[-1]["count"] == 7
    assert get(stack, "/stats/sources", period="DAY")[-1]["count"] == 3  # namespaces
    call(stack, "GET", "/stats/jobs", expect=400, period="WEEK")  # no timezone
    call(stack, "GET", "/stats/jobs", expect=400, period="MONTH")


# --- writes ------------------------------------------------------------------------------


def test_tags_on_datasets_fields_and_jobs(stack: Stack) -> None:
    tagged = f"/namespaces/{seg(S3)}/datasets/{seg('curated/tagged')}"
    call(stack, "POST", f"{tagged}/tags/pii", stack.read, expect=403)
    body = call(stack, "POST", f"{tagged}/tags/pii", stack.write)
    assert body["tags"] == ["pii"] and body["name"] == "curated/tagged"
    body = call(stack, "POST", f"{tagged}/fields/email/tags/sensitive", stack.write)
    assert [f["tags"] for f in body["fields"]] == [[], ["sensitive"]]
    call(stack, "POST", f"{tagged}/fields/nope/tags/x", stack.write, expect=404)
    assert get(stack, tagged)["tags"] == ["pii"]
    body = call(stack, "DELETE", f"{tagged}/tags/pii", stack.write)
    assert body["tags"] == []

    job = call(stack, "POST", f"/namespaces/{NS}/jobs/etl.tagged/tags/gold", stack.write)
    assert job["tags"] == ["gold"] and set(job) == JOB_KEYS
    call(stack, "POST", f"/namespaces/{NS_B}/jobs/secret.job/tags/gold", stack.write, expect=403)

    resp = httpx.put(
        f"{stack.url}/api/v1/tags/finance",
        json={"description": "money"},
        headers=stack.write,
    )
    assert resp.json() == {"name": "finance", "description": "money"}
    tags = {t["name"]: t["description"] for t in get(stack, "/tags")["tags"]}
    assert tags["finance"] == "money" and tags["gold"] is None and tags["sensitive"] is None
    assert "gold" in {t["name"] for t in get(stack, "/tags", stack.read_a)["tags"]}


def test_soft_delete_dataset_and_job(stack: Stack) -> None:
    doomed = f"/namespaces/{seg(S3)}/datasets/{seg('tmp/doomed')}"
    call(stack, "DELETE", doomed, stack.read, expect=403)
    before = call(stack, "DELETE", doomed, stack.write)
    assert before["name"] == "tmp/doomed" and set(before) == DATASET_KEYS
    call(stack, "GET", doomed, expect=404)
    assert "tmp/doomed" not in [
        d["name"] for d in get(stack, f"/namespaces/{seg(S3)}/datasets")["datasets"]
    ]
    job = call(stack, "DELETE", f"/namespaces/{NS}/jobs/etl.doomed", stack.write)
    assert job["name"] == "etl.doomed"
    call(stack, "GET", f"/namespaces/{NS}/jobs/etl.doomed", expect=404)
    call(stack, "DELETE", f"/namespaces/{NS}/jobs/etl.doomed", stack.write, expect=404)


# --- the SQL gate over every route -------------------------------------------------------


def test_no_route_serves_the_sql_by_default(stack: Stack) -> None:
    client = connect(stack.settings.clickhouse)
    try:
        stored = client.command(
            f"SELECT count() FROM {stack.settings.clickhouse.database}.events_raw "
            "WHERE position(payload, {s:String}) > 0",
            parameters={"s": SENTINEL},
        )
    finally:
        client.close()
    assert int(stored) >= 5  # the SQL is there to leak
    gets = [
        ("/namespaces", {}),
        (f"/namespaces/{NS}", {}),
        (f"/namespaces/{NS}/jobs", {}),
        (f"/namespaces/{NS_B}/jobs", {}),
        ("/jobs", {}),
        (f"/namespaces/{NS}/jobs/etl.load", {}),
        (f"/namespaces/{NS}/jobs/etl.load/runs", {}),
        (f"/namespaces/{NS_B}/jobs/secret.job", {}),
        (f"/jobs/runs/{R_LOAD}", {}),
        (f"/jobs/runs/{R_LOAD}/facets", {"type": "job"}),
        (f"/jobs/runs/{R_LOAD}/facets", {"type": "run"}),
        (f"/jobs/runs/{R_SECRET}/facets", {"type": "job"}),
        (f"/namespaces/{seg(PG)}/datasets", {}),
        (f"/namespaces/{seg(PG)}/datasets/{ORDERS}", {}),
        (f"/namespaces/{seg(PG)}/datasets/{ORDERS}/versions", {}),
        ("/lineage", {"nodeId": f"dataset:{PG}:{ORDERS}"}),
        ("/lineage", {"nodeId": f"job:{NS_B}:secret.job"}),
        ("/column-lineage", {"nodeId": f"dataset:{PG}:{ORDERS}", "withDownstream": "true"}),
        ("/search", {"q": "e"}),
        ("/events/lineage", {"limit": 1000}),
        ("/events", {}),
        (f"/events/{NS_B}", {}),
        ("/stats/lineage-events", {"period": "DAY"}),
        ("/stats/jobs", {"period": "DAY"}),
        ("/tags", {}),
    ]
    for headers in (stack.admin, stack.read):
        for path, params in gets:
            resp = httpx.get(f"{stack.url}/api/v1{path}", params=params, headers=headers)
            assert resp.status_code == 200, (path, resp.text)
            assert SENTINEL not in resp.text, path
    job = call(stack, "POST", f"/namespaces/{NS}/jobs/etl.load/tags/x", stack.write)
    assert SENTINEL not in json.dumps(job)


# --- the real client ---------------------------------------------------------------------

CLIENT_SCRIPT = """
import json, os, warnings
warnings.simplefilter("ignore")
from marquez_client import MarquezClient

PG, NS = os.environ["MQ_PG"], os.environ["MQ_NS"]
c = MarquezClient(url=os.environ["MQ_URL"], api_key=os.environ["MQ_KEY"])
out = {
    "namespaces": c.list_namespaces(),
    "namespace": c.get_namespace(PG),
    "jobs": c.list_jobs(NS),
    "datasets": c.list_datasets(PG),
    "runs": c.list_job_runs(NS, "etl.load"),
    "run": c.get_job_run(os.environ["MQ_RUN"]),
    "dataset": c.get_dataset(PG, "raw/orders"),
    "versions": c.list_dataset_versions(PG, "public.orders"),
    "job": c.get_job(NS, "etl.load"),
    "column_lineage": c.get_column_lineage_by_dataset(PG, "public.orders", with_downstream=True),
    "field_lineage": c.get_column_lineage_by_dataset_field(PG, "public.orders", "id"),
    "job_lineage": c.get_column_lineage_by_job(NS, "etl.report"),
    "tags": c.list_tags(),
    "events": c.list_events(limit=5),
    # the client has no method for table lineage: its own transport, Marquez's path
    "lineage": c._get(c._url("/lineage"), params={"nodeId": "dataset:" + PG + ":public.orders"}),
}
try:
    c.get_dataset(PG, "nope")
    out["missing"] = "found"
except Exception as exc:
    out["missing"] = type(exc).__name__
print(json.dumps(out))
"""


@pytest.mark.slow
def test_real_marquez_python_client(stack: Stack) -> None:
    from tests.emitters.marquez_env import marquez_venv, run_client

    python = marquez_venv(REPO / ".venv" / "emitters")
    out = run_client(
        python,
        CLIENT_SCRIPT,
        {
            "MQ_URL": stack.url,
            "MQ_KEY": stack.read_plain,
            "MQ_PG": PG,
            "MQ_NS": NS,
            "MQ_RUN": R_LOAD,
        },
    )
    assert {n["name"] for n in out["namespaces"]["namespaces"]} >= {NS, NS_B, PG, S3}
    assert out["namespace"]["name"] == PG
    assert out["jobs"]["totalCount"] >= 4
    assert {"etl.load", "etl.report", "etl.fail"} <= {j["name"] for j in out["jobs"]["jobs"]}
    assert out["datasets"]["totalCount"] == 3
    assert ids(out["datasets"]["datasets"]) == [(PG, "public.failed"), (PG, ORDERS), (PG, RAW)]
    assert [r["id"] for r in out["runs"]["runs"]] == [R_LOAD]
    assert out["run"]["state"] == "COMPLETED" and out["run"]["durationMs"] == 10_000
    assert out["dataset"]["id"] == {"namespace": PG, "name": RAW}
    assert [f["name"] for f in out["dataset"]["fields"]] == ["id", "amt"]
    assert out["versions"]["versions"][0]["createdByRun"]["id"] == R_LOAD
    assert out["job"]["inputs"] == [{"namespace": PG, "name": RAW}]
    assert out["job"]["outputs"] == [{"namespace": PG, "name": ORDERS}]
    assert out["job"]["latestRun"]["id"] == R_LOAD
    assert SENTINEL not in json.dumps(out)

    def fields(graph: dict[str, Any]) -> set[tuple[str, str, str]]:
        return {
            (n["data"]["namespace"], n["data"]["dataset"], n["data"]["field"])
            for n in graph["graph"]
        }

    assert fields(out["column_lineage"]) == {
        (PG, ORDERS, "id"),
        (PG, ORDERS, "amount"),
        (PG, RAW, "id"),
        (PG, RAW, "amt"),
        (S3, REPORT, "total"),
    }
    assert fields(out["field_lineage"]) == {(PG, ORDERS, "id"), (PG, RAW, "id")}
    assert fields(out["job_lineage"]) == {
        (S3, REPORT, "total"),
        (PG, ORDERS, "amount"),
        (PG, RAW, "amt"),
    }
    assert [n["id"] for n in out["lineage"]["graph"]] == sorted(
        [
            f"dataset:{PG}:{RAW}",
            f"dataset:{PG}:{ORDERS}",
            f"dataset:{S3}:{REPORT}",
            f"job:{NS}:etl.load",
            f"job:{NS}:etl.report",
        ]
    )
    assert len(out["events"]["events"]) == 5
    assert isinstance(out["tags"]["tags"], list)
    assert out["missing"] == "APIError"
