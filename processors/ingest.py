"""Pure: one consumed message -> an `events_raw` row, or a dead letter with every reason.

The single rule shared by the worker; imports nothing from faust, Kafka or ClickHouse.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson

from lineagehouse.processors.deadletter import DeadLetter, dead_letter
from lineagehouse.processors.events import Source, event_id, raw_row
from lineagehouse.processors.validate import EventValidator


def classify(
    value: bytes | None,
    source: Source,
    now: datetime,
    validator: EventValidator,
    max_reasons: int = 20,
) -> list[Any] | DeadLetter:
    """Validate `value`; the events_raw row if accepted, else its dead letter."""
    value = value or b""
    verdict = validator.validate(value)
    if not verdict.accepted or verdict.event is None:
        return dead_letter(
            value,
            source.key,
            verdict.errors,
            source,
            "kafka",
            now,
            max_reasons,
            event_id=_identity(verdict.event, value),
        )
    return raw_row(
        verdict.event,
        value,
        source,
        now,
        warnings=[f"{w.path}: {w.message}" for w in verdict.warnings],
        custom_facets=verdict.custom_facets,
        core_version=verdict.core_version,
    )


def _identity(event: Any, value: bytes) -> uuid.UUID | None:
    """The identity the rejected message would have as an event, so that `dlq list` can
    tell when a replay was accepted (the validator does not parse oversized messages)."""
    if event is None:
        try:
            event = orjson.loads(value)
        except orjson.JSONDecodeError:
            return None
    return event_id(event) if isinstance(event, dict) else None
