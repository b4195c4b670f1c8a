"""`lineagehouse webhooks`: add, list and remove the webhooks issues are sent to."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

webhooks_app = typer.Typer(
    name="webhooks",
    help="Manage webhook subscriptions: issues opened and resolved are POSTed to them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

T = TypeVar("T")
PROG = "lineagehouse webhooks"


def _fail(message: str, code: int) -> typer.Exit:
    typer.echo(f"{PROG}: {message}", err=True)
    return typer.Exit(code)


def _run(action: Callable[[Any, str], T]) -> T:
    """Load settings, connect to ClickHouse and run `action(client, database)`.
    ValueError (a bad argument) exits 2 with its message; ClickHouse errors exit 1."""
    from lineagehouse import cli
    from lineagehouse.store.client import connect

    settings = cli._admin_settings()
    try:
        client = connect(settings.clickhouse)
        try:
            return action(client, settings.clickhouse.database)
        finally:
            client.close()
    except ValueError as exc:
        raise _fail(str(exc), 2) from None
    except Exception as exc:
        text = str(exc)
        hint = ""
        if any(s in text for s in ("UNKNOWN_TABLE", "UNKNOWN_DATABASE", "doesn't exist")):
            hint = " Fix: run `lineagehouse migrate` first."
        raise _fail(
            f"ClickHouse at {settings.clickhouse.url} failed: {text.strip()[:500]}{hint}", 1
        ) from None


@webhooks_app.command()
def add(
    url: Annotated[str, typer.Argument(help="http(s) URL the issues are POSTed to")],
    secret: Annotated[
        str | None,
        typer.Option(
            "--secret", help="Signs each call (X-Lineagehouse-Signature: HMAC-SHA256 of the body)"
        ),
    ] = None,
    secret_file: Annotated[
        Path | None,
        typer.Option("--secret-file", help="Read the secret from this file (keeps it out of ps)"),
    ] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option(
            "--kind",
            help="Only issues of this kind (assertion_failed, run_failed, duration_outlier, "
            "schema_changed); repeatable; none = every kind",
        ),
    ] = None,
    namespace: Annotated[
        list[str] | None,
        typer.Option(
            "--namespace",
            help="Only issues in namespaces matching this glob (e.g. 'airflow-*'); repeatable; "
            "none = every namespace",
        ),
    ] = None,
    severity: Annotated[
        list[str] | None,
        typer.Option(
            "--severity",
            help="Only issues of this severity (info, warning, error, breaking); repeatable; "
            "none = every severity",
        ),
    ] = None,
) -> None:
    """Subscribe a URL to issues (opened and resolved)."""
    from lineagehouse.store.webhooks import add_webhook

    if secret is not None and secret_file is not None:
        raise _fail("give the secret with --secret or --secret-file, not both", 2)
    if secret_file is not None:
        try:
            secret = secret_file.read_text().strip()
        except OSError as exc:
            raise _fail(f"--secret-file {str(secret_file)!r}: {exc.strerror or exc}", 2) from None
        if not secret:
            raise _fail(f"--secret-file {str(secret_file)!r} is empty", 2)
    hook = _run(
        lambda client, db: add_webhook(
            client,
            db,
            url,
            secret=secret or "",
            kinds=kind or (),
            namespaces=namespace or (),
            severities=severity or (),
            created_by="cli",
        )
    )
    typer.echo(f"Added webhook {hook.webhook_id} -> {hook.url} ({_filters(hook.public())})")


def _filters(view: dict[str, Any]) -> str:
    parts = [
        f"{label} {','.join(view[field]) or '*'}"
        for label, field in (("kinds", "kinds"), ("namespaces", "namespaces"))
    ]
    parts.append(f"severities {','.join(view['severities']) or '*'}")
    parts.append("signed" if view["has_secret"] else "unsigned")
    return "; ".join(parts)


@webhooks_app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per webhook")] = False,
) -> None:
    """List the active webhooks (secrets are never shown)."""
    from lineagehouse.store.webhooks import list_webhooks

    hooks = _run(list_webhooks)
    if as_json:
        for hook in hooks:
            typer.echo(json.dumps(hook.public()))
        return
    if not hooks:
        typer.echo("No webhooks. Add one with `lineagehouse webhooks add URL`.")
        return
    header = ("WEBHOOK ID", "URL", "KINDS", "NAMESPACES", "SEVERITIES", "SIGNED", "CREATED")
    rows = [
        (
            v["webhook_id"],
            v["url"],
            ",".join(v["kinds"]) or "*",
            ",".join(v["namespaces"]) or "*",
            ",".join(v["severities"]) or "*",
            "yes" if v["has_secret"] else "no",
            v["created_at"],
        )
        for v in (hook.public() for hook in hooks)
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        typer.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


@webhooks_app.command()
def remove(
    webhook_id: Annotated[
        str, typer.Argument(help="The webhook's id (`lineagehouse webhooks list`)")
    ],
) -> None:
    """Remove a webhook: no further calls are made to it."""
    from lineagehouse.store.webhooks import remove_webhook

    if not _run(lambda client, db: remove_webhook(client, db, webhook_id)):
        raise _fail(f"no webhook {webhook_id!r} (see `lineagehouse webhooks list`)", 1)
    typer.echo(f"Removed webhook {webhook_id}")
