"""The ClickHouse adapter: one way to get a clickhouse-connect client from settings."""

from __future__ import annotations

import threading
from typing import Any, cast
from urllib.parse import urlparse

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import DatabaseError, OperationalError

from lineagehouse.settings import ClickHouseSettings

# Server error codes that mean "try again later", not "this insert is wrong".
RETRYABLE_CODES = {
    159,  # TIMEOUT_EXCEEDED
    202,  # TOO_MANY_SIMULTANEOUS_QUERIES
    209,  # SOCKET_TIMEOUT
    210,  # NETWORK_ERROR
    241,  # MEMORY_LIMIT_EXCEEDED
    252,  # TOO_MANY_PARTS
    425,  # SYSTEM_ERROR
    999,  # KEEPER_EXCEPTION
}


def connect(settings: ClickHouseSettings, database: str | None = "") -> Client:
    """A client for settings.url; `database=""` means settings.database, None means none."""
    url = urlparse(settings.url)
    return clickhouse_connect.get_client(
        host=url.hostname or "127.0.0.1",
        port=url.port or (8443 if url.scheme == "https" else 8123),
        secure=url.scheme == "https",
        username=settings.user,
        password=settings.password.get_secret_value(),
        database=settings.database if database == "" else (database or "__default__"),
        connect_timeout=int(settings.connect_timeout_s),
        send_receive_timeout=int(settings.send_receive_timeout_s),
        compress=False,
        autogenerate_session_id=False,
    )


class LazyClient:
    """Stands in for a clickhouse-connect client that is made on first use, and made again
    on the next use if making it failed: a process (the API) starts and answers its health
    routes while ClickHouse is down, and serves once it is back."""

    def __init__(self, settings: ClickHouseSettings, database: str | None = "") -> None:
        self._settings = settings
        self._database = database
        self._client: Client | None = None
        self._lock = threading.Lock()

    def _real(self) -> Client:
        if self._client is None:
            with self._lock:
                if self._client is None:
                    self._client = connect(self._settings, self._database)
        return self._client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real(), name)


def lazy_client(settings: ClickHouseSettings, database: str | None = "") -> Client:
    """A `LazyClient`, typed as the client it stands in for."""
    return cast(Client, LazyClient(settings, database))


def is_retryable(exc: BaseException) -> bool:
    """True when an error is about infrastructure (retry), False when about the data."""
    if isinstance(exc, OperationalError | ConnectionError | TimeoutError):
        return True
    if isinstance(exc, DatabaseError):
        # clickhouse-connect parses the server's error code into `code`; an error with no
        # code (a connection dropped mid-answer) is treated as transient.
        return exc.code is None or exc.code in RETRYABLE_CODES
    return False
