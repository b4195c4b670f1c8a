"""`/api/v2/lineage` and `/api/v2/column-lineage`: the native lineage routes."""

import asyncio
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Response

from lineagehouse.api.access import Caller
from lineagehouse.api.column_lineage import ColumnEdgeCache, walk_columns
from lineagehouse.api.context import ApiContext, epoch_ms, iso
from lineagehouse.api.graph import NodeNotFound, NodeRef, split_namespace
from lineagehouse.api.routing import json_response


def create_lineage_router(ctx: ApiContext) -> APIRouter:
    @asynccontextmanager
    async def lifespan(_app: FastAPI):  # type: ignore[no-untyped-def]
        ctx.feed.start()
        try:
            yield
        finally:
            await asyncio.to_thread(ctx.feed.stop)

    router = APIRouter(prefix="/api/v2", tags=["lineage"], lifespan=lifespan)
    api = ctx.settings.api

    fetch_column_edges = ColumnEdgeCache(ctx.client, ctx.db)

    def as_of_ms(as_of: datetime | None, as_of_run: str | None) -> int | None:
        if as_of is not None:
            return epoch_ms(as_of)
        if as_of_run:
            with ctx.graph.lock:
                start = ctx.graph.run_start(as_of_run)
            if start is None:
                raise HTTPException(404, f"no run {as_of_run!r} with lineage (as_of_run)")
            return start
        return None

    @router.get("/lineage")
    def lineage(
        caller: Annotated[Caller, Depends(ctx.caller)],
        node_id: Annotated[
            str,
            Query(
                description="dataset:<namespace>:<name>, job:<namespace>:<name> or "
                "run:<run_id> (a run also means: as of that run)"
            ),
        ],
        direction: Literal["upstream", "downstream", "both"] = "both",
        depth: Annotated[int, Query(ge=0, description="jobs away from the start node")] = 20,
        as_of: Annotated[
            datetime | None,
            Query(description="the graph as it was then: each job's latest run started by then"),
        ] = None,
        as_of_run: Annotated[str | None, Query(description="as of this run's start")] = None,
        granularity: Literal["job", "run"] = "job",
        max_nodes: Annotated[int, Query(ge=1)] = 1000,
    ) -> Response:
        """Directed lineage, now or at any past time or run."""
        ctx.require_graph()
        if depth > api.lineage_max_depth:
            raise HTTPException(
                422,
                f"depth {depth} is over the limit {api.lineage_max_depth} "
                "(setting LINEAGEHOUSE_API__LINEAGE_MAX_DEPTH)",
            )
        if max_nodes > api.lineage_max_nodes:
            raise HTTPException(
                422,
                f"max_nodes {max_nodes} is over the limit {api.lineage_max_nodes} "
                "(setting LINEAGEHOUSE_API__LINEAGE_MAX_NODES)",
            )
        start = _parse(node_id)
        at = as_of_ms(as_of, as_of_run)
        with ctx.graph.lock:
            if start.kind == "run":
                namespace = ctx.graph.run_namespace(start.run_id)
            else:
                namespace = start.namespace
            if namespace is not None:
                caller.check_read(namespace)
            try:
                result = ctx.graph.lineage(start, direction, depth, at, granularity, max_nodes)
            except NodeNotFound as exc:
                raise HTTPException(404, str(exc)) from exc
        return json_response(_scoped(result, caller))

    @router.get("/column-lineage")
    def column_lineage(
        caller: Annotated[Caller, Depends(ctx.caller)],
        node_id: Annotated[
            str,
            Query(description="dataset:<namespace>:<name> or datasetField:<ns>:<name>:<field>"),
        ],
        direction: Literal["upstream", "downstream", "both"] = "both",
        depth: Annotated[int, Query(ge=1)] = 20,
        as_of: datetime | None = None,
        as_of_run: str | None = None,
    ) -> Response:
        """Column lineage from a dataset (all its fields) or one field."""
        ctx.require_graph()
        namespace, name, field = _parse_dataset_or_field(node_id)
        caller.check_read(namespace)
        at = as_of_ms(as_of, as_of_run)
        with ctx.graph.lock:
            result = walk_columns(
                ctx.graph,
                fetch_column_edges,
                namespace,
                name,
                [field] if field else None,
                direction,
                min(depth, api.lineage_max_depth),
                at,
            )
        result["start"] = node_id
        result["as_of"] = iso(at)
        return json_response(_scoped(result, caller))

    return router


def _parse(node_id: str) -> NodeRef:
    try:
        return NodeRef.parse(node_id)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from exc


def _parse_dataset_or_field(node_id: str) -> tuple[str, str, str]:
    kind, _, rest = node_id.partition(":")
    if kind == "dataset":
        namespace, name = split_namespace(rest)
        if namespace and name:
            return namespace, name, ""
    if kind == "datasetField":
        namespace, tail = split_namespace(rest)
        name, _, field = tail.rpartition(":")
        if namespace and name and field:
            return namespace, name, field
    raise HTTPException(
        422,
        f"bad node id {node_id!r}: use dataset:<namespace>:<name> or "
        "datasetField:<namespace>:<name>:<field>",
    )


def _scoped(result: dict[str, Any], caller: Caller) -> dict[str, Any]:
    """Drop nodes (and their edges) in namespaces the caller may not read."""
    if not caller.auth_enabled or not caller.namespace_patterns():
        result["hidden_nodes"] = 0
        _iso_times(result)
        return result
    kept = [n for n in result["nodes"] if caller.may_read(n["namespace"])]
    ids = {n["id"] for n in kept}
    result["hidden_nodes"] = len(result["nodes"]) - len(kept)
    result["nodes"] = kept
    result["edges"] = [e for e in result["edges"] if e["source"] in ids and e["target"] in ids]
    _iso_times(result)
    return result


def _iso_times(result: dict[str, Any]) -> None:
    if isinstance(result.get("as_of"), int):
        result["as_of"] = iso(result["as_of"])
    for node in result["nodes"]:
        if isinstance(node.get("run_start"), int):
            node["run_start"] = iso(node["run_start"])
