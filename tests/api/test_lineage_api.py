"""/api/v2/lineage and /api/v2/column-lineage, end to end: events go through Kafka and the
real worker into ClickHouse, and the running API's graph follows them live (derived-topic
tail); a restarted API rebuilds the same graph from ClickHouse."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from lineagehouse.settings import Settings
from lineagehouse.store.migrations import migrate
from lineagehouse.topics import ensure_topics
from tests.conftest import produce, wait_for
from tests.events import BASE_TIME, PRODUCER, SCHEMA_URL, encode, facet, run_key

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

NS = "warehouse"
JOBS = "etl"


def io_event(
    job: str,
    run: str,
    minutes: int,
    inputs: list[str],
    outputs: list[str],
    event_type: str = "COMPLETE",
    columns: dict[str, list[tuple[str, str]]] | None = None,
) -> dict[str, Any]:
    """A run event of `job` reading `inputs` and writing `outputs` (dataset names in NS);
    `columns` gives the first output's column lineage: field -> [(input, field)]."""
    outs: list[dict[str, Any]] = [{"namespace": NS, "name": name} for name in outputs]
    if columns and outs:
        outs[0]["facets"] = {
            "columnLineage": facet(
                "ColumnLineageDatasetFacet",
                "1-2-0",
                fields={
                    field: {
                        "inputFields": [
                            {"namespace": NS, "name": src, "field": src_field}
                            for src, src_field in sources
                        ]
                    }
                    for field, sources in columns.items()
                },
            )
        }
    when = BASE_TIME + timedelta(minutes=minutes)
    return {
        "eventType": event_type,
        "eventTime": when.isoformat().replace("+00:00", "Z"),
        "run": {"runId": str(uuid.uuid5(uuid.NAMESPACE_URL, run))},
        "job": {"namespace": JOBS, "name": job},
        "inputs": [{"namespace": NS, "name": name} for name in inputs],
        "outputs": outs,
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
    }


def run_uuid(run: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, run))


# load (old run) reads raw.orders_v1; later runs read raw.orders_v2 instead; report reads
# the output of load; a column lineage facet ties report columns to load columns.
EVENTS = [
    io_event("load", "load-1", 0, [], [], "START"),
    io_event("load", "load-1", 1, ["raw.orders_v1"], ["stage.orders"]),
    io_event(
        "report",
        "report-1",
        5,
        ["stage.orders"],
        ["mart.revenue"],
        columns={"total": [("stage.orders", "amount")], "day": [("stage.orders", "ts")]},
    ),
    io_event("load", "load-2", 60, [], [], "START"),
    io_event(
        "load",
        "load-2",
        61,
        ["raw.orders_v2", "raw.fx"],
        ["stage.orders"],
        columns={"amount": [("raw.orders_v2", "amount"), ("raw.fx", "rate")]},
    ),
]


def ids(body: dict[str, Any]) -> set[str]:
    return {node["id"] for node in body["nodes"]}


