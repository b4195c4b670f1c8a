"""Seeded fuzz cases for the event validator: mutations of the valid corpus events.

Every case carries the verdict it must get, known from how it was made (a truncated JSON
object is not JSON, a missing required field breaks the core schema, an added custom facet
is legal, ...), never from running the validator. `fuzz_cases(seed, n)` is deterministic
for the same seed and corpus. The cases assume the validator's default `max_bytes`
(`MAX_BYTES`). Used by tests/processors/test_validate_fuzz.py and by the end-to-end fuzz
through Kafka.
"""

from __future__ import annotations

import copy
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from tests.conftest import CORPUS

MAX_BYTES = 1_000_000  # EventValidator's default max_bytes

PRODUCER = "https://github.com/lineagehouse/lineagehouse/tests/fuzz"
FACETS = "https://openlineage.io/spec/facets"
CORE = "https://openlineage.io/spec/2-0-2/OpenLineage.json"


@dataclass(frozen=True, slots=True)
class FuzzCase:
    value: bytes
    key: bytes | None
    expect_accept: bool
    how: str  # the mutation; "format:..." cases must also carry a warning


def corpus_events() -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in (CORPUS / "valid.jsonl").read_bytes().splitlines()]


Event = dict[str, Any]
Mutation = Callable[[random.Random, Event], "bytes | Event | None"]


def _kind(event: Event) -> str:
    return "run" if "run" in event else "dataset" if "dataset" in event else "job"


def _entity(event: Event) -> dict[str, Any]:
    """Where job or dataset facets go for this kind of event (as the validator sees it)."""
    return event["dataset"] if _kind(event) == "dataset" else event["job"]


def _dataset(event: Event) -> dict[str, Any]:
    """A dataset whose `facets` are checked: the DatasetEvent's, or the first output."""
    if _kind(event) == "dataset":
        return event["dataset"]
    outputs = event.setdefault("outputs", [])
    if not outputs:
        outputs.append({"namespace": "fuzz", "name": "table"})
    return outputs[0]


def _facets(owner: dict[str, Any], field: str = "facets") -> dict[str, Any]:
    facets = owner.get(field)
    if not isinstance(facets, dict):
        facets = owner[field] = {}
    return facets


