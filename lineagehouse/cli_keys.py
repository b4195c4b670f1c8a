"""`lineagehouse keys`: create, list and revoke API keys for HTTP ingestion."""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any, TypeVar

import typer

from lineagehouse.apikeys import KeySecretMissing

keys_app = typer.Typer(
    name="keys",
    help="Manage API keys for HTTP ingestion (stored hashed in ClickHouse).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

T = TypeVar("T")


class Role(StrEnum):
    write = "write"
    read = "read"
    admin = "admin"


def _run(action: Callable[[Any, Any], T]) -> tuple[T, Any]:
    """Load settings, connect to ClickHouse and run `action(client, settings)`."""
    from lineagehouse import cli
    from lineagehouse.store.client import connect

    settings = cli._admin_settings()
    try:
        client = connect(settings.clickhouse)
        try:
            return action(client, settings), settings
        finally:
            client.close()
    except KeySecretMissing as exc:
        typer.echo(f"lineagehouse keys: {exc}", err=True)
        raise typer.Exit(2) from None
    except Exception as exc:
        text = str(exc)
        hint = ""
        if any(s in text for s in ("UNKNOWN_TABLE", "UNKNOWN_DATABASE", "doesn't exist")):
            hint = " Fix: run `lineagehouse migrate` first."
        typer.echo(
            f"lineagehouse keys: ClickHouse at {settings.clickhouse.url} failed: "
            f"{text.strip()[:500]}{hint}",
            err=True,
        )
        raise typer.Exit(1) from None


@keys_app.command()
def create(
    name: Annotated[str, typer.Option("--name", help="What the key is for, e.g. 'airflow-prod'")],
    role: Annotated[
        Role, typer.Option("--role", help="write (ingest), read, or admin (everything)")
    ] = Role.write,
    namespace: Annotated[
        list[str] | None,
        typer.Option(
            "--namespace",
            help="Namespace pattern the key may use (fnmatch, e.g. 'airflow-*'); repeatable; "
            "none = every namespace",
        ),
    ] = None,
) -> None:
    """Create a key. It is printed once and cannot be shown again."""
    from lineagehouse.apikeys import create_key

    patterns = [p for p in (namespace or []) if p]
    (plaintext, record), _ = _run(
        lambda client, settings: create_key(client, settings, name, role.value, patterns)
    )
    scope = ", ".join(record.namespaces) or "all namespaces"
    typer.echo(f"Created API key {record.key_id} ({record.name!r}, role {record.role}, {scope}):")
    typer.echo(plaintext)
    typer.echo(
        "Store it now: it will not be shown again (only its hash is kept). Send it as "
        "`Authorization: Bearer <key>`.",
        err=True,
    )


@keys_app.command("list")
def list_(
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per key")] = False,
) -> None:
    """List every key (revoked ones too); secrets are never shown."""
    from lineagehouse.apikeys import list_keys

    records, _ = _run(list_keys)
    if as_json:
        for record in records:
            typer.echo(json.dumps(record.public()))
        return
    if not records:
        typer.echo("No API keys. Create one with `lineagehouse keys create --name NAME`.")
        return
    header = ("KEY ID", "NAME", "ROLE", "NAMESPACES", "CREATED", "STATUS")
    rows = [
        (
            r.key_id,
            r.name,
            r.role,
            ",".join(r.namespaces) or "*",
            r.created_at.strftime("%Y-%m-%d %H:%M:%S"),
            f"revoked {r.revoked_at:%Y-%m-%d %H:%M:%S}" if r.revoked_at else "active",
        )
        for r in records
    ]
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        typer.echo("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


@keys_app.command()
def revoke(
    key_id: Annotated[str, typer.Argument(help="The key's id (`lineagehouse keys list`)")],
) -> None:
    """Revoke a key. API processes stop accepting it within api.key_cache_ttl_s."""
    from lineagehouse.apikeys import parse_key_id, revoke_key

    wanted = parse_key_id(key_id) or key_id  # a whole key works too
    record, settings = _run(lambda client, settings: revoke_key(client, settings, wanted))
    if record is None:
        typer.echo(
            f"lineagehouse keys: no API key {wanted!r} (see `lineagehouse keys list`)", err=True
        )
        raise typer.Exit(1)
    typer.echo(
        f"Revoked API key {record.key_id} ({record.name!r}); running API processes reject "
        f"it within {settings.api.key_cache_ttl_s:g} s (LINEAGEHOUSE_API__KEY_CACHE_TTL_S)."
    )
