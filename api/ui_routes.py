"""The web UI: `/` serves the single page, `/ui/<asset>` its scripts and styles.

The assets are package data (`api/ui/`), read with importlib.resources, so an installed
wheel serves them as the source tree does. The page needs no key (it has its own login
screen); every API call it makes sends the key the user typed. These routes are left out
of the OpenAPI document: they carry no data.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable

from fastapi import APIRouter, HTTPException, Response

MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
# The page and its assets change with the package, so browsers revalidate each load.
HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}


def _ui_dir() -> Traversable:
    return resources.files("lineagehouse.api").joinpath("ui")


def _asset(name: str) -> Response:
    suffix = "." + name.rpartition(".")[2] if "." in name else ""
    media_type = MEDIA_TYPES.get(suffix)
    if media_type is None or "/" in name or "\\" in name or name.startswith("."):
        raise HTTPException(404, f"no UI asset {name!r}")
    item = _ui_dir().joinpath(name)
    if not item.is_file():
        raise HTTPException(404, f"no UI asset {name!r}")
    return Response(item.read_bytes(), media_type=media_type, headers=HEADERS)


def create_ui_router() -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    def index() -> Response:
        return _asset("index.html")

    @router.get("/ui/{name}")
    def asset(name: str) -> Response:
        return _asset(name)

    return router
