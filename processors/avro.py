"""Pure: records <-> Avro messages of the derived topics (fastavro), and their splicing.

A message is an Avro object container (OCF, codec null) of records of one kind, written
with the kind's schema (`schemas/avro/<kind>.v<N>.avsc`): self-describing, so any Avro
reader can read it, and ClickHouse ingests it as it is (`FORMAT Avro`), without a Python
decode and re-encode in the sink. The header `lineagehouse.schema` (`<kind>.v<N>`) names
the schema version without parsing the container.

Every container of one schema version is written with the same sync marker, so all of
them start with the same header bytes: the sink joins many messages into one container
(one insert) by keeping the first header and the data blocks of all (`splice`).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from functools import cache
from typing import Any

from fastavro import parse_schema, reader, writer

from lineagehouse.processors.records import SCHEMA_VERSION, avro_schema

SCHEMA_HEADER = "lineagehouse.schema"
ROWS_HEADER = "lineagehouse.rows"  # how many records a message holds
SYNC_MARKER = b"lineagehouse-v1\x00"  # 16 bytes, the same in every container
DEFAULT_MAX_MESSAGE_BYTES = 900_000


def schema_tag(kind: str, version: int = SCHEMA_VERSION) -> str:
    return f"{kind}.v{version}"


def _parse_tag(tag: str) -> tuple[str, int]:
    kind, sep, version = tag.rpartition(".v")
    if not sep or not version.isdigit():
        raise ValueError(f"not a derived record schema tag: {tag!r}")
    return kind, int(version)


@cache
def parsed_schema(tag: str) -> Any:
    return parse_schema(avro_schema(*_parse_tag(tag)))


@cache
def header(tag: str) -> bytes:
    """The bytes every container of this schema starts with."""
    buffer = io.BytesIO()
    writer(buffer, parsed_schema(tag), [], sync_marker=SYNC_MARKER)
    return buffer.getvalue()


def _container(tag: str, rows: Sequence[dict[str, Any]]) -> bytes:
    buffer = io.BytesIO()
    writer(buffer, parsed_schema(tag), rows, sync_marker=SYNC_MARKER, sync_interval=1 << 22)
    return buffer.getvalue()


def encode(
    kind: str,
    rows: Sequence[dict[str, Any]],
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
) -> list[tuple[bytes, int]]:
    """Containers holding `rows` (records of `kind`), each with its row count; each at
    most `max_message_bytes` unless a single row is larger."""
    if not rows:
        return []
    tag = schema_tag(kind)
    payload = _container(tag, rows)
    if len(payload) <= max_message_bytes or len(rows) == 1:
        return [(payload, len(rows))]
    parts = -(-len(payload) // max_message_bytes) + 1
    step = -(-len(rows) // parts)
    messages: list[tuple[bytes, int]] = []
    for start in range(0, len(rows), step):
        messages.extend(encode(kind, rows[start : start + step], max_message_bytes))
    return messages


def decode(payload: bytes) -> list[dict[str, Any]]:
    """The records of one container, as derive made them. For tests and tools: the sink
    does not decode."""
    return list(reader(io.BytesIO(payload)))


def splice(tag: str, messages: Sequence[bytes]) -> bytes:
    """One container with the records of many containers of the same schema tag."""
    head = header(tag)
    parts = [head]
    for message in messages:
        if not message.startswith(head):
            raise ValueError(f"a {tag} message does not start with the {tag} header")
        parts.append(message[len(head) :])
    return b"".join(parts)
