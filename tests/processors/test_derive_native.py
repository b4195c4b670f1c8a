"""`derive` in C (`_derive.c`, in the `_native` module) against its Python reference: the
same records from every event of the corpus, from the tests' and the benchmark's events,
and from random events mutated to reach every branch (keys missing, values of the wrong
type, edge numbers and times, oversized and custom facets, DatasetEvents and JobEvents);
the same errors; the event untouched; the same rows appended to rows already there."""

from __future__ import annotations

import copy
import random
import uuid
from collections.abc import Callable, Collection, Iterator
from typing import Any, NamedTuple

import orjson
import pytest

from lineagehouse.processors.derive import DEFAULT_MAX_FACET_BYTES, Records, derive
from lineagehouse.processors.validate import default_validator, json_path
from tests.conftest import CORPUS
from tests.events import PRODUCER, facet, lineage_event

Outcome = Records | tuple[type[BaseException], str]
EVENT_ID = "0190f7c4-5a2e-7b51-9c1d-3e8f2a6b4d10"
SEEDS = [1, 2, 3, 4]
EVENTS_PER_SEED = 400


def test_the_c_derive_is_built_and_used() -> None:
    from lineagehouse.processors import _native, records
    from lineagehouse.processors import derive as module

    assert records.NATIVE
    assert module._native is _native


def outcome(
    event: dict[str, Any], custom: Collection[str], max_facet_bytes: int, native: bool
) -> Outcome:
    """The records of a copy of `event`, or the error derive raised; the copy must come
    back as it went in."""
    given = copy.deepcopy(event)
    try:
        result: Outcome = derive(given, EVENT_ID, None, custom, max_facet_bytes, native=native)
    except Exception as exc:
        result = (type(exc), str(exc))
    assert given == event, f"derive(native={native}) changed the event"
    return result


def both(
    event: dict[str, Any],
    custom: Collection[str] = (),
    max_facet_bytes: int = DEFAULT_MAX_FACET_BYTES,
) -> tuple[Outcome, Outcome]:
    """(by C, by Python)."""
    return (
        outcome(event, custom, max_facet_bytes, native=True),
        outcome(event, custom, max_facet_bytes, native=False),
    )


def assert_same(
    event: dict[str, Any],
    custom: Collection[str] = (),
    max_facet_bytes: int = DEFAULT_MAX_FACET_BYTES,
) -> None:
    by_c, by_python = both(event, custom, max_facet_bytes)
    assert by_c == by_python, repr((event, custom, max_facet_bytes))[:2000]


# The corpus, the tests' events and the benchmark's events.


def corpus_events() -> Iterator[tuple[dict[str, Any], tuple[str, ...]]]:
    """Every event of the corpus, valid or not, as parsed (with the custom facets the
    validator found) and as the validator left it, if it differs."""
    validator = default_validator()
    for name in ("valid.jsonl", "invalid.jsonl"):
        for line in (CORPUS / name).read_bytes().splitlines():
            try:
                event = orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
            if type(event) is not dict:
                continue
            verdict = validator.validate(line)
            yield event, verdict.custom_facets
            if type(verdict.event) is dict and verdict.event != event:
                yield verdict.event, verdict.custom_facets


@pytest.mark.parametrize("max_facet_bytes", [DEFAULT_MAX_FACET_BYTES, 1000, 200])
def test_the_same_records_from_the_corpus(max_facet_bytes: int) -> None:
    count = 0
    for event, custom in corpus_events():
        assert_same(event, custom, max_facet_bytes)
        count += 1
    assert count >= 90


def bench_event(i: int) -> dict[str, Any]:
    """The events of bench/bench_pipeline.py (not importable from the tests)."""
    return lineage_event(i, job=f"job_{i % 300}", columns=2, rows=1000 + i)


EVENT_TYPES = ["START", "RUNNING", "COMPLETE", "FAIL", "ABORT", "OTHER"]


def events_of_the_tests() -> Iterator[dict[str, Any]]:
    for i in range(120):
        parent_run = str(uuid.uuid5(uuid.NAMESPACE_URL, f"parent/{i % 4}"))
        yield lineage_event(
            i,
            job=f"job_{i % 5}",
            event_type=EVENT_TYPES[i % len(EVENT_TYPES)],
            parent=(parent_run, "tests", f"parent_{i % 4}") if i % 3 else None,
            columns=i % 8,
            rows=i * 37,
        )
    for i in range(300):
        yield bench_event(i)


