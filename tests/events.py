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

    return raw_row(orjson.loads(value), value, source, ingested_at)
