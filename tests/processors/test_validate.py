"""The pure event validator, called directly (no Kafka, no ClickHouse)."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import orjson
import pytest

from lineagehouse.processors.schema_registry import SchemaConfigError
from lineagehouse.processors.validate import (
    MAX_PROBLEMS,
    EventValidator,
    Verdict,
    default_validator,
    json_path,
)
from tests.conftest import CORPUS, REPO
from tests.events import encode, lineage_event
from tests.fuzz_cases import fuzz_cases

SPEC = CORPUS.parent / "spec"
FACETS = "https://openlineage.io/spec/facets"
PRODUCER = "https://github.com/lineagehouse/lineagehouse/tests"
VALID = (CORPUS / "valid.jsonl").read_bytes().splitlines()
INVALID = (CORPUS / "invalid.jsonl").read_bytes().splitlines()


@pytest.fixture(scope="module")
def validator() -> EventValidator:
    return EventValidator()


def run_event(**facets: Any) -> dict[str, Any]:
    return {
        "eventType": "COMPLETE",
        "eventTime": "2024-05-01T10:00:00.000Z",
        "run": {"runId": "0190e3a1-6a6e-7b5c-9d1e-3b7f2c8a9e10", "facets": facets},
        "job": {"namespace": "tests", "name": "job"},
        "inputs": [],
        "outputs": [],
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent",
    }


def facet(url: str, **fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": url, **fields}


def check(validator: EventValidator, event: Any) -> Verdict:
    return validator.validate(orjson.dumps(event))


def paths(problems: tuple) -> list[str]:
    return [p.path for p in problems]


# ---- the corpus ----------------------------------------------------------------------


@pytest.mark.parametrize("line", range(len(VALID)))
def test_valid_corpus_accepted(validator: EventValidator, line: int) -> None:
    verdict = validator.validate(VALID[line])
    assert verdict.accepted, verdict.errors
    assert verdict.event == orjson.loads(VALID[line])  # kept as it came, custom facets too
    assert verdict.kind in {"run", "dataset", "job"}


@pytest.mark.parametrize("line", range(len(INVALID)))
def test_invalid_corpus_rejected_with_reasons(validator: EventValidator, line: int) -> None:
    verdict = validator.validate(INVALID[line])
    assert not verdict.accepted
    for problem in verdict.errors:
        assert problem.path.startswith("$") and problem.message


def test_invalid_corpus_reasons_name_the_spot(validator: EventValidator) -> None:
    expected = (CORPUS / "invalid.errors.txt").read_text().splitlines()
    for raw, reference in zip(INVALID, expected, strict=True):
        got = paths(validator.validate(raw).errors)
        if "'schemaURL' is a required property" in reference:
            assert "$.schemaURL" in got
        if "jobType/_deleted: None is not of type 'boolean'" in reference:
            assert "$.job.facets.jobType._deleted" in got
        if "'columnMetrics' is a required property" in reference:
            assert "$.inputs[0].inputFacets.dataQualityMetrics.columnMetrics" in got
        if "rowCount: 'wrong' is not of type 'integer'" in reference:
            assert "$.outputs[0].outputFacets.outputStatistics.rowCount" in got


def test_corpus_format_problems_are_warnings(validator: EventValidator) -> None:
    metas = [json.loads(line) for line in (CORPUS / "valid.meta.jsonl").read_text().splitlines()]
    for raw, meta in zip(VALID, metas, strict=True):
        verdict = validator.validate(raw)
        assert verdict.accepted
        assert len(verdict.warnings) == len(meta["format_errors"]), (meta, verdict.warnings)


def test_corpus_kinds_and_versions(validator: EventValidator) -> None:
    verdicts = [validator.validate(raw) for raw in VALID]
    assert {v.kind for v in verdicts} == {"run", "dataset", "job"}
    versions = {v.core_version for v in verdicts}
    assert {"2-0-2", "2-0-0", "1-0-5", None} <= versions


# ---- the spec's facet test instances ---------------------------------------------------


def _place(event: dict[str, Any], key: str, body: dict[str, Any]) -> str:
    url = body.get("_schemaURL", "")
    name = url.rsplit("/", 1)[-1]
    if "Input" in name:
        event["inputs"] = [{"namespace": "n", "name": "in", "inputFacets": {key: body}}]
        return f"$.inputs[0].inputFacets.{key}"
    if "Output" in name:
        event["outputs"] = [{"namespace": "n", "name": "out", "outputFacets": {key: body}}]
        return f"$.outputs[0].outputFacets.{key}"
    if "RunFacet" in name:
        event["run"]["facets"][key] = body
        return f"$.run.facets.{key}"
    if "JobFacet" in name:
        event["job"]["facets"] = {key: body}
        return f"$.job.facets.{key}"
    event["inputs"] = [{"namespace": "n", "name": "in", "facets": {key: body}}]
    return f"$.inputs[0].facets.{key}"


SPEC_FACET_FILES = sorted(p for p in (SPEC / "tests").glob("*/*.json"))
# The published ProcessingEngineRunFacet 1-0-0 requires "engine_version", a field it does
# not define; the spec's own instance (which names 1-0-0) lacks it.
PUBLISHED_SCHEMA_BUGS = {"ProcessingEngineRunFacet/1.json"}


def _current(path: Path, body: dict[str, Any]) -> dict[str, Any]:
    """The instance pointed at the current schema of its facet, as the spec's tests use it."""
    current = json.loads((SPEC / "facets" / f"{path.parent.name}.json").read_text())["$id"]
    _, _, fragment = str(body.get("_schemaURL", "")).partition("#/$defs/")
    if (
        fragment
        and fragment
        in json.loads((SPEC / "facets" / f"{path.parent.name}.json").read_text())["$defs"]
    ):
        return {**body, "_schemaURL": f"{current}#/$defs/{fragment}"}
    return {**body, "_schemaURL": current}


