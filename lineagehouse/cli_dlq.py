"""`lineagehouse dlq list|show|replay`: why events were dead-lettered, and replay after a fix.

Reads ClickHouse's `dead_letters` (complete and durable), not the DLQ topic: the embedded
broker keeps topics in memory only and under-reports its high watermark. Replay produces
the original bytes and key to the events topic again; the worker validates them anew, so
an event fixed by new configuration (e.g. a registered schema) is accepted, and one still
bad is dead-lettered again under the same id. Replaying twice changes nothing.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

import orjson
import typer

from lineagehouse.api.access import Caller, redact_payload, redact_reason
from lineagehouse.settings import Settings
from lineagehouse.store.client import connect

dlq_app = typer.Typer(
    name="dlq",
    help="Dead-lettered events: list them, show why, replay them after a fix.",
    no_args_is_help=True,
)


def _settings() -> Settings:
    from lineagehouse.cli import _admin_settings  # the CLI module imports this one

    return _admin_settings()


Since = Annotated[
    datetime | None, typer.Option(help="Only dead letters at or after this time (ISO 8601)")
]
Reason = Annotated[str | None, typer.Option(help="Only those with a reason containing this")]


def _filters(
    since: datetime | None = None,
    reason: str | None = None,
    ids: list[str] | None = None,
    prefix: str | None = None,
) -> tuple[str, dict[str, Any]]:
    """SQL WHERE clause and parameters selecting dead letters."""
    clauses, params = ["1"], {}
    if since is not None:
        clauses.append("dead_lettered_at >= {since:DateTime64(3, 'UTC')}")
        params["since"] = since
    if reason:
        clauses.append(
            "arrayExists(m -> positionCaseInsensitive(m, {reason:String}) > 0, "
            "arrayConcat(reason_messages, reason_paths))"
        )
        params["reason"] = reason
    if ids:
        clauses.append("toString(dead_letter_id) IN {ids:Array(String)}")
        params["ids"] = [str(uuid.UUID(i)) for i in ids]
    if prefix:
        clauses.append("startsWith(toString(dead_letter_id), {prefix:String})")
        params["prefix"] = prefix.lower()
    return " AND ".join(clauses), params


@dlq_app.command("list")
def list_dead_letters(
    since: Since = None,
    reason: Reason = None,
    limit: Annotated[int, typer.Option(help="At most this many, newest first")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line")] = False,
) -> None:
    """List dead-lettered events, newest first, with their first reason."""
    settings = _settings()
    client = connect(settings.clickhouse)
    db = settings.clickhouse.database
    where, params = _filters(since, reason)
    rows = client.query(
        f"""
        SELECT toString(dead_letter_id), dead_lettered_at, origin,
               concat(source_topic, '/', toString(source_partition), '/',
                      toString(source_offset)),
               reason_count, reason_paths[1], reason_messages[1], value_bytes,
               event_id IS NOT NULL AND event_id IN (SELECT event_id FROM {db}.events_raw)
        FROM {db}.dead_letters FINAL
        WHERE {where}
        ORDER BY dead_lettered_at DESC, dead_letter_id
        LIMIT {{limit:UInt32}}
        """,
        parameters={**params, "limit": limit},
    ).result_rows
    total = client.command(
        f"SELECT count() FROM {db}.dead_letters FINAL WHERE {where}", parameters=params
    )
    sees_sql = settings.api.expose_sql
    if as_json:
        for r in rows:
            typer.echo(
                orjson.dumps(
                    {
                        "id": r[0],
                        "at": r[1].isoformat(),
                        "origin": r[2],
                        "source": r[3],
                        "reason_count": r[4],
                        "path": r[5],
                        "message": redact_reason(r[5], r[6], sees_sql),
                        "bytes": r[7],
                        "accepted_since": bool(r[8]),
                    }
                ).decode()
            )
        return
    if not rows:
        typer.echo("No dead letters.")
        return
    for r in rows:
        status = "  (accepted since)" if r[8] else ""
        more = f" (+{r[4] - 1} more)" if r[4] > 1 else ""
        typer.echo(f"{r[0][:8]}  {r[1]:%Y-%m-%d %H:%M:%S}  {r[2]:<5}  {r[3]}  {r[7]:,} B{status}")
        typer.echo(f"          {r[5]}: {redact_reason(r[5], r[6], sees_sql)[:150]}{more}")
    typer.echo(f"{len(rows)} of {total} shown. `lineagehouse dlq show ID` for all reasons.")


@dlq_app.command("show")
def show_dead_letter(
    dead_letter_id: Annotated[str, typer.Argument(help="Id or its first characters")],
) -> None:
    """Every reason, the source position and the original message of one dead letter."""
    settings = _settings()
    client = connect(settings.clickhouse)
    db = settings.clickhouse.database
    where, params = _filters(prefix=dead_letter_id)
    rows = client.query(
        f"""SELECT toString(dead_letter_id), dead_lettered_at, origin, source_topic,
                  source_partition, source_offset, message_key, reason_paths,
                  reason_messages, reason_count, value, value_bytes
           FROM {db}.dead_letters FINAL WHERE {where} LIMIT 2""",
        parameters=params,
        column_formats={"value": "bytes", "message_key": "bytes"},
    ).result_rows
    if not rows:
        typer.echo(f"No dead letter with id {dead_letter_id!r}.", err=True)
        raise typer.Exit(1)
    if len(rows) > 1:
        typer.echo(
            f"{dead_letter_id!r} matches several dead letters; give more characters.", err=True
        )
        raise typer.Exit(1)
    (ident, at, origin, topic, part, offset, key, paths, messages, count, value, size) = rows[0]
    typer.echo(f"id:       {ident}")
    typer.echo(f"at:       {at.isoformat()}  (origin {origin})")
    typer.echo(f"source:   {topic}/{part}/{offset}")
    typer.echo(f"key:      {key.decode('utf-8', 'replace') or '(none)'}")
    typer.echo(f"reasons:  {count}" + (f" (first {len(paths)} kept)" if count > len(paths) else ""))
    sees_sql = settings.api.expose_sql  # the SQL gate holds here too (issue 6)
    for path, message in zip(paths, messages, strict=True):
        typer.echo(f"  {path}: {redact_reason(path, message, sees_sql)}")
    typer.echo(f"message ({size:,} bytes):")
    value = redact_payload(value, Caller(None, auth_enabled=False, expose_sql=sees_sql))
    try:
        typer.echo(orjson.dumps(orjson.loads(value), option=orjson.OPT_INDENT_2).decode())
    except orjson.JSONDecodeError:
        typer.echo(repr(value[:2000]))


@dlq_app.command("replay")
def replay_dead_letters(
    ids: Annotated[list[str] | None, typer.Argument(help="Ids to replay (full ids)")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Replay every matching dead letter")] = False,
    since: Since = None,
    reason: Reason = None,
) -> None:
    """Produce dead letters' original bytes and keys to the events topic again."""
    if not ids and not all_ and since is None and not reason:
        typer.echo("Name ids, or select with --since/--reason, or pass --all.", err=True)
        raise typer.Exit(2)
    settings = _settings()
    try:
        sent = replay(settings, ids, since, reason)
    except ValueError as exc:
        typer.echo(f"lineagehouse dlq: {exc} (give full ids, as `dlq list --json` shows)", err=True)
        raise typer.Exit(2) from None
    typer.echo(
        f"Replayed {sent} dead letter(s) to {settings.topics.events}; the worker "
        "validates them again (`lineagehouse dlq list` shows what is still bad)."
    )


