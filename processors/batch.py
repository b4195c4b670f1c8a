"""Pure: the derived records of one processor batch, folded in as they are derived.

The processor derives a batch (up to `worker.batch_size` events, 2,000 by default) in
chunks of `CHUNK_EVENTS` events, and folds each chunk's records into a `BatchRecords`
at once:

- records of a kind without a key (one row per event: `events_raw`, `facets`,
  `dead_letters`) are encoded to Avro right away;
- records of a keyed kind are folded into the batch's rows of their kind
  (`records.Combiner`), as `records.combine` would combine them all at once.

So a batch sends exactly the rows that combining all of its records at once would send,
in the same order (the tests compare them). What changes is where the work happens: a
chunk's parsed events and records are made, encoded and freed while they are still in
the CPU's caches, where 2,000 events' records, built first and encoded at the end, were
not (BENCHMARKS.md, session 17).

Imports nothing from faust, Kafka or ClickHouse.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from lineagehouse.processors.avro import containers, encode_rows, schema_tag
from lineagehouse.processors.derive import Record, Records
from lineagehouse.processors.records import BY_NAME, Combiner

CHUNK_EVENTS = 250  # events derived before their records are folded in

# A keyed kind's rows of the whole batch -> the rows to send (the processor leaves out
# content it has sent before).
RowFilter = Callable[[str, list[Record]], list[Record]]


def _all_rows(kind: str, rows: list[Record]) -> list[Record]:
    return rows


class BatchRecords:
    """Per input partition and kind: the Avro encodings of an unkeyed kind's rows, or a
    keyed kind's rows combined so far. Kinds keep the order they first came in."""

    def __init__(self) -> None:
        self._by_partition: dict[int, dict[str, list[bytes] | Combiner]] = {}

    def add(self, partition: int, records: Records) -> None:
        """Fold in the records one chunk derived for one input partition."""
        kinds = self._by_partition.get(partition)
        if kinds is None:
            kinds = self._by_partition[partition] = {}
        for kind, rows in records.items():
            if not rows:
                continue
            held = kinds.get(kind)
            if held is None:
                held = kinds[kind] = Combiner(kind) if BY_NAME[kind].key else []
            if isinstance(held, Combiner):
                held.add(rows)
            else:
                held.extend(encode_rows(schema_tag(kind), rows))

    def containers(
        self, max_message_bytes: int, keep: RowFilter = _all_rows
    ) -> Iterator[tuple[int, str, bytes, int]]:
        """(input partition, kind, Avro container, rows in it) of everything the batch
        sends, per partition and kind in order; a keyed kind's rows, combined over the
        whole batch, passed through `keep` first."""
        for partition, kinds in self._by_partition.items():
            for kind, held in kinds.items():
                tag = schema_tag(kind)
                if isinstance(held, Combiner):
                    rows = keep(kind, held.rows())
                    encoded = encode_rows(tag, rows) if rows else []
                else:
                    encoded = held
                for payload, count in containers(tag, encoded, max_message_bytes):
                    yield partition, kind, payload, count
