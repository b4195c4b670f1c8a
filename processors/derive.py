"""Pure: one accepted OpenLineage event -> the records of the lineage model.

`derive(event, event_id, out)` appends to `out` (record lists by kind, see `records.py`)
what the event says about its run, its job, its datasets and their versions, the run's
input and output edges, column lineage, and every facet. Imports nothing from faust,
Kafka or ClickHouse.

Every record is a function of the event alone. Records of different events about the
same thing (a START and a COMPLETE of one run) are combined by the tables with min, max
and union only, so the result does not depend on the order events arrive in or on how
often each arrives. Dataset versions and column lineage are content-addressed: their rows
are a pure function of the dataset and an id (a hash of the schema; of the columnLineage
facet and the output), and the per-run `io_edges` row names the ids, so a run's schema
and column lineage are known for every run while the content is stored once. Facets are
too, where they repeat: a `facets` row of a dataset or a job names each facet and the id
of its value (a hash of its JSON), and `facet_values` holds each distinct value.

The processor runs the C twin of `derive` (`_derive.c`); the Python code here is its
reference and fallback.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Collection
from typing import Any

import orjson

from lineagehouse.processors.avro import LONG_MAX
from lineagehouse.processors.events import epoch_ms, parse_time
from lineagehouse.processors.hashing import blake2b
from lineagehouse.processors.naming import identity
from lineagehouse.processors.records import NATIVE, native_module
from lineagehouse.processors.validate import json_path

if NATIVE:
    from lineagehouse.processors import _native
else:
    _native = None

Record = dict[str, Any]
Records = dict[str, list[Record]]

TERMINAL_STATES = frozenset({"COMPLETE", "FAIL", "ABORT"})
SPEC_FACET_PREFIX = "https://openlineage.io/spec/"
DEFAULT_MAX_FACET_BYTES = 256 * 1024
_NO_VALUE: dict[str, Any] = {}


def _time_ms(value: Any) -> int | None:
    """Epoch milliseconds of an ISO 8601 time; None when it is not one, or out of range."""
    try:
        return epoch_ms(parse_time(value))
    except (ValueError, TypeError, OverflowError):
        return None


def _dict(obj: Any, key: str) -> dict:
    value = obj.get(key) if type(obj) is dict else None
    return value if type(value) is dict else _NO_VALUE


def _str(obj: dict, key: str) -> str:
    value = obj.get(key)
    return value if type(value) is str else ""


def _count(obj: dict, *keys: str) -> int | None:
    for key in keys:
        value = obj.get(key)
        if type(value) is int and 0 <= value <= LONG_MAX:
            return value
    return None


def _hash(data: bytes) -> str:
    return blake2b(data, 8).hexdigest()


class _Cache:
    """A bounded LRU of pure results keyed by exact JSON bytes (schemas and column
    lineage repeat from event to event)."""

    def __init__(self, maxsize: int = 4096) -> None:
        self._data: OrderedDict[Any, Any] = OrderedDict()
        self._maxsize = maxsize

    def get(self, key: Any) -> Any:
        return self._data.get(key)

    def put(self, key: Any, value: Any) -> Any:
        self._data[key] = value
        if len(self._data) > self._maxsize:
            self._data.popitem(last=False)
        return value


_VERSIONS = _Cache()
_LINEAGE = _Cache()


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


def dataset_version(namespace: str, name: str, facets: dict) -> Record | None:
    """The content record of a dataset's schema and version facets, if it has either.
    `version_id` hashes the whole schema (descriptions too) and the version facet;
    `schema_hash` only field names and types (what a schema change is)."""
    schema = _dict(facets, "schema")
    version = _str(_dict(facets, "version"), "datasetVersion")
    if not schema and not version:
        return None
    fields = schema.get("fields") if schema else None
    fields_json = orjson.dumps(fields) if type(fields) is list else b""
    cache_key = (namespace, name, fields_json, version)
    found = _VERSIONS.get(cache_key)
    if found is None:
        names: list[str] = []
        types: list[str] = []
        descriptions: list[str] = []
        _flatten(fields, "", names, types, descriptions)
        schema_hash = _hash(orjson.dumps([names, types])) if fields_json else ""
        found = _VERSIONS.put(
            cache_key,
            {
                "namespace": namespace,
                "name": name,
                "version_id": _hash(fields_json + b"\0" + version.encode()),
                "schema_hash": schema_hash,
                "dataset_version": version,
                "field_names": names,
                "field_types": types,
                "field_descriptions": descriptions,
                "fields_json": fields_json.decode(),
            },
        )
    return found


def column_lineage(namespace: str, name: str, output_key: str, facet: dict) -> list[Record]:
    """The content records of one output's `columnLineage` facet (one per input field and
    transformation); every record carries the same `column_lineage_id`, a hash of all they
    hold: the facet, the output dataset and its key (which its `symlinks` facet decides)."""
    body = orjson.dumps([facet.get("fields"), facet.get("dataset")])
    cache_key = (namespace, name, output_key, body)
    found = _LINEAGE.get(cache_key)
    if found is not None:
        return found
    lineage_id = _hash(b"\0".join((namespace.encode(), name.encode(), output_key.encode(), body)))
    keys: dict[tuple[str, str], str] = {}
    records: list[Record] = []

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
                records.append(
                    {
                        "output_namespace": namespace,
                        "output_name": name,
                        "column_lineage_id": lineage_id,
                        "output_field": output_field,
                        "input_namespace": in_ns,
                        "input_name": in_name,
                        "input_field": _str(source, "field"),
                        "transformation_type": _str(transformation, "type"),
                        "transformation_subtype": _str(transformation, "subtype"),
                        "output_dataset_key": output_key,
                        "input_dataset_key": in_key,
                        "description": _str(transformation, "description"),
                        "masking": 1 if transformation.get("masking") is True else 0,
                    }
                )

    fields = facet.get("fields")
    if type(fields) is dict:
        for field_name, field in fields.items():
            if type(field) is dict:
                edges(field_name, field.get("inputFields"))
    edges("", facet.get("dataset"))
    return _LINEAGE.put(cache_key, records)


class _Event:
    """What every record of one event shares, and where they go."""

    __slots__ = (
        "aborted",
        "custom",
        "event_id",
        "job_name",
        "job_namespace",
        "max_facet_bytes",
        "out",
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
        self.job_namespace = _str(job, "namespace")
        self.job_name = _str(job, "name")
        self.run_id = _str(_dict(event, "run"), "runId")
        # Checks reported by an aborted run did not really run: they are "skipped".
        self.aborted = event.get("eventType") == "ABORT"

    def add(self, kind: str, record: Record) -> None:
        rows = self.out.get(kind)
        if rows is None:
            rows = self.out[kind] = []
        rows.append(record)

    def facets(
        self,
        facets: Any,
        where: tuple,
        kind: str,
        namespace: str,
        name: str,
        whole: bytes | None = None,
    ) -> None:
        """The records of the facets object found at JSON path `where`: one `facets` row.
        A dataset's or a job's facets (`whole`: their JSON, which the caller has) repeat
        from event to event: the row names each facet's value id, and the values go to
        `facet_values` (and, for a dataset's own facets, one `dataset_facets` row per
        facet). A run's facets and input/output statistics seldom repeat: the row keeps
        their JSON inline."""
        if type(facets) is not dict or not facets:
            return
        if whole:
            names, ids, jsons, values, summarised = _facet_values(
                facets, whole, self.max_facet_bytes
            )
            inline = b""
        else:
            names, ids, values = [], [], []
            inline = orjson.dumps(facets)
            summarised = []
            if len(inline) > self.max_facet_bytes:  # then some facet may be over the limit
                inline, summarised = _summarised(facets, self.max_facet_bytes)
        custom = []
        for key, body in facets.items():
            url = body.get("_schemaURL") if type(body) is dict else None
            if (
                type(url) is not str
                or not url.startswith(SPEC_FACET_PREFIX)
                or (self.custom and json_path((*where, key)) in self.custom)
            ):
                custom.append(key)
        group = str(where[-1])
        self.add(
            "facets",
            {
                "event_id": self.event_id,
                "event_time": self.time,
                "run_id": self.run_id,
                "entity_kind": kind,
                "entity_namespace": namespace,
                "entity_name": name,
                "facet_group": group,
                "facet_names": names,
                "facet_ids": ids,
                "facets_json": inline,
                "custom": custom,
                "summarised": summarised,
            },
        )
        if not values:
            return
        rows = self.out.get("facet_values")
        if rows is None:
            rows = self.out["facet_values"] = []
        rows.extend(values)
        if group == "facets" and kind in _DATASET_ENTITIES:
            t = self.time
            for facet, json in zip(names, jsons, strict=True):
                self.add(
                    "dataset_facets",
                    {
                        "namespace": namespace,
                        "name": name,
                        "facet": facet,
                        "latest": {"time": t, "event_id": self.event_id, "json": json},
                        "last_seen": t,
                    },
                )


_DATASET_ENTITIES = frozenset({"dataset", "input", "output"})
_FACET_VALUES = _Cache(4096)

# (facet names, their value ids, their JSON, the facet_values records, names summarised)
FacetValues = tuple[list[str], list[str], list[bytes], list[Record], list[str]]


def _facet_values(facets: dict, whole: bytes, max_facet_bytes: int) -> FacetValues:
    """Each facet's stored JSON (a summary over `max_facet_bytes`; the event keeps it
    whole) and its value id, a hash of that JSON, for a dataset's or a job's facets,
    cached by their JSON `whole` (they repeat from event to event)."""
    cache_key = (whole, max_facet_bytes)
    found = _FACET_VALUES.get(cache_key)
    if found is not None:
        return found
    names: list[str] = []
    ids: list[str] = []
    jsons: list[bytes] = []
    values: list[Record] = []
    summarised: list[str] = []
    for key, body in facets.items():
        json = orjson.dumps(body)
        if len(json) > max_facet_bytes:
            json = orjson.dumps(_summary(body, len(json)))
            summarised.append(key)
        facet_id = blake2b(json, 16).hexdigest()
        names.append(key)
        ids.append(facet_id)
        jsons.append(json)
        values.append({"facet_id": facet_id, "facet_json": json})
    return _FACET_VALUES.put(cache_key, (names, ids, jsons, values, summarised))


def _summarised(facets: dict, max_facet_bytes: int) -> tuple[bytes, list[str]]:
    """The JSON of a facets object with each facet over the limit replaced by its summary,
    and the keys of those facets."""
    kept: dict[str, Any] = {}
    summarised = []
    for key, body in facets.items():
        size = len(orjson.dumps(body))
        if size > max_facet_bytes:
            body = _summary(body, size)
            summarised.append(key)
        kept[key] = body
    return orjson.dumps(kept), summarised


def _summary(body: Any, size: int) -> dict[str, Any]:
    """What is kept of a facet over the size limit (the event keeps it whole)."""
    summary: dict[str, Any] = {"_summary": True, "bytes": size}
    if type(body) is dict:
        summary["keys"] = sorted(body)[:100]
        for meta in ("_producer", "_schemaURL"):
            if meta in body:
                summary[meta] = body[meta]
    return summary


def derive(
    event: dict,
    event_id: str,
    out: Records | None = None,
    custom_facets: Collection[str] = (),
    max_facet_bytes: int = DEFAULT_MAX_FACET_BYTES,
    native: bool = NATIVE,
) -> Records:
    """Append the records of one accepted event to `out` (a new dict if None); returns it.

    `custom_facets` are the JSON paths the validator found without a spec schema (they
    are recorded as custom even when their `_schemaURL` looks like a spec URL).

    The C twin (`_derive.c`) runs when built, unless `native=False`; this module's Python
    code is the reference the tests hold it to.
    """
    out = {} if out is None else out
    if native:
        return native_module().derive(event, event_id, out, custom_facets, max_facet_bytes)
    time = _time_ms(event.get("eventTime"))
    if time is None:  # the validator rejects these; nothing to derive
        return out
    ctx = _Event(out, event, event_id, time, custom_facets, max_facet_bytes)
    if "run" in event:
        _run_event(ctx, event)
    elif "dataset" in event:
        dataset = _dict(event, "dataset")
        key = _dataset(ctx, dataset, ("dataset",), "dataset", "")[0]
        _quality(ctx, dataset, key, "", _NO_VALUE)
    elif "job" in event:
        _job(ctx, event, _NO_VALUE, _NO_VALUE)
        _io(ctx, event, "")
    return out


def _run_event(ctx: _Event, event: dict) -> None:
    run = _dict(event, "run")
    facets = _dict(run, "facets")
    state = _str(event, "eventType") or "OTHER"
    parent = _dict(facets, "parent")
    parent_run = _str(_dict(parent, "run"), "runId")
    parent_job = _dict(parent, "job")
    root = _dict(parent, "root")
    if root:
        root_job = _dict(root, "job")
        root_run, root_ns, root_name = (
            _str(_dict(root, "run"), "runId"),
            _str(root_job, "namespace"),
            _str(root_job, "name"),
        )
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
    t = ctx.time
    ctx.add(
        "runs",
        {
            "run_id": ctx.run_id,
            "job_namespace": ctx.job_namespace,
            "job_name": ctx.job_name,
            "state": {
                "terminal": 1 if state in TERMINAL_STATES else 0,
                "time": t,
                "event_id": ctx.event_id,
                "name": state,
            },
            "started_at": t if state == "START" else None,
            "first_event_time": t,
            "last_event_time": t,
            "nominal_start_time": _time_ms(nominal.get("nominalStartTime")) if nominal else None,
            "nominal_end_time": _time_ms(nominal.get("nominalEndTime")) if nominal else None,
            "parent_run_id": parent_run,
            "parent_job_namespace": _str(parent_job, "namespace"),
            "parent_job_name": _str(parent_job, "name"),
            "root_run_id": root_run,
            "root_job_namespace": root_ns,
            "root_job_name": root_name,
            "error_message": _str(error, "message"),
            "error_language": _str(error, "programmingLanguage"),
            "error_stacktrace": _str(error, "stackTrace"),
            "processing_engine": _str(engine, "name"),
            "processing_engine_version": _str(engine, "version"),
            "adapter_version": _str(engine, "openlineageAdapterVersion"),
            "integration": _str(job_type, "integration"),
            "processing_type": _str(job_type, "processingType"),
            "job_type": _str(job_type, "jobType"),
            "producer": _str(event, "producer"),
            "event_types": [state],
        },
    )
    ctx.facets(facets, ("run", "facets"), "run", ctx.job_namespace, ctx.job_name)
    _job(ctx, event, parent_job, job_type)
    _io(ctx, event, ctx.run_id)


# (column, the part of the facet kept, the facet key, the field it comes from; None: the
# whole JSON)
_JOB_PARTS = (
    ("sql", "query", "sql", "query"),
    ("source_code", "json", "sourceCode", None),
    ("source_code_location", "url", "sourceCodeLocation", "url"),
    ("documentation", "description", "documentation", "description"),
    ("ownership", "json", "ownership", None),
    ("tags", "json", "tags", None),
)
_JOBS = _Cache(16384)


def _job_parts(facets: dict, facets_json: bytes) -> list[tuple[str, str, str | None]]:
    """The kept parts of a job's facets (None where absent), cached by their JSON."""
    found = _JOBS.get(facets_json)
    if found is None:
        found = []
        for column, part, facet_key, field in _JOB_PARTS:
            facet = facets.get(facet_key)
            if type(facet) is not dict:
                found.append((column, part, None))
            else:
                value = _str(facet, field) if field else orjson.dumps(facet).decode()
                found.append((column, part, value))
        _JOBS.put(facets_json, found)
    return found


