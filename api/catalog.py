"""The catalog in ClickHouse: namespaces, jobs, datasets and their versions, runs, facets,
search, raw events, and what people add through the API (tags, descriptions, soft
deletes, in the `annotations` table of migration 0006).

SQL and rows in, plain dicts out (snake_case, times as ISO-8601 UTC strings); no HTTP.
The native routes (`v2_catalog.py`) and the Marquez-compatible ones share these
functions. Callers check access to a single object (`Caller.check_read`) themselves;
lists, search and events here are limited to the namespaces a caller may read, and a
job's SQL and source code appear only when `caller.sees_sql(namespace)`.

Rules every query follows:
- every user value is a server-side parameter (`{name:Type}`), never formatted into SQL;
- tables are read with FINAL, and Tuple parts with tupleElement() in a query over a
  `SELECT * FROM t FINAL` subquery (a subcolumn read straight on FINAL skips the merge);
- a soft-deleted dataset or job is hidden until an event about it is newer than the
  deletion (`last_seen > deleted_at`).
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from clickhouse_connect.driver.client import Client

from lineagehouse.api.access import Caller, redact_job_facets, redact_payload
from lineagehouse.processors.issues import schema_diff

EntityKind = Literal["dataset", "job"]
SEARCH_TYPES = ("dataset", "job", "run")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ANNOTATION_COLUMNS = (
    "entity_kind",
    "namespace",
    "name",
    "field",
    "attribute",
    "key",
    "value",
    "active",
    "updated_at",
    "updated_by",
    "version",
)


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a list and how many there are in all."""

    items: list[dict[str, Any]]
    total: int

    def body(self, limit: int, offset: int) -> dict[str, Any]:
        return {"items": self.items, "total": self.total, "limit": limit, "offset": offset}


# --- pure helpers -----------------------------------------------------------------------


def scope_regex(patterns: tuple[str, ...] | list[str]) -> str | None:
    """An RE2 regex (ClickHouse `match`) equal to fnmatchcase against any of `patterns`;
    None for no patterns (every namespace)."""
    if not patterns:
        return None
    return "^(?:" + "|".join(_fnmatch_re2(p) for p in patterns) + ")$"


def _fnmatch_re2(pattern: str) -> str:
    out: list[str] = []
    i, n = 0, len(pattern)
    while i < n:
        c = pattern[i]
        i += 1
        if c == "*":
            out.append("(?s:.*)")
        elif c == "?":
            out.append("(?s:.)")
        elif c == "[":
            j = i
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:  # no closing bracket: a literal "["
                out.append(r"\[")
                continue
            body = pattern[i:j]
            i = j + 1
            negate = body.startswith("!")
            if negate:
                body = body[1:]
            body = body.replace("\\", r"\\").replace("[", r"\[").replace("^", r"\^")
            out.append("[" + ("^" if negate else "") + body + "]")
        else:
            out.append(_re_literal(c))
    return "".join(out)


def _re_literal(c: str) -> str:
    return "\\" + c if c in r"\.+*?()|[]{}^$-" else c


def iso(value: datetime | None) -> str | None:
    """ISO-8601 UTC with milliseconds and `Z`; None for None and for the epoch (ClickHouse's
    zero value where a time is absent)."""
    if value is None:
        return None
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if aware <= _EPOCH:
        return None
    return aware.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _facets_of(
    names: list[str], ids: list[str], inline_json: str, values: dict[str, Any]
) -> dict[str, Any]:
    """One `facets` row's facets: those kept inline (a run's, statistics, every facet of
    rows written before migration 0012) and each other one's value by its id."""
    facets = parse_json(inline_json) or {}
    for name, facet_id in zip(names, ids, strict=False):
        if facet_id in values:
            facets[name] = values[facet_id]
    return facets


def parse_json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


def _none(text: str | None) -> str | None:
    return text or None


def schema_changes(
    previous: list[dict[str, Any]] | None, current: list[dict[str, Any]]
) -> dict[str, Any] | None:
    """Fields added, removed and retyped from `previous` to `current` (None: no previous
    schema to compare with); the same rule as the schema_changed issue."""
    if previous is None:
        return None
    return schema_diff(
        [(f["name"], f["type"]) for f in previous], [(f["name"], f["type"]) for f in current]
    )


def dict_rows(client: Client, sql: str, params: dict[str, Any] | None = None) -> list[dict]:
    """A query's rows as dicts keyed by column name."""
    result = client.query(sql, parameters=params or {})
    names = result.column_names
    return [dict(zip(names, row, strict=True)) for row in result.result_rows]


class Where:
    """Conditions and their server-side parameters."""

    def __init__(self) -> None:
        self.conditions: list[str] = []
        self.params: dict[str, Any] = {}

    def add(self, condition: str, **params: Any) -> Where:
        self.conditions.append(condition)
        self.params.update(params)
        return self

    def scope(self, column: str, caller: Caller) -> Where:
        regex = scope_regex(caller.namespace_patterns())
        if regex is not None:
            self.add(f"match({column}, {{scope:String}})", scope=regex)
        return self

    def sql(self) -> str:
        return ("WHERE " + " AND ".join(self.conditions)) if self.conditions else ""


def runs_of_jobs(db: str, jobs: str) -> str:
    """A condition keeping the runs of the jobs that `jobs` (a condition on job_namespace
    and job_name) selects, found through the `job_runs` index: `runs` is ordered by run
    id, so a condition on the job alone would read every run ever stored."""
    return f"run_id IN (SELECT run_id FROM {db}.job_runs WHERE {jobs})"


# --- the adapter -----------------------------------------------------------------------


