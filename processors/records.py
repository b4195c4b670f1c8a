"""The derived record kinds: one row type per kind, one Avro schema, topic and table each.

Pure data definitions; imports nothing from faust, Kafka or ClickHouse.

A record is a NamedTuple whose fields are, in order, the fields of the kind's Avro schema
(`schemas/avro/<kind>.avsc`) and the columns the sink inserts into the kind's table.
Conventions, so that every kind travels and lands the same way:

- times are integers, milliseconds since the epoch (UTC); ClickHouse stores them as
  `DateTime64(3, 'UTC')`;
- identities (`event_id`) are UUID strings;
- fields named `<column>__<part>` are the parts of one ClickHouse `Tuple` column
  `<column>`, in field order (the sink assembles them). A tuple is how a table keeps "the
  value of the greatest version" with `SimpleAggregateFunction(max, Tuple(version...,
  value))`: the winner never depends on insert order or on how often a row arrives.
"""

from __future__ import annotations

from typing import NamedTuple


class RawEvent(NamedTuple):
    """An accepted event as received (`events_raw`)."""

    event_id: str
    event_time: int
    event_kind: str
    event_type: str
    run_id: str
    job_namespace: str
    job_name: str
    dataset_namespace: str
    dataset_name: str
    producer: str
    schema_url: str
    payload: str
    source_topic: str
    source_partition: int
    source_offset: int
    source_key: str
    ingested_at: int
    warnings: list[str]
    custom_facets: list[str]
    core_version: str


class Run(NamedTuple):
    """What one RunEvent says about its run (`runs`, one row per run after merges)."""

    run_id: str
    job_namespace: str
    job_name: str
    state__terminal: int  # 1 for COMPLETE, FAIL, ABORT: a terminal state always wins
    state__time: int
    state__event_id: str  # breaks ties between events of the same time
    state__name: str
    started_at: int | None  # eventTime of a START event
    first_event_time: int
    last_event_time: int
    nominal_start_time: int | None
    nominal_end_time: int | None
    parent_run_id: str
    parent_job_namespace: str
    parent_job_name: str
    root_run_id: str
    root_job_namespace: str
    root_job_name: str
    error_message: str
    error_language: str
    error_stacktrace: str
    processing_engine: str
    processing_engine_version: str
    adapter_version: str
    integration: str
    processing_type: str
    job_type: str
    producer: str
    event_types: list[str]


class Job(NamedTuple):
    """What one event says about a job (`jobs`): the latest facets win, by event time."""

    namespace: str
    name: str
    first_seen: int
    last_seen: int
    latest_run__time: int
    latest_run__run_id: str
    integration: str
    processing_type: str
    job_type: str
    parent_job_namespace: str
    parent_job_name: str
    sql__time: int
    sql__query: str
    source_code__time: int
    source_code__json: str
    source_code_location__time: int
    source_code_location__url: str
    documentation__time: int
    documentation__description: str
    ownership__time: int
    ownership__json: str
    tags__time: int
    tags__json: str


class Dataset(NamedTuple):
    """What one event says about a dataset, by the name it was sent under (`datasets`)."""

    namespace: str
    name: str
    dataset_key: str
    canonical_namespace: str
    canonical_name: str
    first_seen: int
    last_seen: int
    version__time: int
    version__id: str
    storage__time: int
    storage__json: str
    datasource__time: int
    datasource__json: str
    symlinks__time: int
    symlinks__json: str
    lifecycle__time: int
    lifecycle__state: str
    documentation__time: int
    documentation__description: str
    ownership__time: int
    ownership__json: str


class DatasetVersion(NamedTuple):
    """One schema/version of a dataset (`dataset_versions`): a new one when either changes."""

    namespace: str
    name: str
    version_id: str
    schema_hash: str
    dataset_version: str
    field_names: list[str]  # nested fields as dotted paths
    field_types: list[str]
    field_descriptions: list[str]
    fields_json: str
    first__time: int
    first__run_id: str
    last__time: int
    last__run_id: str


class IoEdge(NamedTuple):
    """A run read (`input`) or wrote (`output`) a dataset (`io_edges`)."""

    job_namespace: str
    job_name: str
    run_id: str  # empty for a JobEvent's declared lineage
    direction: str
    namespace: str
    name: str
    dataset_key: str
    version_id: str
    first_seen: int
    last_seen: int
    row_count: int | None
    byte_count: int | None
    file_count: int | None


class ColumnEdge(NamedTuple):
    """An output field depends on an input field (`column_edges`); an empty
    `output_field` is a dependency of the whole output dataset."""

    output_namespace: str
    output_name: str
    output_field: str
    input_namespace: str
    input_name: str
    input_field: str
    run_id: str
    transformation_type: str
    transformation_subtype: str
    output_dataset_key: str
    input_dataset_key: str
    job_namespace: str
    job_name: str
    description: str
    masking: int
    first_seen: int
    last_seen: int


class Facet(NamedTuple):
    """One facet of one event, standard or custom, as sent (`facets`)."""

    event_id: str
    event_time: int
    run_id: str
    job_namespace: str
    job_name: str
    entity_kind: str  # run, job, dataset, input or output
    entity_namespace: str
    entity_name: str
    facet_group: str  # facets, inputFacets or outputFacets
    facet_name: str
    standard: int
    schema_url: str
    producer: str
    value: str  # the facet's JSON, or a summary when it is over the size limit
    value_bytes: int
    truncated: int


class DatasetAlias(NamedTuple):
    """A `symlinks` identifier of a dataset (`dataset_aliases`)."""

    namespace: str
    name: str
    alias_namespace: str
    alias_name: str
    alias_type: str
    dataset_key: str
    alias_key: str
    first_seen: int
    last_seen: int


class DeadLetterRow(NamedTuple):
    """A message that is not a valid event, whole, with every reason (`dead_letters`)."""

    dead_letter_id: str
    event_id: str | None
    origin: str
    reason_paths: list[str]
    reason_messages: list[str]
    reason_count: int
    message_key: bytes
    value: bytes
    value_bytes: int
    source_topic: str
    source_partition: int
    source_offset: int
    dead_lettered_at: int


class Kind(NamedTuple):
    name: str  # also the Avro schema file, the topic suffix and the table
    row: type


# Also the sink's insert order within one flush: runs last, so that a reader who sees a
# run also sees its edges, datasets and facets.
KINDS: tuple[Kind, ...] = (
    Kind("events_raw", RawEvent),
    Kind("dead_letters", DeadLetterRow),
    Kind("jobs", Job),
    Kind("datasets", Dataset),
    Kind("dataset_versions", DatasetVersion),
    Kind("dataset_aliases", DatasetAlias),
    Kind("io_edges", IoEdge),
    Kind("column_edges", ColumnEdge),
    Kind("facets", Facet),
    Kind("runs", Run),
)
KIND_NAMES = tuple(kind.name for kind in KINDS)
ROW_TYPES = {kind.name: kind.row for kind in KINDS}


def table_columns(kind: str) -> list[tuple[str, tuple[str, ...]]]:
    """The ClickHouse columns of a kind's table, each with the record fields it is made
    of: one field, or the `<column>__<part>` fields of a Tuple column, in order."""
    columns: dict[str, list[str]] = {}
    for field in ROW_TYPES[kind]._fields:
        column, _, _ = field.partition("__")
        columns.setdefault(column, []).append(field)
    return [(column, tuple(fields)) for column, fields in columns.items()]
