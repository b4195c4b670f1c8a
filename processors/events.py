"""Pure: one Kafka message in, one `events_raw` row (or a rejection with a reason) out.

Imports nothing from faust, Kafka or ClickHouse; the worker wraps it.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

MAX_EVENT_BYTES = 4 * 1024 * 1024

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
)


@dataclass(frozen=True, slots=True)
class Source:
    """Where a message came from (kept with every row and every rejection)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None


@dataclass(frozen=True, slots=True)
class Rejection:
    reason: str
    path: str
    source: Source
    value: bytes


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


def to_raw_row(value: bytes, source: Source, ingested_at: datetime) -> list[Any] | Rejection:
    """The `events_raw` row for one message (columns in EVENTS_RAW_COLUMNS order)."""
    if value is None or len(value) == 0:
        return Rejection("empty message", "$", source, value or b"")
    if len(value) > MAX_EVENT_BYTES:
        return Rejection(f"event larger than {MAX_EVENT_BYTES} bytes", "$", source, value)
    try:
        text = value.decode("utf-8")
        event = orjson.loads(value)
    except UnicodeDecodeError as exc:
        return Rejection(f"not UTF-8: {exc.reason} at byte {exc.start}", "$", source, value)
    except orjson.JSONDecodeError as exc:
        return Rejection(f"not JSON: {exc}", "$", source, value)
    if not isinstance(event, dict):
        return Rejection("an event must be a JSON object", "$", source, value)
    kind = event_kind(event)
    if not kind:
        return Rejection("not an OpenLineage event: no run, job or dataset", "$", source, value)
    try:
        event_time = parse_time(event.get("eventTime"))
    except ValueError as exc:
        return Rejection(f"bad eventTime: {exc}", "$.eventTime", source, value)
    return [
        event_id(event),
        event_time,
        kind,
        _str(event, "eventType") if kind == "run" else "",
        _str(event, "run", "runId"),
        _str(event, "job", "namespace"),
        _str(event, "job", "name"),
        _str(event, "dataset", "namespace"),
        _str(event, "dataset", "name"),
        _str(event, "producer"),
        _str(event, "schemaURL"),
        text,
        source.topic,
        source.partition,
        source.offset,
        (source.key or b"").decode("utf-8", "replace"),
        ingested_at,
    ]
