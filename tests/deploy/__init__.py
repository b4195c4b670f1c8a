"""Checks of the deployment artefacts (Dockerfile, Helm chart, guide) without a cluster."""

from __future__ import annotations

import typing
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "lineagehouse"
DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"
GUIDE = REPO / "docs" / "deployment.md"


def api_route_paths() -> set[str]:
    """The paths the real API app serves (building the app connects to nothing: its
    ClickHouse client is made on first use)."""
    from lineagehouse.api import server
    from lineagehouse.settings import load_settings

    app = server.create_app(load_settings(api={"auth_enabled": False}))
    return {route.path for route in app.routes if hasattr(route, "path")}


def setting_env_names() -> set[str]:
    """Every LINEAGEHOUSE_* variable name that is a field of the Settings model."""
    from pydantic import BaseModel

    from lineagehouse.settings import ENV_PREFIX, Settings

    names: set[str] = set()
    for name, field in Settings.model_fields.items():
        kind = field.annotation
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            for sub in kind.model_fields:
                names.add(f"{ENV_PREFIX}{name.upper()}__{sub.upper()}")
        else:
            names.add(f"{ENV_PREFIX}{name.upper()}")
    return names


def worker_stages() -> tuple[str, ...]:
    """The values `lineagehouse worker --stage` takes."""
    from lineagehouse.processors.app import Stage

    return typing.get_args(Stage)