def test_the_same_records_from_the_tests_and_benchmark_events() -> None:
    for event in events_of_the_tests():
        by_c, by_python = both(event)
        assert by_c == by_python
        assert isinstance(by_python, dict) and by_python["runs"]


# Random events: realistic ones with every facet derive reads, then mutated.

HUGE = 10**400  # a JSON number no float holds
TIMES = [
    "2024-05-01T00:00:00Z",
    "2024-05-01T12:30:45.123456+02:00",
    "2024-05-01T00:00:00.5-05:30",
    "2024-05-01T00:00:00",  # naive: UTC
    "2024-05-01",
    "2024-05-01 10:00:00+00:00",
    "20240501T100000Z",
    "1969-12-31T23:59:59.999500Z",  # before the epoch, not on a millisecond
    "1970-01-01T00:00:00Z",
    "2024-02-30T00:00:00Z",
    "2016-12-31T23:59:60Z",
    "2024-05-01T00:00:00Zjunk",
    "yesterday",
    "",
    1714521600000,
    None,
]
VALID_TIMES = TIMES[:9]
OUT_OF_RANGE_TIMES = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]  # in UTC
COUNTS = [0, 1, 1000, 2**63 - 1, 2**63, 2**64 - 1, -1, 1.0, 2.5, True, False, "12", None]
NUMBERS = [0, -7, 42, 2**53 + 1, 2**63 - 1, 2**63, -(2**63), 0.0, -0.0, -1.5, 0.1, 1e308]
NUMBERS += [5e-324, True, False, "3.5", None, [], {}]
TEXTS = ["", "x", " padded ", "naïve", "列名", "😀", "a\x00b", "TABLE", "Pass", "\u212a"]
SCALARS = [None, True, False, 0, 5, -2.5, 1e308, "", "10", "ok", "é", {"min": 1}, [1, 2]]
STATUSES = ["PASS", "pass", "FAIL", "fail", "Skip", "SKIPPED", "skipped", "S\u212aIP"]
STATUSES += ["ok", "", 1, True, None]
SEVERITIES = ["error", "WARN", "Critical", "ÉRROR", "\u0130", "", 3, 2.5, True, None]
SUCCESSES = [True, False, True, False, 1, 0, "true", None]
SCHEMA_URLS = [
    "https://openlineage.io/spec/facets/1-0-0/SomeFacet.json#/$defs/SomeFacet",
    "https://openlineage.io/spec/",
    "https://openlineage.io/spec",
    "HTTPS://OPENLINEAGE.IO/spec/facets/1-0-0/X.json",
    "https://example.com/custom/1-0-0/MyFacet.json",
    "",
    None,
    7,
    ["https://openlineage.io/spec/"],
]
NAMESPACES = [
    "postgres://db.example.com:5432",
    "postgresql://DB.example.com/",
    "s3a://bucket",
    " hdfs://nn:8020/ ",
    "file",
    "bigquery",
    "",
    "ns-é",
]
NAMES = ["shop.public.orders", "warehouse/t/dt=2024-05-01/", "/tmp/x", " db.t ", "", "表"]
FIELD_TYPES = ["BIGINT", "VARCHAR", "struct", "", None, 5]
EVENT_TYPE_NAMES = [*EVENT_TYPES, "complete", "abort", "RESUME", "", 3, None]
QUANTILES = [{"0.5": 1.0, "0.25": 0}, {"b": 1, "a": [2]}, {}, [0.1, 0.5], None, "0.5"]
MASKINGS = [True, False, "true", 1, None]
DATASET_VERSIONS = ["v1", "v2", "", 3, None]
KEYS = ["name", "namespace", "fields", "assertions", "columnMetrics", "_schemaURL", "x", ""]


def pick(rng: random.Random, pool: list[Any]) -> Any:
    return copy.deepcopy(rng.choice(pool))


def one_of(pool: list[Any]) -> Callable[[random.Random], Any]:
    return lambda rng: pick(rng, pool)


def number(rng: random.Random) -> Any:
    """An edge number, rarely one no float (nor orjson) holds."""
    return HUGE if rng.random() < 0.01 else pick(rng, NUMBERS)


