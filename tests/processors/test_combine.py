"""`records.combine` in C (`_native.c`) against its Python reference: the same rows, in
the same order, from the corpus, from the benchmark's events and from random rows that
share keys; the same errors; the input rows untouched."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from lineagehouse.processors.records import BY_NAME, KIND_NAMES, Combiner, avro_schema, combine
from tests.processors.test_avro import corpus_records, derived, random_value

KEYED = [name for name in KIND_NAMES if BY_NAME[name].key]


def test_the_c_combine_is_built_and_used() -> None:
    from lineagehouse.processors import _native, records

    assert records._native is _native


@pytest.mark.parametrize("source", ["corpus", "lineage events"])
def test_the_same_rows_as_the_python_combine(source: str) -> None:
    records = corpus_records() if source == "corpus" else derived(500)
    for kind, rows in records.items():
        before = copy.deepcopy(rows)
        by_c = combine(kind, rows, native=True)
        assert by_c == combine(kind, rows, native=False), kind
        assert rows == before, f"{kind}: combine changed its input rows"


def rows_sharing_keys(kind: str, rng: random.Random, count: int) -> list[dict[str, Any]]:
    """Random rows of `kind` on two keys at most (the first key field takes one of two
    values, the others one), so that many rows meet on one key and every column's rule
    (min, max, union, tuples with nulls) decides between drawn values."""
    schema = avro_schema(kind)
    key = BY_NAME[kind].key
    pools = {
        field["name"]: [random_value(field["type"], rng) for _ in range(2)][
            : 2 if field["name"] == key[0] else 1
        ]
        for field in schema["fields"]
        if field["name"] in key
    }
    rows = []
    for _ in range(count):
        row = random_value(schema, rng)
        for name, pool in pools.items():
            row[name] = rng.choice(pool)
        rows.append(row)
    return rows


@pytest.mark.parametrize("kind", KEYED)
def test_the_same_rows_on_random_rows_that_share_keys(kind: str) -> None:
    rng = random.Random(f"combine {kind}")
    for _ in range(20):
        rows = rows_sharing_keys(kind, rng, rng.choice([1, 5, 40]))
        before = copy.deepcopy(rows)
        expected = combine(kind, rows, native=False)
        assert len(expected) <= 2
        assert combine(kind, rows, native=True) == expected
        assert combine(kind, iter(rows), native=True) == expected  # any iterable
        assert rows == before


def test_the_same_errors() -> None:
    rows = derived(3)["jobs"]
    without_key = {k: v for k, v in rows[0].items() if k != "name"}
    extra_field = rows[0] | {"unknown": 1}
    for native in (True, False):
        with pytest.raises(KeyError, match="name"):
            combine("jobs", [rows[0], without_key], native=native)
        with pytest.raises(KeyError, match="unknown"):
            combine("jobs", [rows[0], extra_field], native=native)
        with pytest.raises(TypeError):  # a column whose values cannot be ordered
            combine("jobs", [rows[0], rows[0] | {"first_seen": "soon"}], native=native)


def test_nested_records_of_another_shape_combine_as_in_python() -> None:
    """C compares nested records of one shape in one pass; records whose keys differ in
    order, in number or as objects (equal strings not shared) take the general path, and
    give what the Python reference gives."""
    base = derived(1)["jobs"][0]
    sql = base["sql"]
    reordered = dict(reversed(list(sql.items())))
    later = {"time": sql["time"] + 1, "query": sql["query"] + " -- later"}
    own_keys = {"".join(list(k)): v for k, v in later.items()}  # equal keys, new objects
    shorter = {"time": sql["time"] + 2}
    nulls = {key: None for key in sql}
    for variant in (reordered, own_keys, shorter, nulls, later):
        for pair in ([base, base | {"sql": variant}], [base | {"sql": variant}, base]):
            assert combine("jobs", pair, native=True) == combine("jobs", pair, native=False)
    assert combine("jobs", [base, base | {"sql": later}])[0]["sql"] == later


@pytest.mark.parametrize("kind", KEYED)
def test_a_combiner_fed_in_pieces_gives_what_combine_gives_at_once(kind: str) -> None:
    """`Combiner` (what the processor folds each chunk into), both twins, against
    `combine` of all the rows: the same rows in the same order, inputs untouched."""
    rng = random.Random(f"combiner {kind}")
    lineage = derived(300).get(kind, [])
    for rows in (lineage, *(rows_sharing_keys(kind, rng, rng.choice([5, 40])) for _ in range(10))):
        before = copy.deepcopy(rows)
        expected = combine(kind, rows, native=False)
        for native in (True, False):
            combiner = Combiner(kind, native=native)
            start = 0
            while start < len(rows):
                stop = start + rng.randint(1, 7)
                combiner.add(rows[start:stop])
                start = stop
            assert combiner.rows() == expected, (kind, native)
        assert rows == before