@pytest.mark.parametrize("path", SPEC_FACET_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_spec_facet_instances_validate(validator: EventValidator, path: Path) -> None:
    for key, body in json.loads(path.read_text()).items():
        event = run_event()
        where = _place(event, key, _current(path, body))
        verdict = check(validator, event)
        assert verdict.accepted, (where, verdict.errors)
        assert where not in verdict.custom_facets  # really checked against the facet schema
        assert not [w for w in verdict.warnings if w.path.startswith(where)], verdict.warnings


@pytest.mark.parametrize("path", SPEC_FACET_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_spec_facet_instances_by_their_own_schema_url(
    validator: EventValidator, path: Path
) -> None:
    name = f"{path.parent.name}/{path.name}"
    for key, body in json.loads(path.read_text()).items():
        event = run_event()
        where = _place(event, key, body)
        verdict = check(validator, event)
        assert verdict.accepted == (name not in PUBLISHED_SCHEMA_BUGS), (where, verdict.errors)


def test_spec_facet_instances_checked_against_their_schema(validator: EventValidator) -> None:
    """Not vacuous: breaking a test instance's required field is caught."""
    body = json.loads((SPEC / "tests/SQLJobFacet/1.json").read_text())["sql"]
    del body["query"]
    event = run_event()
    event["job"]["facets"] = {"sql": body}
    assert paths(check(validator, event).errors) == ["$.job.facets.sql.query"]


def test_spec_full_example_event(validator: EventValidator) -> None:
    verdict = validator.validate((SPEC / "tests/example_full_event.json").read_bytes())
    assert verdict.accepted, verdict.errors


# ---- reasons -------------------------------------------------------------------------


def test_required_field_path_points_at_the_missing_field(validator: EventValidator) -> None:
    parent = facet(
        f"{FACETS}/1-1-0/ParentRunFacet.json#/$defs/ParentRunFacet",
        run={"runId": "0190e3a1-6a6e-7b5c-9d1e-3b7f2c8a9e10"},
        job={"namespace": "n"},
    )
    verdict = check(validator, run_event(parent=parent))
    assert verdict.errors[0].path == "$.run.facets.parent.job.name"
    assert "name" in verdict.errors[0].message


def test_all_errors_reported_across_envelope_and_facets(validator: EventValidator) -> None:
    event = run_event(
        nominalTime=facet(f"{FACETS}/1-0-1/NominalTimeRunFacet.json#/$defs/NominalTimeRunFacet")
    )
    event["run"]["runId"] = 42
    del event["producer"]
    event["job"]["facets"] = {
        "sql": facet(f"{FACETS}/1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet", query=1)
    }
    got = set(paths(check(validator, event).errors))
    assert got == {
        "$.producer",
        "$.run.runId",
        "$.run.facets.nominalTime.nominalStartTime",
        "$.job.facets.sql.query",
    }


def test_errors_are_bounded_with_a_count(validator: EventValidator) -> None:
    fields = [{"name": i} for i in range(MAX_PROBLEMS + 15)]  # name must be a string
    body = facet(f"{FACETS}/1-1-1/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet")
    event = run_event()
    event["outputs"] = [
        {"namespace": "n", "name": "t", "facets": {"schema": {**body, "fields": fields}}}
    ]
    verdict = check(validator, event)
    assert len(verdict.errors) == MAX_PROBLEMS + 1
    assert verdict.errors[-1] == verdict.errors[-1].__class__("$", "15 more errors not shown")


def test_json_path_quotes_odd_keys() -> None:
    assert json_path(("run", "facets", "spark.logicalPlan")) == "$.run.facets['spark.logicalPlan']"
    assert json_path(("inputs", 0, "facets", "it's")) == "$.inputs[0].facets['it\\'s']"
    assert json_path(()) == "$"


# ---- deletion markers --------------------------------------------------------------


DOC_JOB = f"{FACETS}/1-1-0/DocumentationJobFacet.json#/$defs/DocumentationJobFacet"
DOC_DATASET = f"{FACETS}/1-1-0/DocumentationDatasetFacet.json#/$defs/DocumentationDatasetFacet"


def test_deletion_markers_are_valid(validator: EventValidator) -> None:
    event = run_event()
    event["job"]["facets"] = {"documentation": facet(DOC_JOB, _deleted=True)}
    event["inputs"] = [
        {
            "namespace": "n",
            "name": "t",
            "facets": {"documentation": facet(DOC_DATASET, _deleted=True)},
        }
    ]
    verdict = check(validator, event)
    assert verdict.accepted, verdict.errors
    assert verdict.custom_facets == ()


def test_not_a_deletion_marker_is_validated(validator: EventValidator) -> None:
    for deleted in (False, None, "true"):
        event = run_event()
        event["job"]["facets"] = {"documentation": facet(DOC_JOB, _deleted=deleted)}
        assert "$.job.facets.documentation.description" in paths(check(validator, event).errors)


def test_deletion_marker_still_needs_base_fields(validator: EventValidator) -> None:
    event = run_event()
    event["job"]["facets"] = {"documentation": {"_deleted": True}}
    got = paths(check(validator, event).errors)
    assert got == ["$.job.facets.documentation._producer", "$.job.facets.documentation._schemaURL"]


def test_run_facets_cannot_be_deleted(validator: EventValidator) -> None:
    nominal = facet(
        f"{FACETS}/1-0-1/NominalTimeRunFacet.json#/$defs/NominalTimeRunFacet", _deleted=True
    )
    verdict = check(validator, run_event(nominalTime=nominal))
    assert paths(verdict.errors) == ["$.run.facets.nominalTime.nominalStartTime"]


# ---- custom facets ---------------------------------------------------------------------


def test_custom_facets_kept_and_marked(validator: EventValidator) -> None:
    event = run_event(
        **{
            "spark.logicalPlan": facet("https://example.com/Plan.json", plan=[{"x": 1}]),
            "airflow": facet("https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunFacet"),
            "moved": facet("https://openlineage.io/spec/facets/9-9-9/Gone.json"),
            "badPointer": facet(
                "https://openlineage.io/spec/1-0-1/OpenLineage.json#/definitions/RunFacet"
            ),
            "nominalTime": facet(
                f"{FACETS}/1-0-1/NominalTimeRunFacet.json#/$defs/NominalTimeRunFacet",
                nominalStartTime="2024-05-01T00:00:00Z",
            ),
        }
    )
    verdict = check(validator, event)
    assert verdict.accepted, verdict.errors
    assert set(verdict.custom_facets) == {
        "$.run.facets['spark.logicalPlan']",
        "$.run.facets.airflow",
        "$.run.facets.moved",
        "$.run.facets.badPointer",
    }
    assert verdict.event == event


def test_custom_facet_base_fields_still_checked(validator: EventValidator) -> None:
    verdict = check(validator, run_event(custom={"_schemaURL": "https://example.com/C.json"}))
    assert paths(verdict.errors) == ["$.run.facets.custom._producer"]


# ---- formats -----------------------------------------------------------------------------


def test_format_problems_are_warnings(validator: EventValidator) -> None:
    event = run_event()
    event["run"]["runId"] = "run_id"
    event["producer"] = "prod"
    event["eventTime"] = "2021-11-03T10:53:52.427343"  # no zone: not RFC 3339, still ISO 8601
    event["inputs"] = [
        {
            "namespace": "n",
            "name": "t",
            "facets": {
                "dataSource": facet(
                    f"{FACETS}/1-0-1/DatasourceDatasetFacet.json#/$defs/DatasourceDatasetFacet",
                    uri="file",
                )
            },
        }
    ]
    verdict = check(validator, event)
    assert verdict.accepted, verdict.errors
    assert set(paths(verdict.warnings)) == {
        "$.run.runId",
        "$.producer",
        "$.eventTime",
        "$.inputs[0].facets.dataSource.uri",
    }


@pytest.mark.parametrize("value", ["yesterday", "2024-13-01T00:00:00Z", "", "10:00"])
def test_unparseable_event_time_is_an_error(validator: EventValidator, value: str) -> None:
    event = run_event()
    event["eventTime"] = value
    verdict = check(validator, event)
    assert "$.eventTime" in paths(verdict.errors)


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:00:00-05:00"])
def test_an_event_time_out_of_range_in_utc_is_an_error(
    validator: EventValidator, value: str
) -> None:
    # fromisoformat parses these; only their conversion to UTC fails
    event = run_event()
    event["eventTime"] = value
    verdict = check(validator, event)
    assert [p.message for p in verdict.errors if p.path == "$.eventTime"] == [
        f"{value!r} is out of range in UTC"
    ]


# ---- event kinds ---------------------------------------------------------------------------


def dataset_event() -> dict[str, Any]:
    return {
        "eventTime": "2024-05-01T10:00:00Z",
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
        "dataset": {"namespace": "n", "name": "t", "facets": {}},
    }


def job_event() -> dict[str, Any]:
    return {
        "eventTime": "2024-05-01T10:00:00Z",
        "producer": PRODUCER,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/JobEvent",
        "job": {"namespace": "n", "name": "j"},
        "inputs": [{"namespace": "n", "name": "a"}],
        "outputs": [],
    }


def test_dataset_event(validator: EventValidator) -> None:
    event = dataset_event()
    event["dataset"]["facets"]["documentation"] = facet(DOC_DATASET, description="d")
    verdict = check(validator, event)
    assert (verdict.accepted, verdict.kind) == (True, "dataset")
    event["dataset"]["facets"]["documentation"] = facet(DOC_DATASET)
    assert paths(check(validator, event).errors) == ["$.dataset.facets.documentation.description"]
    del event["dataset"]["name"]
    assert "$.dataset.name" in paths(check(validator, event).errors)


def test_job_event(validator: EventValidator) -> None:
    event = job_event()
    verdict = check(validator, event)
    assert (verdict.accepted, verdict.kind, verdict.core_version) == (True, "job", "2-0-2")
    event["job"]["facets"] = {"sql": facet(f"{FACETS}/1-1-0/SQLJobFacet.json#/$defs/SQLJobFacet")}
    assert paths(check(validator, event).errors) == ["$.job.facets.sql.query"]


def test_dataset_and_job_together_is_ambiguous(validator: EventValidator) -> None:
    event = {**dataset_event(), "job": {"namespace": "n", "name": "j"}}
    verdict = check(validator, event)
    assert not verdict.accepted and verdict.errors[0].path == "$"


def test_not_an_event(validator: EventValidator) -> None:
    verdict = check(validator, {"eventTime": "2024-05-01T10:00:00Z", "producer": PRODUCER})
    assert (verdict.accepted, verdict.kind) == (False, "")
    assert "not an OpenLineage event" in verdict.errors[0].message


def test_core_version_recorded_not_trusted(validator: EventValidator) -> None:
    event = run_event()
    event["schemaURL"] = "https://openlineage.io/spec/1-0-5/OpenLineage.json#/definitions/RunEvent"
    verdict = check(validator, event)
    assert (verdict.accepted, verdict.core_version) == (True, "1-0-5")
    event["schemaURL"] = "schema"
    verdict = check(validator, event)
    assert (verdict.accepted, verdict.core_version) == (True, None)
    assert paths(verdict.warnings) == ["$.schemaURL"]


# ---- bytes-level rejections ----------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"eventTime": "\xc3\x28"}', "not UTF-8"),
        (b'{"eventTime": ', "not JSON"),
        (b"", "not JSON: the message is empty"),
        (b"NaN", "not JSON"),
        (b"[1, 2]", "not a JSON object: the message is a JSON array"),
        (b'"x"', "not a JSON object: the message is a JSON string"),
        (b"null", "not a JSON object: the message is a JSON null"),
    ],
)
def test_bytes_level_rejections(validator: EventValidator, value: bytes, reason: str) -> None:
    verdict = validator.validate(value)
    assert not verdict.accepted and verdict.event is None and verdict.kind == ""
    assert verdict.errors[0].path == "$"
    assert verdict.errors[0].message.startswith(reason), verdict.errors


