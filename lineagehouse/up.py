"""`lineagehouse up`: the whole product on one machine, in the foreground.

Starts, in order: the embedded broker, the embedded ClickHouse server, migrations, topics,
the worker, and the API. On a machine with more than one core the worker runs the sink and
issues stages, and one processor process per core (`worker.up_processors`) does the
processing. Ctrl-C or SIGTERM drains the worker (everything the broker holds reaches
ClickHouse) and then stops every process in reverse order. A second Ctrl-C stops at once.
The broker keeps topics in memory only: if it crashes, events not yet in ClickHouse are
lost; the stored data is in `<data-dir>/clickhouse`.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

from lineagehouse.apikeys import create_key
from lineagehouse.drain import wait_until_drained
from lineagehouse.embedded.broker import start_broker
from lineagehouse.embedded.process import (
    OWN_SESSION,
    StartupError,
    http_ok,
    stop_process,
    wait_until,
)
from lineagehouse.settings import Settings, load_settings
from lineagehouse.store.client import connect
from lineagehouse.store.migrations import migrate
from lineagehouse.topics import ensure_topics

log = logging.getLogger("lineagehouse.up")


class _Stack:
    """The child processes of `up`, stopped in reverse start order."""

    def __init__(self, logs_dir: Path) -> None:
        self.logs_dir = logs_dir
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self._files: list[IO] = []

    def log_file(self, name: str) -> IO:
        handle = open(self.logs_dir / f"{name}.log", "ab")  # noqa: SIM115 (closed in stop_all)
        self._files.append(handle)
        return handle

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen:
        out = self.log_file(name)
        proc = subprocess.Popen(
            [sys.executable, "-m", "lineagehouse.cli", *args],
            env=env,
            stdout=out,
            stderr=out,
            **OWN_SESSION,
        )
        self.procs.append((name, proc))
        return proc

    def first_dead(self) -> tuple[str, int] | None:
        for name, proc in self.procs:
            if proc.poll() is not None:
                return name, proc.returncode
        return None

    def stop(self, name: str) -> None:
        for item in [p for p in self.procs if p[0] == name]:
            stop_process(item[1], timeout_s=30)
            self.procs.remove(item)

    def stop_all(self) -> None:
        while self.procs:
            name, proc = self.procs.pop()
            code = stop_process(proc, timeout_s=30)
            log.info("stopped", extra={"service": name, "exit_code": code})
        for handle in self._files:
            handle.close()


def _child_settings(settings: Settings, kafka_port: int, clickhouse_port: int) -> Settings:
    """The settings every child uses: the embedded broker and ClickHouse on loopback, and
    an API key secret kept in the data dir unless one is configured."""
    data = settings.model_dump()
    data["kafka"]["bootstrap_servers"] = f"127.0.0.1:{kafka_port}"
    data["clickhouse"]["url"] = f"http://127.0.0.1:{clickhouse_port}"
    data["clickhouse"]["password"] = settings.clickhouse.password
    data["kafka"]["sasl_password"] = settings.kafka.sasl_password
    data["api"]["key_secret"] = settings.api.key_secret or _local_secret(settings.data_dir)
    return load_settings(**data)


def _private_file(path: Path, make: Callable[[], str]) -> str:
    """Read `path`, or create it (mode 0600) with `make()`."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(make())
    return path.read_text().strip()


def _local_secret(data_dir: Path) -> str:
    return _private_file(data_dir / "api_key_secret", lambda: secrets.token_hex(32))


def _local_key(settings: Settings) -> str | None:
    """An admin key for the embedded default, created once and kept in the data dir."""
    if not settings.api.auth_enabled:
        return None
    path = settings.data_dir / "api_key"
    if path.exists():
        return path.read_text().strip()
    client = connect(settings.clickhouse)
    try:
        plaintext, _record = create_key(client, settings, "local (lineagehouse up)", "admin")
    finally:
        client.close()
    return _private_file(path, lambda: plaintext)


