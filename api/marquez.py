"""The Marquez-compatible API under `/api/v1`: Marquez's paths, parameters and response
shapes (camelCase, Marquez's field names, explicit nulls, `totalCount` where Marquez has
it), so Marquez users switch by changing a URL: marquez-python
(`MarquezClient(url="http://localhost:5000", api_key=...)`) and the Marquez web UI.

Served from the same catalog (`catalog.py`) and lineage graph (`graph.py`) as `/api/v2`,
with the same access rules: a read key, namespace scope (a single object outside it is a
404, lists are filtered), SQL and source code redacted unless exposed, writes need the
write role. Names hold '/' and ':', so routes match on the path as sent
(`EncodedPathRoute`). Errors are Marquez's `{"code": 404, "message": "..."}`.

Where Lineagehouse differs from Marquez (what it does not have, it says with null):
- versions are Lineagehouse's content hashes, not UUIDs; jobs have no versions
  (`currentVersion` and `jobVersion.version` are null), runs no `args`;
- `/lineage` is the union of upstream and downstream lineage (see `lineage`);
- a field tag is kept as given (Marquez upper-cases it);
- creating namespaces, sources, datasets, jobs and runs through this API is not served:
  lineage comes in as OpenLineage events (`POST /api/v1/lineage`, Kafka).
"""

from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import orjson
from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from lineagehouse.api.access import Caller, redact_job_facets
from lineagehouse.api.catalog import Catalog, EntityKind
from lineagehouse.api.column_lineage import ColumnEdgeCache, walk_columns
from lineagehouse.api.context import ApiContext
from lineagehouse.api.graph import NodeNotFound, NodeRef, split_namespace
from lineagehouse.api.routing import EncodedPathRoute, json_response, require_reader
from lineagehouse.apikeys import authorize

MAX_LIMIT = 1000
MAX_TAG = 256
LATEST_RUNS = 10
# Marquez run states from ours (the state of a run's latest event)
RUN_STATE = {
    "START": "RUNNING",
    "RUNNING": "RUNNING",
    "COMPLETE": "COMPLETED",
    "FAIL": "FAILED",
    "ABORT": "ABORTED",
    "OTHER": "OTHER",
}
OUR_STATES = {
    "NEW": [""],
    "RUNNING": ["START", "RUNNING"],
    "COMPLETED": ["COMPLETE"],
    "FAILED": ["FAIL"],
    "ABORTED": ["ABORT"],
    "OTHER": ["OTHER"],
}
_VERSION_CHARS = set("0123456789abcdefABCDEF-")

Limit = Annotated[int, Query(ge=0, le=MAX_LIMIT)]
Offset = Annotated[int, Query(ge=0)]


class MarquezRoute(EncodedPathRoute):
    """An encoded-path route whose errors have Marquez's shape, `{"code", "message"}`
    (the caller dependency's 401/403 included)."""

    def get_route_handler(self):  # type: ignore[no-untyped-def]
        handler = super().get_route_handler()

        async def marquez_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except StarletteHTTPException as exc:
                return _error(exc.status_code, exc.detail, exc.headers)
            except RequestValidationError as exc:
                problems = [
                    f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
                ]
                return _error(422, "; ".join(problems))

        return marquez_errors


