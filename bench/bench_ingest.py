"""Benchmark: events/s from Kafka through `lineagehouse worker` into ClickHouse.

Run: python bench/bench_ingest.py [--events N]

Starts a broker, the embedded ClickHouse server and one worker (as `up` does), pre-loads
N RunEvents, then measures in the same run:
  - ceiling: confluent-kafka reading the same messages (no work per message);
  - the worker: time from its first row in events_raw to the last one (pipeline rate).
Prints a table with the ratio and one JSON line at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import clickhouse_connect
from confluent_kafka import Consumer, Producer

from lineagehouse.embedded.broker import start_broker
from lineagehouse.embedded.process import free_port, http_ok, stop_process, wait_until
from lineagehouse.settings import load_settings
from lineagehouse.store.migrations import migrate
from lineagehouse.topics import ensure_topics

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.events import encode, run_event, run_key  # noqa: E402


def progress(label: str, done: int, total: int) -> None:
    width = 30
    filled = width * done // max(total, 1)
    print(
        f"\r  {label:<28} [{'#' * filled}{'.' * (width - filled)}] {done:,}/{total:,}",
        end="",
        flush=True,
    )
    if done >= total:
        print(flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    args = parser.parse_args()
    n = args.events

    with tempfile.TemporaryDirectory() as tmp:
        kafka_port, ch_port = free_port(), free_port()
        logs = open(Path(tmp) / "services.log", "wb")  # noqa: SIM115
        broker = start_broker("127.0.0.1", kafka_port, output=logs)
        env = {**os.environ, "LINEAGEHOUSE_LOG_FORMAT": "text"}
        ch_proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "lineagehouse.cli",
                "clickhouse",
                "--data-dir",
                tmp,
                "--port",
                str(ch_port),
            ],
            stdout=logs,
            stderr=logs,
            env=env,
        )
        worker = None
        try:
            url = f"http://127.0.0.1:{ch_port}"
            wait_until(lambda: http_ok(f"{url}/ping"), "ClickHouse", 120, ch_proc)
            settings = load_settings(
                data_dir=tmp,
                kafka={"bootstrap_servers": f"127.0.0.1:{kafka_port}"},
                clickhouse={"url": url, "database": "bench"},
                worker={"web_port": 0},
            )
            migrate(settings)
            ensure_topics(settings)

            print(f"producing {n:,} RunEvents ...")
            producer = Producer(
                {**settings.kafka.confluent_config(), "linger.ms": 50, "enable.idempotence": True}
            )
            started = time.perf_counter()
            for i in range(n):
                event = run_event(i, job=f"job_{i % 200}")
                producer.produce(settings.topics.events, encode(event), run_key(event))
                producer.poll(0)
                if i % 5000 == 0:
                    progress("produce", i, n)
            producer.flush(60)
            progress("produce", n, n)
            produce_rate = n / (time.perf_counter() - started)

            consumer = Consumer(
                {
                    **settings.kafka.confluent_config(),
                    "group.id": f"bench-{uuid.uuid4().hex[:6]}",
                    "auto.offset.reset": "earliest",
                    "session.timeout.ms": 6000,
                }
            )
            consumer.subscribe([settings.topics.events])
            read, first = 0, None
            while read < n:
                msgs = [m for m in consumer.consume(1000, 1.0) if not m.error()]
                if msgs and first is None:
                    first = time.perf_counter()
                read += len(msgs)
                progress("ceiling: confluent read", read, n)
            ceiling = n / (time.perf_counter() - first)
            consumer.close()

            wenv = {
                **env,
                "LINEAGEHOUSE_KAFKA__BOOTSTRAP_SERVERS": settings.kafka.bootstrap_servers,
                "LINEAGEHOUSE_CLICKHOUSE__URL": url,
                "LINEAGEHOUSE_CLICKHOUSE__DATABASE": "bench",
                "LINEAGEHOUSE_WORKER__WEB_PORT": "0",
                "LINEAGEHOUSE_DATA_DIR": tmp,
            }
            worker = subprocess.Popen(
                [sys.executable, "-m", "lineagehouse.cli", "worker"],
                stdout=logs,
                stderr=logs,
                env=wenv,
            )
            client = clickhouse_connect.get_client(host="127.0.0.1", port=ch_port)
            first_row, stored = None, 0
            deadline = time.monotonic() + 600
            while stored < n and time.monotonic() < deadline:
                stored = client.command("SELECT count() FROM bench.events_raw")
                if stored and first_row is None:
                    first_row = time.perf_counter()
                progress("worker: rows in ClickHouse", min(stored, n), n)
                time.sleep(0.05)
            if stored < n:
                raise SystemExit(f"worker stored only {stored} of {n} events in 600 s")
            pipeline = n / (time.perf_counter() - first_row)
        finally:
            if worker is not None:
                stop_process(worker)
            stop_process(ch_proc)
            stop_process(broker)
            logs.close()

    print()
    print(f"{'path':<34}{'events/s':>12}")
    print("-" * 46)
    print(f"{'producer (confluent, idempotent)':<34}{produce_rate:>12,.0f}")
    print(f"{'ceiling: confluent consume':<34}{ceiling:>12,.0f}")
    print(f"{'worker: Kafka -> ClickHouse':<34}{pipeline:>12,.0f}")
    print(f"ratio worker / ceiling: {pipeline / ceiling:.3f}")
    print(
        json.dumps(
            {
                "bench": "ingest",
                "events": n,
                "cpus": os.cpu_count(),
                "produce_per_s": round(produce_rate),
                "ceiling_per_s": round(ceiling),
                "worker_per_s": round(pipeline),
                "ratio_worker_ceiling": round(pipeline / ceiling, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
