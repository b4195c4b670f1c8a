"""`/api/v2` quality routes: issues (list, one, resolve by hand), a dataset's check
results and metrics per run, a job's run durations and their usual band, and the webhook
subscriptions issues are sent to.

Reads need the read role and are limited to the key's namespaces (an issue's namespace is
its dataset's, else its job's; a single object elsewhere is a 404). Resolving an issue
needs the write role on its namespace. Webhooks need an admin key without namespace
limits: a webhook may receive issues of every namespace.

Namespaces and names are single percent-encoded path segments (`EncodedPathRoute`, as in
`v2_catalog.py`).
"""

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Query, Response
from pydantic import BaseModel, Field

from lineagehouse.api.access import Caller
from lineagehouse.api.context import ApiContext
from lineagehouse.api.quality import Quality
from lineagehouse.api.routing import EncodedPathRoute, json_response
from lineagehouse.api.routing import require_reader as _reader
from lineagehouse.apikeys import authorize
from lineagehouse.processors.issues import ISSUE_KINDS, SEVERITIES
from lineagehouse.store.webhooks import add_webhook, list_webhooks, remove_webhook

MAX_LIMIT = 1000
STATUSES = ("open", "resolved")

Limit = Annotated[int, Query(ge=0, le=MAX_LIMIT, description="items per page (max 1000)")]
Offset = Annotated[int, Query(ge=0, description="items to skip")]
Text = Annotated[str | None, Query()]


class WebhookBody(BaseModel):
    url: str = Field(..., max_length=2048, description="http(s) URL issues are POSTed to")
    secret: str = Field("", max_length=4096, description="signs each call (HMAC-SHA256)")
    kinds: list[str] = Field(default_factory=list, description="issue kinds; empty: every kind")
    namespaces: list[str] = Field(
        default_factory=list, description="namespace globs; empty: every namespace"
    )
    severities: list[str] = Field(
        default_factory=list, description="severities; empty: every severity"
    )


def _one_of(name: str, value: str | None, allowed: tuple[str, ...]) -> None:
    if value is not None and value not in allowed:
        raise HTTPException(422, f"unknown {name} {value!r}: use one of {', '.join(allowed)}")


def _admin(caller: Caller) -> None:
    """403 unless the key is an admin key that may see every namespace."""
    if not caller.auth_enabled:
        return
    decision = authorize(caller.record, "admin", None)
    if not decision:
        raise HTTPException(403, decision.reason)
    if caller.record is not None and caller.record.namespaces:
        raise HTTPException(
            403,
            f"API key {caller.record.key_id} is limited to namespaces "
            f"{', '.join(caller.record.namespaces)}, and a webhook may receive issues of "
            "every namespace; use an admin key without --namespace",
        )


