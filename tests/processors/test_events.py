"""The pure event -> events_raw row function."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import orjson

from lineagehouse.processors.events import (
    Source,
    epoch_ms,
    event_id,
    raw_row,
)
from tests.conftest import CORPUS
from tests.events import encode, run_event

SRC = Source("openlineage.events", 2, 41, b"run:tests/job")
NOW = datetime(2025, 1, 1, tzinfo=UTC)


def row_dict(value: bytes) -> dict:
    row = raw_row(orjson.loads(value), value, SRC, NOW)
    return row


def test_identity_ignores_key_order_and_whitespace() -> None:
    event = run_event(1)
    reordered = dict(reversed(list(event.items())))
    pretty = json.dumps(reordered, indent=2).encode()
    assert row_dict(encode(event))["event_id"] == row_dict(pretty)["event_id"]


def test_identity_changes_with_any_content() -> None:
    ids = {event_id(run_event(i)) for i in range(100)}
    ids.add(event_id({**run_event(0), "eventType": "START"}))
    assert len(ids) == 101


def test_identity_does_not_depend_on_delivery() -> None:
    value = encode(run_event(3))
    event = orjson.loads(value)
    a = raw_row(event, value, Source("t", 0, 1, None), NOW)
    b = raw_row(event, value, Source("t", 5, 999, b"k"), datetime(2030, 1, 1, tzinfo=UTC))
    assert (a["event_id"], a["event_time"]) == (b["event_id"], b["event_time"])


def test_row_id_is_the_canonical_text_of_the_identity() -> None:
    for i in range(300):
        event = run_event(i)
        assert row_dict(encode(event))["event_id"] == str(event_id(event))


def test_row_fields() -> None:
    event = run_event(7, job="etl.load", event_type="FAIL")
    event["eventTime"] = "2024-05-01T02:00:00.123456789+02:00"
    row = row_dict(encode(event))
    assert uuid.UUID(row["event_id"]) == event_id(event)
    # DateTime64(3): milliseconds since the epoch, truncated
    assert row["event_time"] == epoch_ms(datetime(2024, 5, 1, 0, 0, 0, 123000, tzinfo=UTC))
    assert (row["event_kind"], row["event_type"]) == ("run", "FAIL")
    assert (row["job_namespace"], row["job_name"]) == ("tests", "etl.load")
    assert row["run_id"] == event["run"]["runId"]
    assert orjson.loads(row["payload"]) == event
    assert (row["source_partition"], row["source_offset"], row["source_key"]) == (
        2,
        41,
        "run:tests/job",
    )


def test_dataset_and_job_events() -> None:
    dataset_event = {
        "eventTime": "2024-01-01T00:00:00Z",
        "producer": "p",
        "schemaURL": "s",
        "dataset": {"namespace": "s3://b", "name": "x/y"},
    }
    row = row_dict(encode(dataset_event))
    assert (row["event_kind"], row["event_type"], row["dataset_name"]) == ("dataset", "", "x/y")
    job_event = {
        "eventTime": "2024-01-01T00:00:00Z",
        "producer": "p",
        "schemaURL": "s",
        "job": {"namespace": "n", "name": "j"},
    }
    row = row_dict(encode(job_event))
    assert (row["event_kind"], row["job_name"], row["run_id"]) == ("job", "j", "")


def test_every_valid_corpus_event_becomes_a_row() -> None:
    count = 0
    ids = set()
    for line in (CORPUS / "valid.jsonl").read_bytes().splitlines():
        if line.strip():
            row = row_dict(line)
            ids.add(row["event_id"])
            count += 1
    assert count > 50
    assert len(ids) > count * 0.9  # distinct events get distinct identities
