"""Pure: record batches <-> Avro messages of the derived topics (fastavro).

One Kafka message carries a columnar batch of one kind: an Avro record whose fields are
arrays, one per column (`schemas/avro/<kind>.v<N>.avsc`). Columns are what the sink
inserts, so decoding is the sink's whole transformation. A batch larger than
`max_message_bytes` is split into several messages. The schema version travels in the
header `lineagehouse.schema` (`<kind>.v<N>`); a consumer reads an older version's message
with that version's schema as the writer schema (Avro schema resolution).
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

from fastavro import parse_schema, schemaless_reader, schemaless_writer

from lineagehouse.processors.records import ROW_TYPES

SCHEMA_VERSION = 1
SCHEMA_HEADER = "lineagehouse.schema"
DEFAULT_MAX_MESSAGE_BYTES = 900_000


def schema_tag(kind: str, version: int = SCHEMA_VERSION) -> str:
    return f"{kind}.v{version}"


@cache
def load_schema(tag: str) -> Any:
    """The parsed Avro schema named by a tag such as `runs.v1`."""
    path = resources.files("lineagehouse.schemas") / "avro" / f"{tag}.avsc"
    if not path.is_file():
        raise ValueError(f"unknown derived record schema {tag!r}")
    return parse_schema(json.loads(path.read_text()))


def encode(
    kind: str, rows: Sequence[tuple], max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
) -> list[bytes]:
    """Avro messages holding `rows` (records of `kind`), each at most `max_message_bytes`
    unless a single row is larger."""
    if not rows:
        return []
    schema = load_schema(schema_tag(kind))
    fields = ROW_TYPES[kind]._fields
    columns = dict(zip(fields, map(list, zip(*rows, strict=True)), strict=True))
    buffer = io.BytesIO()
    schemaless_writer(buffer, schema, columns)
    payload = buffer.getvalue()
    if len(payload) <= max_message_bytes or len(rows) == 1:
        return [payload]
    parts = -(-len(payload) // max_message_bytes) + 1
    step = -(-len(rows) // parts)
    messages: list[bytes] = []
    for start in range(0, len(rows), step):
        messages.extend(encode(kind, rows[start : start + step], max_message_bytes))
    return messages


def decode(tag: str, payload: bytes) -> dict[str, list[Any]]:
    """The columns of one message written with the schema `tag` (e.g. `runs.v1`)."""
    kind, _, _ = tag.rpartition(".v")
    reader = load_schema(schema_tag(kind))
    writer = load_schema(tag)
    return schemaless_reader(io.BytesIO(payload), writer, reader)  # type: ignore[return-value]
