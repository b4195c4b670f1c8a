"""Pure: which webhooks an issue transition goes to, the body sent and its signature.

A call is `POST <url>` with a JSON body (below) and the headers
`X-Lineagehouse-Event` (`issue.opened` or `issue.resolved`), `X-Lineagehouse-Delivery`
(stable for one webhook, issue and transition: receivers dedupe on it, calls are at least
once) and, when the webhook has a secret, `X-Lineagehouse-Signature: sha256=<hex>`, the
HMAC-SHA256 of the body with the secret.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Any

import orjson

MAX_BACKOFF_S = 600.0


def matches(
    kinds: Sequence[str],
    namespaces: Sequence[str],
    severities: Sequence[str],
    issue: dict[str, Any],
) -> bool:
    """A subscription's filters (empty: everything) against an issue's kind, namespace
    (glob patterns) and severity."""
    return (
        (not kinds or issue["kind"] in kinds)
        and (not severities or issue["severity"] in severities)
        and (not namespaces or any(fnmatchcase(issue["namespace"], p) for p in namespaces))
    )


def delivery_id(webhook_id: str, issue_id: str, transition: str) -> str:
    return hashlib.blake2b(
        f"{webhook_id}\0{issue_id}\0{transition}".encode(), digest_size=16
    ).hexdigest()


def body(issue: dict[str, Any], transition: str) -> bytes:
    """The JSON sent: the transition and the issue as the API shows it."""
    return orjson.dumps(
        {"event": f"issue.{transition}", "issue": issue},
        option=orjson.OPT_SORT_KEYS,
    )


def signature(secret: str, payload: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def headers(
    webhook_id: str, secret: str, issue_id: str, transition: str, payload: bytes
) -> dict[str, str]:
    found = {
        "Content-Type": "application/json",
        "User-Agent": "lineagehouse-webhooks",
        "X-Lineagehouse-Event": f"issue.{transition}",
        "X-Lineagehouse-Delivery": delivery_id(webhook_id, issue_id, transition),
    }
    if secret:
        found["X-Lineagehouse-Signature"] = signature(secret, payload)
    return found


def retry_delay_s(attempts: int, first_s: float) -> float:
    """Delay before the next call after `attempts` failed ones: doubling, capped."""
    return min(first_s * 2 ** max(attempts - 1, 0), MAX_BACKOFF_S)
