"""The pure message -> row-or-dead-letter rule the worker applies."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from lineagehouse.processors import ingest
from lineagehouse.processors.deadletter import (
    DEAD_LETTERS_COLUMNS,
    REFERENCE_PREFIX,
    DeadLetter,
    dead_letter_id,
)
from lineagehouse.processors.events import Source, event_id
from lineagehouse.processors.ingest import classify
from lineagehouse.processors.validate import EventValidator
from tests.events import encode, run_event

SRC = Source("openlineage.events", 1, 7, b"run:tests/job")
NOW = datetime(2025, 1, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def validator() -> EventValidator:
    return EventValidator(max_bytes=50_000)


def test_valid_event_becomes_a_row(validator: EventValidator) -> None:
    event = run_event(1)
    event["run"]["facets"] = {
        "my_vendor": {"_producer": "p", "_schemaURL": "https://x.io/s.json", "anything": 1}
    }
    value = encode(event)
    row = classify(value, SRC, NOW, validator)
    assert not isinstance(row, DeadLetter), row
    named = row
    assert named["event_id"] == str(event_id(event))
    assert named["core_version"] == "2-0-2"
    assert named["custom_facets"] == ["$.run.facets.my_vendor"]
    assert named["payload"] == value


def test_format_problem_is_a_warning_not_a_rejection(validator: EventValidator) -> None:
    event = run_event(2)
    event["run"]["runId"] = "not-a-uuid"
    row = classify(encode(event), SRC, NOW, validator)
    assert not isinstance(row, DeadLetter)
    warnings = row["warnings"]
    assert any(w.startswith("$.run.runId") for w in warnings), warnings


@pytest.mark.parametrize(
    ("value", "path"),
    [
        (b"\xff\xfe{}", "$"),
        (b"{oops", "$"),
        (
            b'{"eventTime": "2024-01-01T00:00:00Z", "producer": "p", "schemaURL": "s", '
            b'"run": {"runId": "0d9b8a49-6d1d-4a3a-9b63-3c3b0a6b0f11"}}',
            "$.job",
        ),
    ],
)
def test_bad_message_becomes_a_dead_letter(
    validator: EventValidator, value: bytes, path: str
) -> None:
    letter = classify(value, SRC, NOW, validator)
    assert isinstance(letter, DeadLetter)
    assert letter.value == value and letter.key == SRC.key and letter.source == SRC
    assert letter.problems and letter.problems[0].path == path
    assert letter.id == dead_letter_id(SRC.key, value)
    row = dict(zip(DEAD_LETTERS_COLUMNS, letter.row(), strict=True))
    assert row["reason_count"] == len(letter.problems)
    assert row["value"] == value and row["source_offset"] == 7
    headers = dict(letter.headers(50_000))
    reasons = orjson.loads(headers["lineagehouse.reasons"])
    assert reasons["total"] == letter.total_problems
    assert headers["lineagehouse.source"] == b"openlineage.events/1/7"


def test_dead_letter_of_json_object_links_to_its_event_id(validator: EventValidator) -> None:
    event = run_event(3)
    del event["producer"]
    letter = classify(encode(event), SRC, NOW, validator)
    assert isinstance(letter, DeadLetter)
    assert letter.event_id == event_id(event)


def test_reasons_are_bounded_but_counted(validator: EventValidator) -> None:
    event = {
        "eventTime": 1,
        "producer": 2,
        "schemaURL": 3,
        "run": {"runId": 4},
        "job": {"namespace": 5, "name": 6},
        "eventType": 7,
    }
    letter = classify(encode(event), SRC, NOW, validator, max_reasons=2)
    assert isinstance(letter, DeadLetter)
    assert len(letter.problems) == 2 and letter.total_problems > 2


def test_oversized_event_is_referenced_not_copied(validator: EventValidator) -> None:
    event = run_event(4)
    event["run"]["facets"] = {
        "big": {"_producer": "p", "_schemaURL": "https://x.io/b.json", "blob": "x" * 60_000}
    }
    value = encode(event)
    letter = classify(value, SRC, NOW, validator)
    assert isinstance(letter, DeadLetter)
    assert letter.value == value  # kept whole for ClickHouse
    assert letter.topic_value(50_000) == REFERENCE_PREFIX + str(letter.id).encode()
    assert dict(letter.headers(50_000))["lineagehouse.value_bytes"] == str(len(value)).encode()


@pytest.mark.parametrize("step", ["raw_row", "derive"])
def test_a_bug_on_one_message_dead_letters_it_and_keeps_nothing_of_it(
    validator: EventValidator, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    # A message the validator accepted but the code cannot turn into records must not stop
    # the worker (it would fail on the same message after every restart).
    def broken(*args: object, **kwargs: object) -> None:
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr(ingest, step, broken)
    event = run_event(1)
    out: dict[str, list] = {"runs": []}
    letter = ingest.process_message(encode(event), SRC, NOW, validator, out)
    assert isinstance(letter, DeadLetter)
    assert [p.message for p in letter.problems] == [
        "derivation failed (ZeroDivisionError: a bug); replay it"
    ]
    assert letter.event_id == event_id(event)
    assert out == {"runs": []}
