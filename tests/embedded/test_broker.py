"""`lineagehouse broker`: starts Tansu, serves Kafka clients, stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid

import pytest
from confluent_kafka import Consumer, Producer

from lineagehouse.embedded.process import free_port, port_open, wait_until
from tests.conftest import lineagehouse_cmd, wait_for

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_broker_command_serves_and_stops_cleanly(sig: signal.Signals) -> None:
    port = free_port()
    env = {**os.environ, "LINEAGEHOUSE_LOG_FORMAT": "text"}
    proc = subprocess.Popen(
        lineagehouse_cmd("broker", "--port", str(port)),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until(lambda: port_open("127.0.0.1", port), "broker", 30, proc)
        bootstrap = f"127.0.0.1:{port}"
        topic = f"t-{uuid.uuid4().hex[:8]}"
        producer = Producer({"bootstrap.servers": bootstrap})
        producer.produce(topic, b"hello", key=b"k")
        assert producer.flush(20) == 0
        consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": "g",
                "auto.offset.reset": "earliest",
                "session.timeout.ms": 6000,
            }
        )
        consumer.subscribe([topic])
        got: list = []
        wait_for(
            lambda: got.extend(m for m in consumer.consume(1, 1.0) if not m.error()) or got,
            30,
            "the message back",
            alive=proc,
        )
        consumer.close()
        assert (got[0].key(), got[0].value()) == (b"k", b"hello")
    finally:
        proc.send_signal(sig)
        code = proc.wait(20)
    output = proc.stdout.read().decode() if proc.stdout else ""
    assert code == 0, output
    assert f"listening on 127.0.0.1:{port}" in output
    assert not port_open("127.0.0.1", port), "Tansu kept running after the command stopped"


def test_broker_refuses_a_busy_port() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = subprocess.run(
            lineagehouse_cmd("broker", "--port", str(port)),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode != 0
    assert "already in use" in result.stderr