def a_time(rng: random.Random) -> Any:
    """A time of any form, rarely one that parses but is out of range in UTC."""
    return pick(rng, OUT_OF_RANGE_TIMES if rng.random() < 0.02 else TIMES)


# What a mutation draws for the keys derive reads specially.
DRAWS: dict[str, Callable[[random.Random], Any]] = {
    "eventType": one_of(EVENT_TYPE_NAMES),
    "eventTime": a_time,
    "nominalStartTime": a_time,
    "nominalEndTime": a_time,
    "lastUpdated": a_time,
    "status": one_of(STATUSES),
    "success": one_of(SUCCESSES),
    "severity": one_of(SEVERITIES),
    "expected": one_of(SCALARS),
    "actual": one_of(SCALARS),
    "description": one_of(SCALARS),
    "content": one_of(SCALARS),
    "rowCount": one_of(COUNTS),
    "bytes": one_of(COUNTS),
    "size": one_of(COUNTS),
    "fileCount": one_of(COUNTS),
    "nullCount": one_of(COUNTS),
    "distinctCount": one_of(COUNTS),
    "sum": number,
    "count": number,
    "min": number,
    "max": number,
    "quantiles": one_of(QUANTILES),
    "type": one_of(["TABLE", "table", "VIEW", "", None, 5, *FIELD_TYPES]),
    "_schemaURL": one_of(SCHEMA_URLS),
    "namespace": one_of(NAMESPACES),
    "name": one_of(NAMES),
    "masking": one_of(MASKINGS),
    "datasetVersion": one_of(DATASET_VERSIONS),
}


