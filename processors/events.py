"""Pure: an accepted OpenLineage event -> its `events_raw` row, and the event's identity.

Imports nothing from faust, Kafka or ClickHouse; the worker wraps it.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

EVENTS_RAW_COLUMNS = (
    "event_id",
    "event_time",
    "event_kind",
    "event_type",
    "run_id",
    "job_namespace",
    "job_name",
    "dataset_namespace",
    "dataset_name",
    "producer",
    "schema_url",
    "payload",
    "source_topic",
    "source_partition",
    "source_offset",
    "source_key",
    "ingested_at",
    "warnings",
    "custom_facets",
    "core_version",
)


@dataclass(frozen=True, slots=True)
class Source:
    """Where a message came from (kept with every row and every rejection)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None


def event_id(event: dict[str, Any]) -> uuid.UUID:
    """Identity of an event: a 128-bit hash of its canonical JSON (sorted keys, compact)."""
    canonical = orjson.dumps(event, option=orjson.OPT_SORT_KEYS)
    return uuid.UUID(bytes=hashlib.blake2b(canonical, digest_size=16).digest())


def parse_time(value: Any) -> datetime:
    """ISO 8601 with offset -> aware UTC datetime; a naive time is taken as UTC."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date-time string")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def _str(obj: Any, *path: str) -> str:
    for part in path:
        if not isinstance(obj, dict):
            return ""
        obj = obj.get(part)
    return obj if isinstance(obj, str) else ""


def event_kind(event: dict[str, Any]) -> str:
    if "run" in event:
        return "run"
    if "dataset" in event:
        return "dataset"
    if "job" in event:
        return "job"
    return ""


def raw_row(
    event: dict[str, Any],
    value: bytes,
    source: Source,
    ingested_at: datetime,
    warnings: list[str] | tuple[str, ...] = (),
    custom_facets: list[str] | tuple[str, ...] = (),
    core_version: str | None = None,
) -> list[Any]:
    """The `events_raw` row of an accepted event (columns in EVENTS_RAW_COLUMNS order)."""
    kind = event_kind(event)
    return [
        event_id(event),
        parse_time(event.get("eventTime")),
        kind,
        _str(event, "eventType") if kind == "run" else "",
        _str(event, "run", "runId"),
        _str(event, "job", "namespace"),
        _str(event, "job", "name"),
        _str(event, "dataset", "namespace"),
        _str(event, "dataset", "name"),
        _str(event, "producer"),
        _str(event, "schemaURL"),
        value.decode("utf-8"),
        source.topic,
        source.partition,
        source.offset,
        (source.key or b"").decode("utf-8", "replace"),
        ingested_at,
        list(warnings),
        list(custom_facets),
        core_version or "",
    ]
