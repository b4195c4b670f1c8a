"""Airflow 3 with the OpenLineage provider, for real: the sample DAG of
docs/emitters/airflow.md (tests/emitters/airflow_dags) runs under `airflow dags test`
against a throw-away PostgreSQL, once with the guide's Kafka settings into the running
worker and once with its HTTP settings and an API key through `lineagehouse api`.

The transport, namespace and extractor settings are read out of the guide's blocks as
written; only the documented placeholders (brokers, topic, API address, `<API_KEY>`) are
replaced. Everything is checked through our API: the DAG run and its task runs with their
final states, the tasks under the DAG run, the table edges the provider parsed out of the
SQL, the manual inlets/outlets, the custom extractor's edges and its custom run facet, and
the lineage graph that joins them. Airflow runs in a virtualenv of its own (tests/emitters).
"""

from __future__ import annotations

import configparser
import json
import re
import shlex
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from clickhouse_connect.driver.client import Client

from lineagehouse.apikeys import create_key
from lineagehouse.settings import Settings
from lineagehouse.store.client import connect
from lineagehouse.store.migrations import migrate
from lineagehouse.topics import ensure_topics
from tests.conftest import REPO, wait_for
from tests.emitters import airflow_env

pytestmark = [pytest.mark.slow, pytest.mark.emitters, pytest.mark.timeout(1200)]

GUIDE = REPO / "docs" / "emitters" / "airflow.md"
DAG = airflow_env.DAG_ID
FAILING_TASK = f"{DAG}.check_revenue"
EXPECTED_STATES = {
    DAG: "FAIL",
    f"{DAG}.create_tables": "COMPLETE",
    f"{DAG}.build_customer_revenue": "COMPLETE",
    f"{DAG}.export_revenue": "COMPLETE",
    f"{DAG}.publish_report": "COMPLETE",
    FAILING_TASK: "FAIL",
}
EXPORT = ("s3://lh-exports", "revenue/customer_revenue.parquet")
TEMPLATE = ("file", "/srv/reports/templates/revenue.html")
REPORT = ("file", "/srv/reports/revenue_report.pdf")
# The `_schemaURL` of the custom facet, as airflow_dags/lh_extractors.py sets it (that module
# imports Airflow, which lives in the emitter venv only).
LH_EXTRACTOR_SCHEMA = "https://lineagehouse.example/schemas/LhExtractorRunFacet.json"


# --------------------------------------------------------------------------- the guide


def guide_snippet(name: str) -> str:
    """The fenced block that follows `<!-- lh-snippet: name -->` in the guide."""
    found = re.search(
        rf"<!-- lh-snippet: {re.escape(name)} -->\s*```[a-z]*\n(.*?)\n```",
        GUIDE.read_text(encoding="utf-8"),
        re.DOTALL,
    )
    assert found, f"no block {name!r} in {GUIDE}"
    return found.group(1)


def guide_env(name: str, placeholders: dict[str, str]) -> dict[str, str]:
    """The `export NAME=value` lines of a guide block, each documented placeholder replaced
    (every one must occur in the block: the guide and the test must not drift apart)."""
    text = guide_snippet(name)
    for placeholder, value in placeholders.items():
        assert placeholder in text, f"placeholder {placeholder!r} missing from block {name!r}"
        text = text.replace(placeholder, value)
    env: dict[str, str] = {}
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if not words:
            continue
        assert words[0] == "export" and len(words) == 2, f"not an export line: {line!r}"
        key, _, value = words[1].partition("=")
        env[key] = value
    return env


def test_guide_cfg_block_matches_env_block() -> None:
    """The airflow.cfg form of the Kafka settings says what the env block says."""
    env = guide_env("kafka-env", {})
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read_string(guide_snippet("kafka-cfg"))
    section = cfg["openlineage"]
    assert json.loads(section["transport"]) == json.loads(env["AIRFLOW__OPENLINEAGE__TRANSPORT"])
    assert section["namespace"] == env["AIRFLOW__OPENLINEAGE__NAMESPACE"]
    assert section["extractors"] == env["AIRFLOW__OPENLINEAGE__EXTRACTORS"]
    assert set(env) == {f"AIRFLOW__OPENLINEAGE__{k.upper()}" for k in section}


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def airflow_bin() -> Path:
    return airflow_env.airflow_venv(REPO / ".venv" / "emitters")


@pytest.fixture(scope="module")
def postgres() -> Iterator[airflow_env.Postgres]:
    with airflow_env.throwaway_postgres() as pg:
        yield pg


# --------------------------------------------------------------------------- checks


def get(url: str, path: str, headers: dict[str, str], **params: Any) -> Any:
    resp = httpx.get(f"{url}{path}", params=params, headers=headers, timeout=30)
    assert resp.status_code == 200, f"GET {path}: {resp.status_code} {resp.text[:500]}"
    return resp.json()