def wrong_value(rng: random.Random, depth: int = 0) -> Any:
    """Any JSON value, nested, of any type."""
    kind = rng.randrange(9 if depth < 2 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([True, False])
    if kind == 2:
        return number(rng)
    if kind == 3:
        return pick(rng, TEXTS + VALID_TIMES[:3])
    if kind == 4:
        return pick(rng, ["", [], {}])
    if kind == 5:
        return pick(rng, SCALARS)
    if kind == 6:
        return [wrong_value(rng, depth + 1) for _ in range(rng.randint(1, 3))]
    if kind == 7:
        return {rng.choice(KEYS): wrong_value(rng, depth + 1) for _ in range(rng.randint(1, 3))}
    return rng.choice(FACET_BUILDERS)(rng)


def maybe(rng: random.Random, chance: float, body: dict[str, Any], key: str, pool: list) -> None:
    if rng.random() < chance:
        body[key] = pick(rng, pool)


def assertion(rng: random.Random) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if rng.random() < 0.9:
        name = ["not_null", "unique", "expect_column_values_to_not_be_null", "", 4]
        item[rng.choice(["assertion", "expectationType"])] = rng.choice(name)
    maybe(rng, 0.8, item, "success", SUCCESSES)
    maybe(rng, 0.5, item, "status", STATUSES)
    maybe(rng, 0.5, item, "severity", SEVERITIES)
    for key in ("expected", "actual", "description", "content"):
        maybe(rng, 0.4, item, key, SCALARS)
    maybe(rng, 0.6, item, rng.choice(["column", "columnId"]), ["col_0", "col_1", "", 5])
    maybe(rng, 0.4, item, "name", ["check_a", "check_b", "", None])
    return item


def assertions_facet(rng: random.Random) -> dict[str, Any]:
    items: list[Any] = [assertion(rng) for _ in range(rng.choice([0, 1, 2, 4]))]
    if items and rng.random() < 0.4:  # the same check twice, maybe with another status
        twin = copy.deepcopy(rng.choice(items))
        maybe(rng, 0.5, twin, "status", STATUSES)
        items.append(twin)
    if rng.random() < 0.1:
        items.append(wrong_value(rng))
    return facet("DataQualityAssertionsDatasetFacet", assertions=items)


def great_expectations_facet(rng: random.Random) -> dict[str, Any]:
    body = assertions_facet(rng)
    body["_schemaURL"] = "https://greatexpectations.io/schemas/assertions.json"
    return body


def column_metrics(rng: random.Random) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for key in ("nullCount", "distinctCount"):
        maybe(rng, 0.6, values, key, COUNTS)
    for key in ("sum", "count", "min", "max"):
        if rng.random() < 0.5:
            values[key] = number(rng)
    maybe(rng, 0.4, values, "quantiles", QUANTILES)
    return values


def metrics_facet(rng: random.Random) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key in ("rowCount", "bytes", "fileCount"):
        maybe(rng, 0.5, body, key, COUNTS)
    if rng.random() < 0.4:
        body["lastUpdated"] = a_time(rng)
    if rng.random() < 0.7:
        names = rng.sample(["col_1", "col_0", "B", "a", "é", "列", ""], rng.randint(0, 4))
        body["columnMetrics"] = {
            name: column_metrics(rng) if rng.random() < 0.9 else wrong_value(rng) for name in names
        }
    return facet("DataQualityMetricsInputDatasetFacet", **body)


def statistics_facet(rng: random.Random) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for key in ("rowCount", "size", "bytes", "fileCount"):
        maybe(rng, 0.5, body, key, COUNTS)
    return facet("OutputStatisticsOutputDatasetFacet", **body)


def schema_fields(rng: random.Random, depth: int = 0) -> list[Any]:
    fields: list[Any] = []
    for c in range(rng.choice([0, 1, 3])):
        field: dict[str, Any] = {"name": rng.choice([f"col_{c}", "é", "", 7])}
        maybe(rng, 0.8, field, "type", FIELD_TYPES)
        maybe(rng, 0.5, field, "description", ["about it", "", None])
        if depth < 2 and rng.random() < 0.3:
            field["fields"] = schema_fields(rng, depth + 1)
        fields.append(field)
    return fields


def schema_facet(rng: random.Random) -> dict[str, Any]:
    return facet("SchemaDatasetFacet", "1-1-0", fields=schema_fields(rng))


def symlinks_facet(rng: random.Random) -> dict[str, Any]:
    identifiers: Any = [
        {
            "namespace": pick(rng, ["hive://meta:9083", "glue", "", 3]),
            "name": pick(rng, ["db.sales", "db.t", "", None]),
            "type": pick(rng, ["TABLE", "table", "VIEW", "", None, 1]),
        }
        for _ in range(rng.choice([0, 1, 2]))
    ]
    if rng.random() < 0.15:
        identifiers.append(wrong_value(rng))
    if rng.random() < 0.08:
        identifiers = rng.choice([None, {}, "TABLE", 5, {"namespace": "x"}])
    return facet("SymlinksDatasetFacet", identifiers=identifiers)


def input_field(rng: random.Random) -> dict[str, Any]:
    source: dict[str, Any] = {
        "namespace": rng.choice(["postgres://db.example.com:5432", "s3://b", ""]),
        "name": rng.choice(["shop.public.orders_1", "raw/x", ""]),
        "field": rng.choice(["col_0", "col_1", ""]),
    }
    shape = rng.random()
    if shape < 0.5:
        source["transformations"] = [
            {
                "type": pick(rng, ["DIRECT", "INDIRECT", "", None]),
                "subtype": pick(rng, ["IDENTITY", "AGGREGATION", "FILTER"]),
                "description": pick(rng, ["", "sum", 3]),
                "masking": pick(rng, MASKINGS),
            }
            for _ in range(rng.choice([1, 2]))
        ]
    elif shape < 0.65:
        source["transformations"] = rng.choice([[], None, "DIRECT", [7, {}]])
    if rng.random() < 0.5:  # before facet 1-1-0
        source["transformationType"] = rng.choice(["IDENTITY", "MASKED", ""])
        source["transformationDescription"] = rng.choice(["identical", ""])
    return source


def column_lineage_facet(rng: random.Random) -> dict[str, Any]:
    fields: Any = {
        name: {"inputFields": [input_field(rng) for _ in range(rng.choice([0, 1, 2]))]}
        for name in rng.sample(["col_0", "col_1", "total", "é"], rng.randint(0, 3))
    }
    if rng.random() < 0.1:
        fields["broken"] = rng.choice([{"inputFields": "x"}, [], None])
    if rng.random() < 0.05:
        fields = rng.choice([[], "fields", None])
    body = facet("ColumnLineageDatasetFacet", "1-2-0", fields=fields)
    if rng.random() < 0.4:  # dataset-level lineage
        body["dataset"] = [input_field(rng) for _ in range(rng.choice([1, 2]))]
    return body


def version_facet(rng: random.Random) -> dict[str, Any]:
    return facet("DatasetVersionDatasetFacet", datasetVersion=pick(rng, DATASET_VERSIONS))


def storage_facet(rng: random.Random) -> dict[str, Any]:
    return facet("StorageDatasetFacet", storageLayer="iceberg", fileFormat="parquet")


def datasource_facet(rng: random.Random) -> dict[str, Any]:
    return facet("DatasourceDatasetFacet", name="shop", uri=rng.choice(NAMESPACES))


def lifecycle_facet(rng: random.Random) -> dict[str, Any]:
    state = pick(rng, ["CREATE", "OVERWRITE", "DROP", "", 3])
    return facet("LifecycleStateChangeDatasetFacet", lifecycleStateChange=state)


def documentation_facet(rng: random.Random) -> dict[str, Any]:
    return facet("DocumentationDatasetFacet", description=pick(rng, ["Daily sales.", "", None]))


def ownership_facet(rng: random.Random) -> dict[str, Any]:
    return facet("OwnershipDatasetFacet", owners=[{"name": "team:data", "type": "MAINTAINER"}])


def custom_facet(rng: random.Random) -> dict[str, Any]:
    """A facet no spec defines (its URL is the producer's), sometimes big."""
    return {
        "_producer": PRODUCER,
        "_schemaURL": pick(rng, SCHEMA_URLS),
        "plan": ["x" * rng.choice([10, 300, 1500])],
    }


DATASET_FACETS: dict[str, Callable[[random.Random], dict[str, Any]]] = {
    "schema": schema_facet,
    "version": version_facet,
    "symlinks": symlinks_facet,
    "columnLineage": column_lineage_facet,
    "storage": storage_facet,
    "dataSource": datasource_facet,
    "lifecycleStateChange": lifecycle_facet,
    "documentation": documentation_facet,
    "ownership": ownership_facet,
    "dataQualityMetrics": metrics_facet,
    "dataQuality": metrics_facet,
    "dataQualityAssertions": assertions_facet,
    "greatExpectations_assertions": great_expectations_facet,
    "spark.custom": custom_facet,
}
IO_FACETS: dict[str, Callable[[random.Random], dict[str, Any]]] = {
    "dataQualityMetrics": metrics_facet,
    "dataQuality": metrics_facet,
    "dataQualityAssertions": assertions_facet,
    "greatExpectations_assertions": great_expectations_facet,
    "inputStatistics": statistics_facet,
    "outputStatistics": statistics_facet,
    "airflow.custom": custom_facet,
}
FACET_BUILDERS = [*DATASET_FACETS.values(), assertion, column_metrics, input_field]


def job_facets(rng: random.Random) -> dict[str, Any]:
    facets: dict[str, Any] = {
        "jobType": facet(
            "JobTypeJobFacet",
            "2-0-3",
            processingType=pick(rng, ["BATCH", "STREAMING", "", None]),
            integration=pick(rng, ["SPARK", "DBT", "AIRFLOW", 1]),
            jobType=pick(rng, ["JOB", "TASK", "MODEL", ""]),
        ),
        "sql": facet("SQLJobFacet", query=pick(rng, ["SELECT 1", "", None])),
        "sourceCode": facet("SourceCodeJobFacet", language="python", sourceCode="print(1)"),
        "sourceCodeLocation": facet(
            "SourceCodeLocationJobFacet", type="git", url=pick(rng, ["https://git/x", 3])
        ),
        "documentation": documentation_facet(rng),
        "ownership": ownership_facet(rng),
        "tags": facet("TagsJobFacet", tags=[{"key": "team", "value": "data", "source": "x"}]),
        "custom.job": custom_facet(rng),
    }
    return {key: body for key, body in facets.items() if rng.random() < 0.5}


def add_run_facets(rng: random.Random, facets: dict[str, Any]) -> None:
    if rng.random() < 0.5:
        parent: dict[str, Any] = {
            "run": {"runId": pick(rng, ["p-run-1", "p-run-2", "", None])},
            "job": {"namespace": "airflow", "name": pick(rng, ["dag.task", "dag", 3])},
        }
        if rng.random() < 0.5:
            parent["root"] = {
                "run": {"runId": pick(rng, ["root-run", "", 4])},
                "job": {"namespace": pick(rng, ["airflow", None]), "name": "dag"},
            }
        facets["parent"] = facet("ParentRunFacet", **parent)
    if rng.random() < 0.3:
        facets["errorMessage"] = facet(
            "ErrorMessageRunFacet",
            message=pick(rng, ["boom", "", "é" * 3, None]),
            programmingLanguage=pick(rng, ["python", "JAVA", 2]),
            stackTrace=pick(rng, ["Traceback ...", ""]),
        )
    if rng.random() < 0.4:
        facets["nominalTime"] = facet(
            "NominalTimeRunFacet",
            nominalStartTime=a_time(rng),
            nominalEndTime=a_time(rng),
        )
    if rng.random() < 0.3:
        facets["processing_engine"]["openlineageAdapterVersion"] = "1.9.0"
    if rng.random() < 0.3:
        facets["spark.logicalPlan"] = custom_facet(rng)
    if rng.random() < 0.1:
        facets["notAFacet"] = wrong_value(rng)


def add_dataset_facets(rng: random.Random, dataset: dict[str, Any], direction: str) -> None:
    facets = dataset.setdefault("facets", {})
    for key, build in DATASET_FACETS.items():
        if rng.random() < 0.25:
            facets[key] = build(rng)
    group = dataset.setdefault(f"{direction}Facets", {})
    for key, build in IO_FACETS.items():
        if rng.random() < 0.25:
            group[key] = build(rng)
    if rng.random() < 0.3:
        dataset["namespace"] = rng.choice(NAMESPACES)
        dataset["name"] = rng.choice(NAMES)


def realistic_event(rng: random.Random, i: int) -> dict[str, Any]:
    """A RunEvent as emitters send them, with every facet derive reads (drawn)."""
    parent = ("p-run", "airflow", "dag.task") if rng.random() < 0.2 else None
    event = lineage_event(
        i,
        job=rng.choice(["load", "pipeline.load", "dbt.model", "job_é"]),
        event_type=pick(rng, EVENT_TYPES if rng.random() < 0.8 else EVENT_TYPE_NAMES),
        parent=parent,
        columns=rng.choice([0, 1, 2, 3]),
        rows=rng.choice([0, 5, 1000]),
    )
    event = orjson.loads(orjson.dumps(event))  # no shared lists: mutations stay local
    add_run_facets(rng, event["run"]["facets"])
    event["job"]["facets"].update(job_facets(rng))
    for direction in ("input", "output"):
        for dataset in event[f"{direction}s"]:
            add_dataset_facets(rng, dataset, direction)
    if rng.random() < 0.1:
        event["eventTime"] = pick(rng, VALID_TIMES)
    return event


def reshaped(rng: random.Random, event: dict[str, Any]) -> dict[str, Any]:
    """The event as it is (mostly), or a DatasetEvent or JobEvent of its parts."""
    shape = rng.random()
    common = {"eventTime": event["eventTime"], "producer": PRODUCER}
    if shape < 0.15:
        dataset = rng.choice(event["inputs"] + event["outputs"])
        url = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent"
        return {"dataset": dataset, **common, "schemaURL": url}
    if shape < 0.25:
        url = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent"
        parts = {key: event[key] for key in ("job", "inputs", "outputs")}
        return {**parts, **common, "schemaURL": url}
    return event


def places(value: Any, found: list[tuple[Any, Any]]) -> None:
    """Every (container, key or index) of a JSON value."""
    if type(value) is dict:
        for key, item in value.items():
            found.append((value, key))
            places(item, found)
    elif type(value) is list:
        for index, item in enumerate(value):
            found.append((value, index))
            places(item, found)


def mutate(rng: random.Random, event: dict[str, Any]) -> None:
    """A few keys removed or values replaced: by a value derive reads specially (when the
    key has a pool) or by one of any type."""
    for _ in range(rng.choice([0, 0, 1, 1, 2, 3, 6])):
        found: list[tuple[Any, Any]] = []
        places(event, found)
        if rng.random() < 0.15:  # the top level is only a few of the places
            found = [(event, key) for key in event]
        if not found:
            return
        container, key = rng.choice(found)
        draw = rng.random()
        if draw < 0.2:
            del container[key]
        elif draw < 0.6 and type(key) is str and key in DRAWS:
            container[key] = DRAWS[key](rng)
        else:
            container[key] = wrong_value(rng)


def facet_paths(event: dict[str, Any]) -> list[str]:
    """The JSON paths of the event's facets (those the validator could call custom)."""
    groups: list[tuple[Any, tuple[str | int, ...]]] = []
    for entity in ("run", "job", "dataset"):
        groups.append((event.get(entity), (entity, "facets")))
    for direction in ("input", "output"):
        datasets = event.get(f"{direction}s")
        for index, dataset in enumerate(datasets if type(datasets) is list else []):
            for group in ("facets", f"{direction}Facets"):
                groups.append((dataset, (f"{direction}s", index, group)))
    paths = []
    for owner, where in groups:
        facets = owner.get(where[-1]) if type(owner) is dict else None
        if type(facets) is dict:
            paths.extend(json_path((*where, key)) for key in facets)
    return paths


def random_custom(rng: random.Random, event: dict[str, Any]) -> Collection[str]:
    paths = facet_paths(event)
    if not paths or rng.random() < 0.4:
        return ()
    chosen = [*rng.sample(paths, rng.randint(1, len(paths))), "$.run.facets.absent"]
    kind: Callable[[list[str]], Collection[str]] = rng.choice([tuple, list, frozenset])
    return kind(chosen)


class Case(NamedTuple):
    event: dict[str, Any]
    custom: Collection[str]
    max_facet_bytes: int


def random_cases(seed: int) -> Iterator[Case]:
    rng = random.Random(f"derive {seed}")
    for i in range(EVENTS_PER_SEED):
        event = reshaped(rng, realistic_event(rng, i))
        mutate(rng, event)
        limit = rng.choice([DEFAULT_MAX_FACET_BYTES] * 3 + [1000, 200, 0])
        yield Case(event, random_custom(rng, event), limit)


@pytest.mark.parametrize("seed", SEEDS)
def test_the_same_records_from_random_events(seed: int) -> None:
    for case in random_cases(seed):
        assert_same(*case)


def edited(path: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    """A lineage event with the value at `path` set."""
    event = orjson.loads(orjson.dumps(lineage_event(1)))
    owner = event
    for part in path[:-1]:
        owner = owner[part]
    owner[path[-1]] = value
    return event


METRICS = ("inputs", 0, "inputFacets", "dataQualityMetrics")
EDGE_EVENTS: dict[str, tuple[dict[str, Any], bool]] = {  # name: (event, whether derive raises)
    "a number no float holds": (edited((*METRICS, "columnMetrics", "col_0", "sum"), HUGE), True),
    "a count over 64 bits": (edited((*METRICS, "rowCount"), 2**64), True),
    # no time: nothing derived (the validator rejects such events)
    "an eventTime out of range in UTC": (edited(("eventTime",), OUT_OF_RANGE_TIMES[0]), False),
    "a nominal time out of range in UTC": (
        edited(("run", "facets", "nominalTime", "nominalStartTime"), OUT_OF_RANGE_TIMES[1]),
        False,
    ),
    "symlink identifiers not a list": (
        edited(("outputs", 0, "facets", "symlinks"), {"identifiers": 5}),
        False,
    ),
    "a dataset namespace with a lone surrogate": (
        edited(("inputs", 0, "namespace"), "\ud800"),
        True,
    ),
    "a job name with a lone surrogate": (edited(("job", "name"), "a\ud800"), False),
    "a status lowercased by Unicode rules": (
        edited(
            ("inputs", 0, "inputFacets", "dataQualityAssertions"),
            facet(
                "X", assertions=[{"assertion": "a", "status": "S\u212aIP", "severity": "\u0130"}]
            ),
        ),
        False,
    ),
    "a count at the top of a long": (edited((*METRICS, "bytes"), 2**63 - 1), False),
    "a sum that rounds to a float": (
        edited((*METRICS, "columnMetrics", "col_0", "sum"), 2**64 - 1),
        False,
    ),
}


@pytest.mark.parametrize("name", EDGE_EVENTS)
def test_the_same_outcome_on_edge_events(name: str) -> None:
    event, raises = EDGE_EVENTS[name]
    by_c, by_python = both(event)
    assert isinstance(by_python, tuple) is raises, by_python
    assert by_c == by_python


def test_the_same_records_appended_to_rows_already_there() -> None:
    earlier: Records = {"dead_letters": [{"earlier": True}], "runs": []}
    for i in range(3):
        derive(lineage_event(i, job="earlier"), f"earlier-{i}", earlier)
    events = [*events_of_the_tests()][::40] + [case.event for case in random_cases(1)][:150]
    for event in events:
        outcomes = []
        for native in (True, False):
            out = copy.deepcopy(earlier)
            lists = dict(out)
            try:
                result = derive(copy.deepcopy(event), EVENT_ID, out, native=native)
            except Exception as exc:
                outcomes.append((type(exc), str(exc)))
                continue
            assert result is out
            assert all(out[kind] is rows for kind, rows in lists.items())  # appended to
            outcomes.append(out)
        assert outcomes[0] == outcomes[1]


REACHED_KINDS = [
    "runs",
    "jobs",
    "datasets",
    "dataset_versions",
    "column_edges",
    "dataset_aliases",
    "io_edges",
    "facets",
    "quality_assertions",
    "dataset_metrics",
]
NOTABLE_CASES = [
    "nothing derived (eventTime unusable)",
    "DatasetEvent",
    "JobEvent",
    "run in a terminal state",
    "run of an unknown event type",
    "run with a parent",
    "run with a root apart from its parent",
    "run with an error message",
    "run with a nominal time",
    "run with a job type",
    "facets summarised",
    "facets custom",
    "facets of inputFacets",
    "facets of outputFacets",
    "assertion pass",
    "assertion fail",
    "assertion skipped",
    "assertion of Great Expectations",
    "assertion with a severity",
    "metrics of the dataset",
    "metrics of columns only",
    "metrics with quantiles",
    "metrics with a sum",
    "metrics last updated",
    "io edge with counts",
    "column edge masking",
    "version without a schema",
    "dataset lifecycle state",
    "error TypeError",
]


def notable_cases(event: dict[str, Any], out: Records) -> Iterator[str]:
    if not out:
        yield "nothing derived (eventTime unusable)"
    elif "run" not in event:
        yield "DatasetEvent" if "dataset" in event else "JobEvent"
    for run in out.get("runs", []):
        yield from (
            "run in a terminal state" if run["state"]["terminal"] else "",
            "run of an unknown event type" if run["state"]["name"] not in EVENT_TYPES else "",
            "run with a parent" if run["parent_run_id"] else "",
            "run with a root apart from its parent"
            if run["parent_run_id"] and run["root_run_id"] != run["parent_run_id"]
            else "",
            "run with an error message" if run["error_message"] else "",
            "run with a nominal time" if run["nominal_start_time"] is not None else "",
            "run with a job type" if run["job_type"] else "",
        )
    for row in out.get("facets", []):
        yield "facets summarised" if row["summarised"] else ""
        yield "facets custom" if row["custom"] else ""
        yield f"facets of {row['facet_group']}"
    for row in out.get("quality_assertions", []):
        yield f"assertion {row['result']['status']}"
        yield "assertion with a severity" if row["result"]["severity"] else ""
        if row["source"] == "greatExpectations_assertions":
            yield "assertion of Great Expectations"
    for row in out.get("dataset_metrics", []):
        yield "metrics of the dataset" if row["dataset"]["time"] else "metrics of columns only"
        yield "metrics last updated" if row["dataset"]["last_updated"] is not None else ""
        for column in row["columns"]["metrics"]:
            yield "metrics with quantiles" if column["quantiles"] else ""
            yield "metrics with a sum" if column["sum"] is not None else ""
    for row in out.get("io_edges", []):
        yield "io edge with counts" if row["row_count"] is not None else ""
    for row in out.get("column_edges", []):
        yield "column edge masking" if row["masking"] else ""
    for row in out.get("dataset_versions", []):
        yield "version without a schema" if not row["fields_json"] else ""
    for row in out.get("datasets", []):
        yield "dataset lifecycle state" if row["lifecycle"]["state"] else ""


def test_the_random_events_reach_every_branch() -> None:
    """The generator is only as good as what it reaches: by the Python reference alone,
    every kind of record, the notable cases of each, and errors."""
    kinds: set[str] = set()
    reached: set[str] = set()
    for seed in SEEDS:
        for case in random_cases(seed):
            found = outcome(case.event, case.custom, case.max_facet_bytes, native=False)
            if isinstance(found, tuple):
                reached.add(f"error {found[0].__name__}")
                continue
            kinds.update(kind for kind, rows in found.items() if rows)
            reached.update(notable_cases(case.event, found))
    assert set(REACHED_KINDS) <= kinds
    assert not set(NOTABLE_CASES) - reached
