"""Benchmark: encoding derived records to Avro, fastavro's writer vs the compiled encoder.

Run: python bench/bench_encode.py [--events N] [--repeat R]

Derives N benchmark events (the pipeline benchmark's shape), combines each kind's rows as
a processor batch does, then times both encoders on the same rows in the same process
(best of R) and checks that they wrote the same bytes. Prints us per event per kind and
the ratio.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from fastavro import writer

from lineagehouse.processors.avro import SYNC_MARKER, encode, parsed_schema, schema_tag
from lineagehouse.processors.events import Source
from lineagehouse.processors.ingest import process_message
from lineagehouse.processors.records import KIND_NAMES, combine
from lineagehouse.processors.validate import default_validator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_pipeline import bench_event
from tests.events import encode as event_bytes


def fastavro_container(kind: str, rows: list[dict]) -> bytes:
    buffer = io.BytesIO()
    schema = parsed_schema(schema_tag(kind))
    writer(buffer, schema, rows, sync_marker=SYNC_MARKER, sync_interval=1 << 40)
    return buffer.getvalue()


def compiled_container(kind: str, rows: list[dict]) -> bytes:
    [(container, _)] = encode(kind, rows, 1 << 40)
    return container


def best(run: Callable[[], bytes], repeat: int) -> tuple[float, bytes]:
    times, out = [], b""
    for _ in range(repeat):
        started = time.perf_counter()
        out = run()
        times.append(time.perf_counter() - started)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    n = args.events
    records: dict[str, list[dict]] = {}
    now = datetime.now(UTC)
    for i in range(n):
        source = Source("bench", 0, i, None)
        process_message(event_bytes(bench_event(i)), source, now, default_validator(), records)
    print(f"{n:,} events; us per event, best of {args.repeat}")
    print(f"{'kind':<20}{'rows/event':>12}{'fastavro':>12}{'compiled':>12}{'ratio':>8}")
    totals = [0.0, 0.0]
    for kind in KIND_NAMES:
        rows = combine(kind, records.get(kind, ()))
        if not rows:
            continue
        theirs, expected = best(partial(fastavro_container, kind, rows), args.repeat)
        ours, got = best(partial(compiled_container, kind, rows), args.repeat)
        if got != expected:
            raise SystemExit(f"{kind}: the encoders wrote different bytes")
        totals[0] += theirs
        totals[1] += ours
        print(
            f"{kind:<20}{len(rows) / n:>12.2f}{theirs / n * 1e6:>12.1f}"
            f"{ours / n * 1e6:>12.1f}{theirs / ours:>8.2f}"
        )
    print(
        f"{'all kinds':<20}{'':>12}{totals[0] / n * 1e6:>12.1f}"
        f"{totals[1] / n * 1e6:>12.1f}{totals[0] / totals[1]:>8.2f}"
    )


if __name__ == "__main__":
    main()