def _job(ctx: _Event, event: dict, parent_job: dict, job_type: dict) -> None:
    facets = _dict(_dict(event, "job"), "facets")
    facets_json = orjson.dumps(facets) if facets else b""
    if not job_type:
        job_type = _dict(facets, "jobType")
    t = ctx.time
    record = {
        "namespace": ctx.job_namespace,
        "name": ctx.job_name,
        "first_seen": t,
        "last_seen": t,
        "latest_run": {"time": t if ctx.run_id else 0, "run_id": ctx.run_id},
        "integration": _str(job_type, "integration"),
        "processing_type": _str(job_type, "processingType"),
        "job_type": _str(job_type, "jobType"),
        "parent_job_namespace": _str(parent_job, "namespace"),
        "parent_job_name": _str(parent_job, "name"),
    }
    for column, part, value in _job_parts(facets, facets_json):
        record[column] = {"time": 0, part: ""} if value is None else {"time": t, part: value}
    ctx.add("jobs", record)
    ctx.facets(facets, ("job", "facets"), "job", ctx.job_namespace, ctx.job_name, facets_json)


def _io(ctx: _Event, event: dict, run_id: str) -> None:
    for direction, stats_group in (("input", "inputFacets"), ("output", "outputFacets")):
        datasets = event.get(direction + "s")
        if type(datasets) is not list:
            continue
        for index, dataset in enumerate(datasets):
            if type(dataset) is not dict:
                continue
            where = (direction + "s", index)
            key, version_id, lineage_id = _dataset(ctx, dataset, where, direction, direction)
            namespace, name = _str(dataset, "namespace"), _str(dataset, "name")
            stats = _dict(dataset, stats_group)
            ctx.facets(stats, (*where, stats_group), direction, namespace, name)
            _quality(ctx, dataset, key, direction, stats)
            counts = _dict(stats, direction + "Statistics") or _dict(stats, "dataQualityMetrics")
            if not counts:
                counts = _dict(_dict(dataset, "facets"), "dataQualityMetrics")
            ctx.add(
                "io_edges",
                {
                    "job_namespace": ctx.job_namespace,
                    "job_name": ctx.job_name,
                    "run_id": run_id,
                    "direction": direction,
                    "namespace": namespace,
                    "name": name,
                    "dataset_key": key,
                    "version_id": version_id,
                    "column_lineage_id": lineage_id,
                    "first_seen": ctx.time,
                    "last_seen": ctx.time,
                    "row_count": _count(counts, "rowCount"),
                    "byte_count": _count(counts, "size", "bytes"),
                    "file_count": _count(counts, "fileCount"),
                },
            )