def runs_by_job(url: str, headers: dict[str, str], namespace: str) -> dict[str, list[dict]]:
    items = get(url, "/api/v2/runs", headers, namespace=namespace, limit=1000)["items"]
    found: dict[str, list[dict]] = {}
    for run in items:
        found.setdefault(run["job_name"], []).append(run)
    return found


def final_states(url: str, headers: dict[str, str], namespace: str) -> dict[str, list[str]]:
    return {
        job: [run["state"] for run in runs]
        for job, runs in runs_by_job(url, headers, namespace).items()
    }


def io_of(url: str, headers: dict[str, str], run_id: str) -> tuple[set, set]:
    run = get(url, f"/api/v2/runs/{run_id}", headers)
    return (
        {(d["namespace"], d["name"]) for d in run["inputs"]},
        {(d["namespace"], d["name"]) for d in run["outputs"]},
    )


def expected_io(pg: airflow_env.Postgres) -> dict[str, tuple[set, set]]:
    def table(name: str) -> tuple[str, str]:
        return (pg.namespace, pg.table(name))

    orders, customers, revenue = (
        table("raw_orders"),
        table("raw_customers"),
        table("customer_revenue"),
    )
    return {
        DAG: (set(), set()),
        # SQL parsed by the provider (default extraction of SQLExecuteQueryOperator).
        f"{DAG}.create_tables": (set(), {orders, customers, revenue}),
        f"{DAG}.build_customer_revenue": ({orders, customers}, {revenue}),
        # The custom extractor.
        f"{DAG}.export_revenue": ({revenue}, {EXPORT}),
        # Manual inlets (an OpenLineage Dataset and an Airflow Asset) and outlets (an Asset).
        f"{DAG}.publish_report": ({EXPORT, TEMPLATE}, {REPORT}),
        FAILING_TASK: (set(), set()),
    }


def upstream_datasets(url: str, headers: dict[str, str], dataset: tuple[str, str]) -> set:
    graph = get(
        url,
        "/api/v2/lineage",
        headers,
        node_id=f"dataset:{dataset[0]}:{dataset[1]}",
        direction="upstream",
        depth=20,
    )
    return {(n["namespace"], n["name"]) for n in graph["nodes"] if n["type"] == "dataset"}


def check_airflow_run(
    url: str,
    headers: dict[str, str],
    namespace: str,
    pg: airflow_env.Postgres,
    worker: Any,
    *,
    sql_visible: bool,
) -> None:
    """Everything the sample DAG's run must have produced, read through our API."""
    wait_for(
        lambda: (
            final_states(url, headers, namespace)
            == {job: [state] for job, state in EXPECTED_STATES.items()}
        ),
        180,
        "the DAG run and its five task runs to reach their final states",
        alive=worker,
    )
    runs = {job: found[0] for job, found in runs_by_job(url, headers, namespace).items()}
    dag_run = runs[DAG]

    # Every task run hangs under the DAG run; the DAG run has no parent.
    assert dag_run["parent_run_id"] is None
    for job, run in runs.items():
        if job == DAG:
            continue
        assert (run["parent_job_namespace"], run["parent_job_name"]) == (namespace, DAG), job
        assert run["parent_run_id"] == dag_run["run_id"], job
        assert run["root_run_id"] == dag_run["run_id"], job
        assert run["integration"] == "AIRFLOW", job
    assert "revenue check failed" in (runs[FAILING_TASK]["error_message"] or "")
    assert runs[f"{DAG}.build_customer_revenue"]["error_message"] is None

    # Inputs and outputs of every run: SQL-derived tables, the custom extractor's datasets,
    # the manual inlets and outlets.
    expected = expected_io(pg)
    wait_for(
        lambda: {job: io_of(url, headers, run["run_id"]) for job, run in runs.items()} == expected,
        60,
        "every run's inputs and outputs",
        alive=worker,
    )

    # The custom extractor's run facet is stored as sent and listed as custom.
    facets = get(url, f"/api/v2/runs/{runs[f'{DAG}.export_revenue']['run_id']}/facets", headers)
    custom = facets["run"]["custom"]
    assert "lhExtractor" in custom, facets["run"]
    assert "lhExtractor" not in facets["run"]["standard"]
    assert custom["lhExtractor"]["_schemaURL"] == LH_EXTRACTOR_SCHEMA
    assert custom["lhExtractor"]["_producer"].startswith("https://")
    assert custom["lhExtractor"]["extractor"] == "LhExportExtractor"
    assert custom["lhExtractor"]["target"] == f"{EXPORT[0]}/{EXPORT[1]}"
    # The provider's facets of the OpenLineage spec are standard; its `airflow` facet (task and
    # DAG details, with a schema of Airflow's own) is custom like ours.
    assert {"nominalTime", "parent", "processing_engine"} <= set(facets["run"]["standard"])
    assert "airflow" in custom

    # The lineage graph joins SQL, extractor and inlet/outlet edges: the report's upstream
    # reaches back to the tables the first SQL task created.
    io = expected_io(pg)
    want = {REPORT, EXPORT, TEMPLATE} | io[f"{DAG}.create_tables"][1]
    wait_for(
        lambda: upstream_datasets(url, headers, REPORT) == want,
        60,
        "the report's upstream lineage",
        alive=worker,
    )

    # The SQL the provider sent is stored; the API shows it only with EXPOSE_SQL.
    job = get(url, f"/api/v2/jobs/{namespace}/{quote(f'{DAG}.build_customer_revenue')}", headers)
    sql_facet = job["facets"]["sql"]
    if sql_visible:
        assert "INSERT INTO customer_revenue" in sql_facet["query"], sql_facet
    else:
        assert set(sql_facet) == {"_redacted"}, sql_facet