UP_STATE = "up.json"


def _write_state(settings: Settings, data_dir: Path, kafka_port: int) -> Path:
    """Where this `up` listens, for `lineagehouse demo` (and people) on the same data dir."""
    path = data_dir / UP_STATE
    state = {
        "pid": os.getpid(),
        "kafka_bootstrap_servers": f"127.0.0.1:{kafka_port}",
        "events_topic": settings.topics.events,
        "api_url": f"http://{settings.api.host}:{settings.api.port}",
        "clickhouse_url": settings.clickhouse.url,
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state, indent=2) + "\n")
    tmp.replace(path)
    return path


def running_up(data_dir: Path) -> dict[str, object] | None:
    """The connection settings of the `lineagehouse up` running on `data_dir`, or None
    when none is (no state file, or its process is gone)."""
    path = data_dir / UP_STATE
    try:
        state = json.loads(path.read_text())
        os.kill(int(state["pid"]), 0)
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state


def _child_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "LINEAGEHOUSE_DATA_DIR": str(settings.data_dir),
            "LINEAGEHOUSE_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
            "LINEAGEHOUSE_CLICKHOUSE__URL": settings.clickhouse.url,
            "LINEAGEHOUSE_API__HOST": settings.api.host,
            "LINEAGEHOUSE_API__PORT": str(settings.api.port),
            "PYTHONUNBUFFERED": "1",
        }
    )
    if settings.api.key_secret is not None:
        env["LINEAGEHOUSE_API__KEY_SECRET"] = settings.api.key_secret.get_secret_value()
    return env


def run_up(settings: Settings, kafka_port: int = 9092, clickhouse_port: int = 8123) -> int:
    data_dir = settings.data_dir.resolve()
    logs_dir = data_dir / "logs"
    logs_dir.mkdir(parents=True, exist_ok=True)
    settings = _child_settings(settings, kafka_port, clickhouse_port)
    env = _child_env(settings)
    stack = _Stack(logs_dir)

    stopping = {"count": 0}

    def on_signal(signum: int, _frame: object) -> None:
        stopping["count"] += 1
        if stopping["count"] > 1:
            print("\nSecond signal: stopping now without draining.", flush=True)
            stack.stop_all()
            os._exit(130)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    try:
        _start(stack, settings, env, kafka_port, clickhouse_port)
    except (StartupError, OSError) as exc:
        print(f"lineagehouse up: {exc}. See the logs in {logs_dir}", file=sys.stderr)
        stack.stop_all()
        return 1
    if stopping["count"]:
        stack.stop_all()
        return 0
    state_file = _write_state(settings, data_dir, kafka_port)
    _print_banner(settings, data_dir, logs_dir, kafka_port, _local_key(settings))
    try:
        return _serve(stack, settings, logs_dir, stopping)
    finally:
        state_file.unlink(missing_ok=True)


def _serve(stack: _Stack, settings: Settings, logs_dir: Path, stopping: dict[str, int]) -> int:
    while not stopping["count"]:
        dead = stack.first_dead()
        if dead:
            print(
                f"lineagehouse up: {dead[0]} exited with code {dead[1]}; "
                f"see {logs_dir / (dead[0] + '.log')}. Stopping.",
                file=sys.stderr,
            )
            stack.stop_all()
            return 1
        time.sleep(0.2)

    print("Stopping: draining the worker into ClickHouse...", flush=True)
    try:
        pending = wait_until_drained(settings, settings.worker.drain_timeout_s)
    except Exception as exc:  # the broker may already be gone
        pending = ["(unknown: the broker did not answer)"]
        log.warning("could not check the drain", extra={"error": str(exc)})
    if pending:
        print(
            f"Warning: partitions {pending} still had unconsumed events; they are lost "
            "with the embedded broker.",
            file=sys.stderr,
            flush=True,
        )
    stack.stop("api")
    for name, _ in [p for p in stack.procs if p[0].startswith("processor-")]:
        stack.stop(name)
    stack.stop("worker")
    stack.stop_all()
    print("Stopped.", flush=True)
    return 0


