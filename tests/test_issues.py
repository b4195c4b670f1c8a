"""Issues end to end: the real openlineage-python client (Kafka transport) into the running
worker, issues read back from the API, a webhook receiver in the test.

- a job whose runs take ~60 s +/- 2 s for 10 runs, then 300 s (synthetic event times, no
  sleeping): exactly one duration_outlier; one more normal run resolves it; the webhook
  gets both calls (the first attempt is refused, so the retry is exercised too), signed;
- dataQualityMetrics (row count, per-column null and distinct counts) read back from the
  dataset's quality history;
- a column dropped from an output: one schema_changed issue of breaking severity;
- a failed run: one run_failed issue;
- every event of the test delivered twice more: no issue count changes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from clickhouse_connect.driver.client import Client
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    data_quality_metrics_input_dataset as dq,
)
from openlineage.client.facet_v2 import error_message_run, schema_dataset

from lineagehouse.drain import wait_until_drained
from lineagehouse.settings import Settings
from lineagehouse.store.migrations import migrate
from lineagehouse.store.webhooks import add_webhook
from lineagehouse.topics import ensure_topics
from tests.conftest import redeliver_stored_events, wait_for
from tests.test_emitter_openlineage_python import client_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
PRODUCER = "https://github.com/lineagehouse/lineagehouse/tests/issues"
SECRET = "webhook-secret"


class Receiver:
    """A webhook endpoint that refuses the first call it gets, then accepts."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.refused = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.refused == 0:
                    receiver.refused += 1
                    self.send_response(503)
                    self.end_headers()
                    return
                receiver.calls.append({"headers": dict(self.headers), "body": body})
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def events(self) -> list[tuple[str, str]]:
        return [
            (c["headers"]["X-Lineagehouse-Event"], json.loads(c["body"])["issue"]["issue_id"])
            for c in self.calls
        ]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.server.shutdown()


def schema(*columns: str) -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=c, type="STRING") for c in columns]
    )


