"""API keys for HTTP ingestion: generation, verification, authorization, storage.

A key looks like `lh_<id>_<secret>`: `id` (12 characters) names the key and is stored in
clear; the whole key is stored only as an HMAC-SHA256 under the server secret
(`LINEAGEHOUSE_API__KEY_SECRET`), so the table alone cannot reproduce a key. The
plaintext is shown once, when it is created.

A key has a role, `write`, `read` or `admin` (admin may do everything), and optional
namespace patterns (`fnmatch`, e.g. `airflow-*`) it may act on; none means every
namespace.

The pure part (generate, hash, verify, authorize) imports nothing from ClickHouse or
HTTP; `KeyStore` and `create_key`/`list_keys`/`revoke_key` are the ClickHouse adapter.
Keys live in `<db>.api_keys` (ReplacingMergeTree by version, ORDER BY key_id): a
revocation is a new version of the key's row, and reads use FINAL.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import string
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from hashlib import sha256
from typing import Any

from clickhouse_connect.driver.client import Client

from lineagehouse.embedded.process import StartupError
from lineagehouse.settings import ConfigError, Settings

log = logging.getLogger("lineagehouse.apikeys")

ROLES = ("write", "read", "admin")
PREFIX = "lh"
ID_LENGTH = 12
SECRET_LENGTH = 40
_ALPHABET = string.ascii_letters + string.digits
_ID_ALPHABET = string.ascii_lowercase + string.digits
SECRET_ENV = "LINEAGEHOUSE_API__KEY_SECRET"

API_KEYS_COLUMNS = (
    "key_id",
    "name",
    "role",
    "namespaces",
    "key_hash",
    "created_at",
    "revoked_at",
    "version",
)


class KeySecretMissing(StartupError, ConfigError):
    """Auth is on but no server secret is set; the message says how to fix it."""


@dataclass(frozen=True, slots=True)
class KeyRecord:
    key_id: str
    name: str
    role: str
    namespaces: tuple[str, ...]  # fnmatch patterns; empty = every namespace
    key_hash: str  # hex HMAC-SHA256 of the whole key under the server secret
    created_at: datetime
    revoked_at: datetime | None = None
    version: int = 0

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def row(self) -> list[Any]:
        """The `api_keys` row, columns in API_KEYS_COLUMNS order."""
        return [
            self.key_id,
            self.name,
            self.role,
            list(self.namespaces),
            self.key_hash,
            self.created_at,
            self.revoked_at,
            self.version,
        ]

    def public(self) -> dict[str, Any]:
        """What `keys list` shows: everything but the hash."""
        return {
            "key_id": self.key_id,
            "name": self.name,
            "role": self.role,
            "namespaces": list(self.namespaces),
            "created_at": self.created_at.isoformat(),
            "revoked_at": self.revoked_at.isoformat() if self.revoked_at else None,
        }


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str = ""  # why not, and what to do about it

    def __bool__(self) -> bool:
        return self.allowed


# --- pure -----------------------------------------------------------------------------


def generate_key() -> tuple[str, str]:
    """A new random key: (key_id, plaintext `lh_<id>_<secret>`)."""
    key_id = "".join(secrets.choice(_ID_ALPHABET) for _ in range(ID_LENGTH))
    secret = "".join(secrets.choice(_ALPHABET) for _ in range(SECRET_LENGTH))
    return key_id, f"{PREFIX}_{key_id}_{secret}"


def parse_key_id(plaintext: str) -> str | None:
    """The key id of a well-formed key, else None."""
    prefix, _, rest = plaintext.partition("_")
    key_id, _, secret = rest.partition("_")
    if prefix != PREFIX or len(key_id) != ID_LENGTH or len(secret) < 32:
        return None
    if not all(c in _ID_ALPHABET for c in key_id):
        return None
    return key_id


def bearer_token(authorization: str) -> str | None:
    """The key in an `Authorization: Bearer <key>` header value, else None."""
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    return token if scheme.lower() == "bearer" and token else None


def hash_key(plaintext: str, server_secret: bytes) -> str:
    return hmac.new(server_secret, plaintext.encode("utf-8"), sha256).hexdigest()


def verify_key(record: KeyRecord, plaintext: str, server_secret: bytes) -> bool:
    """True when `plaintext` is the key `record` was made for (constant-time compare)."""
    if parse_key_id(plaintext) != record.key_id:
        return False
    return hmac.compare_digest(record.key_hash, hash_key(plaintext, server_secret))


def new_record(
    server_secret: bytes,
    name: str,
    role: str,
    namespaces: Sequence[str] = (),
    now: datetime | None = None,
) -> tuple[str, KeyRecord]:
    """(plaintext, record) of a fresh key; raises ValueError for an unknown role."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    key_id, plaintext = generate_key()
    at = now or _now()
    record = KeyRecord(
        key_id=key_id,
        name=name,
        role=role,
        namespaces=tuple(p for p in namespaces if p),
        key_hash=hash_key(plaintext, server_secret),
        created_at=at,
        version=_version(at),
    )
    return plaintext, record


