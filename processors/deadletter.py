"""Pure: a rejected message -> its dead-letter record (DLQ topic record + ClickHouse row).

The DLQ record keeps the original bytes and key, every reason (bounded), the source
position and the time. An event larger than the size limit is kept whole in ClickHouse
only; its DLQ record carries a reference (`lineagehouse-dead-letter:<id>`) instead.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson

from lineagehouse.processors.events import Source, epoch_ms
from lineagehouse.processors.hashing import blake2b
from lineagehouse.processors.records import fields
from lineagehouse.processors.validate import Problem

DEAD_LETTERS_COLUMNS = fields("dead_letters")
REFERENCE_PREFIX = b"lineagehouse-dead-letter:"


def dead_letter_id(key: bytes | None, value: bytes) -> uuid.UUID:
    """Identity of a dead letter: a hash of its key and bytes (redeliveries collapse)."""
    key = key or b""
    return uuid.UUID(bytes=blake2b(len(key).to_bytes(8, "big") + key + value, 16).digest())


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: uuid.UUID
    value: bytes
    key: bytes | None
    problems: tuple[Problem, ...]
    total_problems: int
    source: Source
    origin: str  # "kafka" or "http"
    at: datetime
    event_id: uuid.UUID | None

    def is_reference(self, max_bytes: int) -> bool:
        return len(self.value) > max_bytes

    def topic_value(self, max_bytes: int) -> bytes:
        """What goes to the DLQ topic: the original bytes, or a reference if too large."""
        if self.is_reference(max_bytes):
            return REFERENCE_PREFIX + str(self.id).encode()
        return self.value

    def headers(self, max_bytes: int) -> list[tuple[str, bytes]]:
        reasons: list[dict[str, Any]] = [
            {"path": p.path, "message": p.message} for p in self.problems
        ]
        headers = [
            ("lineagehouse.reason", _first_reason(self.problems).encode()),
            (
                "lineagehouse.reasons",
                orjson.dumps({"reasons": reasons, "total": self.total_problems}),
            ),
            ("lineagehouse.path", (self.problems[0].path if self.problems else "$").encode()),
            ("lineagehouse.source", _source_text(self.source).encode()),
            ("lineagehouse.origin", self.origin.encode()),
            ("lineagehouse.time", self.at.isoformat().encode()),
            ("lineagehouse.dead_letter_id", str(self.id).encode()),
        ]
        if self.is_reference(max_bytes):
            headers.append(("lineagehouse.value_bytes", str(len(self.value)).encode()))
        return headers

    def record(self) -> dict[str, Any]:
        """The `dead_letters` record that travels to the sink (times in epoch ms)."""
        return {
            "dead_letter_id": str(self.id),
            "event_id": str(self.event_id) if self.event_id else None,
            "origin": self.origin,
            "reason_paths": [p.path for p in self.problems],
            "reason_messages": [p.message for p in self.problems],
            "reason_count": self.total_problems,
            "message_key": self.key or b"",
            "value": self.value,
            "value_bytes": len(self.value),
            "source_topic": self.source.topic,
            "source_partition": self.source.partition,
            "source_offset": self.source.offset,
            "dead_lettered_at": epoch_ms(self.at),
        }

    def row(self) -> list[Any]:
        """The `dead_letters` row for a direct insert, columns in DEAD_LETTERS_COLUMNS order
        (the values of `record()`)."""
        return list(self.record().values())


def dead_letter(
    value: bytes,
    key: bytes | None,
    problems: tuple[Problem, ...] | list[Problem],
    source: Source,
    origin: str,
    at: datetime,
    max_reasons: int = 20,
    event_id: uuid.UUID | None = None,
) -> DeadLetter:
    problems = tuple(problems) or (Problem("$", "rejected without a reason"),)
    return DeadLetter(
        id=dead_letter_id(key, value),
        value=value,
        key=key,
        problems=problems[:max_reasons],
        total_problems=len(problems),
        source=source,
        origin=origin,
        at=at,
        event_id=event_id,
    )


def _first_reason(problems: tuple[Problem, ...]) -> str:
    return f"{problems[0].path}: {problems[0].message}" if problems else "$: rejected"


def _source_text(source: Source) -> str:
    return f"{source.topic}/{source.partition}/{source.offset}"
