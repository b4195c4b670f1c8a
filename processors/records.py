"""The derived record kinds: one Avro schema, one topic and one table each.

Pure data definitions; imports nothing from faust, Kafka or ClickHouse.

A record is a dict shaped by its kind's Avro schema (`schemas/avro/<kind>.v<N>.avsc`, N
the kind's `version`): its
fields are the columns of the kind's table; a nested record is a `Tuple` column. Times
are integers, milliseconds since the epoch (UTC), which ClickHouse stores as
`DateTime64(3, 'UTC')`.

How rows about one thing combine, in the table and before it (`combine`):

- "aggregated" kinds are AggregatingMergeTree tables: a key, and columns combined with
  min, max or a union only (`SimpleAggregateFunction`), so the result does not depend on
  order or on repeats. "The latest value" is max over a Tuple (time, ..., value).
- "content" kinds hold only a pure function of an id (a hash of the content); a copy is
  identical, so ReplacingMergeTree keeps one, and a processor may skip an id it has
  already sent.
- the rest are one row per event (ReplacingMergeTree on the event's identity).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from operator import itemgetter
from typing import Any

try:
    from lineagehouse.processors import _native
except ImportError:  # not built (no C compiler at install): the Python twins run
    _native = None

# Whether `combine`, `derive` and `avro.encode`/`decode` run their C twins (`_native.c`)
# by default.
NATIVE = _native is not None


def native_module() -> Any:
    """The C module, for a caller that asked for a C twin; an error saying how to get it
    when the install could not build it."""
    if _native is None:
        raise RuntimeError("the C module is not built: reinstall with a C compiler")
    return _native


@dataclass(frozen=True)
class Kind:
    name: str  # the Avro schema file, the topic suffix and the table
    key: tuple[str, ...] = ()  # identity of an aggregated or content kind (its ORDER BY)
    minimum: tuple[str, ...] = ()  # combined with min; `union` with a set union;
    union: tuple[str, ...] = ()  # every other non-key column with max
    # For content kinds: the fields all of a row's content is a pure function of (a
    # processor skips rows whose values it has sent before).
    content: tuple[str, ...] = ()
    aggregated: bool = False
    version: int = 1  # of the Avro schema the processor writes (older ones stay readable)


# Also the sink's insert order within one flush: runs last, so that a reader who sees a
# run also sees the edges, datasets and facets of the same flush.
KINDS: tuple[Kind, ...] = (
    Kind("events_raw"),
    Kind("dead_letters"),
    Kind(
        "jobs",
        key=("namespace", "name"),
        minimum=("first_seen",),
        aggregated=True,
    ),
    Kind(
        "datasets",
        key=("namespace", "name"),
        minimum=("first_seen",),
        aggregated=True,
    ),
    Kind(
        "dataset_versions",
        key=("namespace", "name", "version_id"),
        # the version id hashes the schema alone: datasets with equal schemas share it
        content=("namespace", "name", "version_id"),
    ),
    Kind(
        "dataset_aliases",
        key=("namespace", "name", "alias_namespace", "alias_name", "alias_type"),
        minimum=("first_seen",),
        aggregated=True,
    ),
    Kind(
        "io_edges",
        key=("job_namespace", "job_name", "run_id", "direction", "namespace", "name"),
        minimum=("first_seen",),
        aggregated=True,
    ),
    Kind(
        "column_edges",
        key=(
            "output_namespace",
            "output_name",
            "column_lineage_id",
            "output_field",
            "input_namespace",
            "input_name",
            "input_field",
            "transformation_type",
            "transformation_subtype",
        ),
        content=("column_lineage_id",),  # hashes the output dataset and its key too
    ),
    # before `facets`: a reader who sees a facet's id finds its value
    Kind("facet_values", key=("facet_id",), content=("facet_id",)),
    Kind("facets", version=2),
    Kind(
        "dataset_facets",
        key=("namespace", "name", "facet"),
        aggregated=True,
    ),
    Kind(
        "quality_assertions",
        key=("namespace", "name", "run_id", "assertion", "column_name", "check_name"),
        minimum=("first_seen",),
        aggregated=True,
    ),
    Kind(
        "dataset_metrics",
        key=("namespace", "name", "run_id", "direction"),
        minimum=("first_seen",),
        aggregated=True,
    ),
    Kind(
        "runs",
        key=("run_id",),
        minimum=("started_at", "first_event_time"),
        union=("event_types",),
        aggregated=True,
    ),
)
KIND_NAMES = tuple(kind.name for kind in KINDS)
BY_NAME = {kind.name: kind for kind in KINDS}


def current_version(kind: str) -> int:
    """The version of a kind's Avro schema that the processor writes."""
    return BY_NAME[kind].version if kind in BY_NAME else 1


