"""The pure derivation: one event in, the lineage model's records out."""

from __future__ import annotations

import copy
from typing import Any

import orjson

from lineagehouse.processors.derive import derive
from lineagehouse.processors.events import event_id
from lineagehouse.processors.hashing import blake2b
from lineagehouse.processors.naming import identity
from lineagehouse.processors.records import fields
from lineagehouse.processors.validate import default_validator
from tests.conftest import CORPUS
from tests.events import BASE_TIME, PRODUCER, facet, lineage_event, run_event

MS = 1000


def records(event: dict[str, Any], custom: tuple[str, ...] = ()) -> dict[str, list]:
    return derive(event, str(event_id(event)), custom_facets=custom)


def ms(seconds: int) -> int:
    return int(BASE_TIME.timestamp()) * MS + seconds * MS


def test_run_record_carries_state_times_parent_engine_and_type() -> None:
    parent = ("0190c5e2-0000-7000-8000-000000000001", "airflow", "dag")
    event = lineage_event(5, job="dag.task", parent=parent)
    out = records(event)
    [run] = out["runs"]
    assert (run["run_id"], run["job_namespace"], run["job_name"]) == (
        event["run"]["runId"],
        "tests",
        "dag.task",
    )
    assert (run["state"]["terminal"], run["state"]["time"], run["state"]["name"]) == (
        1,
        ms(5),
        "COMPLETE",
    )
    assert run["state"]["event_id"] == str(event_id(event))
    assert run["started_at"] is None  # only a START says when the run started
    assert run["nominal_start_time"] == ms(5) and run["nominal_end_time"] is None
    assert (run["parent_run_id"], run["parent_job_namespace"], run["parent_job_name"]) == parent
    # Without a `root` in the parent facet, the parent is the best root we know.
    assert (run["root_run_id"], run["root_job_namespace"], run["root_job_name"]) == parent
    assert (run["processing_engine"], run["processing_engine_version"]) == ("spark", "3.5.1")
    assert (run["integration"], run["processing_type"], run["job_type"]) == (
        "SPARK",
        "BATCH",
        "JOB",
    )
    assert run["event_types"] == ["COMPLETE"]


def test_root_comes_from_the_parent_facet_root_or_is_the_run_itself() -> None:
    event = run_event(1, job="spark_app")
    [run] = records(event)["runs"]
    assert (run["root_run_id"], run["root_job_name"]) == (event["run"]["runId"], "spark_app")
    event["run"]["facets"] = {
        "parent": facet(
            "ParentRunFacet",
            "1-1-0",
            run={"runId": "r-task"},
            job={"namespace": "airflow", "name": "dag.task"},
            root={"run": {"runId": "r-dag"}, "job": {"namespace": "airflow", "name": "dag"}},
        )
    }
    [run] = records(event)["runs"]
    assert (run["parent_run_id"], run["parent_job_name"]) == ("r-task", "dag.task")
    assert (run["root_run_id"], run["root_job_namespace"], run["root_job_name"]) == (
        "r-dag",
        "airflow",
        "dag",
    )


def test_start_sets_started_at_and_is_not_terminal() -> None:
    [run] = records(run_event(3, event_type="START"))["runs"]
    assert (run["state"]["terminal"], run["state"]["name"], run["started_at"]) == (
        0,
        "START",
        ms(3),
    )
    for state in ("FAIL", "ABORT", "COMPLETE"):
        assert records(run_event(3, event_type=state))["runs"][0]["state"]["terminal"] == 1
    for state in ("RUNNING", "OTHER"):
        assert records(run_event(3, event_type=state))["runs"][0]["state"]["terminal"] == 0


def test_error_message_facet() -> None:
    event = run_event(1, event_type="FAIL")
    event["run"]["facets"] = {
        "errorMessage": facet(
            "ErrorMessageRunFacet",
            message="division by zero",
            programmingLanguage="python",
            stackTrace="Traceback ...",
        )
    }
    [run] = records(event)["runs"]
    assert (run["error_message"], run["error_language"], run["error_stacktrace"]) == (
        "division by zero",
        "python",
        "Traceback ...",
    )


