"""The HTTP API process: query API (Marquez-compatible routes first), health and metrics."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Annotated, Literal

import uvicorn
from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import JSONResponse

from lineagehouse import metrics
from lineagehouse.api.access import caller_dependency
from lineagehouse.api.context import ApiContext
from lineagehouse.api.graph import LineageGraph
from lineagehouse.api.graph_feed import GraphFeed
from lineagehouse.api.v2_catalog import create_catalog_router
from lineagehouse.api.v2_lineage import create_lineage_router
from lineagehouse.apikeys import KeyStore
from lineagehouse.producers.gateway import create_gateway_router
from lineagehouse.settings import Settings
from lineagehouse.store.client import connect

log = logging.getLogger("lineagehouse.api")

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(
        title="Lineagehouse API",
        version="0.1.0",
        description="OpenLineage runs, lineage and quality, served from ClickHouse.",
    )
    db = settings.clickhouse.database
    client = connect(settings.clickhouse)
    store = KeyStore(client, settings) if settings.api.auth_enabled else None
    graph = LineageGraph()
    feed = GraphFeed(settings, graph)
    ctx = ApiContext(
        settings=settings,
        client=client,
        graph=graph,
        feed=feed,
        caller=caller_dependency(store, settings.api.auth_enabled, settings.api.expose_sql),
    )

    @app.middleware("http")
    async def observe(request: Request, call_next):  # type: ignore[no-untyped-def]
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        metrics.API_LATENCY.labels(
            request.method, getattr(route, "path", "unmatched"), str(response.status_code)
        ).observe(time.perf_counter() - started)
        return response

    @app.exception_handler(HTTPException)
    async def json_errors(_request: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code)

    app.include_router(create_gateway_router(settings, client, store))
    app.include_router(create_lineage_router(ctx))
    app.include_router(create_catalog_router(ctx))

    @app.get("/healthz", tags=["operations"])
    def healthz() -> JSONResponse:
        """200 when ClickHouse answers, else 503 with the reason."""
        try:
            client.command("SELECT 1")
        except Exception as exc:
            return JSONResponse({"status": "unavailable", "clickhouse": str(exc)[:300]}, 503)
        return JSONResponse({"status": "ok"})

    @app.get("/readyz", tags=["operations"])
    def readyz() -> JSONResponse:
        """200 once the lineage index has loaded (and API keys, when auth is on)."""
        lineage = feed.status()
        keys_ready = store is None or store.ready
        ready = feed.ready and keys_ready
        body = {"status": "ready" if ready else "starting", "lineage": lineage}
        body["api_keys"] = "off" if store is None else ("ready" if keys_ready else "loading")
        return JSONResponse(body, 200 if ready else 503)

    @app.get("/metrics", tags=["operations"])
    def prometheus_metrics() -> Response:
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    @app.get("/api/v1/events/lineage", tags=["marquez"])
    def list_events(
        before: Annotated[datetime | None, Query(description="only events at or before")] = None,
        after: Annotated[datetime | None, Query(description="only events at or after")] = None,
        sort_direction: Annotated[Literal["asc", "desc"], Query(alias="sortDirection")] = "desc",
        limit: Annotated[int, Query(ge=0, le=10_000)] = 100,
        offset: Annotated[int, Query(ge=0)] = 0,
    ) -> Response:
        """Raw OpenLineage events by event time, in Marquez's response shape."""
        params = {
            "after": _utc(after) if after else _EPOCH,
            "before": _utc(before) if before else datetime.now(UTC),
            "limit": limit,
            "offset": offset,
        }
        where = (
            "event_time >= {after:DateTime64(3, 'UTC')} "
            "AND event_time <= {before:DateTime64(3, 'UTC')}"
        )
        order = "DESC" if sort_direction == "desc" else "ASC"
        payloads = client.query(
            f"SELECT payload FROM {db}.events_raw FINAL WHERE {where} "
            f"ORDER BY event_time {order}, event_id {order} "
            "LIMIT {limit:UInt32} OFFSET {offset:UInt64}",
            parameters=params,
        ).result_columns
        total = client.command(
            f"SELECT count() FROM {db}.events_raw FINAL WHERE {where}", parameters=params
        )
        events = payloads[0] if payloads else []
        body = '{"events":[' + ",".join(events) + '],"totalCount":' + str(total) + "}"
        return Response(body, media_type="application/json")

    return app


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def run_api(settings: Settings) -> None:
    """`lineagehouse api`: serve until SIGTERM/SIGINT."""
    app = create_app(settings)
    print(f"API listening on http://{settings.api.host}:{settings.api.port}", flush=True)
    uvicorn.run(
        app, host=settings.api.host, port=settings.api.port, log_config=None, access_log=False
    )