def namespace_allowed(record: KeyRecord, namespace: str) -> bool:
    return not record.namespaces or any(fnmatchcase(namespace, p) for p in record.namespaces)


def authorize(record: KeyRecord | None, role_needed: str, namespace: str | None) -> Decision:
    """May the holder of `record` act as `role_needed` on `namespace`?

    `namespace=None` checks the role only (no namespace is known).
    """
    if record is None:
        return Decision(False, "unknown API key")
    if record.revoked:
        return Decision(
            False,
            f"API key {record.key_id} was revoked; create a new one with "
            f"`lineagehouse keys create --role {role_needed}`",
        )
    if record.role != "admin" and record.role != role_needed:
        return Decision(
            False,
            f"API key {record.key_id} has role {record.role!r}, which cannot {role_needed}; "
            f"create a key with `lineagehouse keys create --role {role_needed}`",
        )
    if namespace is not None and not namespace_allowed(record, namespace):
        patterns = ", ".join(record.namespaces)
        return Decision(
            False,
            f"API key {record.key_id} may not {role_needed} namespace {namespace!r} (it is "
            f"limited to: {patterns}); create a key with `lineagehouse keys create --role "
            f"{role_needed} --namespace '{namespace}'`",
        )
    return Decision(True)


def server_secret(settings: Settings) -> bytes:
    """The HMAC secret, or KeySecretMissing naming the setting and the fix."""
    secret = settings.api.key_secret
    value = secret.get_secret_value() if secret is not None else ""
    if not value:
        raise KeySecretMissing(
            f"{SECRET_ENV} is not set, and API keys need it (the server secret their "
            "hashes are made with). Fix: set it to a long random value, the same for "
            "every API replica and for `lineagehouse keys`, e.g. "
            f"`export {SECRET_ENV}=$(python -c 'import secrets; print(secrets.token_hex(32))')` "
            "(or a secret file `lineagehouse_api__key_secret`); for local use only, turn "
            "auth off with LINEAGEHOUSE_API__AUTH_ENABLED=false. Next to `lineagehouse up`: "
            "run this command while `up` runs, from the same directory (or with "
            "LINEAGEHOUSE_DATA_DIR set to its data dir); it then uses `up`'s secret."
        )
    return value.encode("utf-8")