def no_dead_letters(ch: Client, settings: Settings) -> None:
    db = settings.clickhouse.database
    rows = ch.query(
        f"SELECT reason_paths, reason_messages FROM {db}.dead_letters LIMIT 3"
    ).result_rows
    assert rows == [], f"events of the DAG run were dead-lettered: {rows}"


def dags_test(
    airflow_bin: Path,
    tmp_path: Path,
    pg: airflow_env.Postgres,
    env: dict[str, str],
    transport: str,
) -> None:
    done = airflow_env.dags_test(airflow_bin, tmp_path / "airflow", pg, env)
    assert f"OpenLineageClient will use `{transport}` transport" in done.stdout, done.stdout[-6000:]
    # `dags test` exits 1 because check_revenue fails; every other task succeeded.
    assert done.returncode == 1, done.stdout[-6000:]
    assert "revenue check failed" in done.stdout, done.stdout[-6000:]
    assert "Successfully emitted OpenLineage" in done.stdout, done.stdout[-6000:]


# --------------------------------------------------------------------------- the runs


def test_airflow_dag_over_kafka(
    make_settings: Callable[..., Settings],
    ch: Client,
    start_worker: Any,
    start_api: Any,
    airflow_bin: Path,
    postgres: airflow_env.Postgres,
    tmp_path: Path,
) -> None:
    settings = make_settings()
    migrate(settings)
    ensure_topics(settings)
    worker = start_worker(settings)
    env = guide_env(
        "kafka-env",
        {
            "127.0.0.1:9092": settings.kafka.bootstrap_servers,
            "openlineage.events": settings.topics.events,
        },
    )
    namespace = env["AIRFLOW__OPENLINEAGE__NAMESPACE"]

    dags_test(airflow_bin, tmp_path, postgres, env, "kafka")

    url = start_api(settings, LINEAGEHOUSE_API__AUTH_ENABLED="false")
    check_airflow_run(url, {}, namespace, postgres, worker, sql_visible=False)
    no_dead_letters(ch, settings)


def minimal_event(namespace: str) -> dict[str, Any]:
    return {
        "eventType": "START",
        "eventTime": datetime.now(UTC).isoformat(),
        "run": {"runId": str(uuid.uuid4())},
        "job": {"namespace": namespace, "name": "probe"},
        "producer": "https://lineagehouse.example/tests",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }


def test_airflow_dag_over_http_with_api_key(
    make_settings: Callable[..., Settings],
    ch: Client,
    start_worker: Any,
    start_api: Any,
    airflow_bin: Path,
    postgres: airflow_env.Postgres,
    tmp_path: Path,
) -> None:
    settings = make_settings()
    migrate(settings)
    ensure_topics(settings)
    worker = start_worker(settings)
    client = connect(settings.clickhouse)
    # The key the guide tells Airflow to use, and one to read with. Made before the API starts,
    # so that the probe with an unknown key below cannot delay the cache's next re-read.
    write_key, _ = create_key(client, settings, "airflow", "write", ["airflow-*"])
    read_key, _ = create_key(client, settings, "reader", "read")
    url = start_api(settings, LINEAGEHOUSE_API__EXPOSE_SQL="true")
    env = guide_env("http-env", {"http://127.0.0.1:5000": url, "<API_KEY>": write_key})
    namespace = env["AIRFLOW__OPENLINEAGE__NAMESPACE"]

    # Without a key, or with a wrong one, the endpoint refuses; outside the key's namespaces too.
    endpoint = f"{url}/api/v1/lineage"
    assert httpx.post(endpoint, json=minimal_event(namespace)).status_code == 401
    bad = {"Authorization": "Bearer lh_nosuchkey00_" + "x" * 40}
    assert httpx.post(endpoint, json=minimal_event(namespace), headers=bad).status_code == 401
    writer = {"Authorization": f"Bearer {write_key}"}
    outside = httpx.post(endpoint, json=minimal_event("spark-prod"), headers=writer)
    assert outside.status_code == 403, outside.text
    assert httpx.get(f"{url}/api/v2/runs").status_code == 401

    dags_test(airflow_bin, tmp_path, postgres, env, "http")

    reader = {"Authorization": f"Bearer {read_key}"}
    check_airflow_run(url, reader, namespace, postgres, worker, sql_visible=True)
    no_dead_letters(ch, settings)
