"""What the routers of both APIs (`/api/v2`, Marquez's `/api/v1`) share: a route class
matched on the path as sent, so names may hold an encoded '/', the read-role check, and
JSON answers."""

from typing import Any
from urllib.parse import unquote

import orjson
from fastapi import HTTPException, Response
from fastapi.routing import APIRoute
from starlette.routing import Match
from starlette.types import Scope

from lineagehouse.api.access import Caller
from lineagehouse.apikeys import authorize


class EncodedPathRoute(APIRoute):
    """A route matched against the path as the client sent it, each path parameter then
    percent-decoded: an encoded '/' (`%2F`) stays inside its segment."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        raw = scope.get("raw_path") if scope.get("type") == "http" else None
        if not raw:
            return super().matches(scope)
        path = raw.decode("latin-1").partition("?")[0]
        match, child = super().matches({**scope, "path": path})
        if match is not Match.NONE and "path_params" in child:
            child["path_params"] = {
                key: unquote(value) if key in self.param_convertors else value
                for key, value in child["path_params"].items()
            }
        return match, child


def require_reader(caller: Caller) -> None:
    """403 for a key that cannot read at all (a write-only key)."""
    if caller.auth_enabled:
        decision = authorize(caller.record, "read", None)
        if not decision:
            raise HTTPException(403, decision.reason)


def json_response(body: Any) -> Response:
    """orjson straight to bytes: for a 1,000-node lineage answer FastAPI's encoder costs
    more than the traversal."""
    return Response(orjson.dumps(body), media_type="application/json")