def _now() -> datetime:
    """Now, to the millisecond (what the table keeps)."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def _version(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000)


# --- ClickHouse adapter ---------------------------------------------------------------


def _table(settings: Settings) -> str:
    return f"{settings.clickhouse.database}.api_keys"


def _from_row(row: Sequence[Any]) -> KeyRecord:
    key_id, name, role, namespaces, key_hash, created_at, revoked_at, version = row
    return KeyRecord(
        key_id=key_id,
        name=name,
        role=role,
        namespaces=tuple(namespaces),
        key_hash=key_hash,
        created_at=_aware(created_at),
        revoked_at=_aware(revoked_at) if revoked_at is not None else None,
        version=int(version),
    )


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def list_keys(client: Client, settings: Settings) -> list[KeyRecord]:
    """Every key (revoked ones too), oldest first."""
    rows = client.query(
        f"SELECT {', '.join(API_KEYS_COLUMNS)} FROM {_table(settings)} FINAL "
        "ORDER BY created_at, key_id"
    ).result_rows
    return [_from_row(row) for row in rows]


def get_key(client: Client, settings: Settings, key_id: str) -> KeyRecord | None:
    rows = client.query(
        f"SELECT {', '.join(API_KEYS_COLUMNS)} FROM {_table(settings)} FINAL "
        "WHERE key_id = {key_id:String}",
        parameters={"key_id": key_id},
    ).result_rows
    return _from_row(rows[0]) if rows else None


def _insert(client: Client, settings: Settings, record: KeyRecord) -> None:
    client.insert(_table(settings), [record.row()], column_names=list(API_KEYS_COLUMNS))


def create_key(
    client: Client, settings: Settings, name: str, role: str, namespaces: Sequence[str] = ()
) -> tuple[str, KeyRecord]:
    """Create and store a key; returns (plaintext, record). The plaintext is not kept."""
    plaintext, record = new_record(server_secret(settings), name, role, namespaces)
    _insert(client, settings, record)
    return plaintext, record


def revoke_key(client: Client, settings: Settings, key_id: str) -> KeyRecord | None:
    """Revoke a key (a new version of its row); None when there is no such key."""
    record = get_key(client, settings, key_id)
    if record is None or record.revoked:
        return record
    now = _now()
    revoked = replace(record, revoked_at=now, version=max(_version(now), record.version + 1))
    _insert(client, settings, revoked)
    return revoked


class KeyStore:
    """The keys, cached in memory and re-read every `ttl_s` in a background thread.

    A failed re-read keeps the last good cache, so ingestion goes on while ClickHouse is
    down. A key id not in the cache triggers a re-read, at most one every
    `miss_refresh_s` (a key created a moment ago works at once; its first request may
    wait up to that long). Until the first read succeeds, `ready` is False and nobody
    can be authenticated.
    """

    def __init__(
        self,
        client: Client,
        settings: Settings,
        *,
        ttl_s: float | None = None,
        miss_refresh_s: float = 1.0,
    ) -> None:
        self.client = client
        self.settings = settings
        self.ttl_s = ttl_s if ttl_s is not None else settings.api.key_cache_ttl_s
        self.miss_refresh_s = miss_refresh_s
        self._secret = server_secret(settings)
        self._keys: dict[str, KeyRecord] = {}
        self._loaded_at: float | None = None  # monotonic time of the last good read
        self._attempted_at = 0.0
        self.last_error: str | None = None  # of the last failed read
        self._lock = threading.Lock()  # one read at a time
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def ready(self) -> bool:
        return self._loaded_at is not None

    @property
    def age_s(self) -> float | None:
        """Seconds since the last good read (None before the first)."""
        return None if self._loaded_at is None else time.monotonic() - self._loaded_at

    def refresh(self) -> bool:
        """Re-read every key; True on success. A failure keeps the last good cache."""
        with self._lock:
            return self._refresh_locked()

    def _refresh_locked(self) -> bool:
        self._attempted_at = time.monotonic()
        try:
            records = list_keys(self.client, self.settings)
        except Exception as exc:
            self.last_error = str(exc)[:300]
            log.warning(
                "could not read API keys; keeping the cached ones",
                extra={"error": str(exc)[:300], "cached_keys": len(self._keys)},
            )
            return False
        self._keys = {r.key_id: r for r in records}
        self._loaded_at = time.monotonic()
        return True

    def lookup(self, key_id: str) -> KeyRecord | None:
        """The cached record of `key_id`. An unknown id is looked up again in a re-read
        that starts after the miss: at most one every `miss_refresh_s`, so a miss within
        that time of the last read waits for the next one (a key created just after a
        read works at once; unknown ids cannot make the store read more often)."""
        record = self._keys.get(key_id)
        if record is not None:
            return record
        missed_at = time.monotonic()
        with self._lock:  # concurrent misses: the first re-reads, the others use its read
            if self._attempted_at < missed_at:
                time.sleep(max(0.0, self._attempted_at + self.miss_refresh_s - missed_at))
                self._refresh_locked()
        return self._keys.get(key_id)

    def authenticate(self, plaintext: str | None) -> KeyRecord | None:
        """The record of a valid key (revoked ones included: `authorize` says no), else None."""
        if not plaintext:
            return None
        key_id = parse_key_id(plaintext)
        if key_id is None:
            return None
        record = self.lookup(key_id)
        if record is None or not verify_key(record, plaintext, self._secret):
            return None
        return record

    def start(self) -> None:
        """Read once now, then every `ttl_s` in a daemon thread (faster until ready)."""
        self.refresh()
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="api-key-refresh", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.ttl_s if self.ready else min(self.ttl_s, 1.0)):
            self.refresh()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
