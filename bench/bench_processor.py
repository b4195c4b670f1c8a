"""Benchmark: the processor's pure path step by step, each C twin against its reference.

Run: python bench/bench_processor.py [--events N] [--repeat R]

On N benchmark events (the pipeline benchmark's shape), in one process with the worker's
garbage-collector settings, the CPU time per event (best of R rounds, the two sides
alternating) of each step a processor batch runs: validation, the raw row with the event
identity, derivation, combining rows per key, Avro encoding; and of the issues stage's
decoding of the runs, edges and versions it reads. Each step with a C twin runs both
ways, checked to give the same result; the reference is the Python code (fastavro's
reader for decoding). Prints us per event and the ratio reference / C, and the whole
processor path both ways.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

from lineagehouse.gc_tuning import tune_gc
from lineagehouse.processors.avro import decode, encode
from lineagehouse.processors.derive import derive
from lineagehouse.processors.events import Source, raw_row
from lineagehouse.processors.issue_stage import Subjects
from lineagehouse.processors.records import combine
from lineagehouse.processors.validate import EventValidator
from lineagehouse.settings import load_settings

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_pipeline import bench_event
from tests.events import encode as event_bytes

NO_LIMIT = 1 << 40
BATCH = 2000  # events per container of the decoding step, as a processor batch sends them


def cpu_us(run: Callable[[], Any], events: int) -> tuple[float, Any]:
    started = time.process_time()
    out = run()
    return (time.process_time() - started) / events * 1e6, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    n = args.events
    values = [event_bytes(bench_event(i)) for i in range(n)]
    now = datetime.now(UTC)
    source = Source("bench", 0, 0, None)
    validator = EventValidator()
    verdicts = [validator.validate(value) for value in values]  # caches warm
    raws = [
        raw_row(v.event, value, source, now, custom_facets=v.custom_facets)
        for v, value in zip(verdicts, values, strict=True)
    ]

    def derive_all(native: bool) -> dict[str, list]:
        out: dict[str, list] = {}
        for verdict, raw in zip(verdicts, raws, strict=True):
            derive(verdict.event, raw["event_id"], out, verdict.custom_facets, native=native)
        return out

    records = derive_all(True)

    def combine_all(native: bool) -> dict[str, list]:
        return {kind: combine(kind, rows, native=native) for kind, rows in records.items()}

    combined = combine_all(True)

    def encode_all(native: bool) -> list:
        return [encode(kind, rows, NO_LIMIT, native=native) for kind, rows in combined.items()]

    containers = []  # what the issues stage reads: per batch of events, one per kind
    for start in range(0, n, BATCH):
        batch: dict[str, list] = {}
        for index in range(start, min(start + BATCH, n)):
            verdict = verdicts[index]
            derive(verdict.event, raws[index]["event_id"], batch, verdict.custom_facets)
        for kind in Subjects.FIELDS:
            for payload, _ in encode(kind, combine(kind, batch.get(kind, [])), NO_LIMIT):
                containers.append((kind, payload))

    def decode_all(native: bool) -> list:
        return [decode(c, kind, Subjects.FIELDS[kind], native=native) for kind, c in containers]

    def whole(native: bool) -> None:
        out: dict[str, list] = {}
        for value in values:
            verdict = validator.validate(value)
            raw = raw_row(verdict.event, value, source, now, custom_facets=verdict.custom_facets)
            out.setdefault("events_raw", []).append(raw)
            derive(verdict.event, raw["event_id"], out, verdict.custom_facets, native=native)
        for kind, rows in out.items():
            encode(kind, combine(kind, rows, native=native), NO_LIMIT, native=native)

    steps: list[tuple[str, Callable[[bool], Any] | None, Callable[[], Any] | None]] = [
        ("validate", None, lambda: [validator.validate(value) for value in values]),
        (
            "raw row and event id",
            None,
            lambda: [
                raw_row(v.event, value, source, now, custom_facets=v.custom_facets)
                for v, value in zip(verdicts, values, strict=True)
            ],
        ),
        ("derive", derive_all, None),
        ("combine", combine_all, None),
        ("encode", encode_all, None),
        ("issues stage: decode", decode_all, None),
        ("whole processor path", whole, None),
    ]
    tune_gc(load_settings().worker.batch_size)  # as the worker
    print(f"{n:,} events; CPU us per event, best of {args.repeat}")
    print(f"{'step':<26}{'reference':>11}{'c':>9}{'reference/c':>13}")
    for name, both_ways, only in steps:
        if only is not None:
            best = min(cpu_us(only, n)[0] for _ in range(args.repeat))
            print(f"{name:<26}{best:>11.1f}{'-':>9}{'-':>13}")
            continue
        assert both_ways is not None
        by_c: list[float] = []
        by_reference: list[float] = []
        for _ in range(args.repeat):
            seconds, out_c = cpu_us(partial(both_ways, True), n)
            by_c.append(seconds)
            seconds, out_reference = cpu_us(partial(both_ways, False), n)
            by_reference.append(seconds)
            if out_c != out_reference:
                raise SystemExit(f"{name}: the C twin and its reference differ")
        c, reference = min(by_c), min(by_reference)
        print(f"{name:<26}{reference:>11.1f}{c:>9.1f}{reference / c:>13.2f}")


if __name__ == "__main__":
    main()
