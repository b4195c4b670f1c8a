"""What a processor leaves out as "already sent" (`processor.SentContent`)."""

from __future__ import annotations

from lineagehouse.processors.derive import derive
from lineagehouse.processors.events import event_id
from lineagehouse.processors.processor import SentContent
from tests.events import lineage_event


def rows(kind: str, i: int) -> list[dict]:
    event = lineage_event(i)
    return derive(event, str(event_id(event)))[kind]


def send(content: SentContent, kind: str, batch: list[dict]) -> list[dict]:
    """The rows of `batch` a processor sends, remembered as acknowledged."""
    new: set[tuple] = set()
    fresh = content.unsent(kind, batch, new)
    content.sent(new)
    return fresh


def test_versions_of_other_datasets_with_the_same_schema_are_sent() -> None:
    content = SentContent()
    first, second = rows("dataset_versions", 0), rows("dataset_versions", 1)
    assert {row["version_id"] for row in first + second} == {first[0]["version_id"]}
    assert send(content, "dataset_versions", first) == first
    assert send(content, "dataset_versions", second) == second
    assert send(content, "dataset_versions", first + second) == []


def test_column_lineage_sent_once_per_content() -> None:
    content = SentContent()
    edges = rows("column_edges", 0)
    assert send(content, "column_edges", edges) == edges
    assert send(content, "column_edges", rows("column_edges", 143)) == []  # same datasets
    other = rows("column_edges", 1)
    assert send(content, "column_edges", other) == other


def test_kinds_without_content_fields_are_always_sent() -> None:
    content = SentContent()
    runs = rows("runs", 0)
    assert send(content, "runs", runs) == runs
    assert send(content, "runs", runs) == runs


def test_the_oldest_contents_are_forgotten_first() -> None:
    content = SentContent(maxsize=3)
    first = rows("dataset_versions", 0)
    send(content, "dataset_versions", first)
    assert send(content, "dataset_versions", first[:1]) == []  # remembered, now the newest
    send(content, "dataset_versions", rows("dataset_versions", 1)[:2])
    # the two others of the first event are forgotten; the one used last is kept
    assert send(content, "dataset_versions", first) == first[1:]