def _facet(url: str, **fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": url, **fields}


# ---- mutations that keep the event valid -------------------------------------------


def unchanged(rnd: random.Random, event: Event) -> Event:
    return event


def new_identity(rnd: random.Random, event: Event) -> Event:
    if "run" in event:
        event["run"]["runId"] = str(uuid.UUID(int=rnd.getrandbits(128), version=4))
    offset = rnd.choice(["Z", "+00:00", "+02:00", "-07:30"])
    event["eventTime"] = (
        f"20{rnd.randint(20, 29)}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 28):02d}"
        f"T{rnd.randint(0, 23):02d}:{rnd.randint(0, 59):02d}:{rnd.randint(0, 59):02d}."
        f"{rnd.randrange(10**6):06d}{offset}"
    )
    return event


def custom_facet(rnd: random.Random, event: Event) -> Event:
    url = rnd.choice(
        [
            "https://example.com/schemas/FuzzRunFacet.json#/$defs/FuzzRunFacet",
            "https://github.com/apache/airflow/tree/providers-openlineage/1.14.0",
            f"{CORE}#/$defs/RunFacet",
            "https://openlineage.io/spec/facets/9-9-9/NotPublishedFacet.json",
        ]
    )
    body = _facet(url, value=rnd.random(), nested={"list": [1, "two", None], "ok": True})
    owner = event["run"] if _kind(event) == "run" else _entity(event)
    _facets(owner)[rnd.choice(["fuzz_custom", "spark.logicalPlan", "vendor-x"])] = body
    return event


def valid_standard_facet(rnd: random.Random, event: Event) -> Event:
    if _kind(event) != "dataset":
        _facets(event["job"])["sql"] = _facet(
            f"{FACETS}/1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet", query="SELECT 1"
        )
    else:
        _facets(event["dataset"])["documentation"] = _facet(
            f"{FACETS}/1-1-0/DocumentationDatasetFacet.json#/$defs/DocumentationDatasetFacet",
            description="fuzz",
        )
    return event


def deletion_marker(rnd: random.Random, event: Event) -> Event:
    # Without `description` this would fail DocumentationJobFacet; as a marker it is fine.
    url = f"{FACETS}/1-1-0/DocumentationJobFacet.json#/$defs/DocumentationJobFacet"
    if _kind(event) != "dataset":
        _facets(event["job"])["documentation"] = _facet(url, _deleted=True)
    else:
        url = url.replace("Job", "Dataset")
        _facets(event["dataset"])["documentation"] = _facet(url, _deleted=True)
    return event


def old_facet_version(rnd: random.Random, event: Event) -> Event:
    # Nested `fields` is not in SchemaDatasetFacet 1-0-0, so anything goes there.
    body = _facet(
        f"{FACETS}/1-0-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
        fields=[{"name": "a", "type": "INT", "fields": "not checked by 1-0-0"}],
    )
    _facets(_dataset(event))["schema"] = body
    return event


def format_only(rnd: random.Random, event: Event) -> Event:
    choice = rnd.randrange(3 if _kind(event) == "run" else 2)
    if choice == 0:
        event["producer"] = "not a uri"
    elif choice == 1:
        event["eventTime"] = "2024-05-01T10:00:00"  # no time zone: parses, not RFC 3339
    else:
        event["run"]["runId"] = "not-a-uuid"
    return event


def large_below_limit(rnd: random.Random, event: Event) -> Event:
    size = rnd.randint(50_000, MAX_BYTES - 50_000)
    _facets(_entity(event))["fuzz_large"] = _facet(
        "https://example.com/Large.json", blob="x" * size
    )
    return event


# ---- mutations that make the message invalid ---------------------------------------


def truncated(rnd: random.Random, event: Event) -> bytes:
    raw = orjson.dumps(event)
    return raw[: rnd.randrange(0, len(raw) - 1)]  # a strict prefix of an object is not JSON


def _required_fields(event: Event) -> list[tuple[str, ...]]:
    fields = [("eventTime",), ("producer",), ("schemaURL",)]
    if _kind(event) == "run":
        fields += [("run", "runId"), ("job", "name"), ("job", "namespace"), ("job",)]
    elif _kind(event) == "dataset":
        fields += [("dataset", "name"), ("dataset", "namespace")]
    else:
        fields += [("job", "name"), ("job", "namespace")]
    return fields


def removed_required(rnd: random.Random, event: Event) -> Event:
    *parents, last = rnd.choice(_required_fields(event))
    owner = event
    for part in parents:
        owner = owner[part]
    del owner[last]
    return event


def type_swap(rnd: random.Random, event: Event) -> Event:
    *parents, last = rnd.choice(_required_fields(event))
    owner = event
    for part in parents:
        owner = owner[part]
    if last == "job":
        owner[last] = "a string, not an object"
    else:  # every required leaf is a string in the core schema
        owner[last] = rnd.choice([42, 4.5, None, True, ["x"], {"x": 1}])
    return event


def bad_event_type(rnd: random.Random, event: Event) -> Event | None:
    if "run" not in event:
        return None
    event["eventType"] = rnd.choice(["DONE", "start", 3])
    return event


def bad_event_time(rnd: random.Random, event: Event) -> Event:
    event["eventTime"] = rnd.choice(["yesterday", "2024-13-45T99:00:00Z", "", "12:00"])
    return event


def facet_without_producer(rnd: random.Random, event: Event) -> Event:
    _facets(_entity(event))["fuzz_custom"] = {"_schemaURL": "https://example.com/Custom.json"}
    return event


def invalid_facet_body(rnd: random.Random, event: Event) -> Event | None:
    """A standard facet whose body breaks its own schema (checked against that schema)."""
    choice = rnd.randrange(5)
    if choice == 0 and "run" in event:
        _facets(event["run"])["parent"] = _facet(
            f"{FACETS}/1-1-0/ParentRunFacet.json#/$defs/ParentRunFacet",
            run={"runId": 5},
            job={"namespace": "n", "name": "j"},
        )
    elif choice == 1 and _kind(event) != "dataset":
        _facets(event["job"])["sql"] = _facet(
            f"{FACETS}/1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet", query=42
        )
    elif choice == 2 and _kind(event) != "dataset":
        _facets(event["job"])["jobType"] = _facet(
            f"{FACETS}/2-0-3/JobTypeJobFacet.json#/$defs/JobTypeJobFacet", jobType="QUERY"
        )  # processingType and integration are required
    elif choice == 3 and "run" in event:
        _facets(event["run"])["nominalTime"] = _facet(
            f"{FACETS}/1-0-1/NominalTimeRunFacet.json#/$defs/NominalTimeRunFacet",
            nominalEndTime="2024-05-01T10:00:00Z",
        )  # nominalStartTime is required
    elif choice == 4:
        body = _facet(
            f"{FACETS}/1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
            fields=[{"name": "a", "fields": "must be an array in 1-1-1"}],
        )
        _facets(_dataset(event))["schema"] = body
    else:
        return None
    return event


def random_bytes(rnd: random.Random, event: Event) -> bytes:
    # The first byte is never "{" or whitespace, so this can never be a JSON object.
    first = rnd.choice([b"\xff", b"\x80", b"[", b"x", b"\x00", b"1"])
    return first + rnd.randbytes(rnd.randrange(0, 200))


def not_utf8(rnd: random.Random, event: Event) -> bytes:
    raw = orjson.dumps(event)
    cut = raw.index(b'"producer":"') + len(b'"producer":"')
    return raw[:cut] + rnd.choice([b"\xff", b"\xc3\x28", b"\xed\xa0\x80"]) + raw[cut:]


def not_an_object(rnd: random.Random, event: Event) -> bytes:
    return rnd.choice([b"[]", b"[" + orjson.dumps(event) + b"]", b'"event"', b"42", b"null"])


def over_limit(rnd: random.Random, event: Event) -> bytes:
    raw = orjson.dumps(event)
    # Trailing whitespace keeps it JSON; only its size is wrong.
    return raw + b" " * (MAX_BYTES + 1 - len(raw) + rnd.randrange(1000))


ACCEPT: list[tuple[Mutation, int]] = [
    (unchanged, 8),
    (new_identity, 12),
    (custom_facet, 10),
    (valid_standard_facet, 5),
    (deletion_marker, 5),
    (old_facet_version, 4),
    (format_only, 6),
    (large_below_limit, 1),
]
REJECT: list[tuple[Mutation, int]] = [
    (truncated, 8),
    (removed_required, 8),
    (type_swap, 8),
    (bad_event_type, 3),
    (bad_event_time, 3),
    (facet_without_producer, 3),
    (invalid_facet_body, 8),
    (random_bytes, 4),
    (not_utf8, 2),
    (not_an_object, 2),
    (over_limit, 1),
]


def _key(rnd: random.Random, event: Event) -> bytes | None:
    choice = rnd.randrange(3)
    if choice == 0:
        return None
    if choice == 1 and isinstance(event.get("run"), dict):
        return str(event["run"].get("runId", "")).encode()
    return rnd.randbytes(rnd.randrange(1, 24))


def fuzz_cases(seed: int, n: int) -> list[FuzzCase]:
    """`n` cases, about half to accept and half to reject, deterministic for `seed`."""
    rnd = random.Random(seed)
    events = corpus_events()
    cases: list[FuzzCase] = []
    while len(cases) < n:
        accept = rnd.random() < 0.5
        table = ACCEPT if accept else REJECT
        mutation = rnd.choices([m for m, _ in table], weights=[w for _, w in table])[0]
        event = copy.deepcopy(rnd.choice(events))
        made = mutation(rnd, event)
        if made is None:
            continue  # the mutation does not apply to this kind of event
        value = made if isinstance(made, bytes) else orjson.dumps(made)
        key_source = made if isinstance(made, dict) else event
        cases.append(FuzzCase(value, _key(rnd, key_source), accept, mutation.__name__))
    return cases
