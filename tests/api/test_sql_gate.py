"""The SQL gate on every path: a sentinel SQL string sent in a job's `sql` and
`sourceCode` facets (and in a dead-lettered event) must not appear in the response of
any GET route the API serves (found from its own OpenAPI document, so a route added later
is covered without editing this test), nor in `lineagehouse dlq list|show`, unless the
operator exposes SQL; then it shows (the positive control that keeps this test honest).
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest

from lineagehouse.settings import Settings
from lineagehouse.store.migrations import migrate
from lineagehouse.topics import ensure_topics
from tests.conftest import load_events, run_cli, settings_env
from tests.events import BASE_TIME, PRODUCER, SCHEMA_URL, facet

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SENTINEL = "SENTINEL_SQL_GATE_5e1d"
NS = "gate-ns"
JOB = "gate.job"
DATASET_NS = "postgres://db.gate:5432"
DATASET = "shop.public.orders"
RUN = str(uuid.uuid5(uuid.NAMESPACE_URL, "gate-run"))


def gated_event(event_type: str, minutes: int) -> dict[str, Any]:
    when = (BASE_TIME + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z")
    return {
        "eventType": event_type,
        "eventTime": when,
        "run": {"runId": RUN},
        "job": {
            "namespace": NS,
            "name": JOB,
            "facets": {
                "sql": facet("SQLJobFacet", "1-1-0", query=f"SELECT '{SENTINEL}' FROM t"),
                "sourceCode": facet(
                    "SourceCodeJobFacet", language="python", sourceCode=f"print('{SENTINEL}')"
                ),
            },
        },
        "inputs": [{"namespace": DATASET_NS, "name": DATASET}],
        "outputs": [{"namespace": DATASET_NS, "name": "shop.public.summary"}],
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
    }


def bad_event() -> dict[str, Any]:
    """Dead-lettered: its `sql` facet is a string, which the reason quotes."""
    event = gated_event("COMPLETE", 3)
    event["job"]["facets"]["sql"] = f"SELECT '{SENTINEL}'"
    return event


VALUES = {
    "namespace": NS,
    "run_id": RUN,
    "id": RUN,
    "tag": "pii",
    "field": "id",
    "job": JOB,
    "dataset": DATASET,
}


def fill(path: str, param: str) -> str:
    """A value for a path parameter, by its name and the route it is in."""
    lowered = param.lower()
    for key, value in VALUES.items():
        if key in lowered.replace("runid", "run_id"):
            if key == "namespace" and "/datasets" in path:
                return DATASET_NS
            return value
    if "name" in lowered:
        return DATASET if "/datasets/" in path else JOB
    return "x"


QUERY = {
    "node_id": f"job:{NS}:{JOB}",
    "nodeId": f"job:{NS}:{JOB}",
    "q": "gate",
    "namespace": NS,
}


def get_routes(url: str) -> list[tuple[str, dict[str, str]]]:
    spec = httpx.get(f"{url}/openapi.json").json()
    routes = []
    for path, ops in spec["paths"].items():
        if "get" not in ops or path in ("/metrics", "/openapi.json"):
            continue
        concrete = re.sub(
            r"\{([^}:]+)(?::[^}]*)?\}",
            lambda m, path=path: quote(fill(path, m.group(1)), safe=""),
            path,
        )
        params = {
            p["name"]: QUERY[p["name"]]
            for p in ops["get"].get("parameters", [])
            if p["in"] == "query" and p["name"] in QUERY and p.get("required")
        }
        routes.append((concrete, params))
    return routes


def scan(url: str) -> dict[str, tuple[int, bool]]:
    """route -> (status, sentinel seen) for every GET route."""
    seen = {}
    with httpx.Client(base_url=url, timeout=30) as client:
        for path, params in get_routes(url):
            resp = client.get(path, params=params)
            assert resp.status_code < 500, (path, resp.status_code, resp.text[:500])
            seen[path] = (resp.status_code, SENTINEL in resp.text)
    return seen


def test_sql_and_source_code_are_gated_everywhere(
    make_settings: Any, start_api: Any, tmp_path: Any
) -> None:
    settings: Settings = make_settings()
    migrate(settings)
    ensure_topics(settings)
    load_events(settings, [gated_event("START", 0), gated_event("COMPLETE", 2)])

    hidden = start_api(settings, LINEAGEHOUSE_API__AUTH_ENABLED="false")
    resp = httpx.post(f"{hidden}/api/v1/lineage", content=orjson.dumps(bad_event()))
    assert resp.status_code == 400, resp.text  # dead-lettered, with the reason

    results = scan(hidden)
    leaks = [path for path, (_, leaked) in results.items() if leaked]
    assert leaks == []
    answered = [path for path, (status, _) in results.items() if status == 200]
    # Not vacuous: the routes that carry job facets, runs and raw events answered.
    assert len(answered) >= 10, results
    for needle in ("/jobs/", "/runs/", "/events"):
        assert any(needle in path for path in answered), (needle, results)

    dlq_list = run_cli(settings, "dlq", "list")
    dlq_json = run_cli(settings, "dlq", "list", "--json")
    assert dlq_list.returncode == 0 and "job.facets.sql" in dlq_list.stdout, dlq_list.stdout
    dead_id = orjson.loads(dlq_json.stdout.splitlines()[0])["id"]
    dlq_show = run_cli(settings, "dlq", "show", dead_id)
    assert dlq_show.returncode == 0, dlq_show.stderr
    for out in (dlq_list, dlq_json, dlq_show):
        assert SENTINEL not in out.stdout + out.stderr

    # The operator exposes SQL: the same routes and commands now show it.
    exposed_settings = make_settings(
        clickhouse={"database": settings.clickhouse.database},
        topics={"events": settings.topics.events, "dlq": settings.topics.dlq},
        worker={"sink_group_id": settings.worker.sink_group_id},
    )
    exposed = start_api(
        exposed_settings,
        LINEAGEHOUSE_API__AUTH_ENABLED="false",
        LINEAGEHOUSE_API__EXPOSE_SQL="true",
    )
    shown = [path for path, (_, leaked) in scan(exposed).items() if leaked]
    assert any("/events" in path for path in shown), shown
    assert any("/jobs/" in path for path in shown), shown
    env = {**settings_env(settings), "LINEAGEHOUSE_API__EXPOSE_SQL": "true"}
    assert SENTINEL in run_cli(settings, "dlq", "show", dead_id, env=env).stdout