def _start(
    stack: _Stack, settings: Settings, env: dict[str, str], kafka_port: int, clickhouse_port: int
) -> None:
    broker = start_broker("127.0.0.1", kafka_port, output=stack.log_file("broker"))
    stack.procs.append(("broker", broker))

    clickhouse = stack.spawn(
        "clickhouse",
        [
            "clickhouse",
            "--data-dir",
            str(settings.data_dir),
            "--port",
            str(clickhouse_port),
        ],
        env,
    )
    ch_url = settings.clickhouse.url
    wait_until(lambda: http_ok(f"{ch_url}/ping"), f"ClickHouse server on {ch_url}", 120, clickhouse)

    applied = migrate(settings)
    log.info("schema is current", extra={"applied": [m.version for m in applied]})
    ensure_topics(settings)

    worker = stack.spawn("worker", ["worker", "--stage", _worker_stage(settings)], env)
    for number, port in enumerate(_processor_ports(settings), start=1):
        stack.spawn(
            f"processor-{number}",
            ["worker", "--stage", "processor"],
            {**env, "LINEAGEHOUSE_WORKER__WEB_PORT": str(port)},
        )
    api = stack.spawn("api", ["api"], env)
    api_url = f"http://{settings.api.host}:{settings.api.port}"
    wait_until(lambda: http_ok(f"{api_url}/healthz"), f"API on {api_url}", 60, api)
    if worker.poll() is not None:
        raise StartupError(f"worker exited with code {worker.returncode}")


def _worker_stage(settings: Settings) -> str:
    """The worker's `--stage`: every stage, unless processor processes do the processing."""
    if not settings.worker.processor_processes():
        return "all"
    return "sink,issues" if settings.issues.enabled else "sink"


def _processor_ports(settings: Settings) -> list[int]:
    """The metrics port of each processor process (0: none, as the worker's)."""
    port = settings.worker.web_port
    count = settings.worker.processor_processes()
    return [port + i if port else 0 for i in range(1, count + 1)]


def _print_banner(
    settings: Settings, data_dir: Path, logs_dir: Path, kafka_port: int, api_key: str | None
) -> None:
    api_url = f"http://{settings.api.host}:{settings.api.port}"
    lines = [
        f"Lineagehouse is up. Data: {data_dir}",
        f"  Kafka (embedded, memory only)  127.0.0.1:{kafka_port}   topic {settings.topics.events}",
        f"  ClickHouse HTTP (embedded)     {settings.clickhouse.url}"
        f"   database {settings.clickhouse.database}",
        f"  API                            {api_url}   (OpenAPI docs: {api_url}/docs)",
    ]
    if settings.worker.web_port:
        lines.append(
            f"  Worker metrics                 http://127.0.0.1:{settings.worker.web_port}/metrics"
        )
        for number, port in enumerate(_processor_ports(settings), start=1):
            lines.append(f"  Processor {number} metrics            http://127.0.0.1:{port}/metrics")
    if api_key:
        lines.append(f"  API key (admin)                {api_key}   (kept in {data_dir}/api_key)")
    else:
        lines.append("  API keys                       off (LINEAGEHOUSE_API__AUTH_ENABLED=false)")
    demo = "lineagehouse demo"
    if data_dir != (Path.cwd() / ".lineagehouse").resolve():
        demo += f" --data-dir {shlex.quote(str(data_dir))}"
    lines += [
        f"  Logs                           {logs_dir}",
        f"  Sample lineage                 {demo}   (then open {api_url}/)",
        "Press Ctrl-C to stop (events already in Kafka are written to ClickHouse first).",
    ]
    print("\n".join(lines), flush=True)
