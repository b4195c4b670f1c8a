"""Benchmark: ClickHouse's CPU per event, table by table, for the pipeline's own inserts.

Run: python bench/bench_clickhouse_tables.py [--events 120000] [--batch 5000] [--rounds 2]

Starts the embedded ClickHouse server, derives `--events` benchmark events (the shape of
`bench_pipeline.py`) into the Avro containers the sink inserts, `--batch` events per
insert, and inserts them into a fresh database per variant:

  - shipped: the schema and insert settings as they ship (`sink.INSERT_SETTINGS`);
  - wide parts: the same with ClickHouse's default part format (`min_bytes_for_wide_part`
    10 MiB instead of migration 0013's 256 MiB: two files per column of every part above
    it instead of one data file);
  - no views: the shipped settings with the materialized views dropped (`job_runs` and
    `dataset_io` are not filled): what the views cost;
  - default merges: the shipped schema with ClickHouse's own merge selector settings
    (without `migrations.MERGE_SETTINGS`: ~5 parts per merge instead of ~10).

It also counts the rows the server's merges wrote (`MergedRows`) per inserted event: how
many times over each row was rewritten.

For each it reads the server process's CPU time (user + system, /proc) around every
insert, so a table's figure includes whatever the server's background merges did
meanwhile; then waits until no merge runs and counts that CPU too ("merges after").
The variants run in turn, `--rounds` times, each round starting with the next variant
(the first insert after a dropped database costs more); figures are the median per
variant. The last line, "ceiling", is what the server alone could store on this
machine's cores if nothing else ran: cores x 1,000,000 / (CPU us per event).

Prints a table and one JSON line at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import clickhouse_connect

from lineagehouse.embedded.process import free_port, stop_process
from lineagehouse.processors.records import KIND_NAMES
from lineagehouse.processors.sink import INSERT_SETTINGS
from lineagehouse.settings import load_settings, usable_cpus
from lineagehouse.store.migrations import MERGE_SETTINGS, migrate

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from bench.bench_pipeline import cpu_seconds, derived_containers, settle  # noqa: E402
from tests.conftest import start_clickhouse  # noqa: E402

VARIANTS = ("shipped", "wide parts", "no views", "default merges")
CLICKHOUSE_WIDE_PART_BYTES = 10 * 1024 * 1024  # ClickHouse's default min_bytes_for_wide_part


def merged_rows(client: clickhouse_connect.driver.Client) -> int:
    """Rows written by the server's merges so far (all databases)."""
    rows = client.query("SELECT value FROM system.events WHERE event = 'MergedRows'").result_rows
    return int(rows[0][0]) if rows else 0


def tables_of(client: clickhouse_connect.driver.Client, database: str, engine: str) -> list[str]:
    """The names of `database`'s tables whose engine is LIKE `engine`."""
    return client.query(
        "SELECT name FROM system.tables WHERE database = {db:String} AND engine LIKE {e:String}",
        parameters={"db": database, "e": engine},
    ).result_columns[0]


