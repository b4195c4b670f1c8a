"""Dataset pages read the per-dataset indexes (`dataset_io`, `dataset_facets`, migration
0010) that materialized views fill: the same answers as the source tables would give,
whatever order the events arrive in, without scanning every edge and facet."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from clickhouse_connect.driver.client import Client

from lineagehouse.api.catalog import Catalog, iso
from lineagehouse.settings import Settings
from lineagehouse.store.migrations import migrate
from tests.conftest import load_events
from tests.events import BASE_TIME, PRODUCER, SCHEMA_URL, facet

PG = "postgres://db:5432"


def event(
    seconds: int,
    job: str,
    state: str,
    inputs: list[dict[str, Any]],
    outputs: list[dict[str, Any]],
) -> dict[str, Any]:
    return {
        "eventType": state,
        "eventTime": (BASE_TIME + timedelta(seconds=seconds)).isoformat(),
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
        "run": {"runId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"index/{job}/{seconds}"))},
        "job": {"namespace": "index", "name": job},
        "inputs": inputs,
        "outputs": outputs,
    }


def dataset(name: str, **facets: Any) -> dict[str, Any]:
    return {"namespace": PG, "name": name, "facets": facets}


def source(uri: str) -> dict[str, Any]:
    return facet("DatasourceDatasetFacet", name="db", uri=uri)


def test_dataset_pages_read_the_latest_facets_and_their_jobs(
    settings: Settings, ch: Client
) -> None:
    migrate(settings)
    owner = {"_producer": PRODUCER, "_schemaURL": "https://example.com/owner.json", "team": "a"}
    fields = facet("SchemaDatasetFacet", "1-1-0", fields=[{"name": "day", "type": "DATE"}])
    events = [
        # the newest event first: the latest facet wins by event time, not arrival
        event(
            30, "load", "COMPLETE", [dataset("raw")], [dataset("orders", dataSource=source("v3"))]
        ),
        event(
            10, "load", "COMPLETE", [], [dataset("orders", dataSource=source("v1"), owner=owner)]
        ),
        event(20, "load", "COMPLETE", [], [dataset("orders", dataSource=source("v2"))]),
        # a later run wrote it and failed: not a completed write
        event(40, "load", "FAIL", [], [dataset("orders")]),
        event(50, "report", "COMPLETE", [dataset("orders")], [dataset("daily", schema=fields)]),
    ]
    for one in events:  # one insert each, in this order
        load_events(settings, [one])
    catalog = Catalog(ch, settings.clickhouse.database)

    extras = catalog.dataset_extras([(PG, "orders"), (PG, "raw"), (PG, "missing")])
    orders = extras[(PG, "orders")]
    assert orders["facets"]["dataSource"]["uri"] == "v3"
    assert orders["facets"]["owner"]["team"] == "a"  # only the oldest event had it
    assert orders["last_modified"] == iso(BASE_TIME + timedelta(seconds=30))
    assert extras[(PG, "raw")] == {"facets": {}, "last_modified": None}  # only ever read
    assert extras[(PG, "missing")] == {"facets": {}, "last_modified": None}

    page = catalog.get_dataset(PG, "orders")
    assert page is not None
    assert [j["name"] for j in page["produced_by"]] == ["load"]
    assert [j["name"] for j in page["consumed_by"]] == ["report"]
    assert page["produced_by"][0]["last_seen"] == iso(BASE_TIME + timedelta(seconds=40))

    versions = catalog.dataset_versions(PG, "daily", 10, 0)
    assert versions is not None and versions.total == 1
    assert versions.items[0]["job_name"] == "report" and versions.items[0]["runs"] == 1
