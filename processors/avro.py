"""Pure: records <-> Avro messages of the derived topics, and their splicing.

A message is an Avro object container (OCF, codec null) of records of one kind, written
with the kind's schema (`schemas/avro/<kind>.v<N>.avsc`): self-describing, so any Avro
reader can read it, and ClickHouse ingests it as it is (`FORMAT Avro`), without a Python
decode and re-encode in the sink. The header `lineagehouse.schema` (`<kind>.v<N>`) names
the schema version without parsing the container.

fastavro parses the schemas, writes each container's header and reads containers back.
The records themselves are encoded by our own encoders: Avro's binary encoding is
canonical (minimal zigzag varints, one block per array), so they write exactly the bytes
fastavro's writer does (tests compare them). Two of them, the same bytes:

- in C (`_native.c`, built at install; `NATIVE`): the kind's schema compiled into a
  tree of nodes (`_program`), walked per row. It is what the processor uses; the same
  compiled schema decodes containers back (`decode`).
- in Python (`_compile`): a function generated from the kind's schema, encoding each
  distinct string or long of a batch once. The reference for the C one, and the
  fallback where no C compiler was at hand when the package was installed.

On the benchmark's events the Python one takes 40% of the time of fastavro's writer, and
the C one a fraction of that (`bench/bench_encode.py`, BENCHMARKS.md): encoding had
become a quarter of the processor's CPU.

Every container of one schema version is written with the same sync marker, so all of
them start with the same header bytes: the sink joins many messages into one container
(one insert) by keeping the first header and the data blocks of all (`splice`).
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable, Sequence
from functools import cache
from typing import Any

from fastavro import parse_schema, reader, writer

from lineagehouse.processors.records import (
    NATIVE,
    avro_schema,
    current_version,
    native_module,
)

SCHEMA_HEADER = "lineagehouse.schema"
ROWS_HEADER = "lineagehouse.rows"  # how many records a message holds
# When the oldest input event behind a message was produced (epoch ms): how far behind
# the pipeline is, which the sink uses to batch more while it catches up.
INPUT_TIME_HEADER = "lineagehouse.input-time"
SYNC_MARKER = b"lineagehouse-v1\x00"  # 16 bytes, the same in every container
DEFAULT_MAX_MESSAGE_BYTES = 900_000


def schema_tag(kind: str, version: int | None = None) -> str:
    """`<kind>.v<N>`: by default the version the processor writes."""
    return f"{kind}.v{current_version(kind) if version is None else version}"


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


LONG_MIN, LONG_MAX = -(1 << 63), (1 << 63) - 1  # what an Avro long (and Int64) holds
_ONE_BYTE = [bytes((n,)) for n in range(0x80)]


def _long(value: int) -> bytes:
    """Avro's encoding of an int or long: a zigzag varint."""
    if not LONG_MIN <= value <= LONG_MAX:
        raise ValueError(f"{value} is out of range for an Avro long")
    n = (value << 1) ^ (value >> 63)
    if n < 0x80:
        return _ONE_BYTE[n]
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _string(value: str | bytes) -> bytes:
    data = value.encode() if type(value) is str else value
    return _long(len(data)) + data


_EncodeRows = Callable[..., None]


class _Source:
    """Python source of an encoder, one statement per line."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.names = 0

    def name(self, prefix: str) -> str:
        self.names += 1
        return f"{prefix}{self.names}"

    def add(self, depth: int, line: str) -> None:
        self.lines.append("    " * depth + line)


def _type_of(schema: Any) -> str:
    """The Avro type of a (sub)schema, "union" for ["null", T]; refuses what the derived
    schemas do not use (both encoders support the same subset)."""
    if isinstance(schema, dict) and "logicalType" in schema:
        raise ValueError(f"logical types are not used by the derived schemas: {schema}")
    if isinstance(schema, list):
        if len(schema) != 2 or schema[0] != "null":
            raise ValueError(f"only ['null', T] unions are supported, not {schema}")
        return "union"
    return schema["type"] if isinstance(schema, dict) else schema


def _emit(src: _Source, schema: Any, value: str, depth: int) -> None:
    """Statements appending the encoding of `value` (an expression) to the row's parts."""
    kind = _type_of(schema)
    if kind == "union":
        var = src.name("u")
        src.add(depth, f"{var} = {value}")
        src.add(depth, f"if {var} is None:")
        src.add(depth + 1, "part(b'\\x00')")
        src.add(depth, "else:")
        src.add(depth + 1, "part(b'\\x02')")
        _emit(src, schema[1], var, depth + 1)
    elif kind == "record":
        var = src.name("r")
        src.add(depth, f"{var} = {value}")
        for field in schema["fields"]:
            _emit(src, field["type"], f"{var}[{field['name']!r}]", depth)
    elif kind == "array":
        var, item = src.name("a"), src.name("i")
        src.add(depth, f"{var} = {value}")
        src.add(depth, f"if {var}:")
        src.add(depth + 1, f"part(long_(len({var})))")
        src.add(depth + 1, f"for {item} in {var}:")
        _emit(src, schema["items"], item, depth + 2)
        src.add(depth, "part(b'\\x00')")
    elif kind in ("string", "long", "int"):  # memoised: values repeat within a batch
        memo, encoder = ("strings", "string_") if kind == "string" else ("longs", "long_")
        var, encoded = src.name("v"), src.name("e")
        src.add(depth, f"{var} = {value}")
        src.add(depth, f"{encoded} = {memo}.get({var})")
        src.add(depth, f"if {encoded} is None:")
        src.add(depth + 1, f"{encoded} = {memo}[{var}] = {encoder}({var})")
        src.add(depth, f"part({encoded})")
    elif kind == "bytes":
        src.add(depth, f"part(string_({value}))")
    elif kind == "double":
        src.add(depth, f"part(double_({value}))")
    else:
        raise ValueError(f"Avro type {kind!r} is not used by the derived schemas")