def test_issues_from_real_emitter_runs(
    make_settings: Callable[..., Settings],
    ch: Client,
    start_worker: Any,
    start_api: Any,
    receiver: Receiver,
) -> None:
    settings = make_settings(
        issues={"webhook_backoff_s": 0.2, "webhook_sweep_interval_s": 0.3},
    )
    migrate(settings)
    ensure_topics(settings)
    db = settings.clickhouse.database
    add_webhook(ch, db, receiver.url, secret=SECRET, kinds=("duration_outlier",))
    worker = start_worker(settings)
    url = start_api(settings, LINEAGEHOUSE_API__AUTH_ENABLED="false")
    client = client_for(settings)
    t0 = datetime(2026, 10, 1, 2, 0, tzinfo=UTC)

    def run(
        job: str,
        start: datetime,
        seconds: float,
        state: RunState = RunState.COMPLETE,
        **datasets: Any,
    ) -> str:
        run_id = str(uuid.uuid4())
        for event_type, at in (
            (RunState.START, start),
            (state, start + timedelta(seconds=seconds)),
        ):
            facets = {}
            if event_type == RunState.FAIL:
                facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                    message="disk full", programmingLanguage="python"
                )
            client.emit(
                RunEvent(
                    eventType=event_type,
                    eventTime=at.isoformat(),
                    run=Run(runId=run_id, facets=facets),
                    job=Job(namespace="etl", name=job),
                    producer=PRODUCER,
                    inputs=datasets.get("inputs", []),
                    outputs=datasets.get("outputs", []),
                )
            )
        return run_id

    def issues(**params: Any) -> list[dict[str, Any]]:
        resp = httpx.get(f"{url}/api/v2/issues", params={"limit": 1000, **params})
        assert resp.status_code == 200, resp.text
        return resp.json()["items"]

    # -- durations: 10 runs of 60 s +/- 2 s, then 300 s --------------------------------
    jitter = [0.0, 1.5, -1.2, 2.0, -2.0, 0.7, -0.4, 1.1, -1.8, 0.3]
    for day, delta in enumerate(jitter):
        run("nightly_load", t0 + timedelta(days=day), 60 + delta)
    slow = run("nightly_load", t0 + timedelta(days=10), 300)
    outliers = wait_for(
        lambda: issues(kind="duration_outlier"), 120, "the duration outlier", alive=worker
    )
    assert len(outliers) == 1
    (outlier,) = outliers
    assert outlier["run_id"] == slow and outlier["status"] == "open"
    assert outlier["job"] == {"namespace": "etl", "name": "nightly_load"}
    back = run("nightly_load", t0 + timedelta(days=11), 61)
    resolved = wait_for(
        lambda: [i for i in issues(kind="duration_outlier") if i["status"] == "resolved"],
        120,
        "the outlier to resolve",
        alive=worker,
    )
    assert resolved[0]["resolved_by_run"] == back
    assert len(issues(kind="duration_outlier")) == 1

    # The webhook got both transitions, signed; the first attempt was refused and retried.
    wait_for(lambda: len(receiver.calls) >= 2, 60, "both webhook calls", alive=worker)
    assert receiver.refused == 1
    assert receiver.events() == [
        ("issue.opened", outlier["issue_id"]),
        ("issue.resolved", outlier["issue_id"]),
    ]
    for call in receiver.calls:
        expected = hmac.new(SECRET.encode(), call["body"], hashlib.sha256).hexdigest()
        assert call["headers"]["X-Lineagehouse-Signature"] == f"sha256={expected}"
    assert len({c["headers"]["X-Lineagehouse-Delivery"] for c in receiver.calls}) == 2

    # The job's duration history shows the mean and band the rule used.
    resp = httpx.get(f"{url}/api/v2/jobs/etl/nightly_load/durations", params={"runs": 50})
    assert resp.status_code == 200, resp.text
    durations = resp.json()
    assert len(durations["runs"]) == 12
    assert [r["run_id"] for r in durations["runs"] if r["outlier"]] == [slow]

    # -- metrics read back from the quality history --------------------------------------
    metrics = dq.DataQualityMetricsInputDatasetFacet(
        rowCount=1234,
        bytes=56789,
        columnMetrics={
            "customer_id": dq.ColumnMetrics(nullCount=0, distinctCount=321),
            "email": dq.ColumnMetrics(nullCount=17, distinctCount=1200),
        },
    )
    checked = run(
        "profile_orders",
        t0 + timedelta(days=12),
        5,
        inputs=[
            InputDataset(
                namespace="postgres://db:5432",
                name="shop.public.orders",
                inputFacets={"dataQualityMetrics": metrics},
            )
        ],
    )
    path = f"{quote('postgres://db:5432', safe='')}/{quote('shop.public.orders', safe='')}"

    def quality() -> dict[str, Any] | None:
        resp = httpx.get(f"{url}/api/v2/datasets/{path}/quality")
        return resp.json() if resp.status_code == 200 and resp.json()["runs"] else None

    history = wait_for(quality, 120, "the quality history", alive=worker)
    (entry,) = history["runs"]
    assert entry["run_id"] == checked
    found = entry["metrics"]
    assert (found["dataset"]["row_count"], found["dataset"]["byte_count"]) == (1234, 56789)
    assert found["columns"]["customer_id"]["null_count"] == 0
    assert found["columns"]["customer_id"]["distinct_count"] == 321
    assert found["columns"]["email"]["null_count"] == 17
    assert found["columns"]["email"]["distinct_count"] == 1200

    # -- a dropped column and a failed run -------------------------------------------------
    users = "warehouse.users"

    def write_users(day: int, *columns: str) -> str:
        out = OutputDataset(namespace="etl", name=users, facets={"schema": schema(*columns)})
        return run("build_users", t0 + timedelta(days=day), 10, outputs=[out])

    write_users(13, "id", "name", "email")
    write_users(14, "id", "name", "email")
    dropped = write_users(15, "id", "email")
    failed = run("publish", t0 + timedelta(days=15), 3, state=RunState.FAIL)
    changes = wait_for(lambda: issues(kind="schema_changed"), 120, "the schema change")
    assert len(changes) == 1
    (change,) = changes
    assert change["severity"] == "breaking" and change["run_id"] == dropped
    assert change["dataset"] == {"namespace": "etl", "name": users}
    assert change["details"]["removed"] == ["name"] and change["status"] == "open"
    failures = wait_for(lambda: issues(kind="run_failed"), 120, "the failed run")
    assert [(i["run_id"], i["status"]) for i in failures] == [(failed, "open")]
    assert "disk full" in failures[0]["summary"]

    # -- every event twice more: nothing changes -------------------------------------------
    assert wait_until_drained(settings, timeout_s=120) == []
    before = sorted((i["issue_id"], i["status"]) for i in issues())
    assert len(before) == 3  # the outlier, the schema change, the failed run
    # 17 runs: a START and a COMPLETE or FAIL each
    assert redeliver_stored_events(settings, ch, times=2) == 2 * 17
    after = sorted((i["issue_id"], i["status"]) for i in issues())
    assert after == before
    assert ch.command(f"SELECT count() FROM {db}.issues FINAL") == 3
    assert len(receiver.calls) == 2
