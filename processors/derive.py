"""Pure: one accepted OpenLineage event -> the records of the lineage model.

`derive(event, event_id, ...)` appends to `out` (a dict of record lists by kind, see
`records.py`) what the event says about its run, job, datasets and their versions, the
run's input and output edges, column lineage, and every facet. Imports nothing from faust,
Kafka or ClickHouse.

Every record is a function of the event alone. Records of different events about the
same thing (a START and a COMPLETE of one run) are combined by the tables with `min` and
`max` only (see `records.py`), so the result does not depend on the order events arrive
in or on how often each arrives.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Collection
from typing import Any

import orjson

from lineagehouse.processors.events import epoch_ms, parse_time
from lineagehouse.processors.naming import identity
from lineagehouse.processors.records import (
    ColumnEdge,
    Dataset,
    DatasetAlias,
    DatasetVersion,
    Facet,
    IoEdge,
    Job,
    Run,
)
from lineagehouse.processors.validate import json_path

Records = dict[str, list[tuple]]

TERMINAL_STATES = frozenset({"COMPLETE", "FAIL", "ABORT"})
SPEC_FACET_PREFIX = "https://openlineage.io/spec/"
DEFAULT_MAX_FACET_BYTES = 256 * 1024


def _time_ms(value: Any) -> int | None:
    try:
        return epoch_ms(parse_time(value))
    except (ValueError, TypeError):
        return None


def _dict(obj: Any, key: str) -> dict:
    value = obj.get(key) if type(obj) is dict else None
    return value if type(value) is dict else {}


def _str(obj: dict, key: str) -> str:
    value = obj.get(key)
    return value if type(value) is str else ""


def _count(obj: dict, *keys: str) -> int | None:
    for key in keys:
        value = obj.get(key)
        if type(value) is int and value >= 0:
            return value
    return None


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


class _SchemaCache:
    """Flattened fields and hash of a schema facet, cached by its exact JSON (schemas
    repeat from event to event)."""

    def __init__(self, maxsize: int = 4096) -> None:
        self._data: OrderedDict[bytes, tuple] = OrderedDict()
        self._maxsize = maxsize

    def get(self, fields: list) -> tuple[str, list[str], list[str], list[str], str]:
        raw = orjson.dumps(fields)
        found = self._data.get(raw)
        if found is None:
            names: list[str] = []
            types: list[str] = []
            descriptions: list[str] = []
            _flatten(fields, "", names, types, descriptions)
            shape = orjson.dumps([names, types])
            schema_hash = hashlib.blake2b(shape, digest_size=8).hexdigest()
            found = (schema_hash, names, types, descriptions, raw.decode())
            self._data[raw] = found
            if len(self._data) > self._maxsize:
                self._data.popitem(last=False)
        return found


def _flatten(
    fields: Any, prefix: str, names: list[str], types: list[str], descriptions: list[str]
) -> None:
    if type(fields) is not list:
        return
    for field in fields:
        if type(field) is not dict or type(field.get("name")) is not str:
            continue
        name = prefix + field["name"]
        names.append(name)
        types.append(_str(field, "type"))
        descriptions.append(_str(field, "description"))
        _flatten(field.get("fields"), name + ".", names, types, descriptions)


_SCHEMAS = _SchemaCache()


class _Context:
    """What every record of one event shares."""

    __slots__ = (
        "custom",
        "event_id",
        "job_name",
        "job_namespace",
        "max_facet_bytes",
        "out",
        "producer",
        "run_id",
        "time",
    )

    def __init__(
        self,
        out: Records,
        event: dict,
        event_id: str,
        time: int,
        custom: Collection[str],
        max_facet_bytes: int,
    ) -> None:
        job = _dict(event, "job")
        self.out = out
        self.event_id = event_id
        self.time = time
        self.custom = custom
        self.max_facet_bytes = max_facet_bytes
        self.producer = _str(event, "producer")
        self.job_namespace = _str(job, "namespace")
        self.job_name = _str(job, "name")
        self.run_id = _str(_dict(event, "run"), "runId")

    def add(self, kind: str, record: tuple) -> None:
        rows = self.out.get(kind)
        if rows is None:
            rows = self.out[kind] = []
        rows.append(record)

    def facets(
        self, facets: Any, where: tuple[str | int, ...], kind: str, namespace: str, name: str
    ) -> None:
        """One Facet record per facet of `facets` (found at JSON path `where`)."""
        if type(facets) is not dict:
            return
        group = str(where[-1])
        for key, body in facets.items():
            value = orjson.dumps(body)
            size = len(value)
            truncated = 0
            if size > self.max_facet_bytes:
                summary = {"_summary": True, "bytes": size}
                if type(body) is dict:
                    summary["keys"] = sorted(body)[:100]
                value = orjson.dumps(summary)
                truncated = 1
            url = body.get("_schemaURL") if type(body) is dict else None
            url = url if type(url) is str else ""
            standard = url.startswith(SPEC_FACET_PREFIX)
            if standard and self.custom:
                standard = json_path((*where, key)) not in self.custom
            self.add(
                "facets",
                Facet(
                    self.event_id,
                    self.time,
                    self.run_id,
                    self.job_namespace,
                    self.job_name,
                    kind,
                    namespace,
                    name,
                    group,
                    key,
                    int(standard),
                    url,
                    self.producer,
                    value.decode(),
                    size,
                    truncated,
                ),
            )


def derive(
    event: dict,
    event_id: str,
    out: Records | None = None,
    custom_facets: Collection[str] = (),
    max_facet_bytes: int = DEFAULT_MAX_FACET_BYTES,
) -> Records:
    """Append the records of one accepted event to `out` (a new dict if None); returns it.

    `custom_facets` are the JSON paths the validator found without a spec schema (they
    are recorded as custom even when their `_schemaURL` looks like a spec URL).
    """
    out = {} if out is None else out
    time = _time_ms(event.get("eventTime"))
    if time is None:  # the validator rejects these; nothing to derive
        return out
    ctx = _Context(out, event, event_id, time, custom_facets, max_facet_bytes)
    if "run" in event:
        _run_event(ctx, event)
    elif "dataset" in event:
        dataset = _dict(event, "dataset")
        _dataset(ctx, dataset, ("dataset",), "dataset", None)
    elif "job" in event:
        _job(ctx, event, None, {})
        _io(ctx, event, "")
    return out


def _run_event(ctx: _Context, event: dict) -> None:
    run = _dict(event, "run")
    facets = _dict(run, "facets")
    state = _str(event, "eventType") or "OTHER"
    parent = _dict(facets, "parent")
    parent_run = _str(_dict(parent, "run"), "runId")
    parent_job = _dict(parent, "job")
    root = _dict(parent, "root")
    if root:
        root_run = _str(_dict(root, "run"), "runId")
        root_job = _dict(root, "job")
        root_ns, root_name = _str(root_job, "namespace"), _str(root_job, "name")
    elif parent_run:
        root_run, root_ns, root_name = (
            parent_run,
            _str(parent_job, "namespace"),
            _str(parent_job, "name"),
        )
    else:
        root_run, root_ns, root_name = ctx.run_id, ctx.job_namespace, ctx.job_name
    nominal = _dict(facets, "nominalTime")
    error = _dict(facets, "errorMessage")
    engine = _dict(facets, "processing_engine")
    job_type = _dict(_dict(_dict(event, "job"), "facets"), "jobType")
    ctx.add(
        "runs",
        Run(
            ctx.run_id,
            ctx.job_namespace,
            ctx.job_name,
            1 if state in TERMINAL_STATES else 0,
            ctx.time,
            ctx.event_id,
            state,
            ctx.time if state == "START" else None,
            ctx.time,
            ctx.time,
            _time_ms(nominal.get("nominalStartTime")) if nominal else None,
            _time_ms(nominal.get("nominalEndTime")) if nominal else None,
            parent_run,
            _str(parent_job, "namespace"),
            _str(parent_job, "name"),
            root_run,
            root_ns,
            root_name,
            _str(error, "message"),
            _str(error, "programmingLanguage"),
            _str(error, "stackTrace"),
            _str(engine, "name"),
            _str(engine, "version"),
            _str(engine, "openlineageAdapterVersion"),
            _str(job_type, "integration"),
            _str(job_type, "processingType"),
            _str(job_type, "jobType"),
            ctx.producer,
            [state],
        ),
    )
    ctx.facets(facets, ("run", "facets"), "run", ctx.job_namespace, ctx.job_name)
    _job(ctx, event, parent_job, job_type)
    _io(ctx, event, ctx.run_id)


def _job(ctx: _Context, event: dict, parent_job: dict | None, job_type: dict) -> None:
    job = _dict(event, "job")
    facets = _dict(job, "facets")
    if not job_type:
        job_type = _dict(facets, "jobType")
    t = ctx.time

    def latest(key: str, field: str | None = None) -> tuple[int, str]:
        facet = facets.get(key)
        if type(facet) is not dict:
            return 0, ""
        if field is None:
            return t, _dumps(facet)
        return t, _str(facet, field)

    sql = latest("sql", "query")
    source_code = latest("sourceCode")
    location = latest("sourceCodeLocation", "url")
    documentation = latest("documentation", "description")
    ownership = latest("ownership")
    tags = latest("tags")
    parent_job = parent_job or {}
    ctx.add(
        "jobs",
        Job(
            ctx.job_namespace,
            ctx.job_name,
            t,
            t,
            t if ctx.run_id else 0,
            ctx.run_id,
            _str(job_type, "integration"),
            _str(job_type, "processingType"),
            _str(job_type, "jobType"),
            _str(parent_job, "namespace"),
            _str(parent_job, "name"),
            *sql,
            *source_code,
            *location,
            *documentation,
            *ownership,
            *tags,
        ),
    )
    ctx.facets(facets, ("job", "facets"), "job", ctx.job_namespace, ctx.job_name)


def _io(ctx: _Context, event: dict, run_id: str) -> None:
    for direction, stats_group in (("input", "inputFacets"), ("output", "outputFacets")):
        datasets = event.get(direction + "s")
        if type(datasets) is not list:
            continue
        for index, dataset in enumerate(datasets):
            if type(dataset) is not dict:
                continue
            where = (direction + "s", index)
            key, version_id = _dataset(ctx, dataset, where, direction, run_id)
            namespace, name = _str(dataset, "namespace"), _str(dataset, "name")
            stats = _dict(dataset, stats_group)
            ctx.facets(stats, (*where, stats_group), direction, namespace, name)
            counts = _dict(stats, direction + "Statistics")
            if not counts:
                counts = _dict(stats, "dataQualityMetrics") or _dict(
                    _dict(dataset, "facets"), "dataQualityMetrics"
                )
            ctx.add(
                "io_edges",
                IoEdge(
                    ctx.job_namespace,
                    ctx.job_name,
                    run_id,
                    direction,
                    namespace,
                    name,
                    key,
                    version_id,
                    ctx.time,
                    ctx.time,
                    _count(counts, "rowCount"),
                    _count(counts, "size", "bytes"),
                    _count(counts, "fileCount"),
                ),
            )
            if direction == "output":
                _column_lineage(ctx, dataset, key, run_id)


def _dataset(
    ctx: _Context, dataset: dict, where: tuple, kind: str, run_id: str | None
) -> tuple[str, str]:
    """Dataset, version, alias and facet records of one dataset; (key, version id)."""
    namespace, name = _str(dataset, "namespace"), _str(dataset, "name")
    facets = _dict(dataset, "facets")
    key, canonical_namespace, canonical_name = identity(namespace, name, facets)
    t = ctx.time
    version_id = ""
    schema = _dict(facets, "schema")
    version = _str(_dict(facets, "version"), "datasetVersion")
    if schema or version:
        fields = schema.get("fields") if schema else None
        if type(fields) is list:
            schema_hash, names, types, descriptions, fields_json = _SCHEMAS.get(fields)
        else:
            schema_hash, names, types, descriptions, fields_json = "", [], [], [], ""
        version_id = hashlib.blake2b(
            f"{schema_hash}\0{version}".encode(), digest_size=8
        ).hexdigest()
        run = run_id or ""
        ctx.add(
            "dataset_versions",
            DatasetVersion(
                namespace,
                name,
                version_id,
                schema_hash,
                version,
                names,
                types,
                descriptions,
                fields_json,
                t,
                run,
                t,
                run,
            ),
        )

    def latest(facet_key: str, field: str | None = None) -> tuple[int, str]:
        facet = facets.get(facet_key)
        if type(facet) is not dict:
            return 0, ""
        return (t, _str(facet, field)) if field else (t, _dumps(facet))

    ctx.add(
        "datasets",
        Dataset(
            namespace,
            name,
            key,
            canonical_namespace,
            canonical_name,
            t,
            t,
            t if version_id else 0,
            version_id,
            *latest("storage"),
            *latest("dataSource"),
            *latest("symlinks"),
            *latest("lifecycleStateChange", "lifecycleStateChange"),
            *latest("documentation", "description"),
            *latest("ownership"),
        ),
    )
    symlinks = _dict(facets, "symlinks").get("identifiers")
    if type(symlinks) is list:
        for ident in symlinks:
            if type(ident) is not dict:
                continue
            alias_ns, alias_name = _str(ident, "namespace"), _str(ident, "name")
            alias_key = identity(alias_ns, alias_name, None)[0]
            ctx.add(
                "dataset_aliases",
                DatasetAlias(
                    namespace, name, alias_ns, alias_name, _str(ident, "type"), key, alias_key, t, t
                ),
            )
    ctx.facets(facets, (*where, "facets"), kind, namespace, name)
    return key, version_id


def _column_lineage(ctx: _Context, output: dict, output_key: str, run_id: str) -> None:
    lineage = _dict(_dict(output, "facets"), "columnLineage")
    if not lineage:
        return
    out_ns, out_name = _str(output, "namespace"), _str(output, "name")
    keys: dict[tuple[str, str], str] = {}

    def edges(output_field: str, inputs: Any) -> None:
        if type(inputs) is not list:
            return
        for source in inputs:
            if type(source) is not dict:
                continue
            in_ns, in_name = _str(source, "namespace"), _str(source, "name")
            in_key = keys.get((in_ns, in_name))
            if in_key is None:
                in_key = keys[(in_ns, in_name)] = identity(in_ns, in_name, None)[0]
            transformations = source.get("transformations")
            if type(transformations) is not list or not transformations:
                # Before facet 1-1-0: one type and description on the input field itself.
                transformations = [
                    {
                        "type": _str(source, "transformationType"),
                        "description": _str(source, "transformationDescription"),
                    }
                ]
            for transformation in transformations:
                if type(transformation) is not dict:
                    continue
                ctx.add(
                    "column_edges",
                    ColumnEdge(
                        out_ns,
                        out_name,
                        output_field,
                        in_ns,
                        in_name,
                        _str(source, "field"),
                        run_id,
                        _str(transformation, "type"),
                        _str(transformation, "subtype"),
                        output_key,
                        in_key,
                        ctx.job_namespace,
                        ctx.job_name,
                        _str(transformation, "description"),
                        1 if transformation.get("masking") is True else 0,
                        ctx.time,
                        ctx.time,
                    ),
                )

    fields = lineage.get("fields")
    if type(fields) is dict:
        for field_name, field in fields.items():
            if type(field) is dict:
                edges(field_name, field.get("inputFields"))
    edges("", lineage.get("dataset"))
