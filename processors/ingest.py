"""Pure: one consumed message -> its records, or a dead letter with every reason.

The single rule shared by the worker and the replay; imports nothing from faust, Kafka or
ClickHouse.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import orjson

from lineagehouse.processors.deadletter import DeadLetter, dead_letter
from lineagehouse.processors.derive import DEFAULT_MAX_FACET_BYTES, Records, derive
from lineagehouse.processors.events import Source, event_id, raw_row
from lineagehouse.processors.validate import EventValidator, Problem


def classify(
    value: bytes | None,
    source: Source,
    now: datetime,
    validator: EventValidator,
    max_reasons: int = 20,
) -> dict[str, Any] | DeadLetter:
    """Validate `value`; the events_raw record if accepted, else its dead letter."""
    return _judge(value or b"", source, now, validator, max_reasons)[0]


def process_message(
    value: bytes | None,
    source: Source,
    now: datetime,
    validator: EventValidator,
    out: Records,
    max_reasons: int = 20,
    max_facet_bytes: int = DEFAULT_MAX_FACET_BYTES,
) -> DeadLetter | None:
    """Append the records of one message to `out` (its raw event and everything derived
    from it); a message that is not a valid event returns its dead letter instead."""
    value = value or b""
    result, event = _judge(value, source, now, validator, max_reasons)
    if isinstance(result, DeadLetter):
        return result
    derived: Records = {}
    try:
        derive(event, result["event_id"], derived, result["custom_facets"], max_facet_bytes)
    except Exception as exc:  # a derivation bug must not lose the event: dead-letter it
        return _failed(exc, value, source, now, max_reasons, event)
    out.setdefault("events_raw", []).append(result)
    for kind, rows in derived.items():
        out.setdefault(kind, []).extend(rows)
    return None


def _judge(
    value: bytes, source: Source, now: datetime, validator: EventValidator, max_reasons: int
) -> tuple[dict[str, Any] | DeadLetter, Any]:
    verdict = validator.validate(value)
    if not verdict.accepted or verdict.event is None:
        letter = dead_letter(
            value,
            source.key,
            verdict.errors,
            source,
            "kafka",
            now,
            max_reasons,
            event_id=_identity(verdict.event, value),
        )
        return letter, None
    try:
        raw = raw_row(
            verdict.event,
            value,
            source,
            now,
            warnings=[f"{w.path}: {w.message}" for w in verdict.warnings],
            custom_facets=verdict.custom_facets,
            core_version=verdict.core_version,
        )
    except Exception as exc:  # a bug must not stop the worker on this message: dead-letter it
        return _failed(exc, value, source, now, max_reasons, verdict.event), None
    return raw, verdict.event


def _failed(
    exc: Exception, value: bytes, source: Source, now: datetime, max_reasons: int, event: Any
) -> DeadLetter:
    """The dead letter of an accepted event the code could not turn into records."""
    problem = Problem("$", f"derivation failed ({type(exc).__name__}: {exc}); replay it")
    return dead_letter(
        value, source.key, (problem,), source, "kafka", now, max_reasons, event_id(event)
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