def run_variant(
    url: str, tmp: str, database: str, variant: str, batches: list[dict[str, bytes]], pid: int
) -> tuple[dict[str, float], int]:
    """Server CPU seconds per table (and "merges after") for one variant's inserts, and the
    rows the server's merges wrote meanwhile."""
    settings = load_settings(data_dir=tmp, clickhouse={"url": url, "database": database})
    port = int(url.rsplit(":", 1)[1])
    client = clickhouse_connect.get_client(host="127.0.0.1", port=port)
    migrate(settings, client)
    if variant == "wide parts":
        for table in tables_of(client, database, "%MergeTree"):
            client.command(
                f"ALTER TABLE {database}.{table}"
                f" MODIFY SETTING min_bytes_for_wide_part = {CLICKHOUSE_WIDE_PART_BYTES}"
            )
    if variant == "no views":
        for view in tables_of(client, database, "MaterializedView"):
            client.command(f"DROP VIEW {database}.{view}")
    if variant == "default merges":
        for table in tables_of(client, database, "%MergeTree"):
            client.command(
                f"ALTER TABLE {database}.{table} RESET SETTING {', '.join(MERGE_SETTINGS)}"
            )
    settle(client, database)
    merged_before = merged_rows(client)
    spent: dict[str, float] = {}
    for containers in batches:
        for kind, container in containers.items():
            before = cpu_seconds(pid)
            client.raw_insert(
                f"{database}.{kind}", insert_block=container, settings=INSERT_SETTINGS, fmt="Avro"
            )
            spent[kind] = spent.get(kind, 0.0) + cpu_seconds(pid) - before
    before = cpu_seconds(pid)
    settle(client, database)
    spent["merges after"] = cpu_seconds(pid) - before
    merged = merged_rows(client) - merged_before
    client.command(f"DROP DATABASE {database} SYNC")
    return spent, merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=120_000)
    parser.add_argument("--batch", type=int, default=5_000, help="events per insert")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    n, size = args.events, args.batch
    print(f"deriving {n:,} events into the sink's containers, {size:,} events per insert ...")
    batches = [derived_containers(first, min(first + size, n))[0] for first in range(0, n, size)]

    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        log = open(Path(tmp) / "server.log", "wb")  # noqa: SIM115
        server = start_clickhouse(Path(tmp) / "data", port, log)
        url = f"http://127.0.0.1:{port}"
        results: dict[str, list[dict[str, float]]] = {variant: [] for variant in VARIANTS}
        rows_merged: dict[str, list[int]] = {variant: [] for variant in VARIANTS}
        try:
            for round_no in range(args.rounds):
                shift = round_no % len(VARIANTS)
                for index, variant in enumerate(VARIANTS[shift:] + VARIANTS[:shift]):
                    print(f"  round {round_no + 1}/{args.rounds}: {variant} ...", flush=True)
                    database = f"bench_tables_{round_no}_{index}"
                    spent, merged = run_variant(url, tmp, database, variant, batches, server.pid)
                    results[variant].append(spent)
                    rows_merged[variant].append(merged)
        finally:
            stop_process(server)
            log.close()

    def per_event(variant: str, key: str) -> float:
        return statistics.median(r.get(key, 0.0) for r in results[variant]) / n * 1e6

    tables = [kind for kind in KIND_NAMES if any(kind in r for r in results["shipped"])]
    tables.sort(key=lambda kind: -per_event("shipped", kind))
    totals = {v: statistics.median(sum(r.values()) for r in results[v]) / n * 1e6 for v in VARIANTS}
    merged = {v: statistics.median(rows_merged[v]) / n for v in VARIANTS}
    cores = usable_cpus()
    width = 20
    print()
    print(f"ClickHouse server CPU per event, us ({n:,} events, {size:,} per insert)")
    print(f"{'table':<22}" + "".join(f"{v:>{width}}" for v in VARIANTS))
    for key in [*tables, "merges after"]:
        print(f"{key:<22}" + "".join(f"{per_event(v, key):>{width}.1f}" for v in VARIANTS))
    print(f"{'all':<22}" + "".join(f"{totals[v]:>{width}.1f}" for v in VARIANTS))
    ratios = {v: totals[v] / totals["shipped"] for v in VARIANTS}
    print(f"{'ratio to shipped':<22}" + "".join(f"{ratios[v]:>{width}.2f}" for v in VARIANTS))
    print(f"{'rows merged per event':<22}" + "".join(f"{merged[v]:>{width}.1f}" for v in VARIANTS))
    ceilings = {v: cores * 1e6 / totals[v] for v in VARIANTS}
    print(
        f"{f'ceiling, {cores} cores, ev/s':<22}"
        + "".join(f"{ceilings[v]:>{width},.0f}" for v in VARIANTS)
    )
    print(
        json.dumps(
            {
                "bench": "clickhouse_tables",
                "events": n,
                "events_per_insert": size,
                "rounds": args.rounds,
                "cpu_us_per_event": {
                    v: {key: round(per_event(v, key), 1) for key in [*tables, "merges after"]}
                    for v in VARIANTS
                },
                "total_us_per_event": {v: round(totals[v], 1) for v in VARIANTS},
                "rows_merged_per_event": {v: round(merged[v], 2) for v in VARIANTS},
                "ceiling_events_per_s": {v: round(ceilings[v]) for v in VARIANTS},
            }
        )
    )


if __name__ == "__main__":
    main()
