"""Shared test harness: a real broker and the embedded ClickHouse server, once per run.

Both start as subprocesses, exactly as users run them. If either cannot start, the
fixtures raise: tests fail, they never skip. Each test gets unique topic, database and
consumer-group names (`make_settings`), so tests never see each other's data.
"""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import clickhouse_connect
import pytest
from clickhouse_connect.driver.client import Client

from lineagehouse.embedded.broker import start_broker
from lineagehouse.embedded.process import free_port, http_ok, stop_process, wait_until
from lineagehouse.settings import Settings, load_settings

# The metrics ports `lineagehouse up` takes: the worker's, then one per processor process
# (at most 4).
UP_WEB_PORTS = 5


def free_port_run(count: int) -> int:
    """A free port whose `count - 1` successors are free too, below the kernel's ephemeral
    range: a port after one from `free_port()` can meanwhile become the local end of any
    outgoing connection (a processor of `up` once failed to bind it)."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for port in random.sample(range(20_000, min(low, 32_768) - count), 200):
        sockets = [socket.socket() for _ in range(count)]
        try:
            for offset, sock in enumerate(sockets):
                sock.bind(("127.0.0.1", port + offset))
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
        return port
    raise RuntimeError(f"no {count} free consecutive ports below the ephemeral range")


REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "openlineage" / "corpus"
TEST_KEY_SECRET = "test-only-api-key-secret"


def lineagehouse_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "lineagehouse.cli", *args]


def settings_env(settings: Settings) -> dict[str, str]:
    """Environment that makes a child process use `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINEAGEHOUSE_")}
    env.update(
        {
            "LINEAGEHOUSE_LOG_FORMAT": "text",
            "LINEAGEHOUSE_DATA_DIR": str(settings.data_dir),
            "LINEAGEHOUSE_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
            "LINEAGEHOUSE_CLICKHOUSE__URL": settings.clickhouse.url,
            "LINEAGEHOUSE_CLICKHOUSE__DATABASE": settings.clickhouse.database,
            "LINEAGEHOUSE_TOPICS__EVENTS": settings.topics.events,
            "LINEAGEHOUSE_TOPICS__DLQ": settings.topics.dlq,
            "LINEAGEHOUSE_TOPICS__EVENTS_PARTITIONS": str(settings.topics.events_partitions),
            "LINEAGEHOUSE_WORKER__GROUP_ID": settings.worker.group_id,
            "LINEAGEHOUSE_WORKER__SINK_GROUP_ID": settings.worker.sink_group_id,
            "LINEAGEHOUSE_WORKER__BATCH_SIZE": str(settings.worker.batch_size),
            "LINEAGEHOUSE_WORKER__BATCH_TIMEOUT_S": str(settings.worker.batch_timeout_s),
            "LINEAGEHOUSE_WORKER__SINK_BATCH_ROWS": str(settings.worker.sink_batch_rows),
            "LINEAGEHOUSE_WORKER__SINK_FLUSH_INTERVAL_S": str(
                settings.worker.sink_flush_interval_s
            ),
            "LINEAGEHOUSE_WORKER__SINK_BACKLOG_FLUSH_INTERVAL_S": str(
                settings.worker.sink_backlog_flush_interval_s
            ),
            "LINEAGEHOUSE_WORKER__FAULT_AFTER": str(settings.worker.fault_after),
            "LINEAGEHOUSE_WORKER__INSERT_RETRY_MAX_BACKOFF_S": str(
                settings.worker.insert_retry_max_backoff_s
            ),
            "LINEAGEHOUSE_WORKER__WEB_PORT": str(settings.worker.web_port),
            "LINEAGEHOUSE_WORKER__WEB_HOST": "127.0.0.1",
            "LINEAGEHOUSE_API__PORT": str(settings.api.port),
            "LINEAGEHOUSE_INGEST__MAX_EVENT_BYTES": str(settings.ingest.max_event_bytes),
            "PYTHONUNBUFFERED": "1",
        }
    )
    for name, value in settings.issues.model_dump().items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        env[f"LINEAGEHOUSE_ISSUES__{name.upper()}"] = text
    if settings.worker.fault_point:
        env["LINEAGEHOUSE_WORKER__FAULT_POINT"] = settings.worker.fault_point
    if settings.api.key_secret is not None:
        env["LINEAGEHOUSE_API__KEY_SECRET"] = settings.api.key_secret.get_secret_value()
    return env


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """bootstrap.servers of a real Kafka-protocol broker (Tansu) for this test run."""
    port = free_port()
    log = open(tmp_path_factory.mktemp("broker") / "broker.log", "wb")  # noqa: SIM115
    proc = start_broker("127.0.0.1", port, output=log)
    yield f"127.0.0.1:{port}"
    stop_process(proc)
    log.close()


def start_clickhouse(data_dir: Path, port: int, log: Any) -> subprocess.Popen:
    """`lineagehouse clickhouse` on `data_dir`, once it answers /ping (raises otherwise)."""
    env = {**os.environ, "LINEAGEHOUSE_LOG_FORMAT": "text"}
    proc = subprocess.Popen(
        lineagehouse_cmd("clickhouse", "--data-dir", str(data_dir), "--port", str(port)),
        stdout=log,
        stderr=log,
        env=env,
    )
    url = f"http://127.0.0.1:{port}"
    wait_until(lambda: http_ok(f"{url}/ping"), "embedded ClickHouse server", 120, proc)
    return proc


def run_cli(
    settings: Settings, *args: str, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `lineagehouse <args>` with `settings` (or `env`), capturing its output."""
    return subprocess.run(
        lineagehouse_cmd(*args),
        env=env or settings_env(settings),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="session")
def clickhouse_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the embedded ClickHouse HTTP server for this test run."""
    data_dir = tmp_path_factory.mktemp("clickhouse")
    port = free_port()
    log = open(data_dir / "server.log", "wb")  # noqa: SIM115
    proc = start_clickhouse(data_dir, port, log)
    yield f"http://127.0.0.1:{port}"
    stop_process(proc)
    log.close()


@pytest.fixture
def make_settings(broker: str, clickhouse_url: str, tmp_path: Path) -> Callable[..., Settings]:
    """Settings with unique topic, database and group names for one test."""

    def make(**overrides: Any) -> Settings:
        tag = uuid.uuid4().hex[:10]
        base: dict[str, Any] = {
            "data_dir": tmp_path / "data",
            "kafka": {"bootstrap_servers": broker},
            "clickhouse": {"url": clickhouse_url, "database": f"test_{tag}"},
            "topics": {
                "events": f"test.{tag}.events",
                "dlq": f"test.{tag}.events.dlq",
                "events_partitions": 3,
            },
            "worker": {
                "group_id": f"test-{tag}",
                "sink_group_id": f"test-sink-{tag}",
                "web_port": free_port(),
                "batch_timeout_s": 0.2,
                "sink_flush_interval_s": 0.3,
                "sink_backlog_flush_interval_s": 0.3,  # tests count on small flushes
            },
            "issues": {"group_id": f"test-issues-{tag}", "batch_interval_s": 0.3},
            "api": {"port": free_port(), "key_secret": TEST_KEY_SECRET},
        }
        for key, value in overrides.items():
            if isinstance(value, dict):
                base[key] = {**base.get(key, {}), **value}
            else:
                base[key] = value
        return load_settings(**base)

    return make


def unique_settings(broker: str, clickhouse_url: str, data_dir: Path) -> Settings:
    """Settings with unique names, for module-scoped fixtures (make_settings is per test)."""
    tag = uuid.uuid4().hex[:10]
    return load_settings(
        data_dir=data_dir,
        kafka={"bootstrap_servers": broker},
        clickhouse={"url": clickhouse_url, "database": f"test_{tag}"},
        topics={"events": f"test.{tag}.events", "dlq": f"test.{tag}.dlq", "events_partitions": 1},
        worker={"group_id": f"test-{tag}", "sink_group_id": f"test-sink-{tag}"},
        issues={"group_id": f"test-issues-{tag}"},
        api={"port": free_port(), "key_secret": TEST_KEY_SECRET},
    )


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def ch(clickhouse_url: str) -> Iterator[Client]:
    port = int(clickhouse_url.rsplit(":", 1)[1])
    client = clickhouse_connect.get_client(host="127.0.0.1", port=port)
    yield client
    client.close()


def wait_for(
    predicate: Callable[[], Any],
    timeout_s: float,
    what: str,
    alive: subprocess.Popen | None = None,
) -> Any:
    """Poll until `predicate()` is truthy; fail the test with `what` on timeout, or at
    once if the process `alive` exits."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        if alive is not None and alive.poll() is not None:
            pytest.fail(
                f"process {alive.args} exited with {alive.returncode} while waiting for {what}"
            )
        last = predicate()
        if last:
            return last
        time.sleep(0.2)
    pytest.fail(f"timed out after {timeout_s} s waiting for {what} (last value: {last!r})")


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[[Settings], subprocess.Popen]]:
    """Start `lineagehouse worker` subprocesses for a test (stopped at its end)."""
    procs: list[subprocess.Popen] = []

    def start(settings: Settings, stage: str = "all") -> subprocess.Popen:
        log = open(tmp_path / f"worker-{len(procs)}.log", "wb")  # noqa: SIM115
        env = settings_env(settings)
        if stage != "all":  # a process of its own next to others: its own port
            env["LINEAGEHOUSE_WORKER__WEB_PORT"] = str(free_port())
        proc = subprocess.Popen(
            lineagehouse_cmd("worker", "--stage", stage),
            env=env,
            stdout=log,
            stderr=log,
        )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        stop_process(proc)


def produce(settings: Settings, messages: list[tuple[bytes | None, bytes]], **config: Any) -> None:
    """Produce (key, value) pairs to the events topic and wait for every ack; `config`
    adds librdkafka settings (dots as underscores: message_max_bytes=...)."""
    from confluent_kafka import Producer

    extra = {key.replace("_", "."): value for key, value in config.items()}
    producer = Producer(
        {**settings.kafka.confluent_config(), "enable.idempotence": True, "linger.ms": 20, **extra}
    )
    failed: list[str] = []
    for key, value in messages:
        producer.produce(
            settings.topics.events,
            value=value,
            key=key,
            on_delivery=lambda err, _msg: err and failed.append(str(err)),
        )
        producer.poll(0)
    assert producer.flush(60) == 0
    assert failed == [], failed[:3]


def redeliver_stored_events(settings: Settings, ch: Any, times: int = 2) -> int:
    """Produce every stored event (`events_raw`, with its original key) `times` more
    times and wait until the worker consumed them all; returns how many were stored."""
    from lineagehouse.drain import wait_until_drained

    db = settings.clickhouse.database
    stored = ch.query(f"SELECT source_key, payload FROM {db}.events_raw FINAL").result_rows
    messages = [(key.encode() or None, body.encode()) for key, body in stored]
    assert wait_until_drained(settings, timeout_s=120) == []
    produce(settings, messages * times)
    assert wait_until_drained(settings, timeout_s=180) == []
    return len(stored)


def load_events(
    settings: Settings, events: list[dict[str, Any]], before_facet_values: bool = False
) -> None:
    """Store `events` the way the worker does (validate, derive, combine, Avro, insert)
    without Kafka: for API tests that need a known store quickly. Every event must be
    accepted by the validator. `before_facet_values`: as the worker did before migration
    0012 (facets.v1 rows holding their JSON, no `facet_values` or `dataset_facets` rows),
    for upgrade tests."""
    import orjson

    from lineagehouse.processors.events import Source
    from lineagehouse.processors.ingest import process_message
    from lineagehouse.processors.sink import ClickHouseSink, write_records
    from lineagehouse.processors.validate import EventValidator

    validator = EventValidator(settings.ingest.max_event_bytes)
    records: dict[str, list[dict[str, Any]]] = {}
    now = datetime.now(UTC)
    for offset, event in enumerate(events):
        letter = process_message(
            orjson.dumps(event), Source("test", 0, offset, None), now, validator, records
        )
        assert letter is None, f"event {offset} was dead-lettered: {letter}"
    sink = ClickHouseSink(settings.clickhouse)
    if before_facet_values:
        write_facets_v1(sink, settings.clickhouse.database, records)
    write_records(sink, settings.clickhouse.database, records)


def write_facets_v1(sink: Any, database: str, records: dict[str, list[dict[str, Any]]]) -> None:
    """Take the facets records out of `records` and insert them as the worker did before
    migration 0012: one facets.v1 container (fastavro's writer) whose rows carry their
    facets' JSON."""
    import io

    import fastavro
    import orjson

    from lineagehouse.processors.records import avro_schema

    values = {v["facet_id"]: v["facet_json"] for v in records.pop("facet_values", [])}
    records.pop("dataset_facets", None)
    rows = []
    for row in records.pop("facets", []):
        pairs = zip(row["facet_names"], row["facet_ids"], strict=True)
        whole = b"{" + b",".join(orjson.dumps(n) + b":" + values[i] for n, i in pairs) + b"}"
        old = {k: v for k, v in row.items() if k not in ("facet_names", "facet_ids")}
        rows.append({**old, "facets_json": whole})
    buffer = io.BytesIO()
    fastavro.writer(buffer, fastavro.parse_schema(avro_schema("facets", 1)), rows)
    sink.write_avro(f"{database}.facets", buffer.getvalue(), len(rows))


def launch_api(settings: Settings, log_path: Path, **env: str) -> tuple[subprocess.Popen, str]:
    """Start `lineagehouse api` on a port of its own (for module-scoped fixtures; stop it
    with `stop_process`); returns the process and its URL once /readyz is green."""
    port = free_port()
    log = open(log_path, "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        lineagehouse_cmd("api"),
        env={**settings_env(settings), "LINEAGEHOUSE_API__PORT": str(port), **env},
        stdout=log,
        stderr=log,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_ok(f"{url}/readyz"), "API readiness", 90, proc)
    except Exception:
        stop_process(proc)
        raise AssertionError(f"API did not get ready:\n{log_path.read_text()[-3000:]}") from None
    return proc, url


@pytest.fixture
def start_api(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Start `lineagehouse api` for `settings` (extra env overrides as keyword args, e.g.
    LINEAGEHOUSE_API__EXPOSE_SQL="true"); returns its base URL once /readyz is green."""
    procs: list[subprocess.Popen] = []

    def start(settings: Settings, **env_overrides: str) -> str:
        log_path = tmp_path / f"api-{len(procs)}.log"
        log = open(log_path, "wb")  # noqa: SIM115
        env = {**settings_env(settings), **env_overrides}
        proc = subprocess.Popen(lineagehouse_cmd("api"), env=env, stdout=log, stderr=log)
        procs.append(proc)
        url = f"http://127.0.0.1:{settings.api.port}"
        try:
            wait_until(lambda: http_ok(f"{url}/readyz"), "API readiness", 90, proc)
        except Exception:
            tail = log_path.read_text()[-3000:]
            raise AssertionError(f"API did not get ready:\n{tail}") from None
        return url

    yield start
    for proc in procs:
        stop_process(proc)
