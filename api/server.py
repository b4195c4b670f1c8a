"""The HTTP API process: query API (Marquez-compatible routes first), health and metrics."""

from __future__ import annotations

import logging
import time

import uvicorn
from fastapi import FastAPI, HTTPException, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from lineagehouse import metrics
from lineagehouse.api.access import caller_dependency
from lineagehouse.api.context import ApiContext
from lineagehouse.api.graph import LineageGraph
from lineagehouse.api.graph_feed import GraphFeed
from lineagehouse.api.marquez import create_marquez_router
from lineagehouse.api.ui_routes import create_ui_router
from lineagehouse.api.v2_catalog import create_catalog_router
from lineagehouse.api.v2_lineage import create_lineage_router
from lineagehouse.api.v2_quality import create_quality_router
from lineagehouse.api.v2_ui_support import create_ui_support_router
from lineagehouse.apikeys import KeyStore
from lineagehouse.producers.gateway import create_gateway_router
from lineagehouse.settings import Settings
from lineagehouse.store.client import lazy_client

log = logging.getLogger("lineagehouse.api")


def create_app(settings: Settings) -> FastAPI:
    app = FastAPI(
        title="Lineagehouse API",
        version="0.1.0",
        description="OpenLineage runs, lineage and quality, served from ClickHouse.",
    )
    client = lazy_client(settings.clickhouse)  # the process starts while ClickHouse is down
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

    @app.exception_handler(RequestValidationError)
    async def parameter_errors(request: Request, exc: RequestValidationError) -> JSONResponse:
        """One sentence per bad parameter, naming it and what it takes."""
        message = "; ".join(_parameter_problem(e) for e in exc.errors())
        if request.url.path.startswith("/api/v1/"):  # Marquez's error shape
            return JSONResponse({"code": 422, "message": message}, status_code=422)
        return JSONResponse({"error": message}, status_code=422)

    app.include_router(create_gateway_router(settings, client, store))
    app.include_router(create_marquez_router(ctx))
    app.include_router(create_lineage_router(ctx))
    app.include_router(create_catalog_router(ctx))
    app.include_router(create_quality_router(ctx))
    app.include_router(create_ui_support_router(ctx))
    app.include_router(create_ui_router())

    @app.get("/livez", tags=["operations"])
    def livez() -> JSONResponse:
        """200 while the process serves requests; checks no dependency (liveness probes:
        a ClickHouse outage must not restart every API pod)."""
        return JSONResponse({"status": "ok"})

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

    return app


def _parameter_problem(error: dict) -> str:
    where = ".".join(str(part) for part in error.get("loc", ()) if part not in ("query", "path"))
    return f"{where or 'request'}: {error.get('msg', 'invalid')}"


def run_api(settings: Settings) -> None:
    """`lineagehouse api`: serve until SIGTERM/SIGINT."""
    app = create_app(settings)
    print(f"API listening on http://{settings.api.host}:{settings.api.port}", flush=True)
    uvicorn.run(
        app, host=settings.api.host, port=settings.api.port, log_config=None, access_log=False
    )