def create_quality_router(ctx: ApiContext) -> APIRouter:
    router = APIRouter(prefix="/api/v2", tags=["quality"], route_class=EncodedPathRoute)
    quality = Quality(ctx.client, ctx.db)

    # -- issues --------------------------------------------------------------------------

    @router.get("/issues")
    def list_issues(
        caller: Annotated[Caller, Depends(ctx.caller)],
        kind: Annotated[str | None, Query(description=", ".join(ISSUE_KINDS))] = None,
        status: Annotated[str | None, Query(description="open or resolved")] = None,
        severity: Annotated[str | None, Query(description=", ".join(SEVERITIES))] = None,
        namespace: Annotated[
            str | None, Query(description="the issue's namespace (its dataset's, else job's)")
        ] = None,
        dataset_namespace: Text = None,
        dataset_name: Text = None,
        job_namespace: Text = None,
        job_name: Text = None,
        run_id: Annotated[str | None, Query(description="the run that raised it")] = None,
        since: Annotated[datetime | None, Query(description="opened at or after")] = None,
        until: Annotated[datetime | None, Query(description="opened at or before")] = None,
        limit: Limit = 100,
        offset: Offset = 0,
    ) -> Response:
        """Issues, most recently opened first."""
        _reader(caller)
        _one_of("kind", kind, ISSUE_KINDS)
        _one_of("status", status, STATUSES)
        _one_of("severity", severity, SEVERITIES)
        page = quality.list_issues(
            caller,
            kind=kind,
            status=status,
            severity=severity,
            namespace=namespace,
            dataset=(dataset_namespace, dataset_name),
            job=(job_namespace, job_name),
            run_id=run_id,
            since=since,
            until=until,
            limit=limit,
            offset=offset,
        )
        return json_response(page.body(limit, offset))

    def _missing_issue(issue_id: str) -> HTTPException:
        return HTTPException(404, f"no issue {issue_id!r} (list issues with GET /api/v2/issues)")

    @router.get("/issues/{issue_id}")
    def get_issue(caller: Annotated[Caller, Depends(ctx.caller)], issue_id: str) -> Response:
        """One issue."""
        _reader(caller)
        issue = quality.get_issue(issue_id)
        if issue is None or not caller.may_read(issue["namespace"]):
            raise _missing_issue(issue_id)
        return json_response(issue)

    @router.post("/issues/{issue_id}/resolve")
    def resolve_issue(caller: Annotated[Caller, Depends(ctx.caller)], issue_id: str) -> Response:
        """Resolve an open issue by hand (resolved_how 'resolved by <key id>'). 409 if it
        is resolved already; the issue is left as it is."""
        issue = quality.get_issue(issue_id)
        if issue is None or not (
            caller.may_read(issue["namespace"]) or caller.may_write(issue["namespace"])
        ):
            raise _missing_issue(issue_id)
        caller.check_write(issue["namespace"])
        by = caller.record.key_id if caller.record is not None else "api"
        after, changed = quality.resolve_issue(issue_id, by)
        if after is None:
            raise _missing_issue(issue_id)
        if not changed:
            raise HTTPException(
                409,
                f"issue {issue_id!r} is resolved already (at {after['resolved_at']}, "
                f"{after['resolved_how'] or 'by run ' + str(after['resolved_by_run'])})",
            )
        return json_response(after)

    # -- datasets and jobs -----------------------------------------------------------------

    @router.get("/datasets/{namespace}/{name}/quality")
    def dataset_quality(
        caller: Annotated[Caller, Depends(ctx.caller)],
        namespace: str,
        name: str,
        runs: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="latest runs")] = 20,
    ) -> Response:
        """Check results and metrics of the dataset's latest runs (newest first), a summary
        per check over them, and how many of its issues are open."""
        _reader(caller)
        caller.check_read(namespace)
        if not quality.dataset_exists(namespace, name):
            raise HTTPException(
                404,
                f"no dataset {name!r} in namespace {namespace!r} (list them with GET "
                "/api/v2/datasets?namespace=...; encode '/' in names as %2F)",
            )
        return json_response(quality.dataset_quality(namespace, name, runs))

    @router.get("/jobs/{namespace}/{name}/durations")
    def job_durations(
        caller: Annotated[Caller, Depends(ctx.caller)],
        namespace: str,
        name: str,
        runs: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="latest finished runs")] = 30,
    ) -> Response:
        """Durations of the job's latest finished runs (oldest first), their mean, standard
        deviation and usual band, and which runs raised a duration_outlier issue."""
        _reader(caller)
        caller.check_read(namespace)
        if not quality.job_exists(namespace, name):
            raise HTTPException(
                404,
                f"no job {name!r} in namespace {namespace!r} (list them with GET "
                "/api/v2/jobs?namespace=...; encode '/' in names as %2F)",
            )
        return json_response(quality.job_durations(namespace, name, runs))

    # -- webhooks ------------------------------------------------------------------------

    @router.get("/webhooks")
    def get_webhooks(caller: Annotated[Caller, Depends(ctx.caller)]) -> Response:
        """Active webhook subscriptions (admin; secrets are never shown)."""
        _admin(caller)
        return json_response([hook.public() for hook in list_webhooks(ctx.client, ctx.db)])

    @router.post("/webhooks", status_code=201)
    def post_webhook(caller: Annotated[Caller, Depends(ctx.caller)], body: WebhookBody) -> Response:
        """Subscribe a URL to issues (admin). 400 names the field that is wrong."""
        _admin(caller)
        by = caller.record.key_id if caller.record is not None else "api"
        try:
            hook = add_webhook(
                ctx.client,
                ctx.db,
                body.url,
                secret=body.secret,
                kinds=body.kinds,
                namespaces=body.namespaces,
                severities=body.severities,
                created_by=by,
            )
        except ValueError as exc:
            raise HTTPException(400, str(exc)) from None
        response = json_response(hook.public())
        response.status_code = 201
        return response

    @router.delete("/webhooks/{webhook_id}", status_code=204)
    def delete_webhook(caller: Annotated[Caller, Depends(ctx.caller)], webhook_id: str) -> Response:
        """Remove a webhook (admin)."""
        _admin(caller)
        if not remove_webhook(ctx.client, ctx.db, webhook_id):
            raise HTTPException(
                404, f"no webhook {webhook_id!r} (list them with GET /api/v2/webhooks)"
            )
        return Response(status_code=204)

    return router
