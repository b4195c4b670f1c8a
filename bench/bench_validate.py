"""Benchmark of OpenLineage event validation, single thread (= per core).

Run: python bench/bench_validate.py [--copies N]

Events: the valid corpus (../shared/openlineage/corpus/valid.jsonl), copied many times with
a fresh runId and eventTime each, so no two envelopes are alike while facet bodies repeat
as they do in a real stream. Measured in one run:

- orjson.loads alone: the ceiling (validation starts by parsing);
- EventValidator.validate (bytes in, verdict out), with its caches and without;
- the reference pure-Python `jsonschema` validator (same offline schemas, core + facets) on
  a small sample.

Prints a table and, last, one JSON line with the numbers.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from lineagehouse.processors.schema_registry import builtin_schema_files
from lineagehouse.processors.validate import EventValidator

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO.parent / "shared" / "openlineage" / "corpus" / "valid.jsonl"
TARGET = 30_000  # events/s per core
CORE = "https://openlineage.io/spec/2-0-2/OpenLineage.json"


def make_events(copies: int, seed: int = 1) -> list[bytes]:
    rnd = random.Random(seed)
    base = [orjson.loads(line) for line in CORPUS.read_bytes().splitlines()]
    out = []
    for _ in range(copies):
        for event in base:
            event = dict(event)
            if isinstance(event.get("run"), dict):
                run = dict(event["run"])
                run["runId"] = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
                event["run"] = run
            event["eventTime"] = (
                f"2025-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}T"
                f"{rnd.randint(0, 23):02d}:{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}."
                f"{rnd.randrange(10**6):06d}Z"
            )
            out.append(orjson.dumps(event))
    rnd.shuffle(out)
    return out


def one_pass(fn: Callable[[bytes], Any], messages: list[bytes]) -> float:
    """events/s of one pass (results discarded, as a consumer would after using them)."""
    start = time.perf_counter()
    for message in messages:
        fn(message)
    return len(messages) / (time.perf_counter() - start)


def rates(fns: list[Callable[[bytes], Any]], messages: list[bytes], repeats: int) -> list[float]:
    """Median events/s of each function; passes interleaved, so a busy machine slows all
    of them alike and the ratios stay meaningful."""
    runs: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, runs, strict=True):
            out.append(one_pass(fn, messages))
    return [statistics.median(r) for r in runs]


def reference_validate() -> Callable[[bytes], bool]:
    """The pure-Python `jsonschema` path: core definition by shape, then each local facet."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource
    from referencing.exceptions import Unresolvable
    from referencing.jsonschema import DRAFT202012

    schemas = [json.loads(raw) for _, raw in builtin_schema_files()]
    registry = Registry().with_resources(
        (s["$id"], Resource(contents=s, specification=DRAFT202012))
        for s in schemas
        if isinstance(s, dict) and "$id" in s
    )
    validators: dict[str, Any] = {}

    def get(url: str) -> Any:
        if url not in validators:
            validators[url] = Draft202012Validator({"$ref": url}, registry=registry)
        return validators[url]

    def validate(value: bytes) -> bool:
        event = json.loads(value)
        kind = (
            "RunEvent" if "run" in event else "DatasetEvent" if "dataset" in event else "JobEvent"
        )
        ok = get(f"{CORE}#/$defs/{kind}").is_valid(event)
        groups = [(event.get("run") or {}).get("facets"), (event.get("job") or {}).get("facets")]
        for ds in (event.get("inputs") or []) + (event.get("outputs") or []):
            groups += [ds.get("facets"), ds.get("inputFacets"), ds.get("outputFacets")]
        for facets in groups:
            for key, facet in (facets or {}).items():
                url = facet.get("_schemaURL") if isinstance(facet, dict) else None
                if not isinstance(url, str) or facet.get("_deleted") is True:
                    continue
                base, _, fragment = url.partition("#")
                try:
                    registry.resolver().lookup(url if fragment else base)
                except Unresolvable:
                    continue
                ok = (
                    get(url if fragment else base).is_valid(facet if fragment else {key: facet})
                    and ok
                )
        return ok

    return validate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=100, help="copies of the corpus")
    parser.add_argument("--repeats", type=int, default=9, help="timed passes (median)")
    parser.add_argument("--reference-sample", type=int, default=250)
    args = parser.parse_args()

    messages = make_events(args.copies)
    mean_bytes = sum(map(len, messages)) / len(messages)

    started = time.perf_counter()
    validator = EventValidator()
    init_s = time.perf_counter() - started
    uncached = EventValidator(cache_size=0)
    for v in (validator, uncached):  # warm up: compile the facet schemas met in the corpus
        for message in messages[:500]:
            assert v.validate(message).accepted

    parse, ours, ours_nocache = rates(
        [orjson.loads, validator.validate, uncached.validate], messages, args.repeats
    )
    sample = messages[: args.reference_sample]
    ref_fn = reference_validate()
    ref_fn(sample[0])
    ref = one_pass(ref_fn, sample)

    rows = [
        ("orjson.loads only (ceiling)", parse, len(messages) * args.repeats),
        ("EventValidator.validate", ours, len(messages) * args.repeats),
        ("EventValidator, cache_size=0", ours_nocache, len(messages) * args.repeats),
        ("jsonschema (pure Python) reference", ref, len(sample)),
    ]
    print(
        f"events: {len(messages)} ({args.copies} copies of the {len(messages) // args.copies}"
        f" valid corpus events, fresh runId/eventTime), mean {mean_bytes:.0f} bytes;"
        f" python {platform.python_version()}, single thread; validator init {init_s:.2f} s"
    )
    header = f"{'':38} {'events/s':>10} {'us/event':>9} {'of parse':>9} {'of target':>10} {'n':>8}"
    print(header)
    print("-" * len(header))
    for name, value, n in rows:
        print(
            f"{name:38} {value:10,.0f} {1e6 / value:9.1f} {value / parse:9.2f}"
            f" {value / TARGET:10.2f} {n:8}"
        )
    print(f"target: {TARGET:,} events/s per core -> {'MET' if ours >= TARGET else 'NOT MET'}")
    print(
        json.dumps(
            {
                "bench": "validate",
                "events": len(messages),
                "mean_bytes": round(mean_bytes),
                "parse_per_s": round(parse),
                "validate_per_s": round(ours),
                "validate_nocache_per_s": round(ours_nocache),
                "jsonschema_per_s": round(ref, 1),
                "target_per_s": TARGET,
                "target_met": ours >= TARGET,
                "speedup_vs_jsonschema": round(ours / ref, 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