def get(url: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{url}/api/v2/lineage", params=params, timeout=30)


def test_lineage_live_as_of_and_rebuilt(
    make_settings: Callable[..., Settings], start_worker: Any, start_api: Any
) -> None:
    settings = make_settings()
    migrate(settings)
    ensure_topics(settings)
    worker = start_worker(settings)
    # The API starts before any event: everything it shows arrives through its live feed.
    url = start_api(settings, LINEAGEHOUSE_API__AUTH_ENABLED="false")
    produce(settings, [(run_key(e), encode(e)) for e in EVENTS])

    def upstream_of_revenue() -> set[str]:
        resp = get(url, node_id=f"dataset:{NS}:mart.revenue", direction="upstream")
        return ids(resp.json()) if resp.status_code == 200 else set()

    expected_now = {
        f"dataset:{NS}:mart.revenue",
        f"job:{JOBS}:report",
        f"dataset:{NS}:stage.orders",
        f"job:{JOBS}:load",
        f"dataset:{NS}:raw.orders_v2",
        f"dataset:{NS}:raw.fx",
    }
    wait_for(lambda: upstream_of_revenue() == expected_now, 90, "live lineage", alive=worker)
    # Column edges are read from ClickHouse: the sink may insert them a moment after the
    # graph learned of their ids from the derived topics (never cached while missing).
    wait_for(lambda: len(column_edges(url)) == 3, 60, "column lineage", alive=worker)
    check_graph(url)

    # A new API process builds the same graph from ClickHouse alone.
    restarted = make_settings(
        clickhouse={"database": settings.clickhouse.database},
        topics={"events": settings.topics.events, "dlq": settings.topics.dlq},
        worker={"sink_group_id": settings.worker.sink_group_id},
    )
    url2 = start_api(restarted, LINEAGEHOUSE_API__AUTH_ENABLED="false")
    assert upstream_of_revenue() == expected_now
    check_graph(url2)
    ready = httpx.get(f"{url2}/readyz").json()
    assert ready["lineage"]["jobs"] == 2 and ready["lineage"]["runs"] == 3


def column_edges(url: str) -> set[tuple[str, str]]:
    """Upstream column lineage of mart.revenue.total as (source, target) pairs."""
    column = httpx.get(
        f"{url}/api/v2/column-lineage",
        params={"node_id": f"datasetField:{NS}:mart.revenue:total", "direction": "upstream"},
    ).json()
    return {(e["source"], e["target"]) for e in column["edges"]}


def check_graph(url: str) -> None:
    revenue = f"dataset:{NS}:mart.revenue"
    body = get(url, node_id=revenue, direction="upstream").json()
    assert {"source": f"job:{JOBS}:load", "target": f"dataset:{NS}:stage.orders"} in body["edges"]
    assert {"source": f"dataset:{NS}:raw.fx", "target": f"job:{JOBS}:load"} in body["edges"]
    assert body["truncated"] is False

    # As of the old load run: load read orders_v1 then; report had not run yet.
    old = get(url, node_id=f"run:{run_uuid('load-1')}", direction="both").json()
    assert ids(old) == {
        f"dataset:{NS}:raw.orders_v1",
        f"job:{JOBS}:load",
        f"dataset:{NS}:stage.orders",
    }
    assert old["as_of"].startswith("2024-05-01T00:00")
    # As of a time between the runs (the report had run): the old input, with report.
    between = (BASE_TIME + timedelta(minutes=30)).isoformat()
    mid = get(url, node_id=revenue, direction="upstream", as_of=between).json()
    assert f"dataset:{NS}:raw.orders_v1" in ids(mid)
    assert f"dataset:{NS}:raw.orders_v2" not in ids(mid)
    # Directed: downstream of raw.fx is not upstream of it, and "both" is the union.
    down = get(url, node_id=f"dataset:{NS}:raw.fx", direction="downstream").json()
    assert ids(down) == {
        f"dataset:{NS}:raw.fx",
        f"job:{JOBS}:load",
        f"dataset:{NS}:stage.orders",
        f"job:{JOBS}:report",
        revenue,
    }
    up = get(url, node_id=f"dataset:{NS}:raw.fx", direction="upstream").json()
    assert ids(up) == {f"dataset:{NS}:raw.fx"}
    shallow = get(url, node_id=f"dataset:{NS}:raw.fx", direction="downstream", depth=1).json()
    assert f"job:{JOBS}:report" not in ids(shallow)
    capped = get(url, node_id=f"dataset:{NS}:raw.fx", direction="downstream", max_nodes=2).json()
    assert len(capped["nodes"]) == 2 and capped["truncated"] is True
    # Run granularity: the runs that are current, by id.
    runs = get(url, node_id=revenue, direction="upstream", granularity="run").json()
    assert {f"run:{run_uuid('report-1')}", f"run:{run_uuid('load-2')}"} <= ids(runs)

    # Column lineage: revenue.total <- stage.orders.amount <- raw.orders_v2.amount, raw.fx.rate
    assert column_edges(url) == {
        (f"datasetField:{NS}:stage.orders:amount", f"datasetField:{NS}:mart.revenue:total"),
        (f"datasetField:{NS}:raw.orders_v2:amount", f"datasetField:{NS}:stage.orders:amount"),
        (f"datasetField:{NS}:raw.fx:rate", f"datasetField:{NS}:stage.orders:amount"),
    }
    down_cols = httpx.get(
        f"{url}/api/v2/column-lineage",
        params={"node_id": f"datasetField:{NS}:raw.fx:rate", "direction": "downstream"},
    ).json()
    assert {e["target"] for e in down_cols["edges"]} == {
        f"datasetField:{NS}:stage.orders:amount",
        f"datasetField:{NS}:mart.revenue:total",
    }

    # Errors say what to fix.
    missing = get(url, node_id=f"dataset:{NS}:nope")
    assert missing.status_code == 404 and "nope" in missing.json()["error"]
    bad = get(url, node_id="table:x")
    assert bad.status_code == 422 and "dataset:<namespace>:<name>" in bad.json()["error"]
    deep = get(url, node_id=revenue, depth=100_000)
    assert deep.status_code == 422 and "LINEAGE_MAX_DEPTH" in deep.json()["error"]


def test_lineage_needs_a_read_key(settings: Settings, start_api: Any) -> None:
    migrate(settings)
    ensure_topics(settings)
    url = start_api(settings)
    resp = get(url, node_id=f"dataset:{NS}:x")
    assert resp.status_code == 401 and "--role read" in resp.json()["error"]
