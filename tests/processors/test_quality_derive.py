"""Quality records from events (pure): assertions wherever emitters put them, skipped
checks, metrics from dataQualityMetrics and the statistics facets."""

from __future__ import annotations

from typing import Any

from lineagehouse.processors.derive import derive

SCHEMA = "https://openlineage.io/spec/facets/1-0-0/X.json"


def run_event(state: str = "COMPLETE", **dataset: Any) -> dict[str, Any]:
    return {
        "eventType": state,
        "eventTime": "2026-11-01T10:00:00Z",
        "producer": "tests",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
        "run": {"runId": "0195f6a0-0000-7000-8000-000000000001", "facets": {}},
        "job": {"namespace": "jobs", "name": "check_orders", "facets": {}},
        "inputs": [{"namespace": "pg://db", "name": "public.orders", **dataset}],
        "outputs": [],
    }


def assertions_facet(*items: dict[str, Any]) -> dict[str, Any]:
    return {"_producer": "t", "_schemaURL": SCHEMA, "assertions": list(items)}


def results(event: dict[str, Any]) -> dict[tuple, str]:
    rows = derive(event, "e1").get("quality_assertions", [])
    return {
        (r["assertion"], r["column_name"], r["check_name"]): r["result"]["status"] for r in rows
    }


def test_assertions_in_input_facets_and_dataset_facets_count_once() -> None:
    facet = assertions_facet(
        {"assertion": "not_null", "success": True, "column": "id", "name": "nn_id"},
        {"assertion": "unique", "success": False, "column": "id", "severity": "ERROR"},
    )
    event = run_event(
        inputFacets={"dataQualityAssertions": facet}, facets={"dataQualityAssertions": facet}
    )
    rows = derive(event, "e1")["quality_assertions"]
    assert len(rows) == 2
    assert results(event) == {("not_null", "id", "nn_id"): "pass", ("unique", "id", ""): "fail"}
    failed = next(r for r in rows if r["assertion"] == "unique")
    assert failed["result"]["severity"] == "error"
    assert failed["job_name"] == "check_orders" and failed["run_id"].startswith("0195")


def test_great_expectations_assertions_facet() -> None:
    facet = {
        "_producer": "ge",
        "_schemaURL": "https://example.com/GreatExpectationsAssertionsDatasetFacet.json",
        "assertions": [
            {
                "expectationType": "expect_column_values_to_not_be_null",
                "success": False,
                "column": "amount",
            },
            {"expectationType": "expect_table_row_count_to_be_between", "success": True},
        ],
    }
    event = run_event(inputFacets={"greatExpectations_assertions": facet})
    assert results(event) == {
        ("expect_column_values_to_not_be_null", "amount", ""): "fail",
        ("expect_table_row_count_to_be_between", "", ""): "pass",
    }


def test_checks_of_an_aborted_run_are_skipped_not_failed() -> None:
    facet = assertions_facet({"assertion": "not_null", "success": False, "column": "id"})
    event = run_event("ABORT", inputFacets={"dataQualityAssertions": facet})
    assert results(event) == {("not_null", "id", ""): "skipped"}


def test_metrics_per_dataset_and_column() -> None:
    metrics = {
        "_producer": "t",
        "_schemaURL": SCHEMA,
        "rowCount": 1000,
        "bytes": 4096,
        "columnMetrics": {
            "id": {"nullCount": 0, "distinctCount": 1000, "min": 1, "max": 1000},
            "email": {
                "nullCount": 12,
                "distinctCount": 950,
                "quantiles": {"0.5": 3.0, "0.25": 1.0},
            },
        },
    }
    event = run_event(inputFacets={"dataQualityMetrics": metrics})
    (row,) = derive(event, "e1")["dataset_metrics"]
    assert row["direction"] == "input"
    whole, columns = row["dataset"], row["columns"]
    assert (whole["time"], whole["event_id"]) == (columns["time"], columns["event_id"]) != (0, "")
    assert whole["row_count"] == 1000 and whole["byte_count"] == 4096
    by_name = {c["name"]: c for c in columns["metrics"]}
    assert [c["name"] for c in columns["metrics"]] == ["email", "id"]  # sorted by name
    assert by_name["id"]["distinct_count"] == 1000 and by_name["id"]["max"] == 1000.0
    assert by_name["email"]["null_count"] == 12
    assert by_name["email"]["quantiles"] == '{"0.25":1.0,"0.5":3.0}'
    assert by_name["id"]["quantiles"] == ""


def test_statistics_facets_give_dataset_metrics() -> None:
    event = run_event()
    event["inputs"] = []
    event["outputs"] = [
        {
            "namespace": "pg://db",
            "name": "public.totals",
            "outputFacets": {
                "outputStatistics": {
                    "_producer": "t",
                    "_schemaURL": SCHEMA,
                    "rowCount": 7,
                    "size": 70,
                }
            },
        }
    ]
    (row,) = derive(event, "e1")["dataset_metrics"]
    assert row["direction"] == "output"
    assert (row["dataset"]["row_count"], row["dataset"]["byte_count"]) == (7, 70)
    assert row["columns"] == {"time": 0, "event_id": "", "metrics": []}  # none reported


def test_dataset_event_metrics_have_no_run() -> None:
    event = {
        "eventTime": "2026-11-01T10:00:00Z",
        "producer": "tests",
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
        "dataset": {
            "namespace": "pg://db",
            "name": "public.orders",
            "facets": {
                "dataQualityMetrics": {
                    "_producer": "t",
                    "_schemaURL": SCHEMA,
                    "rowCount": 5,
                    "columnMetrics": {},
                }
            },
        },
    }
    (row,) = derive(event, "e1")["dataset_metrics"]
    assert (row["run_id"], row["direction"], row["dataset"]["row_count"]) == ("", "", 5)


def test_counts_beyond_a_64_bit_column_are_left_out_not_fatal() -> None:
    """JSON allows any integer and orjson parses up to 2**64-1; a count that no Int64
    column holds is dropped (the raw event keeps it), so every record still encodes."""
    from lineagehouse.processors.avro import encode

    huge = (1 << 64) - 1
    metrics = {
        "_producer": "t",
        "_schemaURL": SCHEMA,
        "rowCount": huge,
        "columnMetrics": {"id": {"nullCount": huge, "distinctCount": 5}},
    }
    event = run_event(inputFacets={"dataQualityMetrics": metrics})
    out = derive(event, "e1")
    (row,) = out["dataset_metrics"]
    (column,) = row["columns"]["metrics"]
    assert column["null_count"] is None and column["distinct_count"] == 5
    assert row["dataset"]["time"] == 0  # nothing left to say about the dataset as a whole
    assert out["io_edges"][0]["row_count"] is None
    for kind, records in out.items():
        assert encode(kind, records), kind
