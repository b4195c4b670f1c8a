"""Benchmark: encoding derived records to Avro, fastavro's writer vs our two encoders.

Run: python bench/bench_encode.py [--events N] [--repeat R]

Derives N benchmark events (the pipeline benchmark's shape), combines each kind's rows as
a processor batch does, then times fastavro's writer, our Python encoder and our C
encoder (what the processor uses) on the same rows in the same process (best of R), and
checks that all three wrote the same bytes. Prints us per event per kind and the ratios
of fastavro and the Python encoder to the C one.
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


def our_container(kind: str, rows: list[dict], native: bool) -> bytes:
    [(container, _)] = encode(kind, rows, 1 << 40, native=native)
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
    print(
        f"{'kind':<20}{'rows/event':>12}{'fastavro':>10}{'python':>10}{'c':>10}"
        f"{'fastavro/c':>12}{'python/c':>10}"
    )
    totals = [0.0, 0.0, 0.0]
    for kind in KIND_NAMES:
        rows = combine(kind, records.get(kind, ()))
        if not rows:
            continue
        fastavro, expected = best(partial(fastavro_container, kind, rows), args.repeat)
        python, by_python = best(partial(our_container, kind, rows, False), args.repeat)
        c, by_c = best(partial(our_container, kind, rows, True), args.repeat)
        if not expected == by_python == by_c:
            raise SystemExit(f"{kind}: the encoders wrote different bytes")
        for index, seconds in enumerate((fastavro, python, c)):
            totals[index] += seconds
        print(
            f"{kind:<20}{len(rows) / n:>12.2f}{fastavro / n * 1e6:>10.1f}"
            f"{python / n * 1e6:>10.1f}{c / n * 1e6:>10.1f}{fastavro / c:>12.2f}{python / c:>10.2f}"
        )
    fastavro, python, c = totals
    print(
        f"{'all kinds':<20}{'':>12}{fastavro / n * 1e6:>10.1f}{python / n * 1e6:>10.1f}"
        f"{c / n * 1e6:>10.1f}{fastavro / c:>12.2f}{python / c:>10.2f}"
    )


if __name__ == "__main__":
    main()
