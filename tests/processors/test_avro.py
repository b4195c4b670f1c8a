"""Derived records travel as Avro object containers; the schemas are the tables' columns."""

from __future__ import annotations

import io
import json
import random
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import orjson
import pytest
from clickhouse_connect.driver.client import Client
from fastavro import writer

from lineagehouse.processors.avro import (
    NATIVE,
    SYNC_MARKER,
    decode,
    encode,
    header,
    parsed_schema,
    schema_tag,
    splice,
)
from lineagehouse.processors.derive import derive
from lineagehouse.processors.events import Source, event_id
from lineagehouse.processors.ingest import process_message
from lineagehouse.processors.issue_stage import Subjects
from lineagehouse.processors.records import (
    BY_NAME,
    KIND_NAMES,
    KINDS,
    avro_schema,
    combine,
    fields,
)
from lineagehouse.processors.validate import default_validator
from lineagehouse.settings import Settings
from lineagehouse.store.migrations import migrate
from tests.conftest import CORPUS
from tests.events import lineage_event


def derived(n: int = 300) -> dict[str, list]:
    out: dict[str, list] = {}
    for i in range(n):
        event = lineage_event(i, job=f"job_{i % 7}")
        derive(event, str(event_id(event)), out)
    return out


def test_every_kind_has_a_versioned_schema() -> None:
    """Every version up to the one the processor writes stays shipped (containers written
    with an older one may still wait in a topic), and nothing else is."""
    folder = resources.files("lineagehouse.schemas") / "avro"
    shipped = sorted(p.name for p in folder.iterdir() if p.name.endswith(".avsc"))
    expected = [
        f"{kind.name}.v{version}.avsc" for kind in KINDS for version in range(1, kind.version + 1)
    ]
    assert shipped == sorted(expected)
    for kind in KINDS:
        for version in range(1, kind.version + 1):
            schema = json.loads((folder / f"{kind.name}.v{version}.avsc").read_text())
            assert schema["namespace"] == f"io.lineagehouse.derived.v{version}"
        assert avro_schema(kind.name) == avro_schema(kind.name, kind.version)
        assert schema_tag(kind.name) == f"{kind.name}.v{kind.version}"
    with pytest.raises(ValueError, match=r"unknown derived record schema 'runs\.v9'"):
        avro_schema("runs", 9)


def test_records_have_exactly_the_schema_fields() -> None:
    for kind, rows in derived(50).items():
        assert rows, kind
        assert all(tuple(row) == fields(kind) for row in rows), kind


@pytest.mark.parametrize("kind", ["runs", "jobs", "datasets", "io_edges", "column_edges", "facets"])
def test_round_trip_is_exact(kind: str) -> None:
    rows = derived()[kind]
    [(message, count)] = encode(kind, rows, max_message_bytes=50_000_000)
    assert count == len(rows)
    assert decode(message) == rows


def test_decoding_only_some_fields() -> None:
    rows = derived(20)["io_edges"]
    [(message, _)] = encode("io_edges", rows)
    only = ("run_id", "namespace", "row_count")
    assert decode(message, "io_edges", only) == [{k: r[k] for k in only} for r in rows]
    with pytest.raises(ValueError, match=r"io_edges\.v1 has no field nope"):
        decode(message, "io_edges", ("run_id", "nope"))


def test_large_batches_split_below_the_limit_and_splice_back_in_order() -> None:
    rows = derived()["facets"]
    messages = encode("facets", rows, max_message_bytes=20_000)
    assert len(messages) > 10
    assert all(len(m) <= 20_000 for m, _ in messages)
    assert sum(count for _, count in messages) == len(rows)
    assert all(m.startswith(header(schema_tag("facets"))) for m, _ in messages)
    joined = splice(schema_tag("facets"), [m for m, _ in messages])
    assert decode(joined) == rows
    with pytest.raises(ValueError, match=r"does not start with the runs\.v1 header"):
        splice("runs.v1", [messages[0][0]])


