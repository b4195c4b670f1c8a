"""Prometheus metrics of the worker and the API, scraped from the real processes after
real traffic: the numbers must match what was sent."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client

from lineagehouse.drain import wait_until_drained
from lineagehouse.settings import Settings
from lineagehouse.store.migrations import migrate
from lineagehouse.topics import ensure_topics
from tests.conftest import produce, wait_for
from tests.events import encode, lineage_event, run_key

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


def scrape(url: str) -> dict[tuple[str, str], float]:
    """(metric name, labels text) -> value, from a Prometheus exposition."""
    try:
        text = httpx.get(url, timeout=10).text
    except httpx.ConnectError:  # the process is not listening yet
        return {}
    found = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match:
            found[(match[1], match[2] or "")] = float(match[3])
    return found


def total(samples: dict[tuple[str, str], float], name: str, **labels: str) -> float:
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    return sum(
        value
        for (metric, text), value in samples.items()
        if metric == name and all(w in text for w in wanted)
    )


def test_worker_and_api_metrics_match_the_traffic(
    make_settings: Callable[..., Settings], ch: Client, start_worker: Any, start_api: Any
) -> None:
    settings = make_settings()
    migrate(settings)
    ensure_topics(settings)
    good = [lineage_event(i, job=f"job_{i % 5}", event_type="COMPLETE") for i in range(60)]
    produce(settings, [(run_key(e), encode(e)) for e in good] + [(None, b"{not json")] * 3)
    worker = start_worker(settings)
    metrics_url = f"http://127.0.0.1:{settings.worker.web_port}/metrics"
    wait_for(
        lambda: total(scrape(metrics_url), "lineagehouse_events_consumed_total") >= 63,
        120,
        "the worker to consume every message",
        alive=worker,
    )
    assert wait_until_drained(settings, timeout_s=120) == []
    samples = scrape(metrics_url)
    assert total(samples, "lineagehouse_events_consumed_total") == 63
    assert total(samples, "lineagehouse_events_rejected_total") == 3
    for kind in ("runs", "io_edges", "dataset_metrics", "events_raw"):
        assert total(samples, "lineagehouse_derived_rows_total", kind=kind) > 0, kind
    db = settings.clickhouse.database
    runs = ch.command(f"SELECT count() FROM {db}.runs FINAL")
    assert total(samples, "lineagehouse_sink_batch_rows_sum", table=f"{db}.runs") >= runs
    assert total(samples, "lineagehouse_sink_batch_seconds_count", table=f"{db}.runs") >= 1
    # The worker keeps the memory its batches free, as much as the setting says.
    kept_limit = total(samples, "lineagehouse_memory_keep_limit_bytes")
    assert kept_limit == settings.worker.keep_freed_memory_mb * 1024 * 1024 > 0
    lag = [text for (name, text) in samples if name == "lineagehouse_consumer_lag"]
    assert any(settings.topics.events in text for text in lag), lag

    url = start_api(settings, LINEAGEHOUSE_API__AUTH_ENABLED="false")
    for _ in range(3):
        assert httpx.get(f"{url}/api/v2/jobs").status_code == 200
    api = scrape(f"{url}/metrics")
    count = total(api, "lineagehouse_api_request_seconds_count", route="/api/v2/jobs", status="200")
    assert count == 3
