"""GET /api/v1/events/lineage in Marquez's shape, served by the real `lineagehouse api`."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from clickhouse_connect.driver.client import Client

from lineagehouse.embedded.process import free_port, http_ok, stop_process, wait_until
from lineagehouse.processors.events import EVENTS_RAW_COLUMNS, Source
from lineagehouse.settings import Settings
from lineagehouse.store.migrations import migrate
from tests.conftest import lineagehouse_cmd, settings_env
from tests.events import BASE_TIME, encode, raw_row_of, run_event

N = 30


@pytest.fixture
def api(settings: Settings, ch: Client, tmp_path: Path) -> Iterator[str]:
    migrate(settings)
    rows = []
    for i in range(N):
        value = encode(run_event(i, job="api_job", event_time=BASE_TIME + timedelta(minutes=i)))
        rows.append(raw_row_of(value, Source("t", 0, i, None), datetime.now(UTC)))
    db = settings.clickhouse.database
    ch.insert(f"{db}.events_raw", rows, column_names=list(EVENTS_RAW_COLUMNS))
    ch.insert(f"{db}.events_raw", rows[:5], column_names=list(EVENTS_RAW_COLUMNS))  # replay
    log = open(tmp_path / "api.log", "wb")  # noqa: SIM115
    env = {**settings_env(settings), "LINEAGEHOUSE_API__AUTH_ENABLED": "false"}
    proc = subprocess.Popen(lineagehouse_cmd("api"), env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{settings.api.port}"
    wait_until(lambda: http_ok(f"{url}/healthz"), "API", 60, proc)
    yield url
    stop_process(proc)
    log.close()


def event_times(body: dict) -> list[str]:
    return [e["eventTime"] for e in body["events"]]


def test_events_marquez_shape_and_paging(api: str) -> None:
    body = httpx.get(f"{api}/api/v1/events/lineage").json()
    assert body["totalCount"] == N  # the replayed copies count once
    assert len(body["events"]) == N
    times = event_times(body)
    assert times == sorted(times, reverse=True)  # desc by default, like Marquez
    assert body["events"][0] == run_event(
        N - 1, job="api_job", event_time=BASE_TIME + timedelta(minutes=N - 1)
    )

    page = httpx.get(
        f"{api}/api/v1/events/lineage", params={"limit": 10, "offset": 10, "sortDirection": "asc"}
    ).json()
    assert page["totalCount"] == N
    assert event_times(page) == sorted(times)[10:20]


def test_events_time_window(api: str) -> None:
    after = (BASE_TIME + timedelta(minutes=5)).isoformat()
    before = (BASE_TIME + timedelta(minutes=9)).isoformat()
    body = httpx.get(
        f"{api}/api/v1/events/lineage", params={"after": after, "before": before}
    ).json()
    assert body["totalCount"] == 5
    assert len(body["events"]) == 5


def test_bad_parameters_are_json_errors(api: str) -> None:
    resp = httpx.get(f"{api}/api/v1/events/lineage", params={"limit": -1})
    assert resp.status_code == 422
    assert "limit" in resp.text
    resp = httpx.get(f"{api}/api/v1/events/lineage", params={"sortDirection": "up"})
    assert resp.status_code == 422


def test_health_and_metrics(api: str) -> None:
    assert httpx.get(f"{api}/healthz").json() == {"status": "ok"}
    httpx.get(f"{api}/api/v1/events/lineage")
    text = httpx.get(f"{api}/metrics").text
    assert 'lineagehouse_api_request_seconds_count{method="GET",route="/api/v1/events/lineage"' in (
        text
    )


def test_liveness_does_not_depend_on_clickhouse(settings: Settings, tmp_path: Path) -> None:
    """With ClickHouse unreachable the process is alive (/livez 200, so an orchestrator
    does not restart it) but not healthy (/healthz 503 naming ClickHouse) nor ready."""
    nowhere = f"http://127.0.0.1:{free_port()}"
    env = {**settings_env(settings), "LINEAGEHOUSE_CLICKHOUSE__URL": nowhere}
    log = open(tmp_path / "api.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(lineagehouse_cmd("api"), env=env, stdout=log, stderr=log)
    url = f"http://127.0.0.1:{settings.api.port}"
    try:
        wait_until(lambda: http_ok(f"{url}/livez"), "API liveness", 60, proc)
        health = httpx.get(f"{url}/healthz")
        assert health.status_code == 503 and "clickhouse" in health.json()
        assert httpx.get(f"{url}/readyz").status_code == 503
    finally:
        stop_process(proc)
        log.close()