# (facet key, the part of the facet kept, the field it comes from; None: the whole JSON)
_DATASET_PARTS = (
    ("storage", "json", None),
    ("datasource", "json", None),
    ("symlinks", "json", None),
    ("lifecycle", "state", "lifecycleStateChange"),
    ("documentation", "description", "description"),
    ("ownership", "json", None),
)
_DATASET_FACET_KEYS = {
    "storage": "storage",
    "datasource": "dataSource",
    "symlinks": "symlinks",
    "lifecycle": "lifecycleStateChange",
    "documentation": "documentation",
    "ownership": "ownership",
}
_DATASETS = _Cache(16384)


def _dataset_facts(
    namespace: str, name: str, facets: dict, facets_json: bytes, output: bool
) -> tuple:
    """What a dataset's name and facets say, whatever the event: identity, version,
    column lineage, the kept facet parts and the aliases. Cached by the facets' exact
    JSON (a dataset sends the same facets run after run)."""
    cache_key = (namespace, name, facets_json, output)
    found = _DATASETS.get(cache_key)
    if found is not None:
        return found
    key, canonical_namespace, canonical_name = identity(namespace, name, facets)
    version = dataset_version(namespace, name, facets)
    lineage_facet = _dict(facets, "columnLineage") if output else _NO_VALUE
    edges = column_lineage(namespace, name, key, lineage_facet) if lineage_facet else []
    parts: list[tuple[str, str, str | None]] = []
    for column, part, field in _DATASET_PARTS:
        facet = facets.get(_DATASET_FACET_KEYS[column])
        if type(facet) is not dict:
            parts.append((column, part, None))
        else:
            value = _str(facet, field) if field else orjson.dumps(facet).decode()
            parts.append((column, part, value))
    aliases = []
    symlinks = _dict(facets, "symlinks").get("identifiers")
    if type(symlinks) is list:
        for ident in symlinks:
            if type(ident) is dict:
                alias_ns, alias_name = _str(ident, "namespace"), _str(ident, "name")
                aliases.append(
                    (
                        alias_ns,
                        alias_name,
                        _str(ident, "type"),
                        identity(alias_ns, alias_name, None)[0],
                    )
                )
    found = (key, canonical_namespace, canonical_name, version, edges, parts, aliases)
    return _DATASETS.put(cache_key, found)


