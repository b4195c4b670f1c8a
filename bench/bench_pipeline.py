"""Benchmark: events/s end to end, Kafka -> `lineagehouse worker` -> every derived table.

Run: python bench/bench_pipeline.py [--events N] [--stages all|split|split2|up|...]

Starts the embedded broker and ClickHouse server (as `up` does), pre-loads N events
shaped like real ones (~4 KB: schemas, column lineage, statistics, quality metrics), and
measures in the same run:

  - reference 1: confluent-kafka reading the same messages, no work (the broker's pace);
  - reference 2: a faust agent doing nothing with `take()` (faust's per-message cost);
  - reference 3: the ClickHouse insert rate of the pipeline's own rows (sink adapter);
  - reference 4: the CPU cost of one page fault here (`page_fault_us`), which turns each
    process's page faults per event into microseconds per event;
  - the pipeline: from the first message the worker consumed until the sink committed
    every derived message (every row queryable); then the ClickHouse CPU of the merges
    still due when the clock stopped (until none runs), per event: counted in the CPU
    total and its ceiling, not in events/s; then a check that the stored model holds
    exactly the expected rows;
  - latency: a second worker fed at half the measured peak (or `--latency-rate`); each
    sampled event's time from produce until its run is queryable (runs are inserted last,
    after its edges and facets), p50/p95. `--latency-trace FILE` writes every sample
    (when it was produced, its latency) to see the tail over time; the paced producer's
    `linger.ms` is 5 (`--latency-linger-ms`): on the embedded broker the number of record
    batches it makes costs the broker (bench_broker.py).

`--input-compression zstd` (or gzip, snappy, lz4) compresses the events as an emitter's
Kafka transport may (its producer's `compression.type`); the faust reference then reads
an uncompressed copy when faust's client has no codec for it here.

Worker settings: `--batch-timeout-s`, `--flush-interval-s`, `--backlog-flush-interval-s`,
and any LINEAGEHOUSE_... variable in the benchmark's environment.

With more than one worker process (`split`, `split2`, `up`), the CPU per event of each is
printed too.

Prints a table and one JSON line at the end.
"""

from __future__ import annotations

import argparse
import json
import mmap
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, get_args

import clickhouse_connect
from confluent_kafka import Consumer, Producer

from lineagehouse.embedded.broker import start_broker
from lineagehouse.embedded.process import (
    OWN_SESSION,
    free_port,
    http_ok,
    stop_process,
    wait_until,
)
from lineagehouse.processors.app import parse_stages
from lineagehouse.processors.avro import encode as avro_encode
from lineagehouse.processors.avro import schema_tag, splice
from lineagehouse.processors.derive import derive
from lineagehouse.processors.events import Source, raw_row
from lineagehouse.processors.records import KIND_NAMES, combine
from lineagehouse.processors.sink import ClickHouseSink
from lineagehouse.settings import Compression, Settings, load_settings, usable_cpus
from lineagehouse.store.migrations import migrate
from lineagehouse.topics import ensure_topics

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.conftest import free_port_run, settings_env  # noqa: E402
from tests.events import encode, lineage_event, run_key  # noqa: E402
from tests.model import expected_counts, stored_counts  # noqa: E402


def progress(label: str, done: int, total: int) -> None:
    width = 30
    filled = width * min(done, total) // max(total, 1)
    bar = "#" * filled + "." * (width - filled)
    print(f"\r  {label:<34} [{bar}] {min(done, total):,}/{total:,}", end="", flush=True)
    if done >= total:
        print(flush=True)


def bench_event(i: int) -> dict[str, Any]:
    return lineage_event(i, job=f"job_{i % 300}", columns=2, rows=1000 + i)


TUNING: dict[str, float] = {}  # worker settings given on the command line


def make_settings(tmp: str, kafka: str, url: str, name: str, web_port: int) -> Settings:
    return load_settings(
        data_dir=tmp,
        kafka={"bootstrap_servers": kafka},
        clickhouse={"url": url, "database": name},
        topics={"events": f"{name}.events", "dlq": f"{name}.dlq", "events_partitions": 6},
        worker={
            "group_id": f"{name}-p",
            "sink_group_id": f"{name}-s",
            "web_port": web_port,
            **TUNING,
        },
    )


