"""`lineagehouse demo`: the sample estate arrives through the real openlineage-python
transports (HTTP with a key, then Kafka), raises one issue of every kind, and sending it
again changes nothing."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client

from lineagehouse.apikeys import create_key
from lineagehouse.drain import wait_until_drained
from lineagehouse.settings import Settings
from lineagehouse.store.client import connect
from lineagehouse.store.migrations import migrate
from lineagehouse.topics import ensure_topics
from tests.conftest import run_cli, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

EXPECTED = {
    ("assertion_failed", "open"): 1,
    ("duration_outlier", "open"): 1,
    ("schema_changed", "open"): 1,
    ("run_failed", "resolved"): 2,  # the task and its DAG run, both fine the next day
}


def test_demo_populates_every_kind_of_issue_and_is_idempotent(
    make_settings: Callable[..., Settings], ch: Client, start_worker: Any, start_api: Any
) -> None:
    settings = make_settings()
    migrate(settings)
    ensure_topics(settings)
    client = connect(settings.clickhouse)
    key, _ = create_key(client, settings, "demo", "admin")
    worker = start_worker(settings)
    url = start_api(settings)
    headers = {"Authorization": f"Bearer {key}"}

    done = run_cli(settings, "demo", "--via", "http", "--url", url, "--api-key", key)
    assert done.returncode == 0, done.stderr
    assert "Sent 116 events" in done.stdout

    def issues() -> Counter:
        resp = httpx.get(f"{url}/api/v2/issues", params={"limit": 100}, headers=headers)
        assert resp.status_code == 200, resp.text
        return Counter((i["kind"], i["status"]) for i in resp.json()["items"])

    wait_for(lambda: issues() == EXPECTED, 180, f"the demo's issues {EXPECTED}", alive=worker)

    # The revenue table's lineage reaches back to the shop's orders and customers.
    resp = httpx.get(
        f"{url}/api/v2/lineage",
        params={
            "node_id": "dataset:postgres://warehouse:5432:analytics.public.daily_revenue",
            "direction": "upstream",
            "depth": 10,
        },
        headers=headers,
    )
    assert resp.status_code == 200, resp.text
    names = {n["name"] for n in resp.json()["nodes"]}
    assert {"shop.public.orders", "shop.public.customers", "shop_daily.load_revenue"} <= names

    # Again, over Kafka this time: the same events, so nothing changes.
    db = settings.clickhouse.database
    events = ch.command(f"SELECT count() FROM {db}.events_raw FINAL")
    again = run_cli(settings, "demo")
    assert again.returncode == 0, again.stderr
    assert wait_until_drained(settings, timeout_s=120) == []
    assert ch.command(f"SELECT count() FROM {db}.events_raw FINAL") == events == 116
    assert issues() == EXPECTED