def test_size_limit() -> None:
    small = EventValidator(max_bytes=len(VALID[0]))
    assert small.validate(VALID[0]).accepted
    verdict = small.validate(VALID[0] + b" ")
    assert not verdict.accepted and verdict.event is None
    assert verdict.errors[0].message == (
        f"message is {len(VALID[0]) + 1} bytes, over the limit of {len(VALID[0])} bytes"
    )


def test_large_event_below_limit_accepted(validator: EventValidator) -> None:
    event = run_event(blob=facet("https://example.com/Blob.json", data="x" * 900_000))
    assert check(validator, event).accepted


# ---- extra schema directories ----------------------------------------------------------


CUSTOM_ID = "https://schemas.example.com/facets/1-0-0/AcmeRunFacet.json"


def write_custom_schema(directory: Path) -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": CUSTOM_ID,
        "$defs": {
            "AcmeRunFacet": {
                "allOf": [
                    {"$ref": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunFacet"},
                    {
                        "type": "object",
                        "properties": {"cost": {"type": "number", "minimum": 0}},
                        "required": ["cost"],
                    },
                ]
            }
        },
        "type": "object",
        "properties": {"acme": {"$ref": "#/$defs/AcmeRunFacet"}},
    }
    (directory / "acme.json").write_text(json.dumps(schema))