def fastavro_container(kind: str, rows: list[dict[str, Any]]) -> bytes:
    """The reference: fastavro's writer, one block (as `encode` writes below its limit)."""
    buffer = io.BytesIO()
    schema = parsed_schema(schema_tag(kind))
    writer(buffer, schema, rows, sync_marker=SYNC_MARKER, sync_interval=1 << 40)
    return buffer.getvalue()


def corpus_records() -> dict[str, list[dict[str, Any]]]:
    """Every record of every message of the corpus: derived rows, raw rows, dead letters."""
    out: dict[str, list[dict[str, Any]]] = {}
    now = datetime(2026, 12, 3, tzinfo=UTC)
    for name in ("valid.jsonl", "invalid.jsonl"):
        for offset, line in enumerate((CORPUS / name).read_bytes().splitlines()):
            source = Source("openlineage.events", 0, offset, b"key")
            letter = process_message(line, source, now, default_validator(), out)
            if letter is not None:
                out.setdefault("dead_letters", []).append(letter.record())
    return out


ENCODERS = pytest.mark.parametrize("native", [True, False], ids=["c", "python"])


def test_the_c_encoder_is_built_and_used() -> None:
    """The package builds `_native` at install (a C compiler is on every machine the
    project installs on); `encode` uses it unless told otherwise."""
    from lineagehouse.processors import _native

    assert NATIVE and _native.Codec


@ENCODERS
def test_the_encoder_writes_the_bytes_fastavro_writes(native: bool) -> None:
    """Our encoders against fastavro's writer, for every kind, on the corpus."""
    records = corpus_records()
    assert set(records) == set(KIND_NAMES)
    for kind, rows in records.items():
        [(message, count)] = encode(kind, rows, max_message_bytes=1 << 40, native=native)
        assert count == len(rows)
        assert message == fastavro_container(kind, rows), kind


def random_value(schema: Any, rng: random.Random) -> Any:
    """A value of an Avro type, drawn to reach the encodings' edges."""
    if isinstance(schema, list):
        return None if rng.random() < 0.3 else random_value(schema[1], rng)
    kind = schema["type"] if isinstance(schema, dict) else schema
    if kind == "record":
        return {f["name"]: random_value(f["type"], rng) for f in schema["fields"]}
    if kind == "array":
        return [random_value(schema["items"], rng) for _ in range(rng.choice([0, 0, 1, 3]))]
    if kind in ("long", "int"):
        bits = 31 if kind == "int" else 63
        edges = [0, -1, 1, 63, -64, 64, -65, (1 << bits) - 1, -(1 << bits)]
        if rng.random() < 0.5:
            return rng.choice(edges)
        return rng.randint(-(1 << bits), (1 << bits) - 1)
    if kind == "double":
        return rng.choice([0.0, -0.0, 1.5, -2.25e300, float("inf"), rng.random()])
    text = "".join(rng.choice("aZ_é字\u0000😀") for _ in range(rng.choice([0, 1, 5, 200])))
    return text.encode() if kind == "bytes" else text


@ENCODERS
@pytest.mark.parametrize("kind", KIND_NAMES)
def test_the_encoder_matches_fastavro_on_random_records(kind: str, native: bool) -> None:
    rng = random.Random(kind)
    schema = avro_schema(kind)
    rows = [random_value(schema, rng) for _ in range(300)]
    [(message, _)] = encode(kind, rows, max_message_bytes=1 << 40, native=native)
    assert message == fastavro_container(kind, rows)
    assert decode(message) == rows


def projections(kind: str, rng: random.Random) -> list[tuple[str, ...]]:
    """All fields, the issues stage's, and random subsets in random order."""
    names = [field["name"] for field in avro_schema(kind)["fields"]]
    found = [(), tuple(rng.sample(names, 1)), tuple(rng.sample(names, min(3, len(names))))]
    if kind in Subjects.FIELDS:
        found.append(Subjects.FIELDS[kind])
    return found


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_the_c_decoder_reads_what_fastavro_reads(kind: str) -> None:
    rng = random.Random(f"decode {kind}")
    rows = [random_value(avro_schema(kind), rng) for _ in range(300)]
    messages = [message for message, _ in encode(kind, rows, max_message_bytes=4000)]
    assert len(messages) > 1
    joined = splice(schema_tag(kind), messages)  # many blocks in one container
    for only in projections(kind, rng):
        by_c = decode(joined, kind, only, native=True)
        by_fastavro = decode(joined, kind, only, native=False)
        assert by_c == by_fastavro, only
        assert [list(r) for r in by_c] == [list(r) for r in by_fastavro]  # the schema's order
        assert len(by_c) == len(rows)