def create_marquez_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/api/v1", tags=["marquez"], route_class=MarquezRoute)
    catalog = Catalog(ctx.client, ctx.db)
    fetch_column_edges = ColumnEdgeCache(ctx.client, ctx.db)
    api = ctx.settings.api
    CallerDep = Annotated[Caller, Depends(ctx.caller)]

    # -- building Marquez objects ---------------------------------------------------------

    def runs_out(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        details = catalog.run_details(runs)
        return [_run(r, details[r["run_id"]]) for r in runs]

    def jobs_out(caller: Caller, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        keys = [(j["namespace"], j["name"]) for j in jobs]
        latest = catalog.latest_runs(caller, keys, LATEST_RUNS)
        all_runs = [r for runs in latest.values() for r in runs]
        details = catalog.run_details(all_runs)
        return [
            _job(
                caller,
                j,
                [_run(r, details[r["run_id"]]) for r in latest[(j["namespace"], j["name"])]],
            )
            for j in jobs
        ]

    def column_lineage_of(datasets: list[dict[str, Any]]) -> dict[tuple[str, str], Any]:
        """(namespace, name) -> Marquez's `columnLineage` of each dataset (None: none)."""
        found: dict[tuple[str, str], Any] = {}
        with ctx.graph.lock:
            ids = {}
            for d in datasets:
                root = ctx.graph.dataset_root(d["namespace"], d["name"])
                if root is not None:
                    ids[(d["namespace"], d["name"])] = [
                        i for i, _ in ctx.graph.column_lineage_ids(root, False, None)
                    ]
        wanted = sorted({i for group in ids.values() for i in group})
        edges = fetch_column_edges(wanted) if wanted else {}
        for key, group in ids.items():
            fields: dict[str, list[dict[str, Any]]] = {}
            for cl_id in group:
                for e in edges.get(cl_id, ()):
                    if not e.output_field:
                        continue
                    fields.setdefault(e.output_field, []).append(
                        {
                            "namespace": e.input_namespace,
                            "dataset": e.input_name,
                            "field": e.input_field,
                            "transformationDescription": None,
                            "transformationType": _transformation(e),
                        }
                    )
            if fields:
                found[key] = [
                    {
                        "name": name,
                        "inputFields": inputs,
                        "transformationDescription": None,
                        "transformationType": inputs[0]["transformationType"],
                    }
                    for name, inputs in sorted(fields.items())
                ]
        return found

    def datasets_out(datasets: list[dict[str, Any]]) -> list[dict[str, Any]]:
        keys = [(d["namespace"], d["name"]) for d in datasets]
        extras = catalog.dataset_extras(keys)
        column_lineage = column_lineage_of(datasets)
        return [
            _dataset(d, extras[key], column_lineage.get(key))
            for d, key in zip(datasets, keys, strict=True)
        ]

    def namespace_or_404(caller: Caller, namespace: str) -> dict[str, Any]:
        caller.check_read(namespace)
        page = catalog.list_namespaces(caller, 1, 0, name=namespace)
        if not page.items:
            raise HTTPException(404, f"Namespace '{namespace}' not found.")
        return page.items[0]

    def dataset_or_404(caller: Caller, namespace: str, name: str) -> dict[str, Any]:
        caller.check_read(namespace)
        found = catalog.datasets_of([(namespace, name)]).get((namespace, name))
        if found is None:
            namespace_or_404(caller, namespace)
            raise HTTPException(404, f"Dataset '{name}' not found.")
        return found

    def job_or_404(caller: Caller, namespace: str, name: str) -> dict[str, Any]:
        caller.check_read(namespace)
        found = catalog.get_job(caller, namespace, name)
        if found is None:
            namespace_or_404(caller, namespace)
            raise HTTPException(404, f"Job '{name}' not found.")
        return found

    # -- namespaces ---------------------------------------------------------------------

    @router.get("/namespaces")
    def list_namespaces(caller: CallerDep, limit: Limit = 100, offset: Offset = 0) -> Response:
        """Namespaces of jobs and datasets (no totalCount, as in Marquez)."""
        require_reader(caller)
        page = catalog.list_namespaces(caller, limit, offset)
        return json_response({"namespaces": [_namespace(n) for n in page.items]})

    @router.get("/namespaces/{namespace}")
    def get_namespace(caller: CallerDep, namespace: str) -> Response:
        require_reader(caller)
        return json_response(_namespace(namespace_or_404(caller, namespace)))

    # -- datasets -----------------------------------------------------------------------

    @router.get("/namespaces/{namespace}/datasets")
    def list_datasets(
        caller: CallerDep, namespace: str, limit: Limit = 100, offset: Offset = 0
    ) -> Response:
        require_reader(caller)
        namespace_or_404(caller, namespace)
        page = catalog.list_datasets(caller, namespace, limit, offset)
        return json_response({"datasets": datasets_out(page.items), "totalCount": page.total})

    @router.get("/namespaces/{namespace}/datasets/{dataset}")
    def get_dataset(caller: CallerDep, namespace: str, dataset: str) -> Response:
        require_reader(caller)
        return json_response(datasets_out([dataset_or_404(caller, namespace, dataset)])[0])

    def versions_out(
        caller: Caller, dataset: dict[str, Any], versions: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        runs: dict[str, dict[str, Any]] = {}
        for run_id in sorted({v["run_id"] for v in versions if v["run_id"]}):
            run = catalog.get_run(run_id)
            if run is not None and caller.may_read(run["job_namespace"]):
                runs[run_id] = run
        by_id = dict(zip(runs, runs_out(list(runs.values())), strict=True))
        return [_version(dataset, v, by_id.get(v["run_id"] or "")) for v in versions]

    @router.get("/namespaces/{namespace}/datasets/{dataset}/versions")
    def list_dataset_versions(
        caller: CallerDep,
        namespace: str,
        dataset: str,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Response:
        """Versions of a dataset, newest first."""
        require_reader(caller)
        found = dataset_or_404(caller, namespace, dataset)
        page = catalog.dataset_versions(namespace, dataset, limit, offset)
        if page is None:
            raise HTTPException(404, f"Dataset '{dataset}' not found.")
        return json_response(
            {"versions": versions_out(caller, found, page.items), "totalCount": page.total}
        )

    @router.get("/namespaces/{namespace}/datasets/{dataset}/versions/{version}")
    def get_dataset_version(
        caller: CallerDep, namespace: str, dataset: str, version: str
    ) -> Response:
        require_reader(caller)
        found = dataset_or_404(caller, namespace, dataset)
        page = catalog.dataset_versions(namespace, dataset, 1_000_000, 0)
        match = [v for v in (page.items if page else []) if v["version_id"] == version]
        if not match:
            raise HTTPException(404, f"Dataset version '{version}' not found.")
        return json_response(versions_out(caller, found, match)[0])

    # -- jobs and runs ------------------------------------------------------------------

    def jobs_page(
        caller: Caller,
        namespace: str | None,
        states: list[str] | None,
        limit: int,
        offset: int,
    ) -> Response:
        ours = None
        if states:
            ours = []
            for state in states:
                if state.upper() not in OUR_STATES:
                    raise HTTPException(
                        400, f"unknown run state {state!r}: use one of {', '.join(OUR_STATES)}"
                    )
                ours.extend(OUR_STATES[state.upper()])
        page = catalog.list_jobs(caller, namespace, limit, offset, latest_states=ours)
        return json_response({"jobs": jobs_out(caller, page.items), "totalCount": page.total})

    @router.get("/jobs")
    def list_all_jobs(
        caller: CallerDep,
        limit: Limit = 100,
        offset: Offset = 0,
        last_run_states: Annotated[list[str] | None, Query(alias="lastRunStates")] = None,
    ) -> Response:
        """Jobs of every namespace the caller may read (the web UI's dashboard)."""
        require_reader(caller)
        return jobs_page(caller, None, last_run_states, limit, offset)

    @router.get("/namespaces/{namespace}/jobs")
    def list_jobs(
        caller: CallerDep,
        namespace: str,
        limit: Limit = 100,
        offset: Offset = 0,
        last_run_states: Annotated[list[str] | None, Query(alias="lastRunStates")] = None,
    ) -> Response:
        require_reader(caller)
        namespace_or_404(caller, namespace)
        return jobs_page(caller, namespace, last_run_states, limit, offset)

    @router.get("/namespaces/{namespace}/jobs/{job}")
    def get_job(caller: CallerDep, namespace: str, job: str) -> Response:
        require_reader(caller)
        return json_response(jobs_out(caller, [job_or_404(caller, namespace, job)])[0])

    @router.get("/namespaces/{namespace}/jobs/{job}/runs")
    def list_job_runs(
        caller: CallerDep, namespace: str, job: str, limit: Limit = 100, offset: Offset = 0
    ) -> Response:
        """Runs of a job, newest start first."""
        require_reader(caller)
        job_or_404(caller, namespace, job)
        page = catalog.list_runs(caller, namespace, job, None, None, None, limit, offset)
        return json_response({"runs": runs_out(page.items), "totalCount": page.total})

    def run_or_404(caller: Caller, run_id: str) -> dict[str, Any]:
        run = catalog.get_run(run_id)
        if run is None or not caller.may_read(run["job_namespace"]):
            raise HTTPException(404, f"Run '{run_id}' not found.")
        return run

    @router.get("/jobs/runs/{run_id}")
    def get_run(caller: CallerDep, run_id: str) -> Response:
        require_reader(caller)
        return json_response(runs_out([run_or_404(caller, run_id)])[0])

    @router.get("/jobs/runs/{run_id}/facets")
    def run_facets(
        caller: CallerDep, run_id: str, type_: Annotated[str, Query(alias="type")]
    ) -> Response:
        """The facets of a run (`type=run`) or of its job (`type=job`; SQL redacted unless
        exposed); `type=dataset` answers no facets."""
        require_reader(caller)
        kind = type_.lower()
        if kind not in ("run", "job", "dataset"):
            raise HTTPException(400, f"unknown facet type {type_!r}: use RUN, JOB or DATASET")
        facets = catalog.run_facets(caller, run_id)
        if facets is None or not caller.may_read(facets["job_namespace"]):
            raise HTTPException(404, f"Run '{run_id}' not found.")
        if kind == "dataset":
            return json_response({"runId": run_id, "facets": {}})
        part = facets[kind]
        merged = {**part["standard"], **part["custom"]}
        if kind == "job" and not caller.sees_sql(facets["job_namespace"]):
            merged = redact_job_facets(merged) or {}
        return json_response({"runId": run_id, "facets": merged})

    # -- lineage ------------------------------------------------------------------------

    @router.get("/lineage")
    def lineage(
        caller: CallerDep,
        node_id: Annotated[str, Query(alias="nodeId")],
        depth: Annotated[int, Query(ge=0)] = 20,
    ) -> Response:
        """The lineage graph around a node, in Marquez's shape.

        Marquez walks its graph without direction (a dataset's producers' other inputs
        and their jobs show too). Lineagehouse answers what users mean by it: the union
        of the node's upstream and downstream lineage, `depth` jobs away each way, as
        the jobs' latest runs have it."""
        require_reader(caller)
        ctx.require_graph()
        kind, namespace, name, _field, version = _parse_node(node_id)
        if kind not in ("dataset", "job", "run", "datasetField"):
            raise HTTPException(400, _bad_node(node_id))
        del version  # a point in time by version is not served; the graph is current
        ref = (
            NodeRef("run", run_id=name)
            if kind == "run"
            else NodeRef("job" if kind == "job" else "dataset", namespace, name)
        )
        with ctx.graph.lock:
            if kind == "run":
                namespace = ctx.graph.run_namespace(name) or ""
            if namespace:
                caller.check_read(namespace)
            try:
                result = ctx.graph.lineage(
                    ref,
                    "both",
                    min(depth, api.lineage_max_depth),
                    None,
                    "job",
                    api.lineage_max_nodes,
                )
            except NodeNotFound as exc:
                raise HTTPException(404, f"Node '{node_id}' not found.") from exc
        nodes = [n for n in result["nodes"] if caller.may_read(n["namespace"])]
        dataset_keys = [(n["namespace"], n["name"]) for n in nodes if n["type"] == "dataset"]
        job_keys = [(n["namespace"], n["name"]) for n in nodes if n["type"] == "job"]
        datasets = catalog.datasets_of(dataset_keys)
        extras = catalog.dataset_extras(list(datasets))
        jobs = catalog.jobs_of(caller, job_keys)
        latest = catalog.latest_runs(caller, list(jobs), 1)
        details = catalog.run_details([r for runs in latest.values() for r in runs])
        data: dict[str, tuple[str, dict[str, Any]]] = {}
        for n in nodes:
            key = (n["namespace"], n["name"])
            if n["type"] == "dataset" and key in datasets:
                data[n["id"]] = ("DATASET", _dataset_data(datasets[key], extras[key]))
            elif n["type"] == "job" and key in jobs:
                runs = [_run(r, details[r["run_id"]]) for r in latest.get(key, [])]
                data[n["id"]] = ("JOB", _job_data(caller, jobs[key], runs))
        if result["start"] not in data:
            raise HTTPException(404, f"Node '{node_id}' not found.")
        edges = [
            {"origin": e["source"], "destination": e["target"]}
            for e in result["edges"]
            if e["source"] in data and e["target"] in data
        ]
        graph = [
            {
                "id": node,
                "type": type_,
                "data": body,
                "inEdges": [e for e in edges if e["destination"] == node],
                "outEdges": [e for e in edges if e["origin"] == node],
            }
            for node, (type_, body) in sorted(data.items())
        ]
        return json_response({"graph": graph})

    @router.get("/column-lineage")
    def column_lineage(
        caller: CallerDep,
        node_id: Annotated[str, Query(alias="nodeId")],
        depth: Annotated[int, Query(ge=0)] = 20,
        with_downstream: Annotated[bool, Query(alias="withDownstream")] = False,
    ) -> Response:
        """Column lineage of a dataset (all its fields), one field or a job (the fields
        it writes): upstream, and downstream too with `withDownstream=true`."""
        require_reader(caller)
        ctx.require_graph()
        kind, namespace, name, field, version = _parse_node(node_id)
        if kind not in ("dataset", "datasetField", "job"):
            raise HTTPException(400, _bad_node(node_id))
        if version and with_downstream:
            raise HTTPException(400, "a node version and withDownstream=true cannot be combined")
        starts: list[tuple[str, str, list[str] | None]]
        if kind == "job":
            job = job_or_404(caller, namespace, name)
            starts = [(d["namespace"], d["name"], None) for d in job["outputs"]]
        else:
            found = dataset_or_404(caller, namespace, name)
            if field and field not in {f["name"] for f in found["fields"]}:
                raise HTTPException(404, f"Field '{field}' not found for dataset '{name}'.")
            starts = [(namespace, name, [field] if field else None)]
        edges: dict[tuple[str, str], dict[str, Any]] = {}
        with ctx.graph.lock:
            for ns, n, fields in starts:
                result = walk_columns(
                    ctx.graph,
                    fetch_column_edges,
                    ns,
                    n,
                    fields,
                    "both" if with_downstream else "upstream",
                    max(1, min(depth, api.lineage_max_depth)),
                    None,
                )
                for e in result["edges"]:
                    edges[(e["source"], e["target"])] = e
        return json_response({"graph": column_graph(caller, list(edges.values()))})

    def column_graph(caller: Caller, edges: list[dict[str, Any]]) -> list[dict[str, Any]]:
        nodes: dict[str, tuple[str, str, str]] = {}
        kept = []
        for e in edges:
            ends = [_field_ref(e["source"]), _field_ref(e["target"])]
            if any(ref is None or not caller.may_read(ref[0]) for ref in ends):
                continue  # a whole-dataset dependency, or a namespace out of scope
            kept.append(e)
            nodes[e["source"]], nodes[e["target"]] = ends  # type: ignore[assignment]
        types: dict[tuple[str, str, str], str] = {}
        datasets = catalog.datasets_of(sorted({(ns, n) for ns, n, _ in nodes.values()}))
        for (ns, n), d in datasets.items():
            for f in d["fields"]:
                types[(ns, n, f["name"])] = f["type"] or ""
        graph = []
        for node_id, (ns, n, f) in sorted(nodes.items()):
            upstream = [e for e in kept if e["target"] == node_id]
            inputs = []
            for e in upstream:
                up_ns, up_n, up_f = nodes[e["source"]]
                inputs.append(
                    {
                        "namespace": up_ns,
                        "dataset": up_n,
                        "datasetVersion": None,
                        "field": up_f,
                        "transformationDescription": None,
                        "transformationType": _transformation_of(e),
                    }
                )
            graph.append(
                {
                    "id": node_id,
                    "type": "DATASET_FIELD",
                    "data": {
                        "namespace": ns,
                        "dataset": n,
                        "datasetVersion": None,
                        "field": f,
                        "fieldType": types.get((ns, n, f), ""),
                        "transformationDescription": None,
                        "transformationType": inputs[0]["transformationType"] if inputs else None,
                        "inputFields": inputs,
                    },
                    # Marquez's column lineage: both kinds of edge start at the node itself
                    "inEdges": [{"origin": node_id, "destination": e["source"]} for e in upstream],
                    "outEdges": [
                        {"origin": node_id, "destination": e["target"]}
                        for e in kept
                        if e["source"] == node_id
                    ],
                }
            )
        return graph

    # -- search, events, stats ----------------------------------------------------------

    @router.get("/search")
    def search(
        caller: CallerDep,
        q: str = "",
        filter_: Annotated[str | None, Query(alias="filter")] = None,
        sort: str = "NAME",
        limit: Limit = 10,
        namespace: str | None = None,
        before: str | None = None,
        after: str | None = None,
    ) -> Response:
        """Datasets and jobs whose name holds `q` (case-insensitive)."""
        require_reader(caller)
        if not q.strip():
            raise HTTPException(400, "query must not be blank (q=...)")
        types = ["dataset", "job"]
        if filter_:
            if filter_.lower() not in types:
                raise HTTPException(400, f"unknown filter {filter_!r}: use DATASET or JOB")
            types = [filter_.lower()]
        order = sort.upper()
        if order not in ("NAME", "UPDATE_AT", "UPDATED_AT"):
            raise HTTPException(400, f"unknown sort {sort!r}: use NAME or UPDATE_AT")
        since, until = _day(after, "after"), _day(before, "before")
        page = catalog.search(caller, q, types, namespace, limit, 0)
        results = [
            {
                "type": item["type"].upper(),
                "name": item["name"],
                "updatedAt": item["updated_at"],
                "namespace": item["namespace"],
                "nodeId": f"{item['type']}:{item['namespace']}:{item['name']}",
            }
            for item in page.items
            if (since is None or (item["updated_at"] or "") >= since)
            and (until is None or (item["updated_at"] or "") < until)
        ]
        if order == "NAME":
            results.sort(key=lambda r: (r["name"], r["namespace"], r["type"]))
        else:
            results.sort(key=lambda r: r["updatedAt"] or "", reverse=True)
        return json_response({"totalCount": len(results), "results": results})

    def events_page(
        caller: Caller,
        namespace: str | None,
        before: str | None,
        after: str | None,
        sort_direction: str,
        limit: int,
        offset: int,
    ) -> Response:
        direction = sort_direction.lower()
        if direction not in ("asc", "desc"):
            raise HTTPException(422, f"sortDirection {sort_direction!r}: use asc or desc")
        page = catalog.list_events(
            caller,
            _time(after, "after"),
            _time(before, "before"),
            namespace,
            None,
            None,
            direction == "desc",
            limit,
            offset,
        )
        return json_response({"events": page.items, "totalCount": page.total})

    EventLimit = Annotated[int, Query(ge=0, le=10_000)]
    SortDirection = Annotated[str, Query(alias="sortDirection")]

    @router.get("/events/lineage")
    @router.get("/events")  # what marquez-python's `list_events()` asks for (not in Marquez)
    def lineage_events(
        caller: CallerDep,
        before: str | None = None,
        after: str | None = None,
        sort_direction: SortDirection = "desc",
        limit: EventLimit = 100,
        offset: Offset = 0,
    ) -> Response:
        """Raw OpenLineage events by event time (SQL redacted unless exposed)."""
        require_reader(caller)
        return events_page(caller, None, before, after, sort_direction, limit, offset)

    @router.get("/events/{namespace:path}")
    def namespace_events(
        caller: CallerDep,
        namespace: str,
        before: str | None = None,
        after: str | None = None,
        sort_direction: SortDirection = "desc",
        limit: EventLimit = 100,
        offset: Offset = 0,
    ) -> Response:
        """marquez-python's `list_events(namespace)`: the events of one namespace."""
        require_reader(caller)
        caller.check_read(namespace)
        return events_page(caller, namespace, before, after, sort_direction, limit, offset)

    @router.get("/stats/lineage-events")
    def lineage_event_stats(
        caller: CallerDep, period: str | None = None, timezone: str | None = None
    ) -> Response:
        """START, COMPLETE, FAIL and ABORT events per hour of the last day (DAY) or per
        day of the last week in `timezone` (WEEK)."""
        require_reader(caller)
        buckets = _buckets(period, timezone)
        counts = catalog.event_counts(caller, [_ms(end) for _, end in buckets])
        return json_response(
            [
                {
                    **_interval(start, end),
                    "fail": c["FAIL"],
                    "start": c["START"],
                    "complete": c["COMPLETE"],
                    "abort": c["ABORT"],
                }
                for (start, end), c in zip(buckets, counts, strict=True)
            ]
        )

    def created_stats(
        caller: Caller, kind: Literal["job", "dataset", "source"], period: Any, tz: Any
    ) -> Response:
        require_reader(caller)
        buckets = _buckets(period, tz)
        counts = catalog.created_counts(caller, kind, [_ms(end) for _, end in buckets])
        return json_response(
            [
                {**_interval(start, end), "count": n}
                for (start, end), n in zip(buckets, counts, strict=True)
            ]
        )

    @router.get("/stats/jobs")
    def job_stats(
        caller: CallerDep, period: str | None = None, timezone: str | None = None
    ) -> Response:
        """How many jobs there were at the end of each hour (DAY) or day (WEEK)."""
        return created_stats(caller, "job", period, timezone)

    @router.get("/stats/datasets")
    def dataset_stats(
        caller: CallerDep, period: str | None = None, timezone: str | None = None
    ) -> Response:
        """How many datasets there were at the end of each hour (DAY) or day (WEEK)."""
        return created_stats(caller, "dataset", period, timezone)

    @router.get("/stats/sources")
    def source_stats(
        caller: CallerDep, period: str | None = None, timezone: str | None = None
    ) -> Response:
        """How many sources (dataSource names, else namespaces) there were over time."""
        return created_stats(caller, "source", period, timezone)

    # -- tags and soft deletes ----------------------------------------------------------

    @router.get("/tags")
    def list_tags(caller: CallerDep, limit: Limit = 100, offset: Offset = 0) -> Response:
        """Tags defined with PUT /tags/{tag} or on what the caller may read."""
        require_reader(caller)
        return json_response({"tags": catalog.list_tags(caller)[offset : offset + limit]})

    @router.put("/tags/{tag}")
    def create_tag(
        caller: CallerDep,
        tag: str,
        body: Annotated[dict[str, Any] | None, Body()] = None,
    ) -> Response:
        """Create a tag or change its description (a key with the write role)."""
        if caller.auth_enabled:
            decision = authorize(caller.record, "write", None)
            if not decision:
                raise HTTPException(403, decision.reason)
        _check_tag(tag)
        description = (body or {}).get("description")
        if description is not None and not isinstance(description, str):
            raise HTTPException(400, "description must be a string or null")
        return json_response(catalog.define_tag(tag, description, _by(caller)))

    def write_target(
        caller: Caller, kind: EntityKind, namespace: str, name: str, field: str = ""
    ) -> None:
        caller.check_write(namespace)
        if kind == "job":
            if not catalog.job_exists(namespace, name):
                raise HTTPException(404, f"Job '{name}' not found.")
            return
        fields = catalog.dataset_fields(namespace, name)
        if fields is None:
            raise HTTPException(404, f"Dataset '{name}' not found.")
        if field and field not in fields:
            raise HTTPException(404, f"Field '{field}' not found for dataset '{name}'.")

    def dataset_after_write(caller: Caller, namespace: str, name: str) -> Response:
        found = catalog.datasets_of([(namespace, name)]).get((namespace, name))
        if found is None:
            raise HTTPException(404, f"Dataset '{name}' not found.")
        return json_response(datasets_out([found])[0])

    def tag_dataset(
        caller: Caller, namespace: str, name: str, field: str, tag: str, present: bool
    ) -> Response:
        _check_tag(tag)
        write_target(caller, "dataset", namespace, name, field)
        catalog.set_tag("dataset", namespace, name, field, tag, present, _by(caller))
        return dataset_after_write(caller, namespace, name)

    @router.post("/namespaces/{namespace}/datasets/{dataset}/tags/{tag}")
    def add_dataset_tag(caller: CallerDep, namespace: str, dataset: str, tag: str) -> Response:
        """Tag a dataset; answers the dataset."""
        return tag_dataset(caller, namespace, dataset, "", tag, True)

    @router.delete("/namespaces/{namespace}/datasets/{dataset}/tags/{tag}")
    def remove_dataset_tag(caller: CallerDep, namespace: str, dataset: str, tag: str) -> Response:
        return tag_dataset(caller, namespace, dataset, "", tag, False)

    @router.post("/namespaces/{namespace}/datasets/{dataset}/fields/{field}/tags/{tag}")
    def add_field_tag(
        caller: CallerDep, namespace: str, dataset: str, field: str, tag: str
    ) -> Response:
        """Tag a field of a dataset's current schema; answers the dataset."""
        return tag_dataset(caller, namespace, dataset, field, tag, True)

    @router.delete("/namespaces/{namespace}/datasets/{dataset}/fields/{field}/tags/{tag}")
    def remove_field_tag(
        caller: CallerDep, namespace: str, dataset: str, field: str, tag: str
    ) -> Response:
        return tag_dataset(caller, namespace, dataset, field, tag, False)

    def tag_job(caller: Caller, namespace: str, name: str, tag: str, present: bool) -> Response:
        _check_tag(tag)
        write_target(caller, "job", namespace, name)
        catalog.set_tag("job", namespace, name, "", tag, present, _by(caller))
        found = catalog.get_job(caller, namespace, name)
        if found is None:
            raise HTTPException(404, f"Job '{name}' not found.")
        return json_response(jobs_out(caller, [found])[0])

    @router.post("/namespaces/{namespace}/jobs/{job}/tags/{tag}")
    def add_job_tag(caller: CallerDep, namespace: str, job: str, tag: str) -> Response:
        """Tag a job; answers the job."""
        return tag_job(caller, namespace, job, tag, True)

    @router.delete("/namespaces/{namespace}/jobs/{job}/tags/{tag}")
    def remove_job_tag(caller: CallerDep, namespace: str, job: str, tag: str) -> Response:
        return tag_job(caller, namespace, job, tag, False)

    @router.delete("/namespaces/{namespace}/datasets/{dataset}")
    def delete_dataset(caller: CallerDep, namespace: str, dataset: str) -> Response:
        """Hide a dataset until an event newer than now mentions it; answers the dataset
        as it was."""
        write_target(caller, "dataset", namespace, dataset)
        before = dataset_after_write(caller, namespace, dataset)
        catalog.soft_delete("dataset", namespace, dataset, _by(caller))
        return before

    @router.delete("/namespaces/{namespace}/jobs/{job}")
    def delete_job(caller: CallerDep, namespace: str, job: str) -> Response:
        """Hide a job until an event newer than now mentions it; answers the job as it
        was."""
        write_target(caller, "job", namespace, job)
        found = catalog.get_job(caller, namespace, job)
        if found is None:
            raise HTTPException(404, f"Job '{job}' not found.")
        body = jobs_out(caller, [found])[0]
        catalog.soft_delete("job", namespace, job, _by(caller))
        return json_response(body)

    return router


# --- Marquez shapes (pure) ---------------------------------------------------------------


def _namespace(n: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": n["name"],
        "createdAt": n["first_seen"],
        "updatedAt": n["last_seen"],
        "ownerName": "anonymous",
        "description": None,
        "isHidden": False,
    }


def _fields(d: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "name": f["name"],
            "type": f["type"] or None,
            "tags": f["tags"],
            "description": f["description"],
        }
        for f in d["fields"]
    ]


def _dataset_data(d: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Marquez's DatasetData: what a lineage node carries."""
    return {
        "id": {"namespace": d["namespace"], "name": d["name"]},
        "type": "DB_TABLE",
        "name": d["name"],
        "physicalName": d["name"],
        "createdAt": d["first_seen"],
        "updatedAt": d["last_seen"],
        "namespace": d["namespace"],
        "sourceName": (d["datasource"] or {}).get("name") or "default",
        "fields": _fields(d),
        "tags": d["tags"],
        "lastModifiedAt": extra["last_modified"],
        "lastLifecycleState": d["lifecycle_state"],
        "description": d["description"],
    }


def _dataset(d: dict[str, Any], extra: dict[str, Any], column_lineage: Any) -> dict[str, Any]:
    return {
        **_dataset_data(d, extra),
        "currentVersion": d["current_version"],
        "columnLineage": column_lineage,
        "facets": extra["facets"],
        "deleted": (d["lifecycle_state"] or "").upper() == "DROP",
    }


def _version(d: dict[str, Any], v: dict[str, Any], run: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "id": {"namespace": d["namespace"], "name": d["name"]},
        "type": "DB_TABLE",
        "name": d["name"],
        "physicalName": d["name"],
        "createdAt": v["created_at"],
        "version": v["version_id"],
        "namespace": d["namespace"],
        "sourceName": (d["datasource"] or {}).get("name") or "default",
        "fields": [
            {
                "name": f["name"],
                "type": f["type"] or None,
                "tags": [],
                "description": f["description"],
            }
            for f in v["fields"]
        ],
        "tags": [],
        "lifecycleState": None,
        "description": d["description"],
        "currentSchemaVersion": v["schema_hash"],
        "createdByRun": run,
        "facets": {},
    }


def _dataset_versions(datasets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {
            "datasetVersionId": {
                "namespace": d["namespace"],
                "name": d["name"],
                "version": d["version_id"],
            },
            "facets": {},
        }
        for d in datasets
    ]


def _run(r: dict[str, Any], details: dict[str, Any]) -> dict[str, Any]:
    """Marquez's Run from one of `Catalog.list_runs`' and its `run_details`."""
    return {
        "id": r["run_id"],
        "createdAt": r["first_event_time"],
        "updatedAt": r["last_event_time"],
        "nominalStartTime": r["nominal_start_time"],
        "nominalEndTime": r["nominal_end_time"],
        "state": RUN_STATE.get(r["state"] or "", "NEW"),
        "startedAt": r["started_at"],
        "endedAt": r["ended_at"],
        "durationMs": r["duration_ms"],
        "args": {},
        "jobVersion": {"namespace": r["job_namespace"], "name": r["job_name"], "version": None},
        "inputDatasetVersions": _dataset_versions(details["inputs"]),
        "outputDatasetVersions": _dataset_versions(details["outputs"]),
        "facets": details["facets"],
    }


def _simple_name(j: dict[str, Any]) -> str:
    parent = j["parent_job_name"]
    if parent and j["name"].startswith(parent + "."):
        return j["name"][len(parent) + 1 :]
    return j["name"]


def _job_data(caller: Caller, j: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Marquez's JobData: what a lineage node carries (no facets)."""
    return {
        "id": {"namespace": j["namespace"], "name": j["name"]},
        "type": "STREAM" if (j["processing_type"] or "").upper() == "STREAMING" else "BATCH",
        "name": j["name"],
        "simpleName": _simple_name(j),
        "parentJobName": j["parent_job_name"],
        "parentJobUuid": None,
        "currentRunUuid": runs[0]["id"] if runs else None,
        "createdAt": j["first_seen"],
        "updatedAt": j["last_seen"],
        "namespace": j["namespace"],
        "inputs": [{"namespace": d["namespace"], "name": d["name"]} for d in j["inputs"]],
        "outputs": [{"namespace": d["namespace"], "name": d["name"]} for d in j["outputs"]],
        "location": (j["facets"].get("sourceCodeLocation") or {}).get("url"),
        "description": j["description"],
        "latestRun": runs[0] if runs else None,
    }


def _job(caller: Caller, j: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    facets = j["facets"]
    if not caller.sees_sql(j["namespace"]):
        facets = redact_job_facets(facets) or {}
    body = _job_data(caller, j, runs)
    del body["currentRunUuid"]
    return {
        **body,
        "latestRuns": runs or None,
        "facets": facets,
        "currentVersion": None,
        "labels": [x for x in (j["type"], j["integration"]) if x],
        "tags": j["tags"],
    }


def _transformation(edge: Any) -> str | None:
    return edge.transformation_subtype or edge.transformation_type or None


def _transformation_of(edge: dict[str, Any]) -> str | None:
    return edge["transformation_subtype"] or edge["transformation_type"] or None


def _field_ref(node_id: str) -> tuple[str, str, str] | None:
    kind, _, rest = node_id.partition(":")
    if kind != "datasetField":
        return None
    namespace, tail = split_namespace(rest)
    name, _, field = tail.rpartition(":")
    return (namespace, name, field) if namespace and name and field else None


# --- parameters (pure) -------------------------------------------------------------------


def _bad_node(node_id: str) -> str:
    return (
        f"node ID ({node_id}) must start with 'dataset', 'datasetField', 'job' or 'run': "
        "dataset:<namespace>:<name>, datasetField:<namespace>:<dataset>:<field>, "
        "job:<namespace>:<name> or run:<run id>"
    )


def _parse_node(node_id: str) -> tuple[str, str, str, str, str]:
    """Marquez's node id -> (kind, namespace, name, field, version). A `#<version>`
    suffix is split off; a namespace may hold `scheme://` and `host:port`."""
    version = ""
    head, sep, tail = node_id.rpartition("#")
    if sep and len(tail) >= 8 and set(tail) <= _VERSION_CHARS:
        node_id, version = head, tail
    kind, sep, rest = node_id.partition(":")
    if not sep or not rest:
        raise HTTPException(400, _bad_node(node_id))
    if kind == "run":
        return kind, "", rest, "", version
    namespace, name = split_namespace(rest)
    field = ""
    if kind == "datasetField":
        name, _, field = name.rpartition(":")
    if not namespace or not name or (kind == "datasetField" and not field):
        raise HTTPException(400, _bad_node(node_id))
    return kind, namespace, name, field, version


def _time(value: str | None, what: str) -> datetime | None:
    if not value:
        return None  # the web UI sends before= and after= empty
    try:
        parsed = datetime.fromisoformat(value.replace(" ", "+"))
    except ValueError:
        raise HTTPException(400, f"{what}={value!r} is not an ISO-8601 time") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _day(value: str | None, what: str) -> str | None:
    """A YYYY-MM-DD bound as the ISO text it compares with."""
    if not value:
        return None
    try:
        return date.fromisoformat(value).isoformat()
    except ValueError:
        raise HTTPException(400, f"{what}={value!r} is not a date (YYYY-MM-DD)") from None


def _buckets(period: str | None, timezone: str | None) -> list[tuple[datetime, datetime]]:
    """DAY: the 24 hours up to and including the current one; WEEK: the 7 days up to and
    including today in `timezone` (required)."""
    kind = (period or "").upper()
    if kind not in ("DAY", "WEEK"):
        raise HTTPException(400, "Invalid period")
    if kind == "WEEK" and not timezone:
        raise HTTPException(400, "Timezone must be specified for period 'WEEK'")
    try:
        tz = ZoneInfo(timezone) if timezone else UTC
    except (ZoneInfoNotFoundError, ValueError):
        raise HTTPException(400, f"unknown timezone {timezone!r}") from None
    now = datetime.now(tz)
    if kind == "DAY":
        hour = now.replace(minute=0, second=0, microsecond=0).astimezone(UTC)
        starts = [hour - timedelta(hours=23 - i) for i in range(24)]
        return [(s, s + timedelta(hours=1)) for s in starts]
    today = now.date()
    days = [today - timedelta(days=6 - i) for i in range(8)]
    edges = [datetime.combine(d, time(), tz).astimezone(UTC) for d in days]
    return list(pairwise(edges))


def _interval(start: datetime, end: datetime) -> dict[str, str]:
    return {"startInterval": _iso(start), "endInterval": _iso(end)}


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


def _check_tag(tag: str) -> None:
    if not tag or len(tag) > MAX_TAG:
        raise HTTPException(400, f"a tag has 1 to {MAX_TAG} characters")


def _by(caller: Caller) -> str:
    return caller.record.key_id if caller.record is not None else ""


def _error(status: int, message: Any, headers: Any = None) -> Response:
    return Response(
        orjson.dumps({"code": status, "message": str(message)}),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )
