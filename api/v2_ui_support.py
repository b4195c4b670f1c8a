"""`/api/v2/ui/node-status`: what the web UI needs to colour a lineage graph in one call.

The lineage answer names its nodes (`job:<ns>:<name>`, `dataset:<ns>:<name>`,
`run:<id>`) but not their run states or open issues; asking the run and issue routes
node by node would be hundreds of requests for a large graph. This read-only route takes
the node ids (repeatable `node`, at most 500) and answers, for each node the key may read:

- a job: the state of its latest run (by start) and how many open issues name the job;
- a run: its state and its job's open issues;
- a dataset: how many open issues name the dataset.

Nodes in namespaces outside the key's scope, unknown nodes and malformed ids are left
out of the answer (no 404: it is a batch lookup).
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query, Response

from lineagehouse.api.access import Caller
from lineagehouse.api.catalog import dict_rows, runs_of_jobs
from lineagehouse.api.context import ApiContext
from lineagehouse.api.graph import NodeRef
from lineagehouse.api.routing import json_response
from lineagehouse.api.routing import require_reader as _reader

MAX_NODES = 500


def create_ui_support_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/api/v2/ui", tags=["ui"])

    @router.get("/node-status")
    def node_status(
        caller: Annotated[Caller, Depends(ctx.caller)],
        node: Annotated[
            list[str] | None,
            Query(description="node ids as the lineage route names them (repeatable, max 500)"),
        ] = None,
    ) -> Response:
        """Run state and open issue count of lineage nodes, for colouring a graph."""
        _reader(caller)
        ids = list(dict.fromkeys(node or []))
        if len(ids) > MAX_NODES:
            raise HTTPException(422, f"node: at most {MAX_NODES} ids per request")
        refs: dict[str, NodeRef] = {}
        for node_id in ids:
            try:
                refs[node_id] = NodeRef.parse(node_id)
            except ValueError:
                continue
        return json_response({"nodes": _status(ctx, caller, refs)})

    return router


def _status(ctx: ApiContext, caller: Caller, refs: dict[str, NodeRef]) -> dict[str, Any]:
    db = ctx.db
    client = ctx.client
    run_ids = [r.run_id for r in refs.values() if r.kind == "run"]
    runs: dict[str, dict[str, Any]] = {}
    if run_ids:
        for row in dict_rows(
            client,
            "SELECT run_id, state_name, job_namespace, job_name FROM "
            f"{db}.run_states WHERE run_id IN {{ids:Array(String)}}",
            {"ids": run_ids},
        ):
            if caller.may_read(row["job_namespace"]):
                runs[row["run_id"]] = row

    jobs = sorted(
        {(r.namespace, r.name) for r in refs.values() if r.kind == "job"}
        | {(r["job_namespace"], r["job_name"]) for r in runs.values()}
    )
    jobs = [k for k in jobs if caller.may_read(k[0])]
    latest: dict[tuple[str, str], str] = {}
    job_issues: dict[tuple[str, str], int] = {}
    if jobs:
        wanted = "(job_namespace, job_name) IN {keys:Array(Tuple(String, String))}"
        for row in dict_rows(
            client,
            "SELECT job_namespace, job_name, argMax(state_name, tuple(started, run_id)) AS "
            f"state FROM {db}.run_states WHERE {wanted} AND {runs_of_jobs(db, wanted)} "
            "GROUP BY job_namespace, job_name",
            {"keys": jobs},
        ):
            latest[(row["job_namespace"], row["job_name"])] = row["state"]
        for row in dict_rows(
            client,
            f"SELECT job_namespace, job_name, count() AS n FROM {db}.issue_states "
            "WHERE status = 'open' AND (job_namespace, job_name) IN "
            "{keys:Array(Tuple(String, String))} GROUP BY job_namespace, job_name",
            {"keys": jobs},
        ):
            job_issues[(row["job_namespace"], row["job_name"])] = int(row["n"])

    datasets = sorted({(r.namespace, r.name) for r in refs.values() if r.kind == "dataset"})
    datasets = [k for k in datasets if caller.may_read(k[0])]
    dataset_issues: dict[tuple[str, str], int] = {}
    if datasets:
        for row in dict_rows(
            client,
            f"SELECT dataset_namespace, dataset_name, count() AS n FROM {db}.issue_states "
            "WHERE status = 'open' AND (dataset_namespace, dataset_name) IN "
            "{keys:Array(Tuple(String, String))} GROUP BY dataset_namespace, dataset_name",
            {"keys": datasets},
        ):
            dataset_issues[(row["dataset_namespace"], row["dataset_name"])] = int(row["n"])

    found: dict[str, Any] = {}
    for node_id, ref in refs.items():
        if ref.kind == "run":
            row = runs.get(ref.run_id)
            if row is None:
                continue
            key = (row["job_namespace"], row["job_name"])
            found[node_id] = {
                "state": row["state_name"],
                "latest_state": latest.get(key),
                "open_issues": job_issues.get(key, 0),
            }
        elif ref.kind == "job":
            key = (ref.namespace, ref.name)
            if key not in jobs:
                continue
            found[node_id] = {
                "state": latest.get(key),
                "latest_state": latest.get(key),
                "open_issues": job_issues.get(key, 0),
            }
        else:
            key = (ref.namespace, ref.name)
            if key not in datasets:
                continue
            found[node_id] = {"open_issues": dataset_issues.get(key, 0)}
    return found