def test_a_container_of_another_writer_is_read_by_fastavro() -> None:
    """Containers that do not start with the current schema's header (an older schema
    version, another sync marker) go to fastavro's reader, which reads any."""
    rows = derived(5)["io_edges"]
    buffer = io.BytesIO()
    writer(buffer, parsed_schema("io_edges.v1"), rows)  # a random sync marker
    container = buffer.getvalue()
    assert not container.startswith(header("io_edges.v1"))
    only = Subjects.FIELDS["io_edges"]
    in_order = [name for name in fields("io_edges") if name in only]
    assert decode(container, "io_edges", only) == [{k: r[k] for k in in_order} for r in rows]


def test_the_c_decoder_refuses_damaged_containers() -> None:
    """Cut or altered anywhere, a container gives a ValueError or records, never a crash:
    a cut after a whole block is a shorter container."""
    rows = derived(30)["io_edges"]
    messages = [message for message, _ in encode("io_edges", rows, max_message_bytes=3000)]
    joined = splice("io_edges.v1", messages)
    head = len(header("io_edges.v1"))
    rng = random.Random(5)
    damaged = [joined[:cut] for cut in range(head, len(joined))]
    for _ in range(2000):
        data = bytearray(joined)
        for _ in range(rng.choice([1, 2, 8])):
            data[rng.randrange(head, len(data))] = rng.randrange(256)
        damaged.append(bytes(data))
    refused = 0
    for data in damaged:
        try:
            found = decode(data, "io_edges", native=True)
        except ValueError:
            refused += 1
            continue
        assert isinstance(found, list)
    assert refused > len(damaged) // 2


@ENCODERS
def test_a_long_out_of_range_is_refused_by_name(native: bool) -> None:
    for value in (1 << 63, -(1 << 63) - 1):
        row = derived(1)["io_edges"][0] | {"row_count": value}
        with pytest.raises(ValueError, match=f"{value} is out of range for an Avro long"):
            encode("io_edges", [row], native=native)


@ENCODERS
def test_a_row_without_a_field_or_with_a_wrong_type_is_refused(native: bool) -> None:
    """A bug in derivation stops the batch with the field's name or the type, whichever
    encoder runs (the processor does not commit it)."""
    row = derived(1)["io_edges"][0]
    missing = {k: v for k, v in row.items() if k != "version_id"}
    with pytest.raises(KeyError, match="version_id"):
        encode("io_edges", [row, missing], native=native)
    for field, value in (("row_count", "12"), ("name", 12), ("first_seen", None)):
        with pytest.raises(TypeError):
            encode("io_edges", [row | {field: value}], native=native)


def test_combine_is_what_the_tables_do() -> None:
    rows = derived()
    runs = combine("runs", rows["runs"] * 2)
    assert len(runs) == len({r["run_id"] for r in rows["runs"]})
    jobs = combine("jobs", rows["jobs"])
    assert sorted(j["name"] for j in jobs) == [f"job_{i}" for i in range(7)]
    job_0 = next(j for j in jobs if j["name"] == "job_0")
    times = [j["first_seen"] for j in rows["jobs"] if j["name"] == "job_0"]
    assert (job_0["first_seen"], job_0["last_seen"]) == (min(times), max(times))
    edges = rows["column_edges"]
    assert len(combine("column_edges", edges)) == len(
        {tuple(e[k] for k in BY_NAME["column_edges"].key) for e in edges}
    )
    assert combine("facets", rows["facets"]) == rows["facets"]  # one per event: untouched


def test_schemas_match_the_clickhouse_tables(settings: Settings, ch: Client) -> None:
    """Field names are column names, nested records are Tuples, and the key and min/max/
    union of each aggregated kind are the table's ORDER BY and SimpleAggregateFunctions."""
    migrate(settings)
    db = settings.clickhouse.database
    for kind in KIND_NAMES:
        described = ch.query(f"DESCRIBE TABLE {db}.{kind}").result_rows
        columns = {row[0]: row[1] for row in described if row[2] != "ALIAS"}
        assert tuple(columns) == fields(kind), kind
        for field in avro_schema(kind)["fields"]:
            if isinstance(field["type"], dict) and field["type"]["type"] == "record":
                assert "Tuple(" in columns[field["name"]], (kind, field["name"])
        spec = BY_NAME[kind]
        sorting = ch.command(
            f"SELECT sorting_key FROM system.tables WHERE database = '{db}' AND name = '{kind}'"
        )
        if spec.key:
            assert tuple(part.strip() for part in sorting.split(",")) == spec.key, kind
        if spec.aggregated:
            for name, type_name in columns.items():
                if name in spec.key:
                    continue
                function = type_name.removeprefix("SimpleAggregateFunction(").split(",")[0]
                wanted = (
                    "min"
                    if name in spec.minimum
                    else "groupUniqArrayArray"
                    if name in spec.union
                    else "max"
                )
                assert function == wanted, (kind, name, type_name)


def test_containers_insert_as_they_are(settings: Settings, ch: Client) -> None:
    from lineagehouse.processors.sink import ClickHouseSink, write_records

    migrate(settings)
    db = settings.clickhouse.database
    rows = derived(100)
    written = write_records(ClickHouseSink(settings.clickhouse), db, rows, 30_000)
    assert written["facets"] == len(rows["facets"])
    got = ch.query(f"SELECT run_id, tupleElement(state, 'name') FROM {db}.runs FINAL").result_rows
    assert sorted(got) == sorted({(r["run_id"], "COMPLETE") for r in rows["runs"]})
    sql = ch.command(
        f"SELECT facet_json FROM {db}.facet_values WHERE facet_id IN (SELECT "
        f"facet_ids[indexOf(facet_names, 'sql')] FROM {db}.facets FINAL "
        "WHERE entity_kind = 'job') LIMIT 1"
    )
    assert orjson.loads(sql)["query"].startswith("INSERT INTO shop.analytics.daily_")
    stored = ch.command(f"SELECT count() FROM {db}.facet_values FINAL")
    assert stored == len({v["facet_id"] for v in rows["facet_values"]}) < len(rows["facet_values"])


def test_an_older_message_inserts_after_a_column_was_added(settings: Settings, ch: Client) -> None:
    """Schema evolution: a new table column (with a default) does not break messages
    written with the older Avro schema that lacks it."""
    from lineagehouse.processors.sink import ClickHouseSink, write_records

    migrate(settings)
    db = settings.clickhouse.database
    ch.command(f"ALTER TABLE {db}.runs ADD COLUMN cost SimpleAggregateFunction(max, UInt32)")
    write_records(ClickHouseSink(settings.clickhouse), db, derived(5))
    assert ch.command(f"SELECT count(), max(cost) FROM {db}.runs FINAL") == ["5", "0"]


def test_the_issues_stage_reads_the_same_subjects_from_its_projection() -> None:
    """The issues stage decodes only `Subjects.FIELDS`: those must be every field it uses."""
    from lineagehouse.processors.issue_stage import WATCHED_KINDS, Subjects

    out: dict[str, list] = {}
    for i in range(40):
        event = lineage_event(i, job=f"job_{i % 7}")
        event["inputs"][0]["inputFacets"]["dataQualityAssertions"] = {
            "_producer": "tests",
            "_schemaURL": "https://openlineage.io/spec/facets/1-0-1/DataQualityAssertionsDatasetFacet.json",
            "assertions": [{"assertion": "not_null", "success": i % 2 == 0, "column": "id"}],
        }
        derive(event, str(event_id(event)), out)
    for kind in WATCHED_KINDS:
        whole, projected = Subjects(), Subjects()
        whole.add(kind, out[kind])
        [(message, _)] = encode(kind, out[kind])
        projected.add(kind, decode(message, kind, Subjects.FIELDS[kind]))
        assert len(whole) > 0 and projected == whole, kind
