"""`lineagehouse worker`: the faust app that hosts the processor and the sink stages.

Faust runs the process: lifecycle, signals, the web server with `/metrics` and its
Prometheus sensor. The stages themselves are confluent-kafka batch consumers with manual
commits, each in its own thread (`processor.py`, `sink.py`): a faust agent costs
~100 us per message here (~9,000 msg/s with no work at all), which alone would cap the
pipeline below its target; a batch consumer reads 100,000+ msg/s (BENCHMARKS.md).

The whole commit protocol (at-least-once in, exactly-once effect out):

1. The processor consumes a batch of `openlineage.events`.
2. It validates and derives every message (pure functions).
3. It produces dead letters to the DLQ topic and one Avro message per input partition and
   record kind to the derived topics, and waits for every broker acknowledgement.
4. It commits the batch's input offsets.
5. The sink consumes derived messages and buffers their rows per table.
6. It inserts each table's rows into ClickHouse, retrying until acknowledged.
7. It commits the derived messages' offsets.

A crash between any two steps replays from the last commit; every row has a
content-derived identity and merges only with min/max, so replays change nothing.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import threading
from collections.abc import Callable
from typing import Any, Literal

import faust

from lineagehouse.gc_tuning import tune_gc
from lineagehouse.memory import keep_freed_memory
from lineagehouse.processors.issue_stage import IssueStage
from lineagehouse.processors.processor import ProcessorStage
from lineagehouse.processors.sink import SinkStage
from lineagehouse.settings import Settings
from lineagehouse.topics import ensure_topics

log = logging.getLogger("lineagehouse.worker")

Stage = Literal["all", "processor", "sink", "issues"]  # one `--stage` value each
STAGES: tuple[str, ...] = ("processor", "sink", "issues")  # `all`: every one of them


def parse_stages(text: str) -> tuple[str, ...]:
    """`--stage`'s value: `all`, one stage, or several joined by commas (`sink,issues`),
    in pipeline order. ValueError naming the fix for anything else."""
    if text.strip() == "all":
        return ("all",)
    wanted = {part.strip() for part in text.split(",") if part.strip()}
    unknown = sorted(wanted - set(STAGES))
    if not wanted or unknown:
        raise ValueError(
            f"--stage {text!r}: use all, or one or more of {', '.join(STAGES)} joined by "
            "commas (e.g. sink,issues)"
        )
    return tuple(stage for stage in STAGES if stage in wanted)


def _credentials(settings: Settings) -> Any:
    kafka = settings.kafka
    if kafka.security_protocol == "PLAINTEXT":
        return None
    context = (
        ssl.create_default_context(cafile=kafka.ssl_cafile)
        if "SSL" in kafka.security_protocol
        else None
    )
    if kafka.sasl_mechanism:
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password.get_secret_value() if kafka.sasl_password else None,
            mechanism=kafka.sasl_mechanism,
            ssl_context=context,
        )
    return faust.SSLCredentials(context)


def stage_factories(settings: Settings, stage: str) -> list[tuple[str, Callable[[], Any]]]:
    """The stages one process runs, for `--stage` (`all` runs the issues stage only when
    `issues.enabled`; named, it always runs)."""
    stages = parse_stages(stage)
    every = stages == ("all",)
    factories: list[tuple[str, Callable[[], Any]]] = []
    if every or "processor" in stages:
        factories.append(("processor", lambda: ProcessorStage(settings)))
    if every or "sink" in stages:
        factories.append(("sink", lambda: SinkStage(settings)))
    if "issues" in stages or (every and settings.issues.enabled):
        factories.append(("issues", lambda: IssueStage(settings)))
    return factories


def create_app(settings: Settings, stage: str = "all") -> faust.App:
    kafka, worker = settings.kafka, settings.worker
    app = faust.App(
        # faust names internal topics after the app: no commas there
        f"{worker.group_id}-{'-'.join(parse_stages(stage))}",
        broker=[f"kafka://{server.strip()}" for server in kafka.bootstrap_servers.split(",")],
        broker_credentials=_credentials(settings),
        broker_session_timeout=kafka.session_timeout_s,
        broker_heartbeat_interval=kafka.heartbeat_interval_s,
        broker_rebalance_timeout=kafka.rebalance_timeout_s,
        topic_replication_factor=settings.topics.replication_factor,
        store="memory://",
        web_enabled=worker.web_port != 0,
        web_port=worker.web_port or 6066,
        web_host=worker.web_host,
        datadir=str(settings.data_dir / "worker"),
    )

    @app.task
    async def run_stages() -> None:
        stop = threading.Event()
        loop = asyncio.get_running_loop()
        threads: list[asyncio.Future] = []
        runners = [(name, factory()) for name, factory in stage_factories(settings, stage)]
        tune_gc(settings.worker.batch_size)
        keep_freed_memory(settings.worker.keep_freed_memory_mb)
        for name, runner in runners:
            threads.append(loop.run_in_executor(None, _guarded, name, runner.run, stop))
        try:
            await asyncio.gather(*threads)
        except asyncio.CancelledError:
            # Faust is stopping: let each stage finish and commit its batch, or exit
            # without committing once the grace time is over (the batch replays).
            stop.set()
            _, pending = await asyncio.wait(threads, timeout=worker.shutdown_grace_s)
            if pending:
                log.error("stages did not stop in time; exiting without commit")
                os._exit(70)
            raise

    return app


def _guarded(name: str, run: Callable[[threading.Event], None], stop: threading.Event) -> None:
    """Run a stage; if it dies of an unexpected error, the process exits (uncommitted work
    replays when it is restarted), rather than living on without that stage."""
    try:
        run(stop)
    except BaseException:
        log.exception("stage crashed; exiting", extra={"stage": name})
        os._exit(1)
    if not stop.is_set():
        log.error("stage ended unexpectedly; exiting", extra={"stage": name})
        os._exit(1)


def run_worker(settings: Settings, stage: str = "all") -> None:
    """`lineagehouse worker`: create topics if missing, then run until stopped."""
    ensure_topics(settings)
    (settings.data_dir / "worker").mkdir(parents=True, exist_ok=True)
    app = create_app(settings, stage)
    if settings.worker.web_port:
        from faust.sensors.prometheus import setup_prometheus_sensors

        setup_prometheus_sensors(app, name_prefix="lineagehouse_faust")
    worker = faust.Worker(
        app,
        loglevel=settings.log_level,
        override_logging=False,
        redirect_stdouts=False,
        quiet=True,
    )
    worker.execute_from_commandline()