def test_job_record_keeps_latest_facets_with_their_time() -> None:
    event = lineage_event(2)
    event["job"]["facets"]["documentation"] = facet(
        "DocumentationJobFacet", description="loads the daily table"
    )
    event["job"]["facets"]["sourceCodeLocation"] = facet(
        "SourceCodeLocationJobFacet", type="git", url="https://git.example.com/etl.py"
    )
    [job] = records(event)["jobs"]
    assert (job["namespace"], job["name"]) == ("tests", "pipeline.load")
    assert (job["sql"]["time"], job["sql"]["query"]) == (
        ms(2),
        "INSERT INTO shop.analytics.daily_2 SELECT ...",
    )
    assert job["documentation"]["description"] == "loads the daily table"
    assert job["source_code_location"]["url"] == "https://git.example.com/etl.py"
    assert (job["ownership"]["time"], job["ownership"]["json"]) == (
        0,
        "",
    )  # absent: never wins a max
    assert (job["latest_run"]["time"], job["latest_run"]["run_id"]) == (
        ms(2),
        event["run"]["runId"],
    )


def test_datasets_versions_and_nested_fields() -> None:
    event = run_event(1)
    event["outputs"][0]["facets"] = {
        "schema": facet(
            "SchemaDatasetFacet",
            "1-1-0",
            fields=[
                {"name": "id", "type": "BIGINT"},
                {
                    "name": "address",
                    "type": "STRUCT",
                    "fields": [{"name": "city", "type": "STRING", "description": "town"}],
                },
            ],
        ),
        "version": facet("DatasetVersionDatasetFacet", datasetVersion="v7"),
    }
    out = records(event)
    [version] = out["dataset_versions"]
    assert version["field_names"] == ["id", "address", "address.city"]
    assert version["field_types"] == ["BIGINT", "STRUCT", "STRING"]
    assert version["field_descriptions"] == ["", "", "town"]
    assert version["dataset_version"] == "v7"
    datasets = {(d["namespace"], d["name"]): d for d in out["datasets"]}
    output = datasets[("postgres://db:5432", "public.dst_1")]
    assert (output["version"]["id"], output["version"]["time"]) == (version["version_id"], ms(1))
    [edge] = [e for e in out["io_edges"] if e["direction"] == "output"]
    assert edge["version_id"] == version["version_id"]  # which version the run wrote

    # A description is a new version but not a schema change; a type is both, and a new
    # version facet is a new version.
    same = copy.deepcopy(event)
    same["outputs"][0]["facets"]["schema"]["fields"][0]["description"] = "key"
    described = records(same)["dataset_versions"][0]
    assert described["version_id"] != version["version_id"]
    assert described["schema_hash"] == version["schema_hash"]
    retyped = copy.deepcopy(event)
    retyped["outputs"][0]["facets"]["schema"]["fields"][0]["type"] = "INT"
    assert records(retyped)["dataset_versions"][0]["schema_hash"] != version["schema_hash"]
    bumped = copy.deepcopy(event)
    bumped["outputs"][0]["facets"]["version"]["datasetVersion"] = "v8"
    bumped_version = records(bumped)["dataset_versions"][0]
    assert bumped_version["version_id"] != version["version_id"]
    assert bumped_version["schema_hash"] == version["schema_hash"]


def test_io_edges_with_statistics() -> None:
    event = lineage_event(4, rows=250)
    edges = records(event)["io_edges"]
    by_direction = {(e["direction"], e["name"]): e for e in edges}
    assert set(by_direction) == {
        ("input", "shop.public.orders_4"),
        ("input", "shop.public.customers_4"),
        ("output", "shop.analytics.daily_4"),
    }
    output = by_direction[("output", "shop.analytics.daily_4")]
    assert (output["row_count"], output["byte_count"], output["file_count"]) == (250, 25_000, None)
    orders = by_direction[("input", "shop.public.orders_4")]
    assert (orders["row_count"], orders["byte_count"]) == (250, 30_000)  # dataQualityMetrics
    assert {e["run_id"] for e in edges} == {event["run"]["runId"]}
    assert {e["first_seen"] for e in edges} == {ms(4)}
    assert orders["dataset_key"] == identity(orders["namespace"], orders["name"], None)[0]


def test_column_edges_new_and_old_formats_and_dataset_level() -> None:
    event = run_event(1)
    src = {"namespace": "postgres://db:5432", "name": "public.src_1"}
    event["outputs"][0]["facets"] = {
        "columnLineage": facet(
            "ColumnLineageDatasetFacet",
            "1-2-0",
            fields={
                "total": {
                    "inputFields": [
                        {
                            **src,
                            "field": "amount",
                            "transformations": [
                                {"type": "DIRECT", "subtype": "AGGREGATION", "masking": False},
                                {"type": "INDIRECT", "subtype": "GROUP_BY"},
                            ],
                        }
                    ]
                },
                "email_hash": {
                    "inputFields": [
                        {
                            **src,
                            "field": "email",
                            "transformationType": "MASKED",
                            "transformationDescription": "sha256",
                        }
                    ]
                },
            },
            dataset=[
                {
                    **src,
                    "field": "country",
                    "transformations": [{"type": "INDIRECT", "subtype": "FILTER"}],
                }
            ],
        )
    }
    edges = {
        (
            e["output_field"],
            e["input_field"],
            e["transformation_type"],
            e["transformation_subtype"],
        ): e
        for e in records(event)["column_edges"]
    }
    assert set(edges) == {
        ("total", "amount", "DIRECT", "AGGREGATION"),
        ("total", "amount", "INDIRECT", "GROUP_BY"),
        ("email_hash", "email", "MASKED", ""),
        ("", "country", "INDIRECT", "FILTER"),
    }
    old = edges[("email_hash", "email", "MASKED", "")]
    assert old["description"] == "sha256"
    assert (old["output_name"], old["input_name"]) == ("public.dst_1", "public.src_1")


def test_every_facet_is_kept_standard_or_custom() -> None:
    event = lineage_event(1)
    event["run"]["facets"]["airflow"] = {
        "_producer": PRODUCER,
        "_schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunFacet",
        "dag": {"dag_id": "x"},
    }
    event["run"]["facets"]["acme_cost"] = {
        "_producer": PRODUCER,
        "_schemaURL": "https://acme.example.com/cost.json",
        "dollars": 3,
    }
    value = orjson.dumps(event)
    verdict = default_validator().validate(value)
    assert verdict.accepted
    out = records(event, verdict.custom_facets)
    facets = out["facets"]
    expected = {
        ("run", "facets"): event["run"]["facets"],
        ("job", "facets"): event["job"]["facets"],
        ("output", "outputFacets"): event["outputs"][0]["outputFacets"],
    }
    for dataset in event["inputs"]:
        expected[("input", "facets", dataset["name"])] = dataset["facets"]
        expected[("input", "inputFacets", dataset["name"])] = dataset["inputFacets"]
    assert len(facets) == len(expected) + 1  # + the output's dataset facets
    by_entity = {(f["entity_kind"], f["facet_group"]): f for f in facets}
    run = by_entity[("run", "facets")]
    assert stored_facets(run, out) == event["run"]["facets"]
    assert sorted(run["custom"]) == ["acme_cost", "airflow"]  # airflow: a core base schema
    assert (run["entity_namespace"], run["entity_name"]) == ("tests", "pipeline.load")
    stats = by_entity[("output", "outputFacets")]
    assert (stats["entity_name"], stats["custom"]) == ("shop.analytics.daily_1", [])
    job = by_entity[("job", "facets")]
    assert stored_facets(job, out)["sql"] == event["job"]["facets"]["sql"]
    assert job["summarised"] == [] and job["event_id"] == str(event_id(event))
    for row in facets:  # nothing dropped, nothing changed
        place = (row["entity_kind"], row["facet_group"])
        wanted = expected.get((*place, row["entity_name"])) or expected.get(place)
        if row["entity_kind"] == "output" and row["facet_group"] == "facets":
            wanted = event["outputs"][0]["facets"]
        assert stored_facets(row, out) == wanted, place


def stored_facets(row: dict[str, Any], out: dict[str, list]) -> dict[str, Any]:
    """A `facets` row's facets: kept inline, or each found by its id among the event's
    `facet_values`."""
    values = {v["facet_id"]: orjson.loads(v["facet_json"]) for v in out.get("facet_values", [])}
    ids = zip(row["facet_names"], row["facet_ids"], strict=True)
    return {**orjson.loads(row["facets_json"] or b"{}"), **{n: values[i] for n, i in ids}}


