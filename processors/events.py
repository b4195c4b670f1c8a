"""Pure: an accepted OpenLineage event -> its `events_raw` row, and the event's identity.

Imports nothing from faust, Kafka or ClickHouse; the worker wraps it.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from lineagehouse.processors.records import RawEvent

EVENTS_RAW_COLUMNS = RawEvent._fields
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


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
    identity: uuid.UUID | None = None,
) -> RawEvent:
    """The `events_raw` record of an accepted event (times in epoch milliseconds)."""
    kind = event_kind(event)
    return RawEvent(
        str(identity or event_id(event)),
        epoch_ms(parse_time(event.get("eventTime"))),
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
        epoch_ms(ingested_at),
        list(warnings),
        list(custom_facets),
        core_version or "",
    )
