"""Pure: an accepted OpenLineage event -> its `events_raw` row, and the event's identity.

Imports nothing from faust, Kafka or ClickHouse; the worker wraps it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from lineagehouse.processors.hashing import blake2b
from lineagehouse.processors.records import fields

EVENTS_RAW_COLUMNS = fields("events_raw")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


@dataclass(frozen=True, slots=True)
class Source:
    """Where a message came from (kept with every row and every rejection)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None


def _event_digest(event: dict[str, Any]) -> bytes:
    canonical = orjson.dumps(event, option=orjson.OPT_SORT_KEYS)
    return blake2b(canonical, 16).digest()


def event_id(event: dict[str, Any]) -> uuid.UUID:
    """Identity of an event: a 128-bit hash of its canonical JSON (sorted keys, compact)."""
    return uuid.UUID(bytes=_event_digest(event))


def event_id_text(event: dict[str, Any]) -> str:
    """`str(event_id(event))`, without building a UUID object (~2.5 of its ~18 us)."""
    h = _event_digest(event).hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def parse_time(value: Any) -> datetime:
    """ISO 8601 with offset -> aware UTC datetime; a naive time is taken as UTC."""
    if not isinstance(value, str):
        raise ValueError("must be an ISO 8601 date-time string")
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def epoch_ms(value: datetime) -> int:
    """Milliseconds since the epoch of an aware datetime (exact, no float rounding)."""
    return (value - _EPOCH) // _MS


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
) -> dict[str, Any]:
    """The `events_raw` record of an accepted event (times in epoch milliseconds)."""
    kind = event_kind(event)
    return {
        "event_id": event_id_text(event),
        "event_time": epoch_ms(parse_time(event.get("eventTime"))),
        "event_kind": kind,
        "event_type": _str(event, "eventType") if kind == "run" else "",
        "run_id": _str(event, "run", "runId"),
        "job_namespace": _str(event, "job", "namespace"),
        "job_name": _str(event, "job", "name"),
        "dataset_namespace": _str(event, "dataset", "namespace"),
        "dataset_name": _str(event, "dataset", "name"),
        "producer": _str(event, "producer"),
        "schema_url": _str(event, "schemaURL"),
        "payload": value,  # UTF-8 JSON as received (the validator checked it)
        "source_topic": source.topic,
        "source_partition": source.partition,
        "source_offset": source.offset,
        "source_key": (source.key or b"").decode("utf-8", "replace"),
        "ingested_at": epoch_ms(ingested_at),
        "warnings": list(warnings),
        "custom_facets": list(custom_facets),
        "core_version": core_version or "",
    }
