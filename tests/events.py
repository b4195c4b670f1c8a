"""Builders of OpenLineage events for tests (dicts as emitters send them)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

PRODUCER = "https://github.com/lineagehouse/lineagehouse/tests"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
BASE_TIME = datetime(2024, 5, 1, tzinfo=UTC)


def run_event(
    i: int,
    job: str = "job",
    namespace: str = "tests",
    event_type: str = "COMPLETE",
    run_id: str | None = None,
    event_time: datetime | None = None,
) -> dict[str, Any]:
    """The i-th distinct RunEvent of a test (deterministic for the same arguments)."""
    when = event_time or BASE_TIME + timedelta(seconds=i)
    return {
        "eventType": event_type,
        "eventTime": when.isoformat().replace("+00:00", "Z"),
        "run": {"runId": run_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"{job}/{i}"))},
        "job": {"namespace": namespace, "name": job},
        "inputs": [{"namespace": "postgres://db:5432", "name": f"public.src_{i % 7}"}],
        "outputs": [{"namespace": "postgres://db:5432", "name": f"public.dst_{i % 5}"}],
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
    }


def encode(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event)


def run_key(event: dict[str, Any]) -> bytes:
    return f"run:{event['job']['namespace']}/{event['job']['name']}".encode()


def raw_row_of(value: bytes, source: Any, ingested_at: datetime) -> list[Any]:
    """The events_raw row the worker would write for an accepted event's bytes."""
    from lineagehouse.processors.events import raw_row

    return list(raw_row(orjson.loads(value), value, source, ingested_at).values())


def facet(facet_type: str, spec_version: str = "1-0-0", **fields: Any) -> dict[str, Any]:
    """A standard facet body with its `_producer` and spec `_schemaURL`."""
    spec = "https://openlineage.io/spec/facets"
    return {
        "_producer": PRODUCER,
        "_schemaURL": f"{spec}/{spec_version}/{facet_type}.json#/$defs/{facet_type}",
        **fields,
    }


def lineage_event(
    i: int,
    job: str = "pipeline.load",
    namespace: str = "tests",
    event_type: str = "COMPLETE",
    run_id: str | None = None,
    event_time: datetime | None = None,
    parent: tuple[str, str, str] | None = None,
    columns: int = 6,
    rows: int = 1000,
) -> dict[str, Any]:
    """A RunEvent shaped like real ones (~4 KB): job facets, two inputs with schemas, an
    output with schema, column lineage, output statistics and quality metrics."""
    when = event_time or BASE_TIME + timedelta(seconds=i)
    fields = [
        {"name": f"col_{c}", "type": "VARCHAR" if c % 2 else "BIGINT", "description": f"c{c}"}
        for c in range(columns)
    ]
    inputs = [
        {
            "namespace": "postgres://db.example.com:5432",
            "name": f"shop.public.{table}_{i % 11}",
            "facets": {
                "schema": facet("SchemaDatasetFacet", "1-1-0", fields=fields),
                "dataSource": facet(
                    "DatasourceDatasetFacet", name="shop", uri="postgres://db.example.com:5432"
                ),
            },
            "inputFacets": {
                "dataQualityMetrics": facet(
                    "DataQualityMetricsInputDatasetFacet",
                    rowCount=rows,
                    bytes=rows * 120,
                    columnMetrics={
                        f["name"]: {"nullCount": c, "distinctCount": rows - c}
                        for c, f in enumerate(fields)
                    },
                )
            },
        }
        for table in ("orders", "customers")
    ]
    out_name = f"shop.analytics.daily_{i % 13}"
    output = {
        "namespace": "postgres://db.example.com:5432",
        "name": out_name,
        "facets": {
            "schema": facet("SchemaDatasetFacet", "1-1-0", fields=fields),
            "columnLineage": facet(
                "ColumnLineageDatasetFacet",
                "1-2-0",
                fields={
                    f["name"]: {
                        "inputFields": [
                            {
                                "namespace": inp["namespace"],
                                "name": inp["name"],
                                "field": f["name"],
                                "transformations": [{"type": "DIRECT", "subtype": "IDENTITY"}],
                            }
                            for inp in inputs
                        ]
                    }
                    for f in fields
                },
            ),
        },
        "outputFacets": {
            "outputStatistics": facet(
                "OutputStatisticsOutputDatasetFacet", "1-0-2", rowCount=rows, size=rows * 100
            )
        },
    }
    run_facets: dict[str, Any] = {
        "nominalTime": facet(
            "NominalTimeRunFacet", nominalStartTime=when.isoformat().replace("+00:00", "Z")
        ),
        "processing_engine": facet(
            "ProcessingEngineRunFacet", "1-1-1", version="3.5.1", name="spark"
        ),
    }
    if parent is not None:
        parent_run, parent_ns, parent_job = parent
        run_facets["parent"] = facet(
            "ParentRunFacet",
            run={"runId": parent_run},
            job={"namespace": parent_ns, "name": parent_job},
        )
    return {
        "eventType": event_type,
        "eventTime": when.isoformat().replace("+00:00", "Z"),
        "run": {
            "runId": run_id or str(uuid.uuid5(uuid.NAMESPACE_URL, f"{job}/{i}")),
            "facets": run_facets,
        },
        "job": {
            "namespace": namespace,
            "name": job,
            "facets": {
                "jobType": facet(
                    "JobTypeJobFacet",
                    "2-0-3",
                    processingType="BATCH",
                    integration="SPARK",
                    jobType="JOB",
                ),
                "sql": facet("SQLJobFacet", "1-1-0", query=f"INSERT INTO {out_name} SELECT ..."),
            },
        },
        "inputs": inputs,
        "outputs": [output],
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
    }