def test_extra_schema_dirs_validate_custom_facets(
    tmp_path: Path, validator: EventValidator
) -> None:
    write_custom_schema(tmp_path)
    operator = EventValidator(extra_schema_dirs=[tmp_path])
    for url in (f"{CUSTOM_ID}#/$defs/AcmeRunFacet", CUSTOM_ID):
        good = run_event(acme=facet(url, cost=1.5))
        bad = run_event(acme=facet(url, cost=-1))
        verdict = check(operator, good)
        assert verdict.accepted and verdict.custom_facets == (), verdict
        assert paths(check(operator, bad).errors) == ["$.run.facets.acme.cost"]
        # Without the directory the same facet is custom and accepted.
        assert check(validator, bad).custom_facets == ("$.run.facets.acme",)
        assert check(validator, bad).accepted


def test_extra_schema_dirs_misconfigured(tmp_path: Path) -> None:
    (tmp_path / "noid.json").write_text('{"type": "object"}')
    with pytest.raises(SchemaConfigError, match="needs a string"):
        EventValidator(extra_schema_dirs=[tmp_path])
    (tmp_path / "noid.json").unlink()
    core = (SPEC / "versions/2-0-2/OpenLineage.json").read_text().replace('"RunEvent"', '"X"')
    (tmp_path / "clash.json").write_text(core)
    with pytest.raises(SchemaConfigError, match="already defined"):
        EventValidator(extra_schema_dirs=[tmp_path])
    (tmp_path / "clash.json").write_text(
        json.dumps({"$id": "https://x.example/a.json", "$ref": "https://x.example/missing.json"})
    )
    with pytest.raises(SchemaConfigError, match=r"missing\.json"):
        EventValidator(extra_schema_dirs=[tmp_path])
    with pytest.raises(SchemaConfigError, match="does not exist"):
        EventValidator(extra_schema_dirs=[tmp_path / "nope"])