@cache
def avro_schema(kind: str, version: int | None = None) -> dict[str, Any]:
    """The Avro schema (JSON) of a kind's records at a version (by default the one the
    processor writes)."""
    if version is None:
        version = current_version(kind)
    path = resources.files("lineagehouse.schemas") / "avro" / f"{kind}.v{version}.avsc"
    if not path.is_file():
        raise ValueError(f"unknown derived record schema '{kind}.v{version}'")
    return json.loads(path.read_text())


def fields(kind: str) -> tuple[str, ...]:
    """The top-level fields of a kind's records: its table's columns, in order."""
    return tuple(f["name"] for f in avro_schema(kind)["fields"])


@cache
def _native_args(kind: Kind) -> tuple:
    """`_native.combine`'s description of a kind: key fields, whether aggregated, and the
    key, union and minimum fields as sets."""
    return (
        kind.key,
        kind.aggregated,
        frozenset(kind.key),
        frozenset(kind.union),
        frozenset(kind.minimum),
    )


def _sortable(value: Any) -> Any:
    """A nested record compares like a ClickHouse Tuple: element by element (a null
    element sorts after any value, and never raises when compared)."""
    if type(value) is not dict:
        return value
    return tuple((item is None, item) for item in value.values())


def _combine_into(kind: Kind, into: dict[str, Any], row: dict[str, Any]) -> None:
    for name, value in row.items():
        current = into[name]
        if value is None or value == current or name in kind.key:
            continue
        if current is None:
            into[name] = value
        elif name in kind.union:
            into[name] = sorted(set(current) | set(value))
        elif name in kind.minimum:
            if _sortable(value) < _sortable(current):
                into[name] = value
        elif _sortable(value) > _sortable(current):
            into[name] = value


def combine(
    kind_name: str, rows: Iterable[dict[str, Any]], native: bool = NATIVE
) -> list[dict[str, Any]]:
    """Rows of an aggregated kind combined per key exactly as the table combines them, of a
    content kind one per key (copies are identical); other kinds are returned as they
    are. Fewer rows to send and insert, same result. Input rows are not modified.

    The C twin (`_native.c`) runs when built, unless `native=False`; this function's own
    code below is the reference the tests hold it to."""
    kind = BY_NAME[kind_name]
    if not kind.key:
        return list(rows)
    if native:
        return native_module().combine(rows, *_native_args(kind))
    key_of = itemgetter(*kind.key)
    combined: dict[Any, dict[str, Any]] = {}
    if not kind.aggregated:
        for row in rows:
            combined.setdefault(key_of(row), row)
        return list(combined.values())
    copies: set[int] = set()  # ids of the rows in `combined` that are our own copies
    for row in rows:
        key = key_of(row)
        current = combined.get(key)
        if current is None:
            combined[key] = row
            continue
        if id(current) not in copies:
            current = combined[key] = dict(current)
            copies.add(id(current))
        _combine_into(kind, current, row)
    return list(combined.values())


class Combiner:
    """The rows of one kind combined as they come: `add` rows in any number of calls, and
    `rows()` is `combine` of all of them at once, in the same order (the C twin folds each
    call's rows into the result so far; its reference keeps them and combines at the
    end)."""

    def __init__(self, kind_name: str, native: bool = NATIVE) -> None:
        self._kind = BY_NAME[kind_name]
        self._native = native and bool(self._kind.key)
        self._held: list[dict[str, Any]] = []  # the reference's rows, or an unkeyed kind's
        self._combined: dict[Any, dict[str, Any]] = {}  # the C fold's state: key -> row
        self._copied: set[Any] = set()  # ... and the keys whose row is its own copy

    def add(self, rows: Iterable[dict[str, Any]]) -> None:
        if self._native:
            native_module().combine_more(
                self._combined, self._copied, rows, *_native_args(self._kind)
            )
        else:
            self._held.extend(rows)

    def rows(self) -> list[dict[str, Any]]:
        if self._native:
            return list(self._combined.values())
        return combine(self._kind.name, self._held, native=False)
