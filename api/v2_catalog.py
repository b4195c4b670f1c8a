"""`/api/v2` catalog routes: namespaces, jobs, datasets and their versions, runs and their
facets, search, raw events; tags, descriptions and soft deletes.

Namespaces and names hold '/' and ':' (`postgres://host:5432`, `s3://bucket/a/b`).
Clients percent-encode each as one path segment, but the server decodes `%2F` before
routing; so these routes match on the path as sent (`scope["raw_path"]`) and decode each
path parameter themselves (`EncodedPathRoute`): `/api/v2/datasets/s3%3A%2F%2Fb/a%2Fb`
is namespace `s3://b`, name `a/b`.

Every list is paginated (`limit` <= 1000, `offset`; `{"items", "total", "limit",
"offset"}`) and limited to the namespaces the caller's key may read; a single object in
another namespace is a 404. Reads need the read role (a write-only key gets 403), writes
the write role on the namespace.
"""

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import BaseModel, Field

from lineagehouse.api.access import Caller
from lineagehouse.api.catalog import Catalog, EntityKind, Page
from lineagehouse.api.context import ApiContext
from lineagehouse.api.routing import EncodedPathRoute, json_response
from lineagehouse.api.routing import require_reader as _reader

MAX_LIMIT = 1000
MAX_TAG = 256
RUN_STATES = ("START", "RUNNING", "COMPLETE", "FAIL", "ABORT", "OTHER")

Limit = Annotated[int, Query(ge=0, le=MAX_LIMIT, description="items per page (max 1000)")]
Offset = Annotated[int, Query(ge=0, description="items to skip")]
NamespaceFilter = Annotated[str | None, Query(description="only this namespace")]


class DescriptionBody(BaseModel):
    description: str | None = Field(
        ..., max_length=100_000, description="the new description; null or '' clears it"
    )


