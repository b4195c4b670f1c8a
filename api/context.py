"""What every route of the API shares: settings, the ClickHouse client, the lineage graph
and the caller dependency. Built once by `server.create_app`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from clickhouse_connect.driver.client import Client
from fastapi import HTTPException, Request

from lineagehouse.api.access import Caller
from lineagehouse.api.graph import LineageGraph
from lineagehouse.api.graph_feed import GraphFeed
from lineagehouse.settings import Settings


@dataclass(frozen=True, slots=True)
class ApiContext:
    settings: Settings
    client: Client
    graph: LineageGraph
    feed: GraphFeed
    caller: Callable[[Request], Caller]  # FastAPI dependency

    @property
    def db(self) -> str:
        return self.settings.clickhouse.database

    def require_graph(self) -> None:
        """503 until the lineage graph has loaded (the readiness probe says the same)."""
        if not self.feed.ready:
            raise HTTPException(
                503,
                "the lineage index is loading from ClickHouse; retry in a moment "
                f"(GET /readyz says when it is ready; last error: {self.feed.error})",
            )


def epoch_ms(value: datetime) -> int:
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    return int(aware.timestamp() * 1000)


def iso(ms: int | None) -> str | None:
    if ms is None:
        return None
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")