def test_facet_values_are_stored_once_by_content() -> None:
    first, second = lineage_event(1), lineage_event(1 + 11 * 13)  # same datasets and SQL
    out: dict[str, list] = {}
    for event in (first, second):
        derive(event, str(event_id(event)), out)
    values = out["facet_values"]
    for value in values:  # the id is a hash of the stored JSON
        assert value["facet_id"] == blake2b(value["facet_json"], 16).hexdigest()
    # one value per facet of the job and the datasets, per event; the distinct ones are
    # the distinct facets (the inputs share a schema and a data source with each other)
    places = [first["job"]] + first["inputs"] + first["outputs"]
    assert len(values) == 2 * sum(len(p["facets"]) for p in places)
    distinct = {orjson.dumps(f) for p in places for f in p["facets"].values()}
    assert {v["facet_json"] for v in values} == distinct
    for row in out["facets"]:
        by_id = row["entity_kind"] in ("job", "input", "output") and row["facet_group"] == "facets"
        if by_id:  # a dataset's or the job's facets: by value id
            assert row["facets_json"] == b"" and len(row["facet_ids"]) == len(row["facet_names"])
            assert row["facet_names"]
        else:  # the run's facets and the statistics: inline
            assert row["facets_json"] and row["facet_names"] == row["facet_ids"] == []
    # one dataset_facets row per facet of each dataset's own facets, with its JSON
    dataset_facets = out["dataset_facets"]
    assert {(r["name"], r["facet"]) for r in dataset_facets} == {
        (d["name"], name)
        for event in (first, second)
        for d in event["inputs"] + event["outputs"]
        for name in d["facets"]
    }
    assert len(dataset_facets) == 2 * sum(
        len(d["facets"]) for d in first["inputs"] + first["outputs"]
    )
    for row in dataset_facets:
        dataset = next(
            d
            for event in (first, second)
            for d in event["inputs"] + event["outputs"]
            if d["name"] == row["name"] and str(event_id(event)) == row["latest"]["event_id"]
        )
        assert orjson.loads(row["latest"]["json"]) == dataset["facets"][row["facet"]]
        assert row["last_seen"] == row["latest"]["time"]


def test_oversized_dataset_facet_is_stored_as_its_summary() -> None:
    event = run_event(1)
    blob = "x" * 5000
    event["outputs"] = [
        {
            "namespace": "s3://b",
            "name": "big",
            "facets": {
                "huge": {"_producer": "p", "_schemaURL": "https://x.example/h.json", "b": blob}
            },
        }
    ]
    out = derive(event, "id", max_facet_bytes=1024)
    [record] = [r for r in out["facets"] if r["entity_kind"] == "output"]
    assert record["summarised"] == ["huge"]
    summary = stored_facets(record, out)["huge"]
    assert summary["_summary"] is True and summary["keys"] == ["_producer", "_schemaURL", "b"]
    [latest] = out["dataset_facets"]
    assert orjson.loads(latest["latest"]["json"]) == summary


def test_oversized_facet_is_summarised() -> None:
    event = run_event(1)
    event["run"]["facets"] = {
        "huge": {"_producer": "p", "_schemaURL": "https://x.example.com/h.json", "blob": "x" * 5000}
    }
    out = derive(event, "id", max_facet_bytes=1024)
    [record] = out["facets"]
    assert record["summarised"] == ["huge"]
    summary = stored_facets(record, out)["huge"]
    assert summary == {
        "_summary": True,
        "bytes": len(orjson.dumps(event["run"]["facets"]["huge"])),
        "keys": ["_producer", "_schemaURL", "blob"],
        "_producer": "p",
        "_schemaURL": "https://x.example.com/h.json",
    }