def worker_env(settings: Settings) -> dict[str, str]:
    """The tests' child-process environment for `settings`, with quieter logs."""
    return {
        **settings_env(settings),
        "LINEAGEHOUSE_LOG_LEVEL": "WARNING",
        # Settings given to the benchmark itself (LINEAGEHOUSE_...) reach its workers too.
        **{k: v for k, v in os.environ.items() if k.startswith("LINEAGEHOUSE_")},
    }


def metric(text: str, name: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and not line.startswith("#"):
            head = line.split(" ")[0]
            if head == name or head.startswith(name + "{"):
                total += float(line.rsplit(" ", 1)[1])
    return total


def scrape(ports: list[int]) -> str:
    texts = []
    for port in ports:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
                texts.append(r.read().decode())
        except OSError:
            pass
    return "\n".join(texts)


def peak_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


class Usage(NamedTuple):
    """What a process (with its live descendants) used: CPU seconds, of which in the
    kernel, and minor page faults (each maps a fresh page, zeroed by the kernel)."""

    cpu_s: float = 0.0
    system_s: float = 0.0
    minor_faults: int = 0

    def __add__(self, other: object) -> Usage:
        assert isinstance(other, Usage)
        return Usage(*(a + b for a, b in zip(self, other, strict=True)))

    def __sub__(self, other: Usage) -> Usage:
        return Usage(*(a - b for a, b in zip(self, other, strict=True)))


def process_usage(pid: int) -> Usage:
    """The `Usage` of a process and of its live descendants so far (Linux)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, Usage]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        # after the command: state, ppid, ..., minflt (10th field of the line), ...,
        # utime (14th), stime (15th)
        user, system = int(fields[11]) / tick, int(fields[12]) / tick
        stats[int(entry.name)] = (int(fields[1]), Usage(user + system, system, int(fields[7])))
    total, todo = Usage(), [pid]
    while todo:
        current = todo.pop()
        total += stats.get(current, (0, Usage()))[1]
        todo.extend(child for child, (parent, _) in stats.items() if parent == current)
    return total


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and of its live descendants (Linux)."""
    return process_usage(pid).cpu_s


def settle(client: clickhouse_connect.driver.Client, database: str) -> None:
    """Wait until no merge of `database` has run for three checks in a row."""
    quiet = 0
    while quiet < 3:
        time.sleep(0.5)
        running = client.query(
            "SELECT count() FROM system.merges WHERE database = {db:String}",
            parameters={"db": database},
        ).result_rows[0][0]
        quiet = quiet + 1 if running == 0 else 0


def page_fault_us(megabytes: int = 64, rounds: int = 5) -> float:
    """CPU us per page fault: writing one byte per page of a fresh anonymous map, less
    writing them again once mapped; best of `rounds`. The first write to a page faults,
    and the kernel zeroes the page (on a VM, perhaps the host too)."""
    size = megabytes << 20
    offsets = range(0, size, mmap.PAGESIZE)
    fresh, mapped = [], []
    for _ in range(rounds):
        area = mmap.mmap(-1, size)
        started = time.perf_counter()
        for offset in offsets:
            area[offset] = 1
        fresh.append(time.perf_counter() - started)
        started = time.perf_counter()
        for offset in offsets:
            area[offset] = 2
        mapped.append(time.perf_counter() - started)
        area.close()
    return (min(fresh) - min(mapped)) * 1e6 / len(offsets)


def preload(settings: Settings, n: int, compression: str = "none") -> float:
    producer = Producer(
        {
            **settings.kafka.confluent_config(),
            "linger.ms": 20,
            "enable.idempotence": True,
            "compression.type": compression,
        }
    )
    started = time.perf_counter()
    for i in range(n):
        event = bench_event(i)
        while True:
            try:
                producer.produce(settings.topics.events, encode(event), run_key(event))
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
        if i % 5000 == 0:
            progress("pre-load events", i, n)
    assert producer.flush(120) == 0
    progress("pre-load events", n, n)
    return n / (time.perf_counter() - started)


def raw_consume_rate(settings: Settings, n: int) -> float:
    consumer = Consumer(
        {
            **settings.kafka.confluent_config(),
            "group.id": f"bench-raw-{uuid.uuid4().hex[:6]}",
            "auto.offset.reset": "earliest",
            "session.timeout.ms": 6000,
        }
    )
    consumer.subscribe([settings.topics.events])
    read, first = 0, None
    while read < n:
        msgs = [m for m in consumer.consume(2000, 1.0) if not m.error()]
        if msgs and first is None:
            first = time.perf_counter()
        read += len(msgs)
    rate = n / (time.perf_counter() - (first or time.perf_counter()))
    consumer.close()
    return rate


FAUST_NOOP = """
import os, sys, time, faust
bootstrap, topic = os.environ["BENCH_BOOTSTRAP"], os.environ["BENCH_TOPIC"]
n = int(os.environ["BENCH_N"])
app = faust.App("bench-noop-" + str(time.time()), broker="kafka://" + bootstrap,
    broker_session_timeout=6.0, broker_heartbeat_interval=1.0, broker_rebalance_timeout=6.0,
    consumer_auto_offset_reset="earliest", value_serializer="raw", key_serializer="raw",
    web_enabled=False, store="memory://", consumer_max_fetch_size=8 * 1024 * 1024)
source = app.topic(topic, value_type=bytes, key_type=bytes)
state = {"n": 0, "first": None}
@app.agent(source)
async def noop(stream):
    async for batch in stream.take(500, within=1.0):
        if state["first"] is None:
            state["first"] = time.perf_counter()
        state["n"] += len(batch)
        if state["n"] >= n:
            rate = state["n"] / (time.perf_counter() - state["first"])
            with open(os.environ["BENCH_OUT"], "w") as out:
                out.write(str(rate))
            os._exit(0)
app.main()
"""


def aiokafka_reads(compression: str) -> bool:
    """Whether faust's Kafka client (aiokafka) can read batches compressed this way here:
    beyond gzip it needs codec libraries this project does not install."""
    if compression == "none":
        return True
    from aiokafka import codec

    return bool(getattr(codec, f"has_{compression}")())


def faust_noop_rate(settings: Settings, n: int, tmp: str) -> float:
    script = Path(tmp) / "faust_noop.py"
    script.write_text(FAUST_NOOP)
    env = {
        **os.environ,
        "BENCH_BOOTSTRAP": settings.kafka.bootstrap_servers,
        "BENCH_TOPIC": settings.topics.events,
        "BENCH_N": str(n),
        "BENCH_OUT": str(Path(tmp) / "faust_noop.rate"),
    }
    out = subprocess.run(
        [sys.executable, str(script), "worker", "-l", "warn"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp,
        check=False,
    )
    result = Path(tmp) / "faust_noop.rate"
    if result.is_file():
        return float(result.read_text())
    raise SystemExit(f"faust no-op agent failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")


def derived_containers(first: int, stop: int) -> tuple[dict[str, bytes], int]:
    """The Avro container per kind the sink would insert for benchmark events `first` to
    `stop` (derived, combined and encoded as the processor does), and their row count."""
    records: dict[str, list] = {}
    for i in range(first, stop):
        event = bench_event(i)
        records.setdefault("events_raw", []).append(
            raw_row(event, encode(event), Source("bench", 0, i, None), datetime.now(UTC))
        )
        derive(event, records["events_raw"][-1]["event_id"], records)
    containers = {}
    rows = 0
    for kind in KIND_NAMES:
        kind_rows = combine(kind, records.get(kind, ()))
        if kind_rows:
            rows += len(kind_rows)
            payloads = [p for p, _ in avro_encode(kind, kind_rows)]
            containers[kind] = splice(schema_tag(kind), payloads)
    return containers, rows


def insert_rate(settings: Settings, sample: int) -> tuple[float, float, float]:
    """(rows/s, events/s, rows per event) of ClickHouse ingesting the pipeline's Avro
    containers for `sample` events (derived, combined and encoded before the clock)."""
    containers, rows = derived_containers(0, sample)
    sink = ClickHouseSink(settings.clickhouse)
    started = time.perf_counter()
    for kind, container in containers.items():
        sink.write_avro(f"{settings.clickhouse.database}.{kind}", container)
    elapsed = time.perf_counter() - started
    return rows / elapsed, sample / elapsed, rows / sample


LAYOUTS = {  # --stages: the worker processes, one `--stage` each
    "all": ["all"],
    "split": ["sink", "processor"],
    "split2": ["sink", "processor", "processor"],
    "up": ["sink,issues", "processor", "processor"],
    "all+processor": ["all", "processor"],
}


def start_workers(settings: Settings, stages: str, logs: Any) -> list[subprocess.Popen]:
    """`all`: one worker process; `split`: a sink process and a processor process;
    `split2`: a sink and two processor replicas (one consumer group); `up`: what
    `lineagehouse up` starts on 2 cores, the worker as `sink,issues` and two processors;
    `all+processor`: what it started until session 14, the worker and one processor."""
    env = worker_env(settings)
    cmd = [sys.executable, "-m", "lineagehouse.cli", "worker"]
    procs = []
    for i, stage in enumerate(LAYOUTS[stages]):
        stage_env = {**env, "LINEAGEHOUSE_WORKER__WEB_PORT": str(settings.worker.web_port + i)}
        procs.append(
            subprocess.Popen(
                [*cmd, "--stage", stage], env=stage_env, stdout=logs, stderr=logs, **OWN_SESSION
            )
        )
    return procs


def run_pipeline(
    settings: Settings, n: int, stages: str, logs: Any, services: dict[str, int]
) -> tuple[float, float, list[subprocess.Popen], dict[str, Usage]]:
    """(events/s, seconds, the workers, the `Usage` of each process) from the first consumed
    message until the sink committed every derived message. `services`: name -> pid of
    the other processes whose CPU time counts (ClickHouse, the broker)."""
    procs = start_workers(settings, stages, logs)

    def usage() -> dict[str, Usage]:
        used = {name: process_usage(pid) for name, pid in services.items()}
        each = [process_usage(proc.pid) for proc in procs]
        used["worker"] = sum(each, Usage())
        for i, proc_usage in enumerate(each):
            used[f"worker {i + 1}: {procs[i].args[-1]}"] = proc_usage
        return used

    at_first: dict[str, Usage] = {}
    ports = [settings.worker.web_port + i for i in range(len(procs))]
    first = None
    shown = -1
    deadline = time.monotonic() + 1200
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise SystemExit(f"worker {proc.args[-1]} exited with {proc.returncode}")
        text = scrape(ports)
        consumed = metric(text, "lineagehouse_events_consumed_total")
        if consumed and first is None:
            first = time.perf_counter()
            at_first = usage()
        # accepted counts a batch once the broker acknowledged all it produced, and the
        # derived-message counter moves at the same time: no batch is in flight after it.
        accepted = metric(text, "lineagehouse_events_accepted_total")
        produced = metric(text, "lineagehouse_derived_messages_total")
        committed = metric(text, "lineagehouse_sink_committed_messages_total")
        if int(accepted) != shown:
            shown = int(accepted)
            progress("pipeline: events written", shown, n)
        if accepted >= n and produced and committed >= produced:
            elapsed = time.perf_counter() - (first or time.perf_counter())
            at_end = usage()
            used = {name: at_end[name] - at_first.get(name, Usage()) for name in at_end}
            print("  where the worker's time went (seconds, summed over batches):")
            for name in (
                "lineagehouse_processor_batch_seconds_sum",
                "lineagehouse_sink_batch_seconds_sum",
            ):
                print(f"    {name:<48}{metric(text, name):>8.1f}")
            return n / elapsed, elapsed, procs, used
        # Watch closely for the start; after it, scrape once a second: a scrape renders
        # every metric in the worker, and 20 a second took ~10% of its CPU (py-spy).
        time.sleep(0.05 if first is None else 1.0)
    raise SystemExit("the pipeline did not finish in 20 minutes")


def latency_run(
    settings: Settings,
    rate: float,
    seconds: float,
    stages: str,
    logs: Any,
    linger_ms: float = 5,
    compression: str = "none",
) -> list[tuple[float, float]]:
    """Produce at `rate` events/s to workers laid out as `stages`; for sampled events,
    (seconds into the run when produced, seconds from produce to queryable run)."""
    procs = start_workers(settings, stages, logs)
    try:
        client = clickhouse_connect.get_client(
            host="127.0.0.1", port=int(settings.clickhouse.url.rsplit(":", 1)[1])
        )
        db = settings.clickhouse.database
        producer = Producer(
            {
                **settings.kafka.confluent_config(),
                "linger.ms": linger_ms,
                "compression.type": compression,
            }
        )
        sent: dict[str, float] = {}
        seen: dict[str, float] = {}
        done = threading.Event()

        def poll() -> None:
            while not done.is_set() or len(seen) < len(sent):
                pending = [r for r in list(sent) if r not in seen][:500]
                if pending:
                    found = client.query(
                        f"SELECT DISTINCT run_id FROM {db}.runs WHERE run_id IN %(ids)s",
                        parameters={"ids": pending},
                    ).result_columns
                    now = time.perf_counter()
                    for run_id in found[0] if found else []:
                        seen.setdefault(run_id, now)
                if done.is_set() and time.perf_counter() > stop_waiting:
                    return
                time.sleep(0.05)

        # Warm up: the consumer-group join is not latency. Several processors join the group
        # at different moments, and each join stops the group's consumption for a rebalance:
        # warm up until every processor has consumed an event (one per partition per round).
        ports = [
            settings.worker.web_port + i
            for i, role in enumerate(LAYOUTS[stages])
            if {"all", "processor"} & set(parse_stages(role))
        ]
        partitions = settings.topics.events_partitions
        deadline, warm = time.monotonic() + 120, 10_000_000
        while not all(
            metric(scrape([port]), "lineagehouse_events_consumed_total") > 0 for port in ports
        ):
            if time.monotonic() > deadline:
                raise SystemExit("latency run: not every processor consumed its warm-up events")
            for partition in range(partitions):
                event = bench_event(warm)
                warm += 1
                producer.produce(
                    settings.topics.events, encode(event), run_key(event), partition=partition
                )
            producer.flush(10)
            time.sleep(2.0)
        wait_until(
            lambda: client.command(f"SELECT count() FROM {db}.runs") > 0, "worker warm-up", 120
        )
        stop_waiting = float("inf")
        poller = threading.Thread(target=poll, daemon=True)
        poller.start()
        total = int(rate * seconds)
        started = time.perf_counter()
        for i in range(total):
            due = started + i / rate
            while time.perf_counter() < due:
                time.sleep(0.0005)
            event = bench_event(20_000_000 + i)
            producer.produce(settings.topics.events, encode(event), run_key(event))
            producer.poll(0)
            if i % 50 == 0:
                sent[event["run"]["runId"]] = time.perf_counter()
            if i % 2000 == 0:
                progress("latency run: paced events", i, total)
        producer.flush(30)
        progress("latency run: paced events", total, total)
        stop_waiting = time.perf_counter() + 60
        done.set()
        poller.join(70)
    finally:  # an error here must not leave the workers running into the next run
        for proc in procs:
            stop_process(proc)
    return [(sent[r] - started, seen[r] - sent[r]) for r in sent if r in seen]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--stages", choices=list(LAYOUTS), default="all")
    parser.add_argument("--noop-events", type=int, default=50_000)
    parser.add_argument("--latency-seconds", type=float, default=20.0)
    parser.add_argument(
        "--latency-trace", type=Path, help="write each sample (produced at, latency) as CSV"
    )
    parser.add_argument(
        "--latency-linger-ms",
        type=float,
        default=5,
        help="linger.ms of the latency run's producer (fewer, larger record batches)",
    )
    parser.add_argument(
        "--latency-rate", type=float, help="events/s of the latency run (default: half the peak)"
    )
    parser.add_argument(
        "--input-compression",
        choices=get_args(Compression),
        default="none",
        help="compression.type of the producers that write the events (as an emitter's "
        "Kafka transport config may set it)",
    )
    parser.add_argument("--batch-timeout-s", type=float, help="worker.batch_timeout_s")
    parser.add_argument("--flush-interval-s", type=float, help="worker.sink_flush_interval_s")
    parser.add_argument(
        "--backlog-flush-interval-s", type=float, help="worker.sink_backlog_flush_interval_s"
    )
    args = parser.parse_args()
    n = args.events
    if args.batch_timeout_s:
        TUNING["batch_timeout_s"] = args.batch_timeout_s
    if args.flush_interval_s:
        TUNING["sink_flush_interval_s"] = args.flush_interval_s
    if args.backlog_flush_interval_s:
        TUNING["sink_backlog_flush_interval_s"] = args.backlog_flush_interval_s

    with tempfile.TemporaryDirectory() as tmp:
        kafka_port, ch_port = free_port(), free_port()
        # one metrics port per worker process, in a run below the ephemeral range (a port
        # after a free one may meanwhile be the local end of an outgoing connection)
        web = free_port_run(max(len(layout) for layout in LAYOUTS.values()))
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
            **OWN_SESSION,  # as `up` starts it (and the workers, above)
        )
        procs: list[subprocess.Popen] = []
        try:
            url = f"http://127.0.0.1:{ch_port}"
            wait_until(lambda: http_ok(f"{url}/ping"), "ClickHouse", 120, ch_proc)
            kafka = f"127.0.0.1:{kafka_port}"
            main_run = make_settings(tmp, kafka, url, "bench", web)
            ref = make_settings(tmp, kafka, url, "bench_ref", web)
            for settings in (main_run, ref):
                migrate(settings)
            ensure_topics(main_run)
            event_bytes = len(encode(bench_event(1)))
            print(
                f"{n:,} events of ~{event_bytes:,} bytes; worker stages: {args.stages}; "
                f"compression of the events: {args.input_compression}"
            )
            produce_rate = preload(main_run, n, args.input_compression)
            print("  computing the expected model ...", flush=True)
            expected = expected_counts([bench_event(i) for i in range(n)])
            print("  reference: confluent-kafka consume ...", flush=True)
            raw_rate = raw_consume_rate(main_run, n)
            print("  reference: faust no-op agent ...", flush=True)
            noop_events = min(n, args.noop_events)
            noop_source = main_run
            if not aiokafka_reads(args.input_compression):
                # faust's client cannot read these batches here: it reads an uncompressed copy
                noop_source = ref
                ensure_topics(ref)
                preload(ref, noop_events)
            noop_rate = faust_noop_rate(noop_source, noop_events, tmp)
            print("  reference: the cost of a page fault ...", flush=True)
            fault_us = page_fault_us()
            print("  reference: ClickHouse inserts of derived rows ...", flush=True)
            rows_rate, insert_events_rate, rows_per_event = insert_rate(ref, 20_000)

            services = {"clickhouse": ch_proc.pid, "broker": broker.pid}
            pipeline_rate, elapsed, procs, used = run_pipeline(
                main_run, n, args.stages, logs, services
            )
            worker_rss = sum(peak_rss_mb(p.pid) for p in procs)
            ch_rss, broker_rss = peak_rss_mb(ch_proc.pid), peak_rss_mb(broker.pid)
            for proc in procs:
                stop_process(proc)
            procs = []
            client = clickhouse_connect.get_client(host="127.0.0.1", port=ch_port)
            print("  waiting for ClickHouse's merges still due ...", flush=True)
            before_merges = cpu_seconds(ch_proc.pid)
            settle(client, "bench")
            merge_debt_us = (cpu_seconds(ch_proc.pid) - before_merges) / n * 1e6
            stored = stored_counts(client, "bench")
            if stored != expected:
                raise SystemExit(f"stored model differs:\n{stored}\nexpected\n{expected}")

            paced = make_settings(tmp, kafka, url, "bench_lat", web)
            migrate(paced)
            ensure_topics(paced)
            paced_rate = args.latency_rate or pipeline_rate / 2
            samples = latency_run(
                paced,
                paced_rate,
                args.latency_seconds,
                args.stages,
                logs,
                args.latency_linger_ms,
                args.input_compression,
            )
            latencies = sorted(latency for _, latency in samples)
            if args.latency_trace:
                lines = [f"{at:.3f},{latency:.3f}" for at, latency in sorted(samples)]
                args.latency_trace.write_text("produced_s,latency_s\n" + "\n".join(lines) + "\n")
        except BaseException:  # the log goes with the temporary directory: show its end
            logs.flush()
            tail = (Path(tmp) / "services.log").read_bytes()[-6000:]
            print(tail.decode("utf-8", "replace"), file=sys.stderr)
            raise
        finally:
            for proc in procs:
                stop_process(proc)
            stop_process(ch_proc)
            stop_process(broker)
            logs.close()

    cpu_us = {name: usage.cpu_s / n * 1e6 for name, usage in used.items()}
    system_us = {name: usage.system_s / n * 1e6 for name, usage in used.items()}
    faults = {name: usage.minor_faults / n for name, usage in used.items()}
    cpu_total = sum(cpu_us[name] for name in ("worker", "clickhouse", "broker")) + merge_debt_us
    cores = usable_cpus()
    p50 = statistics.median(latencies) if latencies else float("nan")
    p95 = latencies[int(0.95 * (len(latencies) - 1))] if latencies else float("nan")
    print()
    print(f"{'measure':<52}{'value':>14}")
    print("-" * 66)
    rows = [
        ("producer (confluent-kafka, idempotent), events/s", f"{produce_rate:,.0f}"),
        ("reference: confluent-kafka consume, msgs/s", f"{raw_rate:,.0f}"),
        ("reference: faust no-op agent take(), msgs/s", f"{noop_rate:,.0f}"),
        ("reference: ClickHouse insert of derived rows, rows/s", f"{rows_rate:,.0f}"),
        (f"  = events/s at {rows_per_event:.1f} rows per event", f"{insert_events_rate:,.0f}"),
        ("PIPELINE end to end, events/s", f"{pipeline_rate:,.0f}"),
        ("  seconds for all events", f"{elapsed:,.1f}"),
        ("  ratio to confluent-kafka consume", f"{pipeline_rate / raw_rate:.3f}"),
        ("  ratio to faust no-op agent", f"{pipeline_rate / noop_rate:.2f}"),
        ("  ratio to ClickHouse insert (events/s)", f"{pipeline_rate / insert_events_rate:.2f}"),
        ("  ratio to target 10,000 events/s", f"{pipeline_rate / 10_000:.2f}"),
        (
            "CPU per event: worker / ClickHouse / broker, us",
            f"{cpu_us['worker']:,.0f} / {cpu_us['clickhouse']:,.0f} / {cpu_us['broker']:,.0f}",
        ),
        *(
            (f"  {name}, us", f"{cpu_us[name]:,.0f}")
            for name in cpu_us
            if name.startswith("worker ") and len(LAYOUTS[args.stages]) > 1
        ),
        (
            "  of which in the kernel, us",
            " / ".join(f"{system_us[name]:,.0f}" for name in ("worker", "clickhouse", "broker")),
        ),
        (
            "  minor page faults per event",
            " / ".join(f"{faults[name]:,.1f}" for name in ("worker", "clickhouse", "broker")),
        ),
        (
            f"  = us per event at {fault_us:.2f} us per fault here",
            " / ".join(
                f"{faults[name] * fault_us:,.0f}" for name in ("worker", "clickhouse", "broker")
            ),
        ),
        ("  + ClickHouse's merges still due at the end, us", f"{merge_debt_us:,.1f}"),
        (
            f"  = all {cpu_total:,.0f} us: ceiling on {cores} cores, events/s",
            f"{cores * 1e6 / cpu_total:,.0f}",
        ),
        (
            "peak RSS worker / ClickHouse server / broker, MB",
            f"{worker_rss:,.0f} / {ch_rss:,.0f} / {broker_rss:,.0f}",
        ),
        (f"latency at {paced_rate:,.0f} events/s: p50, s", f"{p50:.2f}"),
        (f"latency: p95, s ({len(latencies)} samples; target < 2)", f"{p95:.2f}"),
    ]
    for label, value in rows:
        print(f"{label:<52}{value:>14}")
    print(
        json.dumps(
            {
                "bench": "pipeline",
                "events": n,
                "event_bytes": event_bytes,
                "stages": args.stages,
                "input_compression": args.input_compression,
                "cpus": cores,
                "produce_per_s": round(produce_rate),
                "kafka_consume_per_s": round(raw_rate),
                "faust_noop_per_s": round(noop_rate),
                "clickhouse_rows_per_s": round(rows_rate),
                "clickhouse_events_per_s": round(insert_events_rate),
                "pipeline_per_s": round(pipeline_rate),
                "ratio_kafka": round(pipeline_rate / raw_rate, 3),
                "ratio_faust_noop": round(pipeline_rate / noop_rate, 2),
                "ratio_clickhouse": round(pipeline_rate / insert_events_rate, 2),
                "cpu_us_per_event": {name: round(us) for name, us in cpu_us.items()},
                "system_us_per_event": {name: round(us) for name, us in system_us.items()},
                "minor_faults_per_event": {name: round(f, 2) for name, f in faults.items()},
                "page_fault_us": round(fault_us, 3),
                "clickhouse_merges_due_us_per_event": round(merge_debt_us, 1),
                "cpu_ceiling_per_s": round(cores * 1e6 / cpu_total),
                "peak_rss_mb": {
                    "worker": round(worker_rss),
                    "clickhouse": round(ch_rss),
                    "broker": round(broker_rss),
                },
                "latency_rate_per_s": round(paced_rate),
                "latency_p50_s": round(p50, 3),
                "latency_p95_s": round(p95, 3),
                "latency_samples": len(latencies),
            }
        )
    )


if __name__ == "__main__":
    main()
