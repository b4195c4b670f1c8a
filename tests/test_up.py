"""`lineagehouse up` end to end, fed by openlineage-python's own KafkaTransport."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import clickhouse_connect
import httpx
import pytest
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport
from openlineage.client.transport.kafka import KafkaConfig, KafkaTransport

from lineagehouse.drain import wait_until_drained
from lineagehouse.embedded.process import free_port, port_open, stop_process
from lineagehouse.settings import load_settings
from tests.conftest import UP_WEB_PORTS, free_port_run, lineagehouse_cmd, wait_for

pytestmark = pytest.mark.timeout(600)


class Up:
    """One `lineagehouse up` on its own ports and data dir (restartable)."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.kafka_port, self.ch_port, self.api_port = free_port(), free_port(), free_port()
        self.web_port = free_port_run(UP_WEB_PORTS)  # the worker's metrics; processors' next
        self.proc: subprocess.Popen | None = None
        self.runs = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.kafka_port}"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LINEAGEHOUSE_")}
        env.update(
            {
                "LINEAGEHOUSE_LOG_FORMAT": "text",
                "LINEAGEHOUSE_WORKER__WEB_PORT": str(self.web_port),
                "LINEAGEHOUSE_WORKER__UP_PROCESSORS": "1",
                "LINEAGEHOUSE_WORKER__WEB_HOST": "127.0.0.1",
            }
        )
        self.runs += 1
        self.out = self.data_dir.parent / f"up-{self.runs}.out"
        with open(self.out, "wb") as out:
            self.proc = subprocess.Popen(
                lineagehouse_cmd(
                    "up",
                    "--data-dir",
                    str(self.data_dir),
                    "--kafka-port",
                    str(self.kafka_port),
                    "--clickhouse-port",
                    str(self.ch_port),
                    "--api-port",
                    str(self.api_port),
                ),
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        wait_for(
            lambda: self._check_alive() and b"Lineagehouse is up" in self.out.read_bytes(),
            180,
            "`lineagehouse up` to print its banner",
        )

    def _check_alive(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            pytest.fail(f"up exited with {self.proc.returncode}:\n{self.out.read_text()}")
        return True

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=180)
        return code

    def count_final(self) -> int:
        client = clickhouse_connect.get_client(host="127.0.0.1", port=self.ch_port)
        try:
            return client.command("SELECT count() FROM lineagehouse.events_raw FINAL")
        finally:
            client.close()


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Up]:
    stack = Up(tmp_path / "data")
    yield stack
    if stack.proc is not None and stack.proc.poll() is None:
        stop_process(stack.proc, timeout_s=120)


def make_events(n: int, tag: str) -> list[RunEvent]:
    start = datetime(2024, 6, 1, tzinfo=UTC)
    return [
        RunEvent(
            eventType=RunState.COMPLETE,
            eventTime=(start + timedelta(seconds=i)).isoformat(),
            run=Run(runId=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{tag}/{i}"))),
            job=Job(namespace="up-test", name=f"{tag}.job_{i % 10}"),
            inputs=[InputDataset(namespace="postgres://db:5432", name=f"public.in_{i % 3}")],
            outputs=[OutputDataset(namespace="postgres://db:5432", name=f"public.out_{i % 4}")],
            producer="https://github.com/lineagehouse/lineagehouse/tests",
        )
        for i in range(n)
    ]


def emit(bootstrap: str, events: list[RunEvent]) -> None:
    transport = KafkaTransport(
        KafkaConfig(
            config={"bootstrap.servers": bootstrap, "acks": "all"},
            topic="openlineage.events",
            flush=False,
        )
    )
    client = OpenLineageClient(transport=transport)
    for event in events:
        client.emit(event)
    assert transport.wait_for_completion(timeout=60)
    transport.close(timeout=10)


def test_up_kafka_transport_restart_replay_and_sigterm_drain(up: Up) -> None:
    first = make_events(1000, "first")
    up.start()
    assert httpx.get(f"http://127.0.0.1:{up.api_port}/healthz").status_code == 200
    emit(up.bootstrap, first)
    wait_for(lambda: up.count_final() == 1000, 120, "1,000 events in events_raw")
    # A second processor process runs next to the worker, in the same consumer group.
    processor_log = up.data_dir / "logs" / "processor-1.log"
    wait_for(lambda: b"processor started" in processor_log.read_bytes(), 60, "processor-1")
    assert "Processor 1 metrics" in up.out.read_text()
    scraped = httpx.get(f"http://127.0.0.1:{up.web_port + 1}/metrics").text
    assert "lineagehouse_events_consumed_total" in scraped
    # The banner shows a ready admin key; reads and the HTTP gateway take it.
    key = (up.data_dir / "api_key").read_text().strip()
    events_url = f"http://127.0.0.1:{up.api_port}/api/v1/events/lineage"
    assert httpx.get(events_url).status_code == 401  # reads need a key
    body = httpx.get(
        events_url, params={"limit": 5}, headers={"Authorization": f"Bearer {key}"}
    ).json()
    assert body["totalCount"] == 1000 and len(body["events"]) == 5
    assert f"API key (admin)                {key}" in up.out.read_text()
    http_event = make_events(1, "http")[0]
    http = OpenLineageClient(
        transport=HttpTransport(
            HttpConfig(
                url=f"http://127.0.0.1:{up.api_port}",
                endpoint="api/v1/lineage",
                auth=ApiKeyTokenProvider({"apiKey": key}),
            )
        )
    )
    http.emit(http_event)
    wait_for(lambda: up.count_final() == 1001, 60, "the event sent over HTTP")

    # `lineagehouse keys create` next to the running `up`, with nothing set: it reaches
    # up's ClickHouse and uses up's key secret, so the new key works on up's API.
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINEAGEHOUSE_")}
    env["LINEAGEHOUSE_DATA_DIR"] = str(up.data_dir)
    made = subprocess.run(
        lineagehouse_cmd("keys", "create", "--name", "reader", "--role", "read"),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert made.returncode == 0, made.stderr
    reader = next(w for w in made.stdout.split() if w.startswith("lh_"))
    assert (
        httpx.get(
            events_url, params={"limit": 1}, headers={"Authorization": f"Bearer {reader}"}
        ).status_code
        == 200
    )

    # Restart on the same data dir: the stored data and the key are found.
    assert up.stop() == 0
    up.start()
    assert up.count_final() == 1001
    assert f"API key (admin)                {key}" in up.out.read_text()

    # The same events again (the new broker hands out the same offsets from 0): no change.
    emit(up.bootstrap, first)
    settings = load_settings(kafka={"bootstrap_servers": up.bootstrap})
    assert wait_until_drained(settings, timeout_s=120) == []
    assert up.count_final() == 1001

    # SIGTERM while new events are still unconsumed: up drains them before it stops.
    emit(up.bootstrap, make_events(1000, "second"))
    assert up.stop() == 0
    up.start()
    assert up.count_final() == 2001
    assert up.stop() == 0
    for port in (up.kafka_port, up.ch_port, up.api_port):
        assert not port_open("127.0.0.1", port), f"something still listens on {port}"


def test_up_reports_a_busy_port(up: Up, tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", up.kafka_port))
        sock.listen()
        result = subprocess.run(
            lineagehouse_cmd(
                "up",
                "--data-dir",
                str(tmp_path / "busy"),
                "--kafka-port",
                str(up.kafka_port),
                "--clickhouse-port",
                str(up.ch_port),
                "--api-port",
                str(up.api_port),
            ),
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 1
    assert f"127.0.0.1:{up.kafka_port} is already in use" in result.stderr