def test_dataset_event_and_job_event() -> None:
    dataset_event = {
        "eventTime": "2024-05-01T00:00:00Z",
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
        "dataset": {
            "namespace": "s3://bucket",
            "name": "warehouse/events",
            "facets": {"documentation": facet("DocumentationDatasetFacet", description="events")},
        },
    }
    out = records(dataset_event)
    assert "runs" not in out and "io_edges" not in out
    [dataset] = out["datasets"]
    assert dataset["documentation"]["description"] == "events"
    assert [f["entity_kind"] for f in out["facets"]] == ["dataset"]

    job_event = {
        "eventTime": "2024-05-01T00:00:00Z",
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent",
        "job": {"namespace": "n", "name": "declared"},
        "inputs": [{"namespace": "s3://bucket", "name": "in"}],
        "outputs": [{"namespace": "s3://bucket", "name": "out"}],
    }
    out = records(job_event)
    assert "runs" not in out
    assert [(j["namespace"], j["name"], j["latest_run"]["run_id"]) for j in out["jobs"]] == [
        ("n", "declared", "")
    ]
    assert sorted((e["direction"], e["name"], e["run_id"]) for e in out["io_edges"]) == [
        ("input", "in", ""),
        ("output", "out", ""),
    ]


def test_symlinks_join_a_path_to_its_table() -> None:
    event = run_event(1)
    event["outputs"] = [
        {
            "namespace": "s3a://lake",
            "name": "/warehouse/sales/dt=2024-05-01",
            "facets": {
                "symlinks": facet(
                    "SymlinksDatasetFacet",
                    identifiers=[
                        {"namespace": "hive://meta:9083", "name": "db.sales", "type": "TABLE"}
                    ],
                )
            },
        }
    ]
    out = records(event)
    [dataset] = [d for d in out["datasets"] if d["namespace"] == "s3a://lake"]
    assert dataset["name"] == "/warehouse/sales/dt=2024-05-01"  # kept as sent
    assert (dataset["canonical_namespace"], dataset["canonical_name"]) == (
        "hive://meta:9083",
        "db.sales",
    )
    [alias] = out["dataset_aliases"]
    assert alias["dataset_key"] == dataset["dataset_key"] == alias["alias_key"]
    assert dataset["dataset_key"] == identity("hive://meta:9083", "db.sales", None)[0]


def test_column_lineage_follows_the_output_key_a_symlink_gives() -> None:
    # The same output and columnLineage facet, first without, then with a symlink to a
    # table: the second run's column edges carry the table's key, as its io edge does.
    plain = lineage_event(1)
    linked = lineage_event(1)
    linked["outputs"][0]["facets"]["symlinks"] = facet(
        "SymlinksDatasetFacet",
        identifiers=[{"namespace": "hive://meta:9083", "name": "db.daily", "type": "TABLE"}],
    )
    table_key = identity("hive://meta:9083", "db.daily", None)[0]
    before, after = records(plain), records(linked)
    [edge] = [e for e in after["io_edges"] if e["direction"] == "output"]
    assert edge["dataset_key"] == table_key
    assert {row["output_dataset_key"] for row in after["column_edges"]} == {table_key}
    assert {row["output_dataset_key"] for row in before["column_edges"]} != {table_key}
    # the rows differ, so their content id does too
    [before_id] = {row["column_lineage_id"] for row in before["column_edges"]}
    assert edge["column_lineage_id"] != before_id


def test_a_time_out_of_range_in_utc_is_no_time() -> None:
    event = lineage_event(1)
    event["run"]["facets"]["nominalTime"]["nominalStartTime"] = "0001-01-01T00:00:00+01:00"
    [run] = records(event)["runs"]
    assert run["nominal_start_time"] is None


def test_every_valid_corpus_event_derives() -> None:
    validator = default_validator()
    runs = 0
    for line in (CORPUS / "valid.jsonl").read_bytes().splitlines():
        verdict = validator.validate(line)
        assert verdict.accepted
        event = verdict.event
        out = derive(event, str(event_id(event)), custom_facets=verdict.custom_facets)
        for kind, rows in out.items():
            assert all(tuple(row) == fields(kind) for row in rows), kind
        if "run" in event:
            runs += 1
            assert len(out["runs"]) == 1
            assert out["runs"][0]["run_id"] == event["run"]["runId"]
            assert len(out.get("io_edges", [])) == len(event.get("inputs") or []) + len(
                event.get("outputs") or []
            )
    assert runs > 40