def create_catalog_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/api/v2", tags=["catalog"], route_class=EncodedPathRoute)
    catalog = Catalog(ctx.client, ctx.db)

    # -- namespaces, jobs, datasets -------------------------------------------------------

    @router.get("/namespaces")
    def list_namespaces(
        caller: Annotated[Caller, Depends(ctx.caller)], limit: Limit = 100, offset: Offset = 0
    ) -> Response:
        """Namespaces of jobs and datasets, with how many of each."""
        _reader(caller)
        return _page(catalog.list_namespaces(caller, limit, offset), limit, offset)

    @router.get("/jobs")
    def list_jobs(
        caller: Annotated[Caller, Depends(ctx.caller)],
        namespace: NamespaceFilter = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Response:
        """Jobs with their latest run and its inputs and outputs."""
        _reader(caller)
        return _page(catalog.list_jobs(caller, namespace, limit, offset), limit, offset)

    @router.get("/jobs/{namespace}/{name}")
    def get_job(
        caller: Annotated[Caller, Depends(ctx.caller)], namespace: str, name: str
    ) -> Response:
        """A job: type, parent, latest run, its inputs and outputs, facets (SQL only when
        the operator exposes it and the key may read the namespace)."""
        _reader(caller)
        caller.check_read(namespace)
        return json_response(
            _found(catalog.get_job(caller, namespace, name), "job", namespace, name)
        )

    @router.get("/datasets")
    def list_datasets(
        caller: Annotated[Caller, Depends(ctx.caller)],
        namespace: NamespaceFilter = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Response:
        """Datasets with their current schema."""
        _reader(caller)
        return _page(catalog.list_datasets(caller, namespace, limit, offset), limit, offset)

    @router.get("/datasets/{namespace}/{name}")
    def get_dataset(
        caller: Annotated[Caller, Depends(ctx.caller)], namespace: str, name: str
    ) -> Response:
        """A dataset: identity, aliases, facets, current schema, producing and consuming
        jobs."""
        _reader(caller)
        caller.check_read(namespace)
        return json_response(
            _found(catalog.get_dataset(namespace, name), "dataset", namespace, name)
        )

    @router.get("/datasets/{namespace}/{name}/versions")
    def dataset_versions(
        caller: Annotated[Caller, Depends(ctx.caller)],
        namespace: str,
        name: str,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Response:
        """Schema versions, newest first: fields, when and by which run each was first
        seen, and the fields added, removed and retyped against the version before."""
        _reader(caller)
        caller.check_read(namespace)
        page = catalog.dataset_versions(namespace, name, limit, offset)
        return _page(_found(page, "dataset", namespace, name), limit, offset)

    # -- runs ----------------------------------------------------------------------------

    @router.get("/runs")
    def list_runs(
        caller: Annotated[Caller, Depends(ctx.caller)],
        namespace: Annotated[str | None, Query(description="only jobs of this namespace")] = None,
        job: Annotated[str | None, Query(description="only runs of this job name")] = None,
        state: Annotated[str | None, Query(description="START, RUNNING, COMPLETE, ...")] = None,
        started_after: Annotated[datetime | None, Query(description="started at or after")] = None,
        started_before: Annotated[
            datetime | None, Query(description="started at or before")
        ] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Response:
        """Runs, newest start first, with state, duration, parent and root."""
        _reader(caller)
        if state is not None and state.upper() not in RUN_STATES:
            raise HTTPException(422, f"unknown state {state!r}: use one of {', '.join(RUN_STATES)}")
        page = catalog.list_runs(
            caller, namespace, job, state, started_after, started_before, limit, offset
        )
        return _page(page, limit, offset)

    @router.get("/runs/{run_id}")
    def get_run(caller: Annotated[Caller, Depends(ctx.caller)], run_id: str) -> Response:
        """A run with the datasets it read and wrote."""
        _reader(caller)
        run = catalog.get_run(run_id)
        if run is None or not caller.may_read(run["job_namespace"]):
            raise HTTPException(404, f"no run {run_id!r} (list runs with GET /api/v2/runs)")
        return json_response(run)

    @router.get("/runs/{run_id}/facets")
    def run_facets(caller: Annotated[Caller, Depends(ctx.caller)], run_id: str) -> Response:
        """Every facet of the run's events by entity, split into standard and custom."""
        _reader(caller)
        facets = catalog.run_facets(caller, run_id)
        if facets is None or not caller.may_read(facets["job_namespace"]):
            raise HTTPException(404, f"no facets of run {run_id!r} (is the run id right?)")
        return json_response(facets)

    # -- search and events -----------------------------------------------------------------

    @router.get("/search")
    def search(
        caller: Annotated[Caller, Depends(ctx.caller)],
        q: Annotated[str, Query(min_length=1, max_length=1000, description="text to find")],
        types: Annotated[
            list[Literal["dataset", "job", "run"]] | None,
            Query(alias="type", description="only these kinds (repeatable)"),
        ] = None,
        namespace: NamespaceFilter = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Response:
        """Datasets and jobs by name and runs by id, case-insensitive: exact matches
        first, then prefixes, then substrings, shorter names first."""
        _reader(caller)
        page = catalog.search(caller, q, list(types) if types else None, namespace, limit, offset)
        return _page(page, limit, offset)

    @router.get("/events")
    def list_events(
        caller: Annotated[Caller, Depends(ctx.caller)],
        after: Annotated[datetime | None, Query(description="event time at or after")] = None,
        before: Annotated[datetime | None, Query(description="event time at or before")] = None,
        namespace: NamespaceFilter = None,
        job: Annotated[str | None, Query(description="only events of this job name")] = None,
        run_id: Annotated[str | None, Query(description="only events of this run")] = None,
        sort: Literal["asc", "desc"] = "desc",
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Response:
        """Raw OpenLineage events by event time, as sent (SQL redacted unless exposed)."""
        _reader(caller)
        page = catalog.list_events(
            caller, after, before, namespace, job, run_id, sort == "desc", limit, offset
        )
        return _page(page, limit, offset)

    # -- writes --------------------------------------------------------------------------

    def target(caller: Caller, kind: EntityKind, namespace: str, name: str, field: str = "") -> str:
        """Check the write and that the object (and field) exists; returns the key id."""
        caller.check_write(namespace)
        if kind == "job":
            exists = catalog.job_exists(namespace, name)
        else:
            fields = catalog.dataset_fields(namespace, name)
            exists = fields is not None
            if exists and field and field not in fields:
                raise HTTPException(
                    404,
                    f"no field {field!r} in the current schema of dataset {name!r} in "
                    f"namespace {namespace!r}",
                )
        if not exists:
            raise HTTPException(404, _missing(kind, namespace, name))
        return caller.record.key_id if caller.record is not None else ""

    def tag(
        kind: EntityKind,
        namespace: str,
        name: str,
        field: str,
        tag_: str,
        present: bool,
        caller: Caller,
    ) -> Response:
        if len(tag_) > MAX_TAG:
            raise HTTPException(422, f"tag is {len(tag_)} characters; at most {MAX_TAG}")
        by = target(caller, kind, namespace, name, field)
        return json_response(catalog.set_tag(kind, namespace, name, field, tag_, present, by))

    @router.post("/datasets/{namespace}/{name}/tags/{tag_name}")
    def tag_dataset(
        caller: Annotated[Caller, Depends(ctx.caller)], namespace: str, name: str, tag_name: str
    ) -> Response:
        """Add a tag to a dataset."""
        return tag("dataset", namespace, name, "", tag_name, True, caller)

    @router.delete("/datasets/{namespace}/{name}/tags/{tag_name}")
    def untag_dataset(
        caller: Annotated[Caller, Depends(ctx.caller)], namespace: str, name: str, tag_name: str
    ) -> Response:
        """Remove a tag from a dataset."""
        return tag("dataset", namespace, name, "", tag_name, False, caller)

    @router.post("/datasets/{namespace}/{name}/fields/{field}/tags/{tag_name}")
    def tag_field(
        caller: Annotated[Caller, Depends(ctx.caller)],
        namespace: str,
        name: str,
        field: str,
        tag_name: str,
    ) -> Response:
        """Add a tag to a field of a dataset's current schema."""
        return tag("dataset", namespace, name, field, tag_name, True, caller)

    @router.delete("/datasets/{namespace}/{name}/fields/{field}/tags/{tag_name}")
    def untag_field(
        caller: Annotated[Caller, Depends(ctx.caller)],
        namespace: str,
        name: str,
        field: str,
        tag_name: str,
    ) -> Response:
        """Remove a tag from a field of a dataset."""
        return tag("dataset", namespace, name, field, tag_name, False, caller)

    @router.post("/jobs/{namespace}/{name}/tags/{tag_name}")
    def tag_job(
        caller: Annotated[Caller, Depends(ctx.caller)], namespace: str, name: str, tag_name: str
    ) -> Response:
        """Add a tag to a job."""
        return tag("job", namespace, name, "", tag_name, True, caller)

    @router.delete("/jobs/{namespace}/{name}/tags/{tag_name}")
    def untag_job(
        caller: Annotated[Caller, Depends(ctx.caller)], namespace: str, name: str, tag_name: str
    ) -> Response:
        """Remove a tag from a job."""
        return tag("job", namespace, name, "", tag_name, False, caller)

    def describe(
        kind: EntityKind,
        namespace: str,
        name: str,
        field: str,
        body: DescriptionBody,
        caller: Caller,
    ) -> Response:
        by = target(caller, kind, namespace, name, field)
        return json_response(
            catalog.set_description(kind, namespace, name, field, body.description, by)
        )

    @router.put("/datasets/{namespace}/{name}/description")
    def describe_dataset(
        caller: Annotated[Caller, Depends(ctx.caller)],
        namespace: str,
        name: str,
        body: DescriptionBody,
    ) -> Response:
        """Set a dataset's description (it wins over the documentation facet)."""
        return describe("dataset", namespace, name, "", body, caller)

    @router.put("/datasets/{namespace}/{name}/fields/{field}/description")
    def describe_field(
        caller: Annotated[Caller, Depends(ctx.caller)],
        namespace: str,
        name: str,
        field: str,
        body: DescriptionBody,
    ) -> Response:
        """Set a dataset field's description (it wins over the schema's)."""
        return describe("dataset", namespace, name, field, body, caller)

    @router.put("/jobs/{namespace}/{name}/description")
    def describe_job(
        caller: Annotated[Caller, Depends(ctx.caller)],
        namespace: str,
        name: str,
        body: DescriptionBody,
    ) -> Response:
        """Set a job's description (it wins over the documentation facet)."""
        return describe("job", namespace, name, "", body, caller)

    def delete(kind: EntityKind, namespace: str, name: str, caller: Caller) -> Response:
        by = target(caller, kind, namespace, name)
        deleted_at = catalog.soft_delete(kind, namespace, name, by)
        return json_response({"namespace": namespace, "name": name, "deleted_at": deleted_at})

    @router.delete("/datasets/{namespace}/{name}")
    def delete_dataset(
        caller: Annotated[Caller, Depends(ctx.caller)], namespace: str, name: str
    ) -> Response:
        """Hide a dataset until an event newer than now mentions it again."""
        return delete("dataset", namespace, name, caller)

    @router.delete("/jobs/{namespace}/{name}")
    def delete_job(
        caller: Annotated[Caller, Depends(ctx.caller)], namespace: str, name: str
    ) -> Response:
        """Hide a job until an event newer than now mentions it again."""
        return delete("job", namespace, name, caller)

    return router


def _missing(kind: str, namespace: str, name: str) -> str:
    plural = "jobs" if kind == "job" else "datasets"
    return (
        f"no {kind} {name!r} in namespace {namespace!r} (list them with GET "
        f"/api/v2/{plural}?namespace=...; encode '/' in names as %2F)"
    )


def _found(value: Any, kind: str, namespace: str, name: str) -> Any:
    if value is None:
        raise HTTPException(404, _missing(kind, namespace, name))
    return value


def _page(page: Page, limit: int, offset: int) -> Response:
    return json_response(page.body(limit, offset))
