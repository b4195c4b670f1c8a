"""Derived records travel as columnar Avro batches; the schemas are the records."""

from __future__ import annotations

import json
from importlib import resources

import pytest

from lineagehouse.processors.avro import decode, encode, load_schema, schema_tag
from lineagehouse.processors.derive import derive
from lineagehouse.processors.events import event_id
from lineagehouse.processors.records import KIND_NAMES, ROW_TYPES, table_columns
from tests.events import lineage_event


def test_every_kind_has_a_versioned_schema_with_the_record_fields() -> None:
    folder = resources.files("lineagehouse.schemas") / "avro"
    shipped = sorted(p.name for p in folder.iterdir() if p.name.endswith(".avsc"))
    assert shipped == sorted(f"{kind}.v1.avsc" for kind in KIND_NAMES)
    for kind in KIND_NAMES:
        schema = json.loads((folder / f"{kind}.v1.avsc").read_text())
        assert schema["namespace"] == "io.lineagehouse.derived.v1"
        assert [f["name"] for f in schema["fields"]] == list(ROW_TYPES[kind]._fields)
        assert all(f["type"]["type"] == "array" for f in schema["fields"])


def derived() -> dict[str, list]:
    out: dict[str, list] = {}
    for i in range(300):
        event = lineage_event(i, job=f"job_{i % 7}")
        derive(event, str(event_id(event)), out)
    return out


@pytest.mark.parametrize("kind", ["runs", "jobs", "datasets", "io_edges", "column_edges", "facets"])
def test_round_trip_is_exact(kind: str) -> None:
    rows = derived()[kind]
    [message] = encode(kind, rows, max_message_bytes=50_000_000)
    columns = decode(schema_tag(kind), message)
    assert list(zip(*columns.values(), strict=True)) == [tuple(r) for r in rows]


def test_large_batches_split_below_the_limit_and_keep_order() -> None:
    rows = derived()["facets"]
    messages = encode("facets", rows, max_message_bytes=20_000)
    assert len(messages) > 10
    assert all(len(m) <= 20_000 for m in messages)
    back = []
    for message in messages:
        back.extend(zip(*decode("facets.v1", message).values(), strict=True))
    assert back == [tuple(r) for r in rows]


def test_unknown_schema_version_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"unknown derived record schema 'runs\.v9'"):
        load_schema("runs.v9")


def test_tuple_columns_are_assembled_from_their_parts() -> None:
    layout = dict(table_columns("runs"))
    assert layout["state"] == ("state__terminal", "state__time", "state__event_id", "state__name")
    assert layout["run_id"] == ("run_id",)
