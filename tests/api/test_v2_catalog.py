"""The /api/v2 catalog routes (api/v2_catalog.py, api/catalog.py) against the real
`lineagehouse api`, ClickHouse and broker.

One store per module (events stored through the real derivation with `load_events`), two
API processes: auth on with SQL hidden (the default), and auth on with
LINEAGEHOUSE_API__EXPOSE_SQL=true. Tests that write (tags, deletes) use objects of their
own, so the others see a fixed store.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from lineagehouse.apikeys import create_key
from lineagehouse.embedded.process import stop_process
from lineagehouse.settings import Settings
from lineagehouse.store.client import connect
from lineagehouse.store.migrations import migrate
from tests.conftest import launch_api, load_events, unique_settings
from tests.events import BASE_TIME, PRODUCER, SCHEMA_URL, facet

SENTINEL = "SENTINEL_SQL_7f3a"
SENTINEL_B = "SENTINEL_SQL_B_91c2"  # team-b's SQL
PG = "postgres://host:5432"
S3 = "s3://bucket"
T0 = BASE_TIME


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def iso(value: datetime) -> str:
    return value.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def seg(text: str) -> str:
    """One percent-encoded path segment ('/' and ':' included)."""
    return quote(text, safe="")


def schema(*fields: tuple[str, str]) -> dict[str, Any]:
    return {
        "schema": facet(
            "SchemaDatasetFacet", "1-1-0", fields=[{"name": n, "type": t} for n, t in fields]
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
    """A RunEvent with the given datasets (namespace, name, facets)."""
    body: dict[str, Any] = {
        "eventType": event_type,
        "eventTime": when.isoformat().replace("+00:00", "Z"),
        "run": {"runId": run},
        "job": {"namespace": namespace, "name": job},
        "inputs": [{"namespace": ns, "name": n, "facets": f} for ns, n, f in inputs],
        "outputs": [{"namespace": ns, "name": n, "facets": f} for ns, n, f in outputs],
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
    }
    if job_facets:
        body["job"]["facets"] = job_facets
    if run_facets:
        body["run"]["facets"] = run_facets
    return body


def run_id(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"catalog-test/{name}"))


RUN1, RUN2, RUN3, SECRET_RUN = run_id("1"), run_id("2"), run_id("3"), run_id("secret")
V1 = schema(("id", "BIGINT"), ("amount", "INT"))
V2 = schema(("id", "BIGINT"), ("amount", "DECIMAL"), ("status", "VARCHAR"))
V3 = schema(("id", "BIGINT"), ("status", "VARCHAR"))
CUSTOM_FACET = {
    "_producer": PRODUCER,
    "_schemaURL": "https://example.com/schemas/RunInfo.json#/$defs/RunInfo",
    "owner": "data-team",
}


def store_events() -> list[dict[str, Any]]:
    sql = {"sql": facet("SQLJobFacet", "1-1-0", query=f"SELECT '{SENTINEL}'")}
    docs = {"documentation": facet("DocumentationJobFacet", description="loads orders")}
    orders = "etl.orders"
    events = [
        # run 1: 10 s, writes V1; run 2: FAIL after 5 s, writes V2; run 3: running, V3
        event(orders, "team-a", "START", at(0), RUN1, job_facets={**sql, **docs}),
        event(
            orders,
            "team-a",
            "COMPLETE",
            at(0) + timedelta(seconds=10),
            RUN1,
            inputs=[(S3, "raw/orders_v1", {})],
            outputs=[(PG, "public.orders", V1)],
            job_facets={**sql, **docs},
        ),
        event(orders, "team-a", "START", at(60), RUN2, job_facets=sql),
        event(
            orders,
            "team-a",
            "FAIL",
            at(60) + timedelta(seconds=5),
            RUN2,
            outputs=[(PG, "public.orders", V2)],
            job_facets=sql,
            run_facets={
                "errorMessage": facet(
                    "ErrorMessageRunFacet", message="disk full", programmingLanguage="python"
                )
            },
        ),
        event(
            orders,
            "team-a",
            "START",
            at(120),
            RUN3,
            inputs=[(S3, "raw/orders", {})],
            outputs=[(PG, "public.orders", V3)],
            job_facets=sql,
            run_facets={
                "myCompany_runInfo": CUSTOM_FACET,
                "nominalTime": facet(
                    "NominalTimeRunFacet",
                    nominalStartTime=iso(at(115)),
                    nominalEndTime=iso(at(125)),
                ),
            },
        ),
        event(
            "etl.secret",
            "team-b",
            "COMPLETE",
            at(30),
            SECRET_RUN,
            job_facets={"sql": facet("SQLJobFacet", "1-1-0", query=f"SELECT '{SENTINEL_B}'")},
        ),
    ]
    # search: exact, prefixes and substrings of "orders" in one namespace
    for i, name in enumerate(["big.public.orders", "orders_daily", "x.orders", "orders"]):
        events.append(
            event(
                "unrelated",
                "search-ns",
                "COMPLETE",
                at(200 + i),
                run_id(f"s{i}"),
                outputs=[("search-ns", name, {})],
            )
        )
    events.append(event("Orders_Loader", "search-ns", "COMPLETE", at(210), run_id("loader")))
    # pagination: 7 jobs
    for i in range(7):
        events.append(event(f"p{i}", "paging", "COMPLETE", at(300 + i), run_id(f"p{i}")))
    # writes: objects only the write tests touch
    events.append(
        event(
            "etl.annotated",
            "team-a",
            "COMPLETE",
            at(400),
            run_id("annotated"),
            outputs=[(S3, "curated/annotated", V2)],
        )
    )
    events.append(
        event(
            "etl.doomed",
            "team-a",
            "COMPLETE",
            at(500),
            run_id("doomed"),
            outputs=[(S3, "tmp/doomed", {})],
        )
    )
    return events


@dataclass
class Stack:
    settings: Settings
    url: str  # auth on, SQL hidden
    sql_url: str  # auth on, LINEAGEHOUSE_API__EXPOSE_SQL=true
    admin: dict[str, str]
    read_a: dict[str, str]  # read, namespaces team-a*
    read_b: dict[str, str]  # read, namespaces team-b*
    write_a: dict[str, str]  # write, namespaces team-a* and s3://bucket


@pytest.fixture(scope="module")
def stack(
    broker: str, clickhouse_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("catalog")
    settings = unique_settings(broker, clickhouse_url, tmp / "data")
    tag = settings.clickhouse.database.removeprefix("test_")
    migrate(settings)
    load_events(settings, store_events())
    client = connect(settings.clickhouse)

    def key(role: str, *namespaces: str) -> dict[str, str]:
        plaintext, _ = create_key(client, settings, f"{role}-{tag}", role, namespaces)
        return {"Authorization": f"Bearer {plaintext}"}

    keys = {
        "admin": key("admin"),
        "read_a": key("read", "team-a*"),
        "read_b": key("read", "team-b*"),
        "write_a": key("write", "team-a*", S3),
    }
    procs = []
    try:
        proc, url = launch_api(settings, tmp / "api.log")
        procs.append(proc)
        proc, sql_url = launch_api(
            settings, tmp / "api-sql.log", LINEAGEHOUSE_API__EXPOSE_SQL="true"
        )
        procs.append(proc)
        yield Stack(settings, url, sql_url, **keys)
    finally:
        for proc in procs:
            stop_process(proc)
        client.close()


def get(stack: Stack, path: str, headers: dict[str, str] | None = None, **params: Any) -> Any:
    resp = httpx.get(f"{stack.url}/api/v2{path}", params=params, headers=headers or stack.admin)
    assert resp.status_code == 200, (path, resp.status_code, resp.text)
    return resp.json()


def names(page: dict[str, Any]) -> list[str]:
    return [item["name"] for item in page["items"]]


# --- reads ------------------------------------------------------------------------------


def test_runs_filter_by_job_state_and_time_with_durations(stack: Stack) -> None:
    page = get(stack, "/runs", namespace="team-a", job="etl.orders")
    assert [r["run_id"] for r in page["items"]] == [RUN3, RUN2, RUN1]  # newest start first
    assert page["total"] == 3
    by_id = {r["run_id"]: r for r in page["items"]}
    assert by_id[RUN1]["state"] == "COMPLETE" and by_id[RUN1]["duration_ms"] == 10_000
    assert by_id[RUN1]["started_at"] == iso(at(0))
    assert by_id[RUN1]["ended_at"] == iso(at(0) + timedelta(seconds=10))
    assert by_id[RUN2]["state"] == "FAIL" and by_id[RUN2]["duration_ms"] == 5_000
    assert by_id[RUN2]["error_message"] == "disk full"
    assert by_id[RUN3]["state"] == "START" and by_id[RUN3]["duration_ms"] is None
    assert by_id[RUN3]["nominal_start_time"] == iso(at(115))
    assert by_id[RUN3]["nominal_end_time"] == iso(at(125))
    assert by_id[RUN3]["root_run_id"] == RUN3

    failed = get(stack, "/runs", job="etl.orders", state="fail")
    assert [r["run_id"] for r in failed["items"]] == [RUN2]
    window = get(
        stack,
        "/runs",
        job="etl.orders",
        started_after=iso(at(30)),
        started_before=iso(at(90)),
    )
    assert [r["run_id"] for r in window["items"]] == [RUN2]
    assert window["total"] == 1

    run = get(stack, f"/runs/{RUN3}")
    assert run["job_name"] == "etl.orders"
    assert [(d["namespace"], d["name"]) for d in run["inputs"]] == [(S3, "raw/orders")]
    assert [(d["namespace"], d["name"]) for d in run["outputs"]] == [(PG, "public.orders")]


def test_job_with_latest_run_and_its_inputs_outputs(stack: Stack) -> None:
    job = get(stack, f"/jobs/team-a/{seg('etl.orders')}")
    assert job["latest_run"]["run_id"] == RUN3
    assert job["latest_run"]["state"] == "START"
    assert job["latest_run"]["started_at"] == iso(at(120))
    # the latest run's datasets, not run 1's raw/orders_v1
    assert [(d["namespace"], d["name"]) for d in job["inputs"]] == [(S3, "raw/orders")]
    assert [(d["namespace"], d["name"]) for d in job["outputs"]] == [(PG, "public.orders")]
    assert job["description"] == "loads orders"
    assert job["facets"]["documentation"] == {"description": "loads orders"}
    assert "_redacted" in job["facets"]["sql"]

    listed = get(stack, "/jobs", namespace="team-a")
    item = next(j for j in listed["items"] if j["name"] == "etl.orders")
    assert item["latest_run"]["run_id"] == RUN3
    assert item["outputs"] == job["outputs"]

    resp = httpx.get(f"{stack.url}/api/v2/jobs/team-a/nope", headers=stack.admin)
    assert resp.status_code == 404
    assert "nope" in resp.json()["error"]


def test_dataset_with_encoded_slashes_schema_versions_and_changes(stack: Stack) -> None:
    ds = get(stack, f"/datasets/{seg(PG)}/{seg('public.orders')}")
    assert (ds["namespace"], ds["name"]) == (PG, "public.orders")
    assert [(f["name"], f["type"]) for f in ds["fields"]] == [
        ("id", "BIGINT"),
        ("status", "VARCHAR"),
    ]
    assert ds["produced_by"] == [
        {"namespace": "team-a", "name": "etl.orders", "last_seen": iso(at(120))}
    ]

    # a name with '/' in a namespace with '://'
    raw = get(stack, f"/datasets/{seg(S3)}/{seg('raw/orders')}")
    assert (raw["namespace"], raw["name"]) == (S3, "raw/orders")
    assert raw["consumed_by"][0]["name"] == "etl.orders"

    versions = get(stack, f"/datasets/{seg(PG)}/{seg('public.orders')}/versions")
    assert versions["total"] == 3
    v3, v2, v1 = versions["items"]  # newest first
    assert [v["run_id"] for v in (v3, v2, v1)] == [RUN3, RUN2, RUN1]
    assert [v["created_at"] for v in (v3, v2, v1)] == [
        iso(at(120)),
        iso(at(60) + timedelta(seconds=5)),
        iso(at(0) + timedelta(seconds=10)),
    ]
    assert v3["current"] and not v2["current"]
    assert len({v1["schema_hash"], v2["schema_hash"], v3["schema_hash"]}) == 3
    assert v1["changes"] is None  # nothing before it
    assert v2["changes"] == {
        "added": ["status"],
        "removed": [],
        "retyped": [{"name": "amount", "from": "INT", "to": "DECIMAL"}],
    }
    assert v3["changes"] == {"added": [], "removed": ["amount"], "retyped": []}
    assert [f["name"] for f in v2["fields"]] == ["id", "amount", "status"]

    # an unencoded '/' in the name makes more segments: no such route
    resp = httpx.get(f"{stack.url}/api/v2/datasets/{seg(S3)}/raw/orders", headers=stack.admin)
    assert resp.status_code == 404


def test_run_facets_split_into_standard_and_custom(stack: Stack) -> None:
    facets = get(stack, f"/runs/{RUN3}/facets")
    assert facets["job_name"] == "etl.orders"
    assert facets["run"]["custom"] == {"myCompany_runInfo": CUSTOM_FACET}
    assert set(facets["run"]["standard"]) == {"nominalTime"}
    assert "sql" in facets["job"]["standard"]
    assert [(d["namespace"], d["name"]) for d in facets["outputs"]] == [(PG, "public.orders")]
    assert set(facets["outputs"][0]["facets"]["standard"]) == {"schema"}

    resp = httpx.get(f"{stack.url}/api/v2/runs/{run_id('none')}/facets", headers=stack.admin)
    assert resp.status_code == 404 and "error" in resp.json()


def test_search_ranks_exact_then_prefix_then_substring(stack: Stack) -> None:
    page = get(stack, "/search", q="ORDERS", namespace="search-ns")
    assert [(i["type"], i["name"], i["match"]) for i in page["items"]] == [
        ("dataset", "orders", "exact"),
        ("dataset", "orders_daily", "prefix"),
        ("job", "Orders_Loader", "prefix"),
        ("dataset", "x.orders", "substring"),
        ("dataset", "big.public.orders", "substring"),
    ]
    assert page["total"] == 5
    jobs = get(stack, "/search", q="orders", namespace="search-ns", type="job")
    assert names(jobs) == ["Orders_Loader"]
    top = get(stack, "/search", q="orders", namespace="search-ns", limit=2)
    assert names(top) == ["orders", "orders_daily"] and top["total"] == 5

    runs = get(stack, "/search", q=RUN2[:13], type="run")
    assert [(i["run_id"], i["match"]) for i in runs["items"]] == [(RUN2, "prefix")]


def test_events_paging(stack: Stack) -> None:
    whole = get(stack, "/events", namespace="team-a", job="etl.orders", sort="asc")
    assert whole["total"] == 5
    times = [e["eventTime"] for e in whole["items"]]
    assert times == sorted(times)
    page = get(stack, "/events", namespace="team-a", job="etl.orders", limit=2, offset=2)
    assert page["total"] == 5
    assert [e["eventTime"] for e in page["items"]] == sorted(times, reverse=True)[2:4]
    window = get(stack, "/events", job="etl.orders", after=iso(at(59)), before=iso(at(61)))
    assert [e["eventType"] for e in window["items"]] == ["FAIL", "START"]
    by_run = get(stack, "/events", run_id=RUN1)
    assert {e["run"]["runId"] for e in by_run["items"]} == {RUN1} and by_run["total"] == 2


def test_pagination_totals(stack: Stack) -> None:
    seen = []
    for offset in (0, 3, 6):
        page = get(stack, "/jobs", namespace="paging", limit=3, offset=offset)
        assert page["total"] == 7
        assert (page["limit"], page["offset"]) == (3, offset)
        seen += names(page)
    assert seen == [f"p{i}" for i in range(7)]
    assert get(stack, "/jobs", namespace="paging", limit=0)["items"] == []
    namespaces = {n["name"]: n for n in get(stack, "/namespaces")["items"]}
    assert namespaces["paging"]["jobs"] == 7 and namespaces["paging"]["datasets"] == 0
    assert namespaces["search-ns"]["datasets"] == 4
    runs = get(stack, "/runs", namespace="paging", limit=5)
    assert runs["total"] == 7 and len(runs["items"]) == 5


def test_bad_parameters_are_json_errors(stack: Stack) -> None:
    def bad(path: str, **params: Any) -> dict[str, Any]:
        resp = httpx.get(f"{stack.url}/api/v2{path}", params=params, headers=stack.admin)
        assert resp.status_code == 422, (path, resp.text)
        return resp.json()

    assert "limit" in str(bad("/jobs", limit=1001))
    assert "offset" in str(bad("/datasets", offset=-1))
    assert "started_after" in str(bad("/runs", started_after="yesterday"))
    assert "COMPLETE" in bad("/runs", state="done")["error"]
    assert "q" in str(bad("/search"))
    assert "type" in str(bad("/search", q="x", type="table"))
    assert "sort" in str(bad("/events", sort="sideways"))
    resp = httpx.put(
        f"{stack.url}/api/v2/jobs/team-a/{seg('etl.orders')}/description",
        json={"text": "x"},
        headers=stack.admin,
    )
    assert resp.status_code == 422 and "description" in resp.text


# --- access -----------------------------------------------------------------------------


def test_namespace_scope_hides_other_namespaces(stack: Stack) -> None:
    key = stack.read_a
    assert get(stack, f"/jobs/team-a/{seg('etl.orders')}", key)["name"] == "etl.orders"
    for path in (
        f"/jobs/team-b/{seg('etl.secret')}",
        f"/runs/{SECRET_RUN}",
        f"/runs/{SECRET_RUN}/facets",
    ):
        resp = httpx.get(f"{stack.url}/api/v2{path}", headers=key)
        assert resp.status_code == 404, path
    assert get(stack, f"/jobs/team-b/{seg('etl.secret')}", stack.read_b)["name"] == "etl.secret"

    jobs = get(stack, "/jobs", key)
    assert jobs["items"] and {j["namespace"] for j in jobs["items"]} == {"team-a"}
    assert all(j["namespace"] == "team-a" for j in get(stack, "/jobs", key, limit=1000)["items"])
    assert "team-b" not in {n["name"] for n in get(stack, "/namespaces", key)["items"]}
    found = get(stack, "/search", key, q="etl.")
    assert "etl.orders" in names(found) and "etl.secret" not in names(found)
    assert SECRET_RUN not in {r["run_id"] for r in get(stack, "/runs", key, limit=1000)["items"]}
    events = get(stack, "/events", key, limit=1000)["items"]
    assert events and {e["job"]["namespace"] for e in events} == {"team-a"}
    # everyone else's datasets are outside team-a* too
    assert get(stack, "/datasets", key)["total"] == 0
    assert get(stack, "/datasets", stack.admin)["total"] > 0


def test_write_key_cannot_read_and_no_key_is_401(stack: Stack) -> None:
    for path in ("/jobs", f"/jobs/team-a/{seg('etl.orders')}", "/search?q=etl", "/events"):
        resp = httpx.get(f"{stack.url}/api/v2{path}", headers=stack.write_a)
        assert resp.status_code == 403, path
        assert "read" in resp.json()["error"]
    assert httpx.get(f"{stack.url}/api/v2/jobs").status_code == 401
    # and a read key cannot write
    resp = httpx.post(
        f"{stack.url}/api/v2/jobs/team-a/{seg('etl.annotated')}/tags/x", headers=stack.read_a
    )
    assert resp.status_code == 403


# --- writes -----------------------------------------------------------------------------


def test_tags_and_descriptions_round_trip(stack: Stack) -> None:
    base = f"{stack.url}/api/v2"
    ds = f"/datasets/{seg(S3)}/{seg('curated/annotated')}"
    job = f"/jobs/team-a/{seg('etl.annotated')}"
    w = stack.write_a

    assert httpx.post(f"{base}{ds}/tags/pii", headers=w).json()["tags"] == ["pii"]
    assert httpx.post(f"{base}{ds}/tags/gold", headers=w).json()["tags"] == ["gold", "pii"]
    resp = httpx.post(f"{base}{ds}/fields/status/tags/{seg('sensitive/low')}", headers=w)
    assert resp.status_code == 200 and resp.json()["tags"] == ["sensitive/low"]
    resp = httpx.put(f"{base}{ds}/description", json={"description": "curated"}, headers=w)
    assert resp.json()["description"] == "curated"
    resp = httpx.put(
        f"{base}{ds}/fields/amount/description", json={"description": "in cents"}, headers=w
    )
    assert resp.status_code == 200
    assert httpx.post(f"{base}{job}/tags/nightly", headers=w).status_code == 200
    resp = httpx.put(f"{base}{job}/description", json={"description": "annotates"}, headers=w)
    assert resp.status_code == 200

    got = get(stack, ds)
    assert got["tags"] == ["gold", "pii"] and got["description"] == "curated"
    fields = {f["name"]: f for f in got["fields"]}
    assert fields["status"]["tags"] == ["sensitive/low"]
    assert fields["amount"]["description"] == "in cents"
    got_job = get(stack, job)
    assert got_job["tags"] == ["nightly"] and got_job["description"] == "annotates"

    assert httpx.delete(f"{base}{ds}/tags/pii", headers=w).json()["tags"] == ["gold"]
    httpx.put(f"{base}{job}/description", json={"description": None}, headers=w)
    httpx.delete(f"{base}{job}/tags/nightly", headers=w)
    assert get(stack, ds)["tags"] == ["gold"]
    got_job = get(stack, job)
    assert got_job["tags"] == [] and got_job["description"] is None

    # the object and the field must exist; the namespace must be the key's
    assert httpx.post(f"{base}{ds}/fields/nope/tags/x", headers=w).status_code == 404
    assert httpx.post(f"{base}/jobs/team-a/nope/tags/x", headers=w).status_code == 404
    resp = httpx.post(f"{base}/jobs/team-b/{seg('etl.secret')}/tags/x", headers=w)
    assert resp.status_code == 403 and "team-b" in resp.json()["error"]


def test_soft_delete_hides_until_a_new_event(stack: Stack) -> None:
    base = f"{stack.url}/api/v2"
    ds = f"/datasets/{seg(S3)}/{seg('tmp/doomed')}"
    job = f"/jobs/team-a/{seg('etl.doomed')}"
    assert "tmp/doomed" in names(get(stack, "/datasets", namespace=S3, limit=1000))
    before = {n["name"]: n for n in get(stack, "/namespaces")["items"]}[S3]["datasets"]

    for path in (ds, job):
        resp = httpx.delete(f"{base}{path}", headers=stack.write_a)
        assert resp.status_code == 200, resp.text
        assert resp.json()["deleted_at"]
        assert httpx.get(f"{base}{path}", headers=stack.admin).status_code == 404
    assert "tmp/doomed" not in names(get(stack, "/datasets", namespace=S3, limit=1000))
    assert "etl.doomed" not in names(get(stack, "/jobs", namespace="team-a", limit=1000))
    assert get(stack, "/search", q="doomed")["total"] == 0
    after = {n["name"]: n for n in get(stack, "/namespaces")["items"]}[S3]["datasets"]
    assert after == before - 1
    assert httpx.delete(f"{base}{ds}", headers=stack.write_a).status_code == 404

    # an old event (before the deletion) does not bring it back; a new one does
    now = datetime.now(UTC)
    load_events(
        stack.settings,
        [
            event(
                "etl.doomed",
                "team-a",
                "COMPLETE",
                at(501),
                run_id("doomed-2"),
                outputs=[(S3, "tmp/doomed", {})],
            ),
        ],
    )
    assert httpx.get(f"{base}{ds}", headers=stack.admin).status_code == 404
    load_events(
        stack.settings,
        [
            event(
                "etl.doomed",
                "team-a",
                "COMPLETE",
                now + timedelta(seconds=5),
                run_id("doomed-3"),
                outputs=[(S3, "tmp/doomed", {})],
            ),
        ],
    )
    assert get(stack, ds)["name"] == "tmp/doomed"
    assert get(stack, job)["latest_run"]["run_id"] == run_id("doomed-3")
    assert "tmp/doomed" in names(get(stack, "/datasets", namespace=S3, limit=1000))


# --- SQL --------------------------------------------------------------------------------


def all_routes(run: str) -> list[str]:
    return [
        "/namespaces",
        "/jobs?limit=1000",
        f"/jobs/team-a/{seg('etl.orders')}",
        f"/jobs/team-b/{seg('etl.secret')}",
        "/datasets?limit=1000",
        f"/datasets/{seg(PG)}/{seg('public.orders')}",
        f"/datasets/{seg(PG)}/{seg('public.orders')}/versions",
        "/runs?limit=1000",
        f"/runs/{run}",
        f"/runs/{run}/facets",
        f"/runs/{SECRET_RUN}/facets",
        "/search?q=etl",
        "/search?q=SENTINEL",
        "/events?limit=1000",
    ]


def test_sql_hidden_by_default(stack: Stack) -> None:
    checked = 0
    for key in (stack.admin, stack.read_a, stack.read_b):
        for path in all_routes(RUN3):
            resp = httpx.get(f"{stack.url}/api/v2{path}", headers=key)
            assert resp.status_code in (200, 404), (path, resp.text)
            assert SENTINEL not in resp.text and SENTINEL_B not in resp.text, path
            checked += resp.status_code == 200
    assert checked > 30
    job = get(stack, f"/jobs/team-a/{seg('etl.orders')}")
    assert "_redacted" in job["facets"]["sql"]


def test_sql_shown_when_exposed_to_a_reader_of_the_namespace(stack: Stack) -> None:
    def fetch(path: str, key: dict[str, str]) -> httpx.Response:
        return httpx.get(f"{stack.sql_url}/api/v2{path}", headers=key)

    job = fetch(f"/jobs/team-a/{seg('etl.orders')}", stack.read_a).json()
    assert job["facets"]["sql"] == {"query": f"SELECT '{SENTINEL}'"}
    facets = fetch(f"/runs/{RUN3}/facets", stack.read_a).json()
    assert SENTINEL in facets["job"]["standard"]["sql"]["query"]
    assert SENTINEL in fetch("/events?job=etl.orders", stack.read_a).text
    assert SENTINEL in fetch(f"/jobs/team-a/{seg('etl.orders')}", stack.admin).text

    # a reader of team-b sees team-b's SQL, never team-a's
    secret = fetch(f"/jobs/team-b/{seg('etl.secret')}", stack.read_b).json()
    assert SENTINEL_B in secret["facets"]["sql"]["query"]
    for path in all_routes(RUN3):
        resp = fetch(path, stack.read_b)
        assert resp.status_code in (200, 404), (path, resp.text)
        assert SENTINEL not in resp.text, path


def test_scope_regex_agrees_with_fnmatch() -> None:
    import re
    from fnmatch import fnmatchcase

    from lineagehouse.api.catalog import scope_regex

    assert scope_regex(()) is None
    names_ = ["team-a", "team-a/x", "team-b", "postgres://h:5432", "a.b", "axb", "[x]", "t1", "tz"]
    for patterns in (["team-a*"], ["a.b"], ["postgres://*"], ["t[0-9]"], ["t[!0-9]"], ["[x]"],
                     ["team-?"], ["team-b", "a?b"]):  # fmt: skip
        regex = re.compile(scope_regex(patterns) or "")
        for name in names_:
            expected = any(fnmatchcase(name, p) for p in patterns)
            assert bool(regex.match(name)) == expected, (patterns, name)
