"""Benchmark: what a new record batch costs the embedded broker (Tansu, memory only) as a
partition fills up.

Run: python bench/bench_broker.py [--stored 1000,5000,10000,20000] [--consumers 0,1,3]
     [--rate 50] [--seconds 4]

Starts the embedded broker and fills one partition with single-message record batches
(one batch per send: what an emitter with `flush: true` makes of each event). At each
fill level it sends `--rate` more single-message batches a second for `--seconds`, while
0, 1 or 3 consumers (each its own group) wait at the end of the partition, as the
processor, the sink and the issues stage wait at the end of theirs. It prints the
broker's CPU per sent batch (from /proc), per waiting consumer, and the ratio to the
smallest fill level; and the broker's peak resident memory.

Why it matters (BENCHMARKS.md): with consumers waiting, each new batch costs the broker
time that grows with the batches the partition already holds, and the embedded broker
never deletes anything. Long runs of `lineagehouse up` slow down, and a latency
benchmark whose producer sends small batches measures the broker's growth.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from lineagehouse.embedded.broker import start_broker
from lineagehouse.embedded.process import free_port, stop_process

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.bench_pipeline import cpu_seconds, peak_rss_mb, progress

TOPIC = "bench_broker"


def fill(producer: Producer, count: int) -> None:
    """Send `count` single-message record batches (a flush after each send)."""
    for i in range(count):
        producer.produce(TOPIC, b"x" * 200)
        producer.flush(10)
        if i % 500 == 0:
            progress("fill the partition", i, count)
    progress("fill the partition", count, count)


def waiting_consumers(bootstrap: str, count: int) -> list[Consumer]:
    consumers = []
    for k in range(count):
        consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"bench_broker_{k}",
                "enable.auto.commit": False,
            }
        )
        consumer.assign([TopicPartition(TOPIC, 0, OFFSET_END)])
        consumer.consume(1, 0.3)  # resolves the end offset: from now on it waits there
        consumers.append(consumer)
    return consumers


def paced_sends(
    producer: Producer, consumers: list[Consumer], rate: float, seconds: float, broker_pid: int
) -> tuple[int, float]:
    """Send single-message batches at `rate` while `consumers` keep reading; returns the
    batches sent and the broker's CPU seconds meanwhile."""
    before = cpu_seconds(broker_pid)
    started = time.perf_counter()
    sent = 0
    while time.perf_counter() - started < seconds:
        due = started + sent / rate
        while time.perf_counter() < due:
            for consumer in consumers:
                consumer.consume(100, 0)
            time.sleep(0.001)
        producer.produce(TOPIC, b"y" * 200)
        producer.flush(10)
        sent += 1
    return sent, cpu_seconds(broker_pid) - before


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stored", default="1000,5000,10000,20000")
    parser.add_argument("--consumers", default="0,1,3")
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    levels = sorted(int(n) for n in args.stored.split(","))
    groups = [int(n) for n in args.consumers.split(",")]

    results = []
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        log = open(Path(tmp) / "broker.log", "wb")  # noqa: SIM115
        broker = start_broker("127.0.0.1", port, output=log)
        bootstrap = f"127.0.0.1:{port}"
        try:
            admin = AdminClient({"bootstrap.servers": bootstrap})
            admin.create_topics([NewTopic(TOPIC, 1, 1)])[TOPIC].result(30)
            producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0})
            stored = 0
            for level in levels:
                fill(producer, max(level - stored, 0))
                stored = max(stored, level)
                for count in groups:
                    consumers = waiting_consumers(bootstrap, count)
                    sent, cpu = paced_sends(
                        producer, consumers, args.rate, args.seconds, broker.pid
                    )
                    for consumer in consumers:
                        consumer.close()
                    results.append(
                        {
                            "level": level,
                            "stored_batches": stored,
                            "consumers": count,
                            "sent": sent,
                            "broker_us_per_batch": cpu / sent * 1e6,
                            "broker_mb": peak_rss_mb(broker.pid),  # it never frees: peak = now
                        }
                    )
                    stored += sent
            del producer  # disconnects before the broker stops
        finally:
            stop_process(broker)
            log.close()

    print()
    header = ("batches in the partition", "waiting consumers", "broker us per batch")
    header += ("per consumer", "x smallest", "broker MB")
    print(
        f"{header[0]:>26}{header[1]:>19}{header[2]:>21}{header[3]:>14}{header[4]:>12}"
        f"{header[5]:>11}"
    )
    smallest: dict[int, float] = {}
    alone = {r["level"]: r["broker_us_per_batch"] for r in results if r["consumers"] == 0}
    for row in results:
        count, us = row["consumers"], row["broker_us_per_batch"]
        smallest.setdefault(count, us)
        per_consumer = float("nan")
        if count and row["level"] in alone:  # the consumers' share, over the sends alone
            per_consumer = (us - alone[row["level"]]) / count
        print(
            f"{row['stored_batches']:>26,}{count:>19}{us:>21,.0f}{per_consumer:>14,.0f}"
            f"{us / smallest[count]:>12.1f}{row['broker_mb']:>11,.0f}"
        )
    print(json.dumps({"bench": "broker", "rate": args.rate, "results": results}))


if __name__ == "__main__":
    main()