# ---- facet versions ----------------------------------------------------------------------


def test_old_facet_versions_use_their_own_schema(validator: EventValidator) -> None:
    """SchemaDatasetFacet 1-0-0 has no nested `fields`; 1-1-1 requires it to be an array."""
    verdicts = {}
    for version in ("1-0-0", "1-1-1"):
        body = facet(
            f"{FACETS}/{version}/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
            fields=[{"name": "a", "fields": "not an array"}],
        )
        event = run_event()
        event["outputs"] = [{"namespace": "n", "name": "t", "facets": {"schema": body}}]
        verdicts[version] = check(validator, event)
    assert verdicts["1-0-0"].accepted
    assert paths(verdicts["1-1-1"].errors) == ["$.outputs[0].facets.schema.fields[0].fields"]


def test_whole_file_schema_url_validates_under_the_key(validator: EventValidator) -> None:
    url = f"{FACETS}/1-0-1/NominalTimeRunFacet.json"  # no #pointer: the file's root applies
    assert not check(validator, run_event(nominalTime=facet(url))).accepted
    assert check(validator, run_event(other=facet(url))).accepted  # root says nothing of it


# ---- caches ------------------------------------------------------------------------------


def test_cache_does_not_change_verdicts() -> None:
    cached = EventValidator()
    uncached = EventValidator(cache_size=0)
    cases = [c.value for c in fuzz_cases(7, 1500)] + VALID + INVALID
    first = [cached.validate(v) for v in cases]
    again = [cached.validate(v) for v in cases]  # now answered from the caches
    plain = [uncached.validate(v) for v in cases]
    assert first == again == plain


