"""Differential test: our validator against the reference `jsonschema` package.

The reference is built independently, the slow and obvious way: the pure-Python
`jsonschema` validator with a `referencing.Registry` holding every shipped schema under
its `$id` (nothing is fetched: unknown URIs are unresolvable), and the same policy, written
out again here: the current core's definition chosen by shape, formats not asserted,
eventTime parseable by `datetime.fromisoformat`, deletion markers skip their facet schema,
facets checked against the schema their `_schemaURL` names when it is local.
Both must give the same accept/reject verdict (and mark the same facets custom).
"""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from importlib import resources
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from lineagehouse.processors.validate import EventValidator
from tests.conftest import CORPUS
from tests.fuzz_cases import MAX_BYTES, fuzz_cases

CORE = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
KINDS = {"run": "RunEvent", "dataset": "DatasetEvent", "job": "JobEvent"}
BASE_DEFS = {"BaseFacet", "RunFacet", "JobFacet", "DatasetFacet", "InputDatasetFacet"}
BASE_DEFS |= {"OutputDatasetFacet"}


def _schema_files() -> list[dict[str, Any]]:
    out = []

    def walk(node: Any) -> None:
        for child in node.iterdir():
            if child.is_dir():
                walk(child)
            elif child.name.endswith(".json"):
                out.append(json.loads(child.read_bytes()))

    walk(resources.files("lineagehouse.schemas").joinpath("openlineage"))
    return out


@cache
def registry() -> Registry:
    schemas = {s["$id"]: s for s in _schema_files() if isinstance(s, dict) and "$id" in s}
    return Registry().with_resources(
        (sid, Resource(contents=s, specification=DRAFT202012)) for sid, s in schemas.items()
    )


@cache
def reference_validator(url: str) -> Draft202012Validator:
    return Draft202012Validator({"$ref": url}, registry=registry())


def reference(value: bytes) -> tuple[bool, set[str]]:
    """(accepted, custom facet locations) by the reference."""
    if len(value) > MAX_BYTES:
        return False, set()
    try:
        event = json.loads(value.decode("utf-8"), parse_constant=_no_constants)
    except (UnicodeDecodeError, ValueError):
        return False, set()
    if not isinstance(event, dict):
        return False, set()
    kind = "run" if "run" in event else "dataset" if "dataset" in event else ""
    kind = kind or ("job" if "job" in event else "")
    if not kind:
        return False, set()
    ok = reference_validator(f"{CORE}#/$defs/{KINDS[kind]}").is_valid(event)
    if ok and kind == "dataset" and "job" in event:
        ok = not reference_validator(f"{CORE}#/$defs/JobEvent").is_valid(event)
    if isinstance(event.get("eventTime"), str):
        try:
            datetime.fromisoformat(event["eventTime"])
        except ValueError:
            ok = False
    custom = set()
    for where, key, facet, deletable in _facets(event, kind):
        if not isinstance(facet, dict) or not isinstance(facet.get("_schemaURL"), str):
            continue
        if deletable and facet.get("_deleted") is True:
            continue
        url = facet["_schemaURL"]
        base, _, fragment = url.partition("#")
        try:
            registry().resolver().lookup(url if fragment else base)
        except Unresolvable:
            custom.add(where)
            continue
        name = fragment.rsplit("/", 1)[-1]
        if fragment and base.endswith("/OpenLineage.json") and name in BASE_DEFS:
            custom.add(where)
        instance = facet if fragment else {key: facet}
        if not reference_validator(url if fragment else base).is_valid(instance):
            ok = False
    return ok, custom


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _facets(event: dict[str, Any], kind: str):
    def group(owner: Any, where: str, field: str, deletable: bool):
        facets = owner.get(field) if isinstance(owner, dict) else None
        if isinstance(facets, dict):
            for key, facet in facets.items():
                yield f"{where}.{field}.{key}", key, facet, deletable

    if kind == "dataset":
        yield from group(event.get("dataset"), "dataset", "facets", True)
        return
    if kind == "run":
        yield from group(event.get("run"), "run", "facets", False)
    yield from group(event.get("job"), "job", "facets", True)
    for side, extra in (("inputs", "inputFacets"), ("outputs", "outputFacets")):
        datasets = event.get(side)
        for i, dataset in enumerate(datasets if isinstance(datasets, list) else []):
            yield from group(dataset, f"{side}[{i}]", "facets", True)
            yield from group(dataset, f"{side}[{i}]", extra, False)


def _ours(validator: EventValidator, value: bytes) -> tuple[bool, set[str]]:
    verdict = validator.validate(value)
    custom = set()
    for path in verdict.custom_facets:  # "$.run.facets['spark.x']" -> "run.facets.spark.x"
        custom.add(path[2:].replace("['", ".").replace("']", "").replace("\\'", "'"))
    return verdict.accepted, custom


@pytest.fixture(scope="module")
def validator() -> EventValidator:
    return EventValidator(max_bytes=MAX_BYTES)


@pytest.mark.parametrize("name", ["valid", "invalid"])
def test_corpus_agrees_with_reference(validator: EventValidator, name: str) -> None:
    lines = (CORPUS / f"{name}.jsonl").read_bytes().splitlines()
    for n, line in enumerate(lines, 1):
        assert _ours(validator, line) == reference(line), f"{name}.jsonl line {n}"
    assert {reference(line)[0] for line in lines} == {name == "valid"}


@pytest.mark.parametrize("seed", [11, 12])
def test_fuzz_cases_agree_with_reference(validator: EventValidator, seed: int) -> None:
    cases = fuzz_cases(seed, 600)
    disagree = [
        (case.how, case.value[:200])
        for case in cases
        if _ours(validator, case.value) != reference(case.value)
    ]
    assert not disagree, disagree[:5]
    # The reference, too, gives every case the verdict it was made to get.
    assert all(reference(case.value)[0] == case.expect_accept for case in cases)