@cache
def _compile(tag: str) -> _EncodeRows:
    """`encode_rows(rows, append, strings, longs)`: appends each row's encoding (bytes) to
    `append`; `strings` and `longs` memoise encoded values across calls that share them."""
    src = _Source()
    _emit(src, avro_schema(*_parse_tag(tag)), "row", 2)
    code = "\n".join(
        [
            "def encode_rows(rows, append, strings, longs):",
            "    for row in rows:",
            "        parts = []",
            "        part = parts.append",
            *src.lines,
            "        append(b''.join(parts))",
        ]
    )
    scope: dict[str, Any] = {
        "long_": _long,
        "string_": _string,
        "double_": struct.Struct("<d").pack,
    }
    exec(compile(code, f"<avro encoder {tag}>", "exec"), scope)
    return scope["encode_rows"]


def _program(schema: Any) -> tuple:
    """The C encoder's program for `schema` (see `_native.c`)."""
    kind = _type_of(schema)
    if kind == "union":
        return ("nullable", _program(schema[1]))
    if kind == "record":
        return ("record", tuple((f["name"], _program(f["type"])) for f in schema["fields"]))
    if kind == "array":
        return ("array", _program(schema["items"]))
    if kind in ("long", "int"):
        return ("long",)
    if kind in ("string", "bytes", "double"):
        return (kind,)
    raise ValueError(f"Avro type {kind!r} is not used by the derived schemas")


@cache
def _native_codec(tag: str) -> Any:
    return native_module().Codec(_program(avro_schema(*_parse_tag(tag))))


def encode_rows(tag: str, rows: Sequence[dict[str, Any]], native: bool = NATIVE) -> list[bytes]:
    """Each row's Avro encoding, by the C encoder or (`native=False`) the Python one."""
    if native:
        return _native_codec(tag).encode_rows(rows)
    encoded: list[bytes] = []
    _compile(tag)(rows, encoded.append, {}, {})
    return encoded


def _container(tag: str, encoded: Sequence[bytes], size: int) -> bytes:
    """An object container holding already encoded records (`size` bytes in all), in one
    block (one copy of the records: they are most of a batch's bytes)."""
    return b"".join((header(tag), _long(len(encoded)), _long(size), *encoded, SYNC_MARKER))


def encode(
    kind: str,
    rows: Sequence[dict[str, Any]],
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    native: bool = NATIVE,
) -> list[tuple[bytes, int]]:
    """Containers holding `rows` (records of `kind`), each with its row count; each at
    most `max_message_bytes` unless a single row is larger."""
    if not rows:
        return []
    tag = schema_tag(kind)
    return containers(tag, encode_rows(tag, rows, native), max_message_bytes)


def containers(
    tag: str, encoded: Sequence[bytes], max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
) -> list[tuple[bytes, int]]:
    """Containers of schema `tag` holding already encoded records (`encode_rows`), in
    order, each with its row count; each at most `max_message_bytes` unless a single
    record is larger."""
    if not encoded:
        return []
    overhead = len(header(tag)) + 2 * 10 + len(SYNC_MARKER)  # header, two varints, sync
    total = sum(map(len, encoded))
    if total + overhead <= max_message_bytes:
        return [(_container(tag, encoded, total), len(encoded))]
    messages: list[tuple[bytes, int]] = []
    start, size = 0, 0
    for index, record in enumerate(encoded):
        if index > start and overhead + size + len(record) > max_message_bytes:
            messages.append((_container(tag, encoded[start:index], size), index - start))
            start, size = index, 0
        size += len(record)
    messages.append((_container(tag, encoded[start:], size), len(encoded) - start))
    return messages


def decode(
    payload: bytes, kind: str = "", only: tuple[str, ...] = (), native: bool = NATIVE
) -> list[dict[str, Any]]:
    """The records of one container, as derive made them; with `kind` and `only`, just
    those fields of each record (the others are skipped, not built). The sink does not
    decode; the issues stage reads a few fields of a few kinds.

    A container of `kind`'s current schema is read by the C decoder (`native`, ~20 times
    faster); any other (an older schema version, no `kind`) by fastavro's reader, which is
    also the C decoder's reference in the tests."""
    if native and kind:
        tag = schema_tag(kind)
        head = header(tag)
        if payload.startswith(head):
            _check_fields(tag, only)
            return _native_codec(tag).decode_blocks(payload, len(head), SYNC_MARKER, only or None)
    if not only:
        return list(reader(io.BytesIO(payload)))
    return list(reader(io.BytesIO(payload), reader_schema=_projection(schema_tag(kind), only)))


@cache
def _check_fields(tag: str, only: tuple[str, ...]) -> None:
    unknown = set(only) - {field["name"] for field in avro_schema(*_parse_tag(tag))["fields"]}
    if unknown:
        raise ValueError(f"{tag} has no field {', '.join(sorted(unknown))}")


@cache
def _projection(tag: str, only: tuple[str, ...]) -> Any:
    """A reader schema with only some fields of a kind's records."""
    _check_fields(tag, only)
    schema = avro_schema(*_parse_tag(tag))
    return parse_schema({**schema, "fields": [f for f in schema["fields"] if f["name"] in only]})


def splice(tag: str, messages: Sequence[bytes]) -> bytes:
    """One container with the records of many containers of the same schema tag."""
    head = header(tag)
    skip = len(head)
    parts: list[bytes | memoryview] = [head]
    for message in messages:
        if not message.startswith(head):
            raise ValueError(f"a {tag} message does not start with the {tag} header")
        parts.append(memoryview(message)[skip:])  # copied once, by the join
    return b"".join(parts)
