"""The `lineagehouse` command: one console script, one thin subcommand per process."""

from __future__ import annotations

import logging
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from lineagehouse.cli_dlq import dlq_app
from lineagehouse.cli_keys import keys_app
from lineagehouse.cli_webhooks import webhooks_app
from lineagehouse.settings import ConfigError, Settings, load_settings

app = typer.Typer(
    name="lineagehouse",
    help="Lineagehouse: OpenLineage events over Kafka into ClickHouse.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
app.add_typer(keys_app, name="keys")
app.add_typer(dlq_app, name="dlq")
app.add_typer(webhooks_app, name="webhooks")
log = logging.getLogger("lineagehouse.cli")

DataDir = Annotated[
    Path | None,
    typer.Option("--data-dir", help="Where embedded data lives [default: ./.lineagehouse]"),
]


def _settings(**overrides: Any) -> Settings:
    """Load settings (CLI overrides win), configure logging, log them masked."""
    from lineagehouse.logs import configure_logging

    nested: dict[str, Any] = {}
    for key, value in overrides.items():
        if value is None:
            continue
        section, _, field = key.partition("__")
        if field:
            nested.setdefault(section, {})[field] = value
        else:
            nested[key] = value
    try:
        settings = load_settings(**nested)
    except ConfigError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    configure_logging(settings.log_level, settings.log_format)
    log.info("effective settings", extra={"settings": settings.masked()})
    return settings


def _admin_settings() -> Settings:
    """Settings for the admin commands (`keys`, `webhooks`, `dlq`). Next to a running
    `lineagehouse up` on the same data dir they reach its ClickHouse, and use the key
    secret it keeps there, unless those are set explicitly."""
    from pydantic import SecretStr

    from lineagehouse.up import running_up

    settings = _settings()
    state = running_up(settings.data_dir)
    if state is None:
        return settings
    clickhouse, api = settings.clickhouse, settings.api
    if "url" not in clickhouse.model_fields_set:
        clickhouse = clickhouse.model_copy(update={"url": str(state["clickhouse_url"])})
    secret_file = settings.data_dir / "api_key_secret"
    if api.key_secret is None and secret_file.exists():
        api = api.model_copy(update={"key_secret": SecretStr(secret_file.read_text().strip())})
    return settings.model_copy(update={"clickhouse": clickhouse, "api": api})


@app.command()
def broker(
    host: Annotated[str, typer.Option(help="Listen address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Kafka port")] = 9092,
) -> None:
    """Run the embedded Kafka-protocol broker (Tansu; topics live in memory only)."""
    from lineagehouse.embedded.broker import run_broker_foreground

    _settings()
    sys.exit(run_broker_foreground(host, port))


@app.command()
def clickhouse(
    data_dir: DataDir = None,
    host: Annotated[str, typer.Option(help="Listen address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="ClickHouse HTTP port")] = 8123,
) -> None:
    """Serve the ClickHouse HTTP interface over the embedded engine (chDB) on --data-dir."""
    from lineagehouse.embedded.clickhouse_server import serve

    settings = _settings(data_dir=data_dir)
    password = settings.clickhouse.password.get_secret_value() or None
    serve(
        data_dir=settings.data_dir / "clickhouse",
        host=host,
        port=port,
        user=settings.clickhouse.user if password else None,
        password=password,
        limits=settings.embedded_clickhouse,
    )


@app.command()
def migrate(
    cluster: Annotated[
        str | None, typer.Option(help="Emit ON CLUSTER DDL with Replicated/Distributed tables")
    ] = None,
) -> None:
    """Create or upgrade the ClickHouse schema (idempotent)."""
    from lineagehouse.store.migrations import migrate as run_migrations

    settings = _settings(clickhouse__cluster=cluster)
    applied = run_migrations(settings)
    typer.echo(f"schema is current ({len(applied)} migration(s) applied now)")


@app.command()
def worker(
    stage: Annotated[
        str,
        typer.Option(
            help="all: every stage in this process; processor: events -> derived topics; "
            "sink: derived topics -> ClickHouse; issues: detect issues and call webhooks; "
            "several joined by commas run in one process (e.g. sink,issues); scale each "
            "on its own"
        ),
    ] = "all",
) -> None:
    """Run the pipeline: consume openlineage.events, write to ClickHouse, raise issues."""
    from lineagehouse.processors.app import parse_stages, run_worker

    try:
        parse_stages(stage)
    except ValueError as exc:
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    run_worker(_settings(), stage)


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Listen address")] = None,
    port: Annotated[int | None, typer.Option(help="API/UI port [default: 5000]")] = None,
) -> None:
    """Run the HTTP API (gateway, query API, UI)."""
    from lineagehouse.api.server import run_api

    run_api(_settings(api__host=host, api__port=port))


@app.command()
def replay(
    from_raw: Annotated[
        bool, typer.Option("--from-raw", help="Derive the tables again from events_raw")
    ] = False,
    since: Annotated[
        datetime | None,
        typer.Option(help="Only events with eventTime at or after this (UTC if no offset)"),
    ] = None,
    truncate: Annotated[
        bool,
        typer.Option(
            help="Empty the derived tables first: a full rebuild (not with --since; stop the "
            "workers meanwhile)"
        ),
    ] = False,
) -> None:
    """Rebuild runs, jobs, datasets, edges and facets from the stored raw events."""
    from lineagehouse.gc_tuning import tune_gc
    from lineagehouse.memory import keep_freed_memory
    from lineagehouse.replay import PAGE_SIZE, count_events, replay_from_raw

    if not from_raw:
        typer.echo("Nothing to do: say where to replay from (--from-raw).", err=True)
        raise typer.Exit(2)
    if truncate and since is not None:
        typer.echo("--truncate rebuilds everything; drop --since or --truncate.", err=True)
        raise typer.Exit(2)
    settings = _settings()
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    total = count_events(settings, since)
    tune_gc(PAGE_SIZE)  # as the worker: -38% CPU replaying 30,000 events (BENCHMARKS.md)
    keep_freed_memory(settings.worker.keep_freed_memory_mb)  # as the worker
    with typer.progressbar(length=total, label="Deriving events", file=sys.stderr) as bar:
        result = replay_from_raw(settings, since, truncate, on_progress=bar.update)
    written = ", ".join(f"{kind} {n:,}" for kind, n in result.rows.items() if n)
    typer.echo(f"Replayed {result.events:,} events; rows written: {written or 'none'}")
    typer.echo(f"Issues recomputed: {result.issues:,}")
    if result.failed:
        typer.echo(f"{result.failed:,} event(s) could not be derived; see the log.", err=True)
        raise typer.Exit(1)


@app.command()
def up(
    data_dir: DataDir = None,
    kafka_port: Annotated[int, typer.Option(help="Embedded broker port")] = 9092,
    clickhouse_port: Annotated[int, typer.Option(help="Embedded ClickHouse HTTP port")] = 8123,
    api_port: Annotated[int | None, typer.Option(help="API/UI port [default: 5000]")] = None,
) -> None:
    """Run everything on one machine: broker, ClickHouse, migrations, topics, worker, API."""
    from lineagehouse.up import run_up

    # Humans at a terminal get text; the children's log files stay JSON unless set.
    interactive = sys.stderr.isatty() and "LINEAGEHOUSE_LOG_FORMAT" not in os.environ
    settings = _settings(
        data_dir=data_dir, api__port=api_port, log_format="text" if interactive else None
    )
    sys.exit(run_up(settings, kafka_port=kafka_port, clickhouse_port=clickhouse_port))


@app.command()
def demo(
    via: Annotated[
        str, typer.Option(help="kafka: the events topic; http: the API's ingest endpoint")
    ] = "kafka",
    url: Annotated[
        str | None, typer.Option(help="API URL for --via http [default: the API settings]")
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(help="API key for --via http [default: the key `up` keeps in --data-dir]"),
    ] = None,
    data_dir: DataDir = None,
) -> None:
    """Send a sample estate (10 days of a pipeline with parent runs, column lineage,
    quality checks with a failure, a schema change, a failed and a slow run) through
    openlineage-python, so every page has something to show. Idempotent per day."""
    from lineagehouse.demo import BrokerUnreachable, client_for, delivered, demo_events, send
    from lineagehouse.up import running_up

    if via not in ("kafka", "http"):
        typer.echo(f"--via {via!r}: use kafka or http", err=True)
        raise typer.Exit(2)
    settings = _settings(data_dir=data_dir)
    # A `lineagehouse up` on this data dir says where it listens (its ports may not be the
    # defaults); settings given explicitly (environment, .env) still win.
    up_state = running_up(settings.data_dir) or {}
    bootstrap = settings.kafka.bootstrap_servers
    if up_state and "bootstrap_servers" not in settings.kafka.model_fields_set:
        bootstrap = str(up_state["kafka_bootstrap_servers"])
    api_base = f"http://{settings.api.host}:{settings.api.port}"
    if up_state and not {"host", "port"} & settings.api.model_fields_set:
        api_base = str(up_state["api_url"])
    events = demo_events()
    if via == "http":
        base = url or api_base
        key_file = settings.data_dir / "api_key"
        if api_key is None and settings.api.auth_enabled and key_file.exists():
            api_key = key_file.read_text().strip()
        client = client_for(http_url=base, api_key=api_key)
        where = f"{base}/api/v1/lineage"
    else:
        try:
            client = client_for(
                bootstrap,
                settings.topics.events,
                check=True,
                compression=settings.kafka.compression,
            )
        except BrokerUnreachable as exc:
            typer.echo(
                f"lineagehouse demo: {exc}. Is `lineagehouse up` running? If it runs with "
                "--data-dir or --kafka-port, give the same --data-dir here (or set "
                "LINEAGEHOUSE_KAFKA__BOOTSTRAP_SERVERS).",
                err=True,
            )
            raise typer.Exit(1) from None
        where = f"Kafka {bootstrap}, topic {settings.topics.events}"
    with typer.progressbar(length=len(events), label="sending demo events") as bar:
        sent = send(client, events, bar.update)
    undelivered = not delivered(client)
    client.close()
    if undelivered:
        typer.echo(f"lineagehouse demo: not every event reached {where}.", err=True)
        raise typer.Exit(1)
    typer.echo(f"Sent {sent} events to {where}.")
    typer.echo(f"Open {api_base}/ and look at Runs, Lineage (shop_daily) and Issues.")


def main() -> None:
    from lineagehouse.embedded.process import StartupError

    try:
        app()
    except StartupError as exc:
        typer.echo(f"lineagehouse: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