def replay(
    settings: Settings, ids: list[str] | None, since: datetime | None, reason: str | None
) -> int:
    """Re-produce the selected dead letters; returns how many the broker acknowledged."""
    from confluent_kafka import Producer

    client = connect(settings.clickhouse)
    db = settings.clickhouse.database
    where, params = _filters(since, reason, ids)  # full ids: a prefix could select too much
    total = client.command(
        f"SELECT count() FROM {db}.dead_letters FINAL WHERE {where}", parameters=params
    )
    producer = Producer(settings.kafka.events_producer_config())
    failures: list[str] = []

    def on_delivery(err: Any, _msg: Any) -> None:
        if err is not None:
            failures.append(str(err))

    sent = 0
    with (
        client.query_row_block_stream(
            f"SELECT message_key, value FROM {db}.dead_letters FINAL WHERE {where} "
            "ORDER BY dead_lettered_at, dead_letter_id",
            parameters=params,
            column_formats={"value": "bytes", "message_key": "bytes"},
        ) as stream,
        typer.progressbar(length=int(total), label="Replaying") as bar,
    ):
        for block in stream:
            for key, value in block:
                producer.produce(
                    settings.topics.events, value=value, key=key or None, on_delivery=on_delivery
                )
                producer.poll(0)
                sent += 1
            bar.update(len(block))
    if producer.flush(60) or failures:
        raise typer.Exit(_fail(f"the broker did not acknowledge every message: {failures[:3]}"))
    return sent


def _fail(message: str) -> int:
    typer.echo(f"lineagehouse dlq: {message}", err=True)
    return 1
