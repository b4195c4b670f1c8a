"""Benchmark: the embedded ClickHouse HTTP server vs clickhouse-connect's in-process chDB.

Run: python bench/bench_clickhouse_server.py [--rows N]

Measures, for each path, insert throughput of N edge-like rows (10 columns) in 10k-row and
100k-row batches, and the latency of a point SELECT and an aggregate. The HTTP server is
started as `lineagehouse clickhouse` in a subprocess; the in-process client
(`get_client(interface="chdb", path=...)`) uses its own data directory in this process.
The last line of output is one JSON object with every figure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import clickhouse_connect

TABLE_DDL = """
CREATE TABLE {name} (
    edge_id UUID,
    run_id String,
    job_namespace LowCardinality(String),
    job_name String,
    input_name String,
    output_name String,
    event_type LowCardinality(String),
    event_time DateTime64(3, 'UTC'),
    producer LowCardinality(String),
    seq UInt64
) ENGINE = MergeTree ORDER BY seq
"""
COLUMNS = [
    "edge_id",
    "run_id",
    "job_namespace",
    "job_name",
    "input_name",
    "output_name",
    "event_type",
    "event_time",
    "producer",
    "seq",
]
BATCHES = (10_000, 100_000)
CLI = [sys.executable, "-m", "lineagehouse.cli", "clickhouse"]
POINT_RUNS = 40
AGG_RUNS = 15


def make_rows(count: int) -> list[tuple]:
    base = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    kinds = ("START", "RUNNING", "COMPLETE", "FAIL")
    runs = [str(uuid.uuid4()) for _ in range(1000)]
    return [
        (
            uuid.uuid4(),
            runs[i % 1000],
            f"namespace-{i % 7}",
            f"job.etl_{i % 5000}",
            f"warehouse.db.table_{i % 20000}",
            f"warehouse.db.table_{(i * 7) % 20000}",
            kinds[i % 4],
            base + dt.timedelta(milliseconds=i),
            "https://github.com/OpenLineage/OpenLineage/tree/1.20/integration/spark",
            i,
        )
        for i in range(count)
    ]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(data_dir: Path) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINEAGEHOUSE_")}
    env["LINEAGEHOUSE_LOG_FORMAT"] = "text"
    env["LINEAGEHOUSE_LOG_LEVEL"] = "WARNING"
    proc = subprocess.Popen(
        [*CLI, "--data-dir", str(data_dir), "--port", str(port)],
        env=env,
        cwd=data_dir,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/ping", timeout=1) as resp:
                if resp.read() == b"Ok.\n":
                    return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("server did not start within 60 s")


def insert_rate(client: Any, table: str, rows: list[tuple], batch: int) -> float:
    client.command(f"DROP TABLE IF EXISTS {table}")
    client.command(TABLE_DDL.format(name=table))
    started = time.perf_counter()
    for start in range(0, len(rows), batch):
        client.insert(table, rows[start : start + batch], column_names=COLUMNS)
    elapsed = time.perf_counter() - started
    count = client.command(f"SELECT count() FROM {table}")
    assert int(count) == len(rows), (count, len(rows))
    return len(rows) / elapsed


def latency_ms(client: Any, sql: str, runs: int, vary: bool = False) -> float:
    samples = []
    for i in range(runs):
        query = sql.format(i=(i * 7919) % 1_000_000) if vary else sql
        started = time.perf_counter()
        client.query(query).result_rows  # noqa: B018 - materialize
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


def measure(label: str, client: Any, rows: list[tuple]) -> dict[str, float]:
    out: dict[str, float] = {}
    insert_rate(client, "bench_warmup", rows[:20_000], 10_000)  # connections, caches, JIT-free
    for batch in BATCHES:
        table = f"bench_edges_{batch}"
        print(f"  [{label}] inserting {len(rows):,} rows in {batch:,}-row batches ...", flush=True)
        out[f"insert_{batch}_rows_s"] = insert_rate(client, table, rows, batch)
        print(f"    {out[f'insert_{batch}_rows_s']:,.0f} rows/s", flush=True)
    table = f"bench_edges_{BATCHES[-1]}"
    print(f"  [{label}] point and aggregate queries ...", flush=True)
    out["point_ms"] = latency_ms(
        client, f"SELECT * FROM {table} WHERE seq = {{i}}", POINT_RUNS, vary=True
    )
    out["aggregate_ms"] = latency_ms(
        client,
        f"SELECT event_type, count(), uniq(job_name), max(event_time) FROM {table} "
        "GROUP BY event_type ORDER BY event_type",
        AGG_RUNS,
    )
    print(f"    point {out['point_ms']:.1f} ms, aggregate {out['aggregate_ms']:.1f} ms", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()

    print(f"generating {args.rows:,} edge-like rows ...", flush=True)
    rows = make_rows(args.rows)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="lh-bench-") as tmp:
        server_dir = Path(tmp) / "server"
        server_dir.mkdir()
        print("starting the embedded ClickHouse server (lineagehouse clickhouse) ...", flush=True)
        proc, port = start_server(server_dir)
        try:
            for label, compress in (("http lz4", True), ("http plain", False)):
                client = clickhouse_connect.get_client(
                    host="127.0.0.1", port=port, compress=compress
                )
                results[label] = measure(label, client, rows)
                client.close()
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=30)

        print("opening clickhouse-connect's in-process chDB client ...", flush=True)
        local = clickhouse_connect.get_client(interface="chdb", path=str(Path(tmp) / "inproc"))
        results["in-process"] = measure("in-process", local, rows)
        local.close()

    base = results["in-process"]
    header = f"{'path':<12} {'10k batches':>14} {'100k batches':>14} {'point ms':>9} {'agg ms':>8}"
    print()
    print(header)
    print("-" * len(header))
    for label, res in results.items():
        small, large = res["insert_10000_rows_s"], res["insert_100000_rows_s"]
        print(
            f"{label:<12} {small:>10,.0f} r/s {large:>10,.0f} r/s"
            f" {res['point_ms']:>9.1f} {res['aggregate_ms']:>8.1f}"
        )
    for label in ("http lz4", "http plain"):
        ratio = {k: results[label][k] / base[k] for k in base}
        print(
            f"ratio {label} / in-process: 10k {ratio['insert_10000_rows_s']:.2f}, "
            f"100k {ratio['insert_100000_rows_s']:.2f}, point {ratio['point_ms']:.2f}, "
            f"agg {ratio['aggregate_ms']:.2f}"
        )
    summary: dict[str, Any] = {
        "bench": "clickhouse_server",
        "rows": args.rows,
        "cpus": os.cpu_count(),
    }
    for label, res in results.items():
        key = label.replace(" ", "_").replace("-", "_")
        summary[key] = {k: round(v, 2) for k, v in res.items()}
    for label in ("http lz4", "http plain"):
        key = label.replace(" ", "_")
        summary[f"ratio_{key}"] = {k: round(results[label][k] / base[k], 3) for k in base}
    print(json.dumps(summary, separators=(",", ":")))


if __name__ == "__main__":
    main()