class Catalog:
    """Reads and writes of the catalog on one ClickHouse client and database."""

    def __init__(self, client: Client, db: str) -> None:
        self.client = client
        self.db = db

    # -- building blocks ----------------------------------------------------------------

    def _rows(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        return dict_rows(self.client, sql, params)

    def _count(self, sql: str, params: dict[str, Any]) -> int:
        return int(self.client.command(f"SELECT count() FROM ({sql})", parameters=params))

    def _deleted_sql(self, kind: EntityKind) -> str:
        return (
            "SELECT namespace, name, updated_at AS deleted_at FROM "
            f"(SELECT * FROM {self.db}.annotations FINAL WHERE entity_kind = '{kind}' "
            "AND attribute = 'deleted' AND field = '' AND key = '') WHERE active = 1"
        )

    def _visible(self, kind: EntityKind, inner_sql: str) -> str:
        """`inner_sql` (rows with namespace, name, last_seen) without soft-deleted ones."""
        return (
            f"SELECT * FROM ({inner_sql}) AS e "
            f"LEFT ANY JOIN ({self._deleted_sql(kind)}) AS d USING (namespace, name) "
            "WHERE e.last_seen > d.deleted_at"
        )

    def _jobs_sql(self, inner: Where | None = None) -> str:
        where = inner.sql() if inner else ""
        return self._visible(
            "job",
            "SELECT namespace, name, first_seen, last_seen, "
            "tupleElement(latest_run, 'time') AS latest_run_time, "
            "tupleElement(latest_run, 'run_id') AS latest_run_id, "
            "integration, processing_type, job_type, parent_job_namespace, parent_job_name, "
            "tupleElement(sql, 'query') AS sql_query, "
            "tupleElement(source_code, 'json') AS source_code_json, "
            "tupleElement(source_code_location, 'url') AS source_code_url, "
            "tupleElement(documentation, 'description') AS documentation, "
            "tupleElement(ownership, 'json') AS ownership_json, "
            "tupleElement(tags, 'json') AS tags_json "
            f"FROM (SELECT * FROM {self.db}.jobs FINAL {where})",
        )

    def _datasets_sql(self, inner: Where | None = None) -> str:
        where = inner.sql() if inner else ""
        return self._visible(
            "dataset",
            "SELECT namespace, name, dataset_key, canonical_namespace, canonical_name, "
            "first_seen, last_seen, "
            "tupleElement(version, 'time') AS version_time, "
            "tupleElement(version, 'id') AS version_id, "
            "tupleElement(storage, 'json') AS storage_json, "
            "tupleElement(datasource, 'json') AS datasource_json, "
            "tupleElement(symlinks, 'json') AS symlinks_json, "
            "tupleElement(lifecycle, 'state') AS lifecycle_state, "
            "tupleElement(documentation, 'description') AS documentation, "
            "tupleElement(ownership, 'json') AS ownership_json "
            f"FROM (SELECT * FROM {self.db}.datasets FINAL {where})",
        )

    def _annotations(
        self, kind: EntityKind, keys: list[tuple[str, str]]
    ) -> dict[tuple[str, str], dict[str, dict[str, Any]]]:
        """(namespace, name) -> field ('' for the entity) -> {"tags": [...], "description"}."""
        found: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        if not keys:
            return found
        rows = self.client.query(
            "SELECT namespace, name, field, attribute, key, value FROM "
            f"(SELECT * FROM {self.db}.annotations FINAL WHERE entity_kind = {{kind:String}} "
            "AND (namespace, name) IN {keys:Array(Tuple(String, String))}) "
            "WHERE active = 1 AND attribute IN ('tag', 'description') "
            "ORDER BY namespace, name, field, key",
            parameters={"kind": kind, "keys": keys},
        ).result_rows
        for namespace, name, field, attribute, key, value in rows:
            entry = found.setdefault((namespace, name), {}).setdefault(
                field, {"tags": [], "description": None}
            )
            if attribute == "tag":
                entry["tags"].append(key)
            else:
                entry["description"] = value
        return found

    # -- namespaces ---------------------------------------------------------------------

    def list_namespaces(
        self, caller: Caller, limit: int, offset: int, name: str | None = None
    ) -> Page:
        """Namespaces with counts of their jobs and datasets (`name`: only that one)."""
        where = Where().scope("namespace", caller)
        if name is not None:
            where.add("namespace = {name:String}", name=name)
        sql = (
            "SELECT namespace, sum(jobs) AS jobs, sum(datasets) AS datasets, "
            "min(first) AS first_seen, max(last) AS last_seen FROM ("
            "SELECT namespace, count() AS jobs, 0 AS datasets, min(first_seen) AS first, "
            f"max(last_seen) AS last FROM ({self._jobs_sql()}) GROUP BY namespace "
            "UNION ALL "
            "SELECT namespace, 0, count(), min(first_seen), max(last_seen) "
            f"FROM ({self._datasets_sql()}) GROUP BY namespace"
            f") {where.sql()} GROUP BY namespace"
        )
        rows = self._rows(
            f"{sql} ORDER BY namespace LIMIT {{limit:UInt32}} OFFSET {{offset:UInt64}}",
            {**where.params, "limit": limit, "offset": offset},
        )
        items = [
            {
                "name": r["namespace"],
                "jobs": int(r["jobs"]),
                "datasets": int(r["datasets"]),
                "first_seen": iso(r["first_seen"]),
                "last_seen": iso(r["last_seen"]),
            }
            for r in rows
        ]
        return Page(items, self._count(sql, where.params))

    # -- jobs ---------------------------------------------------------------------------

    def list_jobs(
        self,
        caller: Caller,
        namespace: str | None,
        limit: int,
        offset: int,
        latest_states: list[str] | None = None,
    ) -> Page:
        """Jobs (`latest_states`: only those whose latest run is in one of these states,
        '' for a job without runs)."""
        inner = Where()
        if namespace is not None:
            inner.add("namespace = {namespace:String}", namespace=namespace)
        outer = Where().scope("namespace", caller)
        if latest_states is not None:
            outer.add(
                "(latest_run_id IN (SELECT run_id FROM "
                f"{self.db}.run_states WHERE state_name IN {{states:Array(String)}}) "
                "OR (latest_run_id = '' AND has({states:Array(String)}, '')))",
                states=latest_states,
            )
        sql = f"SELECT * FROM ({self._jobs_sql(inner)}) {outer.sql()}"
        params = {**inner.params, **outer.params}
        rows = self._rows(
            f"{sql} ORDER BY namespace, name LIMIT {{limit:UInt32}} OFFSET {{offset:UInt64}}",
            {**params, "limit": limit, "offset": offset},
        )
        return Page(self._jobs(rows, caller), self._count(sql, params))

    def get_job(self, caller: Caller, namespace: str, name: str) -> dict[str, Any] | None:
        inner = Where().add(
            "namespace = {namespace:String} AND name = {name:String}",
            namespace=namespace,
            name=name,
        )
        rows = self._rows(self._jobs_sql(inner), inner.params)
        return self._jobs(rows, caller)[0] if rows else None

    def job_exists(self, namespace: str, name: str) -> bool:
        inner = Where().add(
            "namespace = {namespace:String} AND name = {name:String}",
            namespace=namespace,
            name=name,
        )
        return self._count(self._jobs_sql(inner), inner.params) > 0

    def _jobs(self, rows: list[dict[str, Any]], caller: Caller) -> list[dict[str, Any]]:
        keys = [(r["namespace"], r["name"]) for r in rows]
        notes = self._annotations("job", keys)
        run_ids = sorted({r["latest_run_id"] for r in rows if r["latest_run_id"]})
        runs: dict[str, dict[str, Any]] = {}
        if run_ids:
            where = Where().add("run_id IN {ids:Array(String)}", ids=run_ids)
            runs = {run["run_id"]: run for run in self._run_rows(where)}
        edges = self._edges_of_runs([(r["namespace"], r["name"], r["latest_run_id"]) for r in rows])
        items = []
        for r in rows:
            key = (r["namespace"], r["name"])
            note = notes.get(key, {}).get("", {"tags": [], "description": None})
            run = runs.get(r["latest_run_id"])
            facets: dict[str, Any] = {}
            if r["documentation"]:
                facets["documentation"] = {"description": r["documentation"]}
            if r["ownership_json"]:
                facets["ownership"] = parse_json(r["ownership_json"])
            if r["tags_json"]:
                facets["tags"] = parse_json(r["tags_json"])
            if r["source_code_url"]:
                facets["sourceCodeLocation"] = {"url": r["source_code_url"]}
            if r["sql_query"]:
                facets["sql"] = {"query": r["sql_query"]}
            if r["source_code_json"]:
                facets["sourceCode"] = parse_json(r["source_code_json"])
            if not caller.sees_sql(r["namespace"]):
                facets = redact_job_facets(facets) or {}
            run_edges = edges.get((r["namespace"], r["name"], r["latest_run_id"]), {})
            items.append(
                {
                    "namespace": r["namespace"],
                    "name": r["name"],
                    "type": _none(r["job_type"]),
                    "integration": _none(r["integration"]),
                    "processing_type": _none(r["processing_type"]),
                    "parent_job_namespace": _none(r["parent_job_namespace"]),
                    "parent_job_name": _none(r["parent_job_name"]),
                    "description": note["description"] or _none(r["documentation"]),
                    "tags": note["tags"],
                    "first_seen": iso(r["first_seen"]),
                    "last_seen": iso(r["last_seen"]),
                    "latest_run": _latest_run(run) if run else None,
                    "inputs": run_edges.get("input", []),
                    "outputs": run_edges.get("output", []),
                    "facets": facets,
                }
            )
        return items

    def _edges_of_runs(
        self, runs: list[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], dict[str, list[dict[str, Any]]]]:
        """(job namespace, job name, run id) -> direction -> datasets; run id '' is the
        lineage a JobEvent declared."""
        found: dict[tuple[str, str, str], dict[str, list[dict[str, Any]]]] = {}
        if not runs:
            return found
        rows = self._rows(
            "SELECT job_namespace, job_name, run_id, direction, namespace, name, version_id, "
            "row_count, byte_count, file_count FROM "
            f"(SELECT * FROM {self.db}.io_edges FINAL WHERE "
            "(job_namespace, job_name, run_id) IN {runs:Array(Tuple(String, String, String))}) "
            "ORDER BY direction, namespace, name",
            {"runs": runs},
        )
        for e in rows:
            key = (e["job_namespace"], e["job_name"], e["run_id"])
            found.setdefault(key, {}).setdefault(e["direction"], []).append(
                {
                    "namespace": e["namespace"],
                    "name": e["name"],
                    "version_id": _none(e["version_id"]),
                    "row_count": e["row_count"],
                    "byte_count": e["byte_count"],
                    "file_count": e["file_count"],
                }
            )
        return found

    # -- datasets -----------------------------------------------------------------------

    def list_datasets(self, caller: Caller, namespace: str | None, limit: int, offset: int) -> Page:
        inner = Where()
        if namespace is not None:
            inner.add("namespace = {namespace:String}", namespace=namespace)
        outer = Where().scope("namespace", caller)
        sql = f"SELECT * FROM ({self._datasets_sql(inner)}) {outer.sql()}"
        params = {**inner.params, **outer.params}
        rows = self._rows(
            f"{sql} ORDER BY namespace, name LIMIT {{limit:UInt32}} OFFSET {{offset:UInt64}}",
            {**params, "limit": limit, "offset": offset},
        )
        return Page(self._datasets(rows), self._count(sql, params))

    def get_dataset(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The dataset with its aliases and the jobs that produce and consume it."""
        row = self._dataset_row(namespace, name)
        if row is None:
            return None
        item = self._datasets([row])[0]
        item["aliases"] = [
            {"namespace": ns, "name": n, "type": _none(t)}
            for ns, n, t in self.client.query(
                "SELECT alias_namespace, alias_name, alias_type FROM "
                f"(SELECT * FROM {self.db}.dataset_aliases FINAL "
                "WHERE namespace = {namespace:String} AND name = {name:String}) "
                "ORDER BY alias_namespace, alias_name",
                parameters={"namespace": namespace, "name": name},
            ).result_rows
        ]
        jobs = self._rows(
            "SELECT direction, job_namespace, job_name, max(last_seen) AS seen_last FROM "
            f"(SELECT * FROM {self.db}.dataset_io FINAL "
            "WHERE namespace = {namespace:String} AND name = {name:String}) "
            "GROUP BY direction, job_namespace, job_name ORDER BY job_namespace, job_name",
            {"namespace": namespace, "name": name},
        )
        for direction, field in (("output", "produced_by"), ("input", "consumed_by")):
            item[field] = [
                {
                    "namespace": j["job_namespace"],
                    "name": j["job_name"],
                    "last_seen": iso(j["seen_last"]),
                }
                for j in jobs
                if j["direction"] == direction
            ]
        return item

    def _dataset_row(self, namespace: str, name: str) -> dict[str, Any] | None:
        inner = Where().add(
            "namespace = {namespace:String} AND name = {name:String}",
            namespace=namespace,
            name=name,
        )
        rows = self._rows(self._datasets_sql(inner), inner.params)
        return rows[0] if rows else None

    def dataset_fields(self, namespace: str, name: str) -> list[str] | None:
        """The field names of a visible dataset's current schema (None: no such dataset)."""
        row = self._dataset_row(namespace, name)
        if row is None:
            return None
        versions = self._versions([(namespace, name, row["version_id"])])
        found = versions.get((namespace, name, row["version_id"]))
        return list(found["field_names"]) if found else []

    def _versions(
        self, keys: list[tuple[str, str, str]]
    ) -> dict[tuple[str, str, str], dict[str, Any]]:
        keys = [k for k in keys if k[2]]
        if not keys:
            return {}
        rows = self._rows(
            "SELECT namespace, name, version_id, schema_hash, dataset_version, field_names, "
            f"field_types, field_descriptions FROM {self.db}.dataset_versions FINAL "
            "WHERE (namespace, name, version_id) IN {keys:Array(Tuple(String, String, String))}",
            {"keys": keys},
        )
        return {(r["namespace"], r["name"], r["version_id"]): r for r in rows}

    def _datasets(self, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        keys = [(r["namespace"], r["name"]) for r in rows]
        notes = self._annotations("dataset", keys)
        versions = self._versions([(r["namespace"], r["name"], r["version_id"]) for r in rows])
        items = []
        for r in rows:
            key = (r["namespace"], r["name"])
            fields_notes = notes.get(key, {})
            note = fields_notes.get("", {"tags": [], "description": None})
            version = versions.get((r["namespace"], r["name"], r["version_id"]))
            items.append(
                {
                    "namespace": r["namespace"],
                    "name": r["name"],
                    "dataset_key": r["dataset_key"],
                    "canonical_namespace": r["canonical_namespace"],
                    "canonical_name": r["canonical_name"],
                    "description": note["description"] or _none(r["documentation"]),
                    "tags": note["tags"],
                    "first_seen": iso(r["first_seen"]),
                    "last_seen": iso(r["last_seen"]),
                    "current_version": _none(r["version_id"]),
                    "dataset_version": _none(version["dataset_version"]) if version else None,
                    "schema_hash": _none(version["schema_hash"]) if version else None,
                    "fields": _fields(version, fields_notes) if version else [],
                    "storage": parse_json(r["storage_json"]),
                    "datasource": parse_json(r["datasource_json"]),
                    "symlinks": parse_json(r["symlinks_json"]),
                    "lifecycle_state": _none(r["lifecycle_state"]),
                    "documentation": _none(r["documentation"]),
                    "ownership": parse_json(r["ownership_json"]),
                }
            )
        return items

    def dataset_versions(self, namespace: str, name: str, limit: int, offset: int) -> Page | None:
        """Every schema/version a dataset had, newest first, with when and by which run it
        was first seen and what changed against the version before (None: no dataset)."""
        row = self._dataset_row(namespace, name)
        if row is None:
            return None
        params = {"namespace": namespace, "name": name}
        versions = self._rows(
            "SELECT version_id, schema_hash, dataset_version, field_names, field_types, "
            f"field_descriptions FROM {self.db}.dataset_versions FINAL "
            "WHERE namespace = {namespace:String} AND name = {name:String}",
            params,
        )
        seen = {
            r["version_id"]: r
            for r in self._rows(
                "SELECT version_id, min(first_seen) AS created_at, max(last_seen) AS seen_last, "
                "argMin(run_id, first_seen) AS first_run_id, "
                "argMin(job_namespace, first_seen) AS first_job_namespace, "
                "argMin(job_name, first_seen) AS first_job_name, "
                "uniqExactIf(run_id, run_id != '') AS runs FROM "
                f"(SELECT * FROM {self.db}.dataset_io FINAL "
                "WHERE namespace = {namespace:String} AND name = {name:String} "
                "AND version_id != '') GROUP BY version_id",
                params,
            )
        }
        items = []
        for v in versions:
            s = seen.get(v["version_id"])
            created = s["created_at"] if s else None
            if created is None and v["version_id"] == row["version_id"]:
                created = row["version_time"]  # a DatasetEvent's version: no run saw it
            items.append(
                {
                    "version_id": v["version_id"],
                    "dataset_version": _none(v["dataset_version"]),
                    "schema_hash": _none(v["schema_hash"]),
                    "created_at": iso(created),
                    "last_seen": iso(s["seen_last"]) if s else iso(created),
                    "run_id": _none(s["first_run_id"]) if s else None,
                    "job_namespace": s["first_job_namespace"] if s else None,
                    "job_name": s["first_job_name"] if s else None,
                    "runs": int(s["runs"]) if s else 0,
                    "current": v["version_id"] == row["version_id"],
                    "fields": _fields(v, {}),
                    "_order": (created or _EPOCH).replace(tzinfo=None),
                }
            )
        items.sort(key=lambda i: (i["_order"], i["version_id"]))
        previous: list[dict[str, Any]] | None = None
        for item in items:
            del item["_order"]
            if item["schema_hash"] is None:
                item["changes"] = None
                continue
            item["changes"] = schema_changes(previous, item["fields"])
            previous = item["fields"]
        items.reverse()
        return Page(items[offset : offset + limit], len(items))

    # -- runs ---------------------------------------------------------------------------

    def _run_rows(
        self, where: Where, order: str = "", limit: int | None = None, offset: int = 0
    ) -> list[dict[str, Any]]:
        params = dict(where.params)
        tail = ""
        if limit is not None:
            tail = " LIMIT {limit:UInt32} OFFSET {offset:UInt64}"
            params.update(limit=limit, offset=offset)
        return self._rows(f"SELECT * FROM {self.db}.run_states {where.sql()} {order}{tail}", params)

    def list_runs(
        self,
        caller: Caller,
        namespace: str | None,
        job: str | None,
        state: str | None,
        started_after: datetime | None,
        started_before: datetime | None,
        limit: int,
        offset: int,
    ) -> Page:
        where = Where().scope("job_namespace", caller)
        if namespace is not None:
            where.add("job_namespace = {namespace:String}", namespace=namespace)
        if job is not None:
            where.add("job_name = {job:String}", job=job)
        if namespace is not None:  # a prefix of job_runs' key: read those runs only
            jobs = "job_namespace = {namespace:String}"
            if job is not None:
                jobs += " AND job_name = {job:String}"
            where.add(runs_of_jobs(self.db, jobs))
        if state is not None:
            where.add("state_name = {state:String}", state=state.upper())
        if started_after is not None:
            where.add("started >= {after:DateTime64(3, 'UTC')}", after=utc(started_after))
        if started_before is not None:
            where.add("started <= {before:DateTime64(3, 'UTC')}", before=utc(started_before))
        rows = self._run_rows(where, "ORDER BY started DESC, run_id", limit, offset)
        total = self._count(f"SELECT run_id FROM {self.db}.run_states {where.sql()}", where.params)
        return Page([_run(r) for r in rows], total)

    def get_run(self, run_id: str) -> dict[str, Any] | None:
        """The run with the datasets it read and wrote."""
        rows = self._run_rows(Where().add("run_id = {run_id:String}", run_id=run_id))
        if not rows:
            return None
        item = _run(rows[0])
        edges = self._edges_of_runs([(item["job_namespace"], item["job_name"], run_id)])
        found = edges.get((item["job_namespace"], item["job_name"], run_id), {})
        item["inputs"] = found.get("input", [])
        item["outputs"] = found.get("output", [])
        return item

    def run_facets(self, caller: Caller, run_id: str) -> dict[str, Any] | None:
        """Every facet the run's events carried, by entity, split into standard and custom
        (a later event's facet replaces an earlier one of the same name)."""
        rows = self._rows(
            "SELECT event_time, entity_kind, entity_namespace, entity_name, facet_group, "
            f"facet_names, facet_ids, facets_json, custom, summarised FROM {self.db}.facets "
            "FINAL WHERE run_id = {run_id:String} ORDER BY event_time, event_id",
            {"run_id": run_id},
        )
        if not rows:
            return None
        values = self.facet_values(i for r in rows for i in r["facet_ids"])
        merged: dict[tuple[str, str, str, str], dict[str, Any]] = {}
        custom: dict[tuple[str, str, str, str], set[str]] = {}
        summarised: dict[tuple[str, str, str, str], set[str]] = {}
        job_namespace = job_name = ""
        for r in rows:
            key = (r["entity_kind"], r["entity_namespace"], r["entity_name"], r["facet_group"])
            facets = _facets_of(r["facet_names"], r["facet_ids"], r["facets_json"], values)
            merged.setdefault(key, {}).update(facets)
            names = custom.setdefault(key, set())
            names.difference_update(facets)  # the latest event decides
            names.update(r["custom"])
            summarised.setdefault(key, set()).update(r["summarised"])
            if r["entity_kind"] in ("run", "job"):
                job_namespace, job_name = r["entity_namespace"], r["entity_name"]

        def split(key: tuple[str, str, str, str]) -> dict[str, Any]:
            facets = merged.get(key, {})
            if key[0] == "job" and not caller.sees_sql(key[1]):
                facets = redact_job_facets(facets) or {}
            names = custom.get(key, set())
            return {
                "standard": {k: v for k, v in facets.items() if k not in names},
                "custom": {k: v for k, v in facets.items() if k in names},
                "summarised": sorted(summarised.get(key, set())),
            }

        body: dict[str, Any] = {
            "run_id": run_id,
            "job_namespace": job_namespace,
            "job_name": job_name,
            "run": split(("run", job_namespace, job_name, "facets")),
            "job": split(("job", job_namespace, job_name, "facets")),
        }
        for kind, group in (("input", "inputFacets"), ("output", "outputFacets")):
            datasets = sorted({(k[1], k[2]) for k in merged if k[0] == kind})
            body[kind + "s"] = [
                {
                    "namespace": ns,
                    "name": n,
                    "facets": split((kind, ns, n, "facets")),
                    group_name(group): split((kind, ns, n, group)),
                }
                for ns, n in datasets
            ]
        return body

    # -- search -------------------------------------------------------------------------

    def search(
        self,
        caller: Caller,
        q: str,
        types: list[str] | None,
        namespace: str | None,
        limit: int,
        offset: int,
    ) -> Page:
        """Datasets and jobs by name, runs by id: case-insensitive substring; exact
        matches first, then prefixes, then the rest, shorter names first."""
        where = Where().add("positionCaseInsensitiveUTF8(text, {q:String}) > 0", q=q)
        where.add("type IN {types:Array(String)}", types=list(types or SEARCH_TYPES))
        where.scope("namespace", caller)
        if namespace is not None:
            where.add("namespace = {namespace:String}", namespace=namespace)
        sql = (
            "SELECT type, namespace, name, run_id, text, updated_at, "
            "multiIf(lowerUTF8(text) = lowerUTF8({q:String}), 0, "
            "startsWith(lowerUTF8(text), lowerUTF8({q:String})), 1, 2) AS rank FROM ("
            "SELECT 'dataset' AS type, namespace, name, '' AS run_id, name AS text, "
            f"last_seen AS updated_at FROM ({self._datasets_sql()}) "
            "UNION ALL SELECT 'job', namespace, name, '', name, last_seen "
            f"FROM ({self._jobs_sql()}) "
            "UNION ALL SELECT 'run', job_namespace, job_name, run_id, run_id, last_event_time "
            f"FROM {self.db}.run_states"
            f") {where.sql()}"
        )
        rows = self._rows(
            f"{sql} ORDER BY rank, length(text), text, type, namespace "
            "LIMIT {limit:UInt32} OFFSET {offset:UInt64}",
            {**where.params, "limit": limit, "offset": offset},
        )
        items = [
            {
                "type": r["type"],
                "namespace": r["namespace"],
                "name": r["name"],
                "run_id": _none(r["run_id"]),
                "match": ("exact", "prefix", "substring")[r["rank"]],
                "updated_at": iso(r["updated_at"]),
            }
            for r in rows
        ]
        return Page(items, self._count(sql, where.params))

    # -- events -------------------------------------------------------------------------

    def list_events(
        self,
        caller: Caller,
        after: datetime | None,
        before: datetime | None,
        namespace: str | None,
        job: str | None,
        run_id: str | None,
        descending: bool,
        limit: int,
        offset: int,
    ) -> Page:
        """Raw events by event time (SQL and source code redacted unless the caller sees
        them); each item is the event as sent."""
        ns = "if(job_namespace != '', job_namespace, dataset_namespace)"
        where = Where().scope(ns, caller)
        if after is not None:
            where.add("event_time >= {after:DateTime64(3, 'UTC')}", after=utc(after))
        if before is not None:
            where.add("event_time <= {before:DateTime64(3, 'UTC')}", before=utc(before))
        if namespace is not None:
            where.add(f"{ns} = {{namespace:String}}", namespace=namespace)
        if job is not None:
            where.add("job_name = {job:String}", job=job)
        if run_id is not None:
            where.add("run_id = {run_id:String}", run_id=run_id)
        order = "DESC" if descending else "ASC"
        sql = f"SELECT event_id, event_time, payload FROM {self.db}.events_raw FINAL {where.sql()}"
        rows = self.client.query(
            f"{sql} ORDER BY event_time {order}, event_id {order} "
            "LIMIT {limit:UInt32} OFFSET {offset:UInt64}",
            parameters={**where.params, "limit": limit, "offset": offset},
        ).result_rows
        items = [orjson.loads(redact_payload(payload, caller)) for _, _, payload in rows]
        return Page(items, self._count(sql, where.params))

    # -- batches by key (the Marquez routes, lineage node data) ---------------------------

    def jobs_of(
        self, caller: Caller, keys: list[tuple[str, str]]
    ) -> dict[tuple[str, str], dict[str, Any]]:
        """Visible jobs by (namespace, name), as `list_jobs` makes them."""
        if not keys:
            return {}
        inner = Where().add("(namespace, name) IN {keys:Array(Tuple(String, String))}", keys=keys)
        rows = self._rows(self._jobs_sql(inner), inner.params)
        return {(j["namespace"], j["name"]): j for j in self._jobs(rows, caller)}

    def datasets_of(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """Visible datasets by (namespace, name), as `list_datasets` makes them."""
        if not keys:
            return {}
        inner = Where().add("(namespace, name) IN {keys:Array(Tuple(String, String))}", keys=keys)
        rows = self._rows(self._datasets_sql(inner), inner.params)
        return {(d["namespace"], d["name"]): d for d in self._datasets(rows)}

    def dataset_extras(self, keys: list[tuple[str, str]]) -> dict[tuple[str, str], dict[str, Any]]:
        """(namespace, name) -> {"facets": the latest of each dataset facet any event
        carried, "last_modified": when a completed run last wrote it (ISO or None)}."""
        found: dict[tuple[str, str], dict[str, Any]] = {
            k: {"facets": {}, "last_modified": None} for k in keys
        }
        if not keys:
            return found
        params = {"keys": keys}
        wanted = "(namespace, name) IN {keys:Array(Tuple(String, String))}"
        for ns, name, facet, value in self.client.query(
            "SELECT namespace, name, facet, tupleElement(latest, 'json') FROM "
            f"(SELECT * FROM {self.db}.dataset_facets FINAL WHERE {wanted}) ORDER BY facet",
            parameters=params,
        ).result_rows:
            parsed = parse_json(value)
            if (ns, name) in found and parsed is not None:
                found[(ns, name)]["facets"][facet] = parsed
        writes = f"SELECT * FROM {self.db}.dataset_io FINAL WHERE direction = 'output' AND {wanted}"
        for ns, name, modified in self.client.query(
            f"SELECT namespace, name, max(e.last_seen) FROM ({writes}) AS e "
            f"INNER JOIN (SELECT run_id FROM {self.db}.run_states WHERE run_id IN "
            f"(SELECT run_id FROM ({writes})) AND state_name = 'COMPLETE') AS r "
            "ON r.run_id = e.run_id GROUP BY namespace, name",
            parameters=params,
        ).result_rows:
            found[(ns, name)]["last_modified"] = iso(modified)
        return found

    def latest_runs(
        self, caller: Caller, keys: list[tuple[str, str]], per_job: int
    ) -> dict[tuple[str, str], list[dict[str, Any]]]:
        """Up to `per_job` runs of each job, newest start first."""
        found: dict[tuple[str, str], list[dict[str, Any]]] = {k: [] for k in keys}
        if not keys:
            return found
        where = Where().scope("job_namespace", caller)
        wanted = "(job_namespace, job_name) IN {keys:Array(Tuple(String, String))}"
        where.add(wanted, keys=keys).add(runs_of_jobs(self.db, wanted))
        rows = self._rows(
            f"SELECT * FROM {self.db}.run_states {where.sql()} "
            "ORDER BY started DESC, run_id LIMIT {per_job:UInt32} BY job_namespace, job_name",
            {**where.params, "per_job": per_job},
        )
        for r in rows:
            found.setdefault((r["job_namespace"], r["job_name"]), []).append(_run(r))
        return found

    def run_details(self, runs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """run id -> {"inputs", "outputs", "facets"}: the datasets each run read and wrote
        and its run facets (the latest of each name), for runs as `list_runs` makes them."""
        found: dict[str, dict[str, Any]] = {
            r["run_id"]: {"inputs": [], "outputs": [], "facets": {}} for r in runs
        }
        if not runs:
            return found
        keys = [(r["job_namespace"], r["job_name"], r["run_id"]) for r in runs]
        edges = self._edges_of_runs(keys)
        for r in runs:
            io = edges.get((r["job_namespace"], r["job_name"], r["run_id"]), {})
            found[r["run_id"]]["inputs"] = io.get("input", [])
            found[r["run_id"]]["outputs"] = io.get("output", [])
        for run_id, facet, value in self.client.query(
            "SELECT run_id, k, argMax(v, event_time) FROM "
            f"(SELECT run_id, event_time, facets FROM {self.db}.facets FINAL "
            "WHERE entity_kind = 'run' "
            "AND facet_group = 'facets' AND run_id IN {ids:Array(String)}) "
            "ARRAY JOIN mapKeys(facets) AS k, mapValues(facets) AS v "
            "GROUP BY run_id, k ORDER BY k",
            parameters={"ids": list(found)},
        ).result_rows:  # a run's facets are kept inline (schemas/clickhouse/0012)
            parsed = parse_json(value)
            if parsed is not None:
                found[run_id]["facets"][facet] = parsed
        return found

    def facet_values(self, ids: Iterable[str]) -> dict[str, Any]:
        """facet id -> the facet (parsed JSON), for the ids stored in `facet_values`."""
        wanted = sorted(set(ids))
        if not wanted:
            return {}
        return {
            facet_id: parsed
            for facet_id, value in self.client.query(
                f"SELECT facet_id, facet_json FROM {self.db}.facet_values "
                "WHERE facet_id IN {ids:Array(String)} LIMIT 1 BY facet_id",
                parameters={"ids": wanted},
            ).result_rows
            if (parsed := parse_json(value)) is not None
        }

    # -- tags and counts over time ---------------------------------------------------------

    def list_tags(self, caller: Caller) -> list[dict[str, Any]]:
        """Tags defined (`define_tag`) or on a dataset, field or job the caller may read,
        by name, with their descriptions."""
        scope = Where().scope("namespace", caller)
        cond = " AND ".join(["entity_kind IN ('dataset', 'job')", *scope.conditions])
        rows = self.client.query(
            "SELECT tag, max(description) FROM ("
            "SELECT name AS tag, value AS description FROM "
            f"(SELECT * FROM {self.db}.annotations FINAL WHERE entity_kind = 'tag' "
            "AND attribute = 'description') WHERE active = 1 "
            "UNION ALL SELECT key, '' FROM "
            f"(SELECT * FROM {self.db}.annotations FINAL WHERE attribute = 'tag' AND {cond}) "
            "WHERE active = 1) GROUP BY tag ORDER BY tag",
            parameters=scope.params,
        ).result_rows
        return [{"name": tag, "description": _none(description)} for tag, description in rows]

    def define_tag(self, tag: str, description: str | None, by: str = "") -> dict[str, Any]:
        """Create or update a tag of the tag list (it need not be on anything)."""
        self._write("tag", "", tag, "", "description", "", description or "", True, by)  # type: ignore[arg-type]
        return {"name": tag, "description": description or None}

    def event_counts(self, caller: Caller, ends_ms: list[int]) -> list[dict[str, int]]:
        """Events by type in each bucket ending at `ends_ms` (ascending; the first starts at
        `ends_ms[0]` minus the step from it to the second)."""
        start = 2 * ends_ms[0] - ends_ms[1] if len(ends_ms) > 1 else 0
        ns = "if(job_namespace != '', job_namespace, dataset_namespace)"
        where = Where().scope(ns, caller)
        where.add(
            "event_time >= fromUnixTimestamp64Milli({start:Int64}) AND "
            "event_time < fromUnixTimestamp64Milli({end:Int64})",
            start=start,
            end=ends_ms[-1],
        )
        counts = [{"START": 0, "COMPLETE": 0, "FAIL": 0, "ABORT": 0} for _ in ends_ms]
        for bucket, event_type, n in self.client.query(
            "SELECT arrayFirstIndex(e -> e > toUnixTimestamp64Milli(event_time), "
            "{ends:Array(Int64)}) AS bucket, event_type, count() FROM "
            f"{self.db}.events_raw FINAL {where.sql()} GROUP BY bucket, event_type",
            parameters={**where.params, "ends": ends_ms},
        ).result_rows:
            if bucket and event_type in counts[0]:
                counts[bucket - 1][event_type] += int(n)
        return counts

    def created_counts(
        self, caller: Caller, kind: Literal["job", "dataset", "source"], ends_ms: list[int]
    ) -> list[int]:
        """How many visible jobs, datasets or sources (a dataset's dataSource name, else
        its namespace) were first seen before each of `ends_ms`."""
        where = Where().scope("namespace", caller)
        if kind == "job":
            inner = f"SELECT first_seen FROM ({self._jobs_sql()}) {where.sql()}"
        elif kind == "dataset":
            inner = f"SELECT first_seen FROM ({self._datasets_sql()}) {where.sql()}"
        else:
            inner = (
                "SELECT if(JSONExtractString(datasource_json, 'name') != '', "
                "JSONExtractString(datasource_json, 'name'), namespace) AS source, "
                f"min(first_seen) AS first_seen FROM ({self._datasets_sql()}) {where.sql()} "
                "GROUP BY source"
            )
        rows = self.client.query(
            "SELECT arrayFirstIndex(e -> e > toUnixTimestamp64Milli(first_seen), "
            f"{{ends:Array(Int64)}}) AS bucket, count() FROM ({inner}) GROUP BY bucket",
            parameters={**where.params, "ends": ends_ms},
        ).result_rows
        new = [0] * len(ends_ms)
        for bucket, n in rows:
            if bucket:
                new[bucket - 1] += int(n)
        total, out = 0, []
        for n in new:
            total += n
            out.append(total)
        return out

    # -- writes -------------------------------------------------------------------------

    def _write(
        self,
        kind: EntityKind,
        namespace: str,
        name: str,
        field: str,
        attribute: str,
        key: str,
        value: str,
        active: bool,
        by: str,
    ) -> datetime:
        now = datetime.now(UTC)
        row = (kind, namespace, name, field, attribute, key, value, int(active), now, by)
        self.client.insert(
            f"{self.db}.annotations",
            [[*row, time.time_ns()]],
            column_names=list(_ANNOTATION_COLUMNS),
        )
        return now

    def set_tag(
        self,
        kind: EntityKind,
        namespace: str,
        name: str,
        field: str,
        tag: str,
        present: bool,
        by: str = "",
    ) -> dict[str, Any]:
        """Add (`present`) or remove a tag; returns the annotations now in force."""
        self._write(kind, namespace, name, field, "tag", tag, "", present, by)
        return self.annotations_of(kind, namespace, name, field)

    def set_description(
        self,
        kind: EntityKind,
        namespace: str,
        name: str,
        field: str,
        description: str | None,
        by: str = "",
    ) -> dict[str, Any]:
        """Set a description (None or empty: clear it, the facet's shows again)."""
        text = description or ""
        self._write(kind, namespace, name, field, "description", "", text, bool(text), by)
        return self.annotations_of(kind, namespace, name, field)

    def soft_delete(self, kind: EntityKind, namespace: str, name: str, by: str = "") -> str:
        """Hide a dataset or job until an event newer than now is about it; returns the
        deletion time (ISO)."""
        return iso(self._write(kind, namespace, name, "", "deleted", "", "", True, by)) or ""

    def annotations_of(
        self, kind: EntityKind, namespace: str, name: str, field: str = ""
    ) -> dict[str, Any]:
        found = self._annotations(kind, [(namespace, name)]).get((namespace, name), {})
        note = found.get(field, {"tags": [], "description": None})
        body: dict[str, Any] = {"namespace": namespace, "name": name}
        if field:
            body["field"] = field
        return {**body, "tags": note["tags"], "description": note["description"]}


def group_name(group: str) -> str:
    return "input_facets" if group == "inputFacets" else "output_facets"


def _fields(version: dict[str, Any], notes: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for name, type_, description in zip(
        version["field_names"],
        version["field_types"],
        version["field_descriptions"],
        strict=False,
    ):
        note = notes.get(name, {"tags": [], "description": None})
        out.append(
            {
                "name": name,
                "type": type_,
                "description": note["description"] or _none(description),
                "tags": note["tags"],
            }
        )
    return out


def _latest_run(run: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": run["run_id"],
        "state": run["state_name"],
        "started_at": iso(run["started"]),
        "ended_at": iso(run["ended_at"]),
        "duration_ms": run["duration_ms"],
    }


def _run(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": r["run_id"],
        "job_namespace": r["job_namespace"],
        "job_name": r["job_name"],
        "state": r["state_name"],
        "started_at": iso(r["started"]),
        "ended_at": iso(r["ended_at"]),
        "duration_ms": r["duration_ms"],
        "nominal_start_time": iso(r["nominal_start_time"]),
        "nominal_end_time": iso(r["nominal_end_time"]),
        "parent_run_id": _none(r["parent_run_id"]),
        "parent_job_namespace": _none(r["parent_job_namespace"]),
        "parent_job_name": _none(r["parent_job_name"]),
        "root_run_id": _none(r["root_run_id"]),
        "root_job_namespace": _none(r["root_job_namespace"]),
        "root_job_name": _none(r["root_job_name"]),
        "error_message": _none(r["error_message"]),
        "processing_engine": _none(r["processing_engine"]),
        "processing_engine_version": _none(r["processing_engine_version"]),
        "integration": _none(r["integration"]),
        "processing_type": _none(r["processing_type"]),
        "job_type": _none(r["job_type"]),
        "event_types": list(r["event_types"]),
        "first_event_time": iso(r["first_event_time"]),
        "last_event_time": iso(r["last_event_time"]),
    }


def utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