def _dataset(
    ctx: _Event, dataset: dict, where: tuple, kind: str, direction: str
) -> tuple[str, str, str]:
    """Dataset, version, alias, column lineage and facet records of one dataset;
    returns (dataset key, version id, column lineage id)."""
    namespace, name = _str(dataset, "namespace"), _str(dataset, "name")
    facets = _dict(dataset, "facets")
    facets_json = orjson.dumps(facets) if facets else b""
    key, canonical_namespace, canonical_name, version, edges, parts, aliases = _dataset_facts(
        namespace, name, facets, facets_json, direction == "output"
    )
    t = ctx.time
    version_id = ""
    if version is not None:
        version_id = version["version_id"]
        ctx.add("dataset_versions", version)
    lineage_id = ""
    if edges:
        lineage_id = edges[0]["column_lineage_id"]
        rows = ctx.out.get("column_edges")
        if rows is None:
            rows = ctx.out["column_edges"] = []
        rows.extend(edges)
    record = {
        "namespace": namespace,
        "name": name,
        "dataset_key": key,
        "canonical_namespace": canonical_namespace,
        "canonical_name": canonical_name,
        "first_seen": t,
        "last_seen": t,
        "version": {"time": t if version_id else 0, "id": version_id},
    }
    for column, part, value in parts:
        record[column] = {"time": 0, part: ""} if value is None else {"time": t, part: value}
    ctx.add("datasets", record)
    for alias_ns, alias_name, alias_type, alias_key in aliases:
        ctx.add(
            "dataset_aliases",
            {
                "namespace": namespace,
                "name": name,
                "alias_namespace": alias_ns,
                "alias_name": alias_name,
                "alias_type": alias_type,
                "dataset_key": key,
                "alias_key": alias_key,
                "first_seen": t,
                "last_seen": t,
            },
        )
    ctx.facets(facets, (*where, "facets"), kind, namespace, name, facets_json)
    return key, version_id, lineage_id


