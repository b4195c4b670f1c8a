"""A batch folded chunk by chunk sends exactly what combining all of it at once sends.

`BatchRecords` (what the processor sends per batch) against the plain reference: every
record of the batch per input partition, combined per kind once (`combine`), content
already sent left out, encoded (`encode`). Events of many runs with the awkward cases of
`test_order_and_duplicates` (several terminal events per run, equal times, schema and job
facet changes), shuffled, with duplicates, a dead letter and an unknown facet, over three
partitions; chunks from 1 event to the whole batch; containers small enough to split.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from lineagehouse.processors.avro import decode, encode
from lineagehouse.processors.batch import BatchRecords
from lineagehouse.processors.events import Source
from lineagehouse.processors.ingest import process_message
from lineagehouse.processors.processor import SentContent
from lineagehouse.processors.records import BY_NAME, combine
from lineagehouse.processors.validate import EventValidator
from tests.events import encode as event_bytes
from tests.processors.test_order_and_duplicates import run_events

NOW = datetime(2026, 12, 5, tzinfo=UTC)
PARTITIONS = 3


def _messages(seed: int) -> list[tuple[int, bytes]]:
    rng = random.Random(seed)
    events = run_events(rng, 24)
    events += rng.sample(events, 20)  # redelivered
    rng.shuffle(events)
    values = [event_bytes(event) for event in events]
    values.insert(7, b'{"eventType": "START"}')  # a dead letter
    return [(rng.randrange(PARTITIONS), value) for value in values]


def _derive(messages: list[tuple[int, bytes]]) -> list[dict[int, dict[str, list]]]:
    """Each message's records, per input partition (dead letters' records too)."""
    validator = EventValidator()
    derived = []
    for offset, (partition, value) in enumerate(messages):
        out: dict[str, list] = {}
        source = Source("openlineage.events", partition, offset, None)
        letter = process_message(value, source, NOW, validator, out)
        if letter is not None:
            out["dead_letters"] = [letter.record()]
        derived.append({partition: out})
    return derived


def _presend(content: SentContent, derived: list[dict[int, dict[str, list]]]) -> None:
    """Mark half of the content records as sent already (as an earlier batch would)."""
    sent: set[tuple] = set()
    for each in derived[::2]:
        for records in each.values():
            for kind, rows in records.items():
                content.unsent(kind, rows, sent)
    content.sent(sent)


def _merged(derived: list[dict[int, dict[str, list]]]) -> dict[int, dict[str, list]]:
    """The records of several messages together, per input partition and kind, in order."""
    by_partition: dict[int, dict[str, list]] = {}
    for each in derived:
        for partition, records in each.items():
            kinds = by_partition.setdefault(partition, {})
            for kind, rows in records.items():
                kinds.setdefault(kind, []).extend(rows)
    return by_partition


def _reference(
    derived: list[dict[int, dict[str, list]]], content: SentContent, limit: int
) -> list[tuple[int, str, bytes, int]]:
    sent: list[tuple[int, str, bytes, int]] = []
    new: set[tuple] = set()
    for partition, kinds in _merged(derived).items():
        for kind, rows in kinds.items():
            if BY_NAME[kind].key:
                rows = content.unsent(kind, combine(kind, rows), new)
            sent += [(partition, kind, c, n) for c, n in encode(kind, rows, limit)]
    return sent


@pytest.mark.parametrize("chunk", [1, 2, 7, 50, 10_000])
@pytest.mark.parametrize("limit", [3_000, 900_000])
def test_chunked_batch_sends_what_the_whole_batch_combined_sends(chunk: int, limit: int) -> None:
    messages = _messages(seed=chunk * 31 + limit)
    derived = _derive(messages)
    expected_content, content = SentContent(), SentContent()
    _presend(expected_content, derived)
    _presend(content, derived)
    expected = _reference(derived, expected_content, limit)

    batch = BatchRecords()
    for start in range(0, len(derived), chunk):
        for partition, records in _merged(derived[start : start + chunk]).items():
            batch.add(partition, records)
    new: set[tuple] = set()
    got = list(batch.containers(limit, lambda kind, rows: content.unsent(kind, rows, new)))

    assert sorted(got) == sorted(expected)
    # Per partition and kind the containers come in the reference's order.
    for key in {(p, k) for p, k, _, _ in expected}:
        assert [c for p, k, c, _ in got if (p, k) == key] == [
            c for p, k, c, _ in expected if (p, k) == key
        ]
    kinds = {k for _, k, _, _ in got}
    assert {"events_raw", "dead_letters", "runs", "io_edges", "facets"} <= kinds
    if limit < 10_000:  # split containers were exercised
        assert any(
            sum(1 for p, k, _, _ in got if (p, k) == key) > 1
            for key in {(p, k) for p, k, _, _ in got}
        )
    # And they read back as records.
    for _, kind, payload, count in got:
        assert len(decode(payload, kind)) == count
