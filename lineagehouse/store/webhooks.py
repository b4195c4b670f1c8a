"""Webhook subscriptions in ClickHouse (`<db>.webhooks`, migration 0007): the one adapter
the CLI (`lineagehouse webhooks`), the API (`/api/v2/webhooks`) and the worker's issues
stage use.

A subscription is a URL, an optional secret (signs each call; never shown by the CLI or
the API) and filters on issue kind, namespace (glob patterns) and severity; an empty
filter matches everything. The table is a ReplacingMergeTree by `version` (nanoseconds):
a removal is a new version of the row with `active = 0`, and reads take the latest
version of each id (argMax over `version`, so the answer does not depend on merges).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlparse

from clickhouse_connect.driver.client import Client

from lineagehouse.processors.issues import ISSUE_KINDS, SEVERITIES

COLUMNS = (
    "webhook_id",
    "url",
    "secret",
    "kinds",
    "namespaces",
    "severities",
    "created_at",
    "created_by",
    "active",
    "version",
)
MAX_URL = 2048


@dataclass(frozen=True)
class Webhook:
    webhook_id: str
    url: str
    secret: str
    kinds: tuple[str, ...]
    namespaces: tuple[str, ...]
    severities: tuple[str, ...]
    created_at_ms: int
    created_by: str

    def public(self) -> dict[str, Any]:
        """The JSON the API and the CLI show: everything but the secret."""
        created = datetime.fromtimestamp(self.created_at_ms / 1000, UTC)
        return {
            "webhook_id": self.webhook_id,
            "url": self.url,
            "has_secret": bool(self.secret),
            "kinds": list(self.kinds),
            "namespaces": list(self.namespaces),
            "severities": list(self.severities),
            "created_at": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "created_by": self.created_by,
        }


# --- validation (pure) ------------------------------------------------------------------


def validate_url(url: str) -> str:
    """The URL as stored, or ValueError saying what is wrong and what to send."""
    text = url.strip() if isinstance(url, str) else ""
    parsed = urlparse(text)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(
            f"url {url!r} is not an http(s) URL with a host; send e.g. "
            "'https://hooks.example.com/lineagehouse'"
        )
    if len(text) > MAX_URL or any(c.isspace() for c in text):
        raise ValueError(f"url must be at most {MAX_URL} characters without spaces")
    return text


def _choices(field: str, values: Iterable[str], allowed: Sequence[str]) -> tuple[str, ...]:
    found = tuple(dict.fromkeys(values))
    unknown = [v for v in found if v not in allowed]
    if unknown:
        raise ValueError(
            f"{field}: unknown value(s) {', '.join(map(repr, unknown))}; use any of "
            f"{', '.join(allowed)} (none: every one)"
        )
    return found


def validate_filters(
    kinds: Iterable[str], namespaces: Iterable[str], severities: Iterable[str]
) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(kinds, namespaces, severities) without duplicates, or ValueError naming the field."""
    patterns = tuple(dict.fromkeys(namespaces))
    if any(not isinstance(p, str) or not p.strip() for p in patterns):
        raise ValueError(
            "namespaces: every pattern must be a non-empty glob such as 'team-a' or "
            "'airflow-*' (leave namespaces out to match every namespace)"
        )
    return (
        _choices("kinds", kinds, ISSUE_KINDS),
        patterns,
        _choices("severities", severities, SEVERITIES),
    )


def new_webhook_id() -> str:
    return "wh_" + secrets.token_hex(8)


# --- ClickHouse ---------------------------------------------------------------------------


def _ms(value: datetime) -> int:
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value
    return int(aware.timestamp() * 1000)


def _latest(client: Client, database: str, where: str = "", **params: Any) -> list[tuple]:
    """(webhook, active, version) of the latest version of each id."""
    result = client.query(
        f"SELECT webhook_id, {', '.join(f'argMax({c}, version)' for c in COLUMNS[1:-1])}, "
        f"max(version) FROM {database}.webhooks {where} GROUP BY webhook_id "
        "ORDER BY webhook_id",
        parameters=params,
    ).result_rows
    found = []
    for (
        webhook_id,
        url,
        secret,
        kinds,
        namespaces,
        severities,
        created,
        by,
        active,
        version,
    ) in result:
        hook = Webhook(
            webhook_id=webhook_id,
            url=url,
            secret=secret,
            kinds=tuple(kinds),
            namespaces=tuple(namespaces),
            severities=tuple(severities),
            created_at_ms=_ms(created),
            created_by=by,
        )
        found.append((hook, bool(active), int(version)))
    return found


def _insert(client: Client, database: str, hook: Webhook, active: bool, version: int) -> None:
    row = [
        hook.webhook_id,
        hook.url,
        hook.secret,
        list(hook.kinds),
        list(hook.namespaces),
        list(hook.severities),
        datetime.fromtimestamp(hook.created_at_ms / 1000, UTC),
        hook.created_by,
        int(active),
        version,
    ]
    client.insert(f"{database}.webhooks", [row], column_names=list(COLUMNS))


def add_webhook(
    client: Client,
    database: str,
    url: str,
    *,
    secret: str = "",
    kinds: Iterable[str] = (),
    namespaces: Iterable[str] = (),
    severities: Iterable[str] = (),
    created_by: str = "",
) -> Webhook:
    """Validate and store a subscription; ValueError (naming the field) when invalid."""
    checked_kinds, patterns, checked_severities = validate_filters(kinds, namespaces, severities)
    hook = Webhook(
        webhook_id=new_webhook_id(),
        url=validate_url(url),
        secret=secret or "",
        kinds=checked_kinds,
        namespaces=patterns,
        severities=checked_severities,
        created_at_ms=int(time.time() * 1000),
        created_by=created_by,
    )
    _insert(client, database, hook, True, time.time_ns())
    return hook


def list_webhooks(client: Client, database: str) -> list[Webhook]:
    """Every active subscription (the latest version of each id), oldest first."""
    hooks = [hook for hook, active, _ in _latest(client, database) if active]
    return sorted(hooks, key=lambda h: (h.created_at_ms, h.webhook_id))


def get_webhook(client: Client, database: str, webhook_id: str) -> Webhook | None:
    """The active subscription `webhook_id`, else None (unknown or removed)."""
    found = _latest(client, database, "WHERE webhook_id = {id:String}", id=webhook_id)
    return found[0][0] if found and found[0][1] else None


def remove_webhook(client: Client, database: str, webhook_id: str) -> bool:
    """Remove a subscription (a new version with active = 0); False if unknown or already
    removed."""
    found = _latest(client, database, "WHERE webhook_id = {id:String}", id=webhook_id)
    if not found or not found[0][1]:
        return False
    hook, _, version = found[0]
    _insert(client, database, hook, False, max(time.time_ns(), version + 1))
    return True