ASSERTION_FACETS = ("dataQualityAssertions", "greatExpectations_assertions")
_METRICS_FACETS = ("dataQualityMetrics", "dataQuality")  # dataQuality: GE's older name


def _text(obj: dict, key: str) -> str:
    """A scalar field as text (emitters send thresholds as strings or numbers)."""
    value = obj.get(key)
    if value is None or type(value) in (dict, list):
        return ""
    if type(value) is bool:
        return "true" if value else "false"
    return str(value)


def _number(obj: dict, key: str) -> float | None:
    value = obj.get(key)
    return float(value) if type(value) in (int, float) else None


def _quality(ctx: _Event, dataset: dict, key: str, direction: str, stats: dict) -> None:
    """Assertion and metric records of one dataset of the event. Emitters put the facets
    in different places (the Airflow provider in `inputFacets`, dbt-ol in both
    `inputFacets` and `facets`, GE as `greatExpectations_assertions`): every place counts,
    and the same check reported twice is one record."""
    facets = _dict(dataset, "facets")
    if not stats and not facets:
        return
    namespace, name = _str(dataset, "namespace"), _str(dataset, "name")
    base = {"namespace": namespace, "name": name, "dataset_key": key}
    seen: set[tuple] = set()
    for group in (stats, facets):
        for source in ASSERTION_FACETS:
            items = _dict(group, source).get("assertions")
            if type(items) is not list:
                continue
            for item in items:
                record = _assertion(ctx, base, source, item)
                if record is not None:
                    identity = (record["assertion"], record["column_name"], record["check_name"])
                    if (identity, record["result"]["status"]) not in seen:
                        seen.add((identity, record["result"]["status"]))
                        ctx.add("quality_assertions", record)
    _metrics(ctx, base, direction, stats, facets)


