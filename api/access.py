"""Who may read what: API keys on read routes, namespace scope, and the SQL gate.

Reads need a key with the `read` (or `admin`) role, limited to the key's namespaces;
`LINEAGEHOUSE_API__AUTH_ENABLED=false` turns keys off for local use. A job's SQL (`sql`
job facet) and source code (`sourceCode` job facet, the `jobs` table's columns) are
hidden everywhere unless `LINEAGEHOUSE_API__EXPOSE_SQL=true`, and then shown only to
keys with the `read` role on the job's namespace or `admin` (everyone when auth is off).

The redaction functions are pure; every route that can carry a job's facets (raw
events, facets, jobs, runs, Marquez routes, search, the DLQ commands) passes its output
through them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import HTTPException, Request

from lineagehouse.apikeys import KeyRecord, KeyStore, authorize, bearer_token

SECRET_JOB_FACETS = ("sql", "sourceCode")
REDACTED_NOTE = (
    "hidden: a job's SQL and source code are shown only when the operator sets "
    "LINEAGEHOUSE_API__EXPOSE_SQL=true, to keys with the read role on the namespace"
)


@dataclass(frozen=True, slots=True)
class Caller:
    """The key behind a request (None when auth is off) and what it may see."""

    record: KeyRecord | None
    auth_enabled: bool
    expose_sql: bool

    def may_read(self, namespace: str) -> bool:
        if not self.auth_enabled:
            return True
        return bool(authorize(self.record, "read", namespace))

    def may_write(self, namespace: str) -> bool:
        if not self.auth_enabled:
            return True
        return bool(authorize(self.record, "write", namespace))

    def sees_sql(self, namespace: str) -> bool:
        if not self.expose_sql:
            return False
        if not self.auth_enabled:
            return True
        return self.record is not None and self.may_read(namespace)

    def namespace_patterns(self) -> tuple[str, ...]:
        """fnmatch patterns the caller is limited to; empty means every namespace."""
        if not self.auth_enabled or self.record is None:
            return ()
        return self.record.namespaces

    def check_read(self, namespace: str) -> None:
        """404, not 403, for a namespace outside the key's scope: it does not exist
        for this caller."""
        if not self.may_read(namespace):
            raise HTTPException(404, f"nothing found in namespace {namespace!r} for this key")

    def check_write(self, namespace: str) -> None:
        if not self.auth_enabled:
            return
        decision = authorize(self.record, "write", namespace)
        if not decision:
            raise HTTPException(403, decision.reason)


def caller_dependency(
    store: KeyStore | None, auth_enabled: bool, expose_sql: bool
) -> Callable[[Request], Caller]:
    """A FastAPI dependency: the Caller of a request, or 401/403/503 with the fix."""

    def caller(request: Request) -> Caller:
        if not auth_enabled or store is None:
            return Caller(None, False, expose_sql)
        token = bearer_token(request.headers.get("authorization", ""))
        if token is None:
            raise HTTPException(
                401,
                "missing API key: send `Authorization: Bearer <key>` with a key of role "
                "read (create one with `lineagehouse keys create --name NAME --role read`)",
            )
        if not store.ready:
            raise HTTPException(503, "API keys could not be read from ClickHouse yet; retry")
        record = store.authenticate(token)
        if record is None:
            raise HTTPException(401, "invalid API key")
        decision = authorize(record, "read", None)
        if not decision and not authorize(record, "write", None):
            raise HTTPException(403, decision.reason)
        return Caller(record, True, expose_sql)

    return caller


# --- redaction (pure) -------------------------------------------------------------------


def redact_job_facets(facets: dict[str, Any] | None) -> dict[str, Any] | None:
    """A copy of a job's facets without SQL and source code (a note in their place)."""
    if not facets or not any(name in facets for name in SECRET_JOB_FACETS):
        return facets
    return {
        name: ({"_redacted": REDACTED_NOTE} if name in SECRET_JOB_FACETS else facet)
        for name, facet in facets.items()
    }


def redact_event(event: Any) -> Any:
    """An OpenLineage event (dict) without its job's SQL and source code."""
    if not isinstance(event, dict):
        return event
    job = event.get("job")
    if not isinstance(job, dict) or not isinstance(job.get("facets"), dict):
        return event
    redacted = redact_job_facets(job["facets"])
    if redacted is job["facets"]:
        return event
    return {**event, "job": {**job, "facets": redacted}}


def event_namespace(event: Any) -> str:
    job = event.get("job") if isinstance(event, dict) else None
    return str(job.get("namespace", "")) if isinstance(job, dict) else ""


def redact_payload(payload: bytes | str, caller: Caller | None) -> bytes:
    """Raw event JSON as the caller may see it. A payload that is not a JSON object
    (a dead letter, say) is withheld entirely unless SQL is visible to the caller, as
    it cannot be shown to hold no SQL. `caller=None`: an operator tool, SQL gate only."""
    raw = payload.encode() if isinstance(payload, str) else payload
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        if _sees(caller, ""):
            return raw
        return orjson.dumps({"_redacted": "not JSON; " + REDACTED_NOTE})
    if _sees(caller, event_namespace(event)):
        return raw
    redacted = redact_event(event)
    return raw if redacted is event else orjson.dumps(redacted)


def redact_reason(path: str, message: str, sees_sql: bool) -> str:
    """A validation reason about a job's SQL or source code quotes it: hide it too."""
    if sees_sql:
        return message
    if any(f".job.facets.{name}" in path for name in SECRET_JOB_FACETS):
        return "(the message quotes the job's SQL or source code; " + REDACTED_NOTE + ")"
    return message


def _sees(caller: Caller | None, namespace: str) -> bool:
    return caller.sees_sql(namespace) if caller is not None else False