def test_verdicts_are_the_same_while_cache_layers_rest() -> None:
    # Run facets and quality metrics that change with every run: their cache layers stop
    # paying off and rest; every verdict stays what the uncached validator says, errors in
    # those facets included.
    cached = EventValidator()
    uncached = EventValidator(cache_size=0)
    for i in range(600):
        event = lineage_event(i, rows=1000 + i)
        if i % 7 == 0:
            event["run"]["facets"]["nominalTime"]["nominalStartTime"] = 5
        if i % 11 == 0:
            event["inputs"][0]["inputFacets"]["dataQualityMetrics"]["rowCount"] = "many"
        value = encode(event)
        assert cached.validate(value) == uncached.validate(value), i
    assert cached._event_payoff.resting > 0
    assert cached._group_payoffs[("run", "facets")].resting > 0
    assert cached._group_payoffs[("inputs", 0, "inputFacets")].resting > 0
    assert cached._group_payoffs[("job", "facets")].resting == 0  # the same job facets
    nominal = event["run"]["facets"]["nominalTime"]["_schemaURL"]
    assert cached._facet_payoffs[(nominal, "nominalTime")].resting > 0


def test_envelope_split_matches_the_whole_core() -> None:
    """The envelope-without-facets + per-facets-object checks equal the core definition."""
    split = EventValidator()
    assert split._split  # the shipped core has the expected shape
    whole = EventValidator(cache_size=0)
    whole._split, whole._envelope = False, whole._core
    cases = [c.value for c in fuzz_cases(8, 1000)] + VALID + INVALID

    def same_up_to_order(v: Verdict) -> tuple:  # problems may come in another order
        key = lambda p: (p.path, p.message)  # noqa: E731
        return (
            v.event,
            sorted(v.errors, key=key),
            sorted(v.warnings, key=key),
            v.kind,
            v.custom_facets,
        )

    for value in cases:
        assert same_up_to_order(split.validate(value)) == same_up_to_order(whole.validate(value))


def test_default_validator_is_shared() -> None:
    assert default_validator() is default_validator()


# ---- packaging and purity --------------------------------------------------------------


def test_shipped_schemas_are_unmodified_copies() -> None:
    shipped = resources.files("lineagehouse.schemas").joinpath("openlineage")
    pairs = [
        ("LICENSE", CORPUS.parent / "LICENSE"),
        ("OpenLineage.json", SPEC / "OpenLineage.json"),
    ]
    for sub in ("facets", "versions"):
        pairs += [
            (p.relative_to(SPEC).as_posix(), p)
            for p in sorted((SPEC / sub).rglob("*"))
            if p.is_file()
        ]
    assert len(pairs) > 140
    for rel, original in pairs:
        assert shipped.joinpath(rel).read_bytes() == original.read_bytes(), rel
    provenance = shipped.joinpath("PROVENANCE.md").read_text()
    assert "8f02abfb7a252783b95df79f443edb13959bf52c" in provenance
    assert "Apache" in provenance


def test_validation_imports_no_adapters() -> None:
    code = (
        "import sys, lineagehouse.processors.validate as v; v.default_validator(); "
        "print(sorted({m.split('.')[0] for m in sys.modules} & "
        "{'faust', 'confluent_kafka', 'aiokafka', 'clickhouse_connect', 'chdb', 'httpx', "
        "'fastapi', 'requests', 'jsonschema', 'referencing'}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert out.stdout.strip() == "[]"