def _assertion(ctx: _Event, base: dict, source: str, item: Any) -> Record | None:
    if type(item) is not dict:
        return None
    assertion = _str(item, "assertion") or _str(item, "expectationType")
    success = item.get("success")
    said = _str(item, "status").lower()
    if not assertion or (type(success) is not bool and said not in ("pass", "fail", "skip")):
        return None
    if ctx.aborted or said in ("skip", "skipped"):
        status = "skipped"
    elif said in ("pass", "fail"):
        status = said
    else:
        status = "pass" if success else "fail"
    return {
        "namespace": base["namespace"],
        "name": base["name"],
        "run_id": ctx.run_id,
        "assertion": assertion,
        "column_name": _str(item, "column") or _str(item, "columnId"),
        "check_name": _str(item, "name"),
        "dataset_key": base["dataset_key"],
        "job_namespace": ctx.job_namespace,
        "job_name": ctx.job_name,
        "source": source,
        "first_seen": ctx.time,
        "last_seen": ctx.time,
        "result": {
            "time": ctx.time,
            "event_id": ctx.event_id,
            "status": status,
            "severity": _text(item, "severity").lower(),
            "expected": _text(item, "expected"),
            "actual": _text(item, "actual"),
            "description": _text(item, "description"),
            "content": _text(item, "content"),
        },
    }


def _metrics(ctx: _Event, base: dict, direction: str, stats: dict, facets: dict) -> None:
    """One record for the dataset: its whole-dataset counts (rows, bytes, files, last
    update: from `dataQualityMetrics`, else the input/output statistics facet) and the
    metrics of each column of `columnMetrics`; a part the event does not report keeps
    time 0, so that it never wins over one that another event of the run reported."""
    quality = (
        _dict(stats, "dataQualityMetrics")
        or _dict(stats, "dataQuality")  # Great Expectations' older name
        or _dict(facets, "dataQualityMetrics")
        or _dict(facets, "dataQuality")
    )
    counts = _dict(stats, direction + "Statistics") if direction else _NO_VALUE
    if not quality and not counts:
        return
    row_count = _pick(_count(quality, "rowCount"), _count(counts, "rowCount"))
    byte_count = _pick(_count(quality, "bytes"), _count(counts, "size", "bytes"))
    file_count = _pick(_count(quality, "fileCount"), _count(counts, "fileCount"))
    last_updated = _time_ms(quality.get("lastUpdated")) if quality else None
    found = quality.get("columnMetrics") if quality else None
    columns = []
    if type(found) is dict:
        for column, values in found.items():
            if type(values) is not dict:
                continue
            quantiles = values.get("quantiles")
            columns.append(
                {
                    "name": column,
                    "null_count": _count(values, "nullCount"),
                    "distinct_count": _count(values, "distinctCount"),
                    "sum": _number(values, "sum"),
                    "count": _number(values, "count"),
                    "min": _number(values, "min"),
                    "max": _number(values, "max"),
                    "quantiles": _quantiles_json(quantiles) if type(quantiles) is dict else "",
                }
            )
    reported = (row_count, byte_count, file_count, last_updated) != (None, None, None, None)
    if not reported and not columns:
        return
    ctx.add(
        "dataset_metrics",
        {
            "namespace": base["namespace"],
            "name": base["name"],
            "run_id": ctx.run_id,
            "direction": direction,
            "dataset_key": base["dataset_key"],
            "job_namespace": ctx.job_namespace,
            "job_name": ctx.job_name,
            "first_seen": ctx.time,
            "last_seen": ctx.time,
            "dataset": {
                "time": ctx.time,
                "event_id": ctx.event_id,
                "row_count": row_count,
                "byte_count": byte_count,
                "file_count": file_count,
                "last_updated": last_updated,
            }
            if reported
            else _NO_DATASET_METRICS,
            "columns": {
                "time": ctx.time,
                "event_id": ctx.event_id,
                "metrics": sorted(columns, key=_column_name),
            }
            if columns
            else _NO_COLUMN_METRICS,
        },
    )


_NO_DATASET_METRICS = {
    "time": 0,
    "event_id": "",
    "row_count": None,
    "byte_count": None,
    "file_count": None,
    "last_updated": None,
}
_NO_COLUMN_METRICS: dict[str, Any] = {"time": 0, "event_id": "", "metrics": []}


def _quantiles_json(quantiles: dict) -> str:
    return orjson.dumps(quantiles, option=orjson.OPT_SORT_KEYS).decode()


def _column_name(column: dict) -> str:
    return column["name"]


def _pick(first: int | None, second: int | None) -> int | None:
    return first if first is not None else second


if _native is not None:  # what the C twin calls back: the cached and the rare parts
    _native.configure_derive(
        orjson.dumps,
        _time_ms,
        _quantiles_json,
        _dataset_facts,
        _job_parts,
        json_path,
        _summarised,
        _facet_values,
        SPEC_FACET_PREFIX,
        _NO_DATASET_METRICS,
        _NO_COLUMN_METRICS,
    )
