"""API keys: the pure rules, and the ClickHouse-backed store against the real server."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from clickhouse_connect.driver.client import Client

from lineagehouse.apikeys import (
    KeyRecord,
    KeySecretMissing,
    KeyStore,
    authorize,
    create_key,
    generate_key,
    get_key,
    hash_key,
    list_keys,
    new_record,
    parse_key_id,
    revoke_key,
    server_secret,
    verify_key,
)
from lineagehouse.settings import ConfigError, Settings
from lineagehouse.store.client import connect
from lineagehouse.store.migrations import migrate
from tests.conftest import wait_for

SECRET = b"test-server-secret-0123456789abcdef"
KEY_RE = re.compile(r"^lh_([a-z0-9]{12})_([A-Za-z0-9]{40})$")


def record(role: str = "write", namespaces: tuple[str, ...] = (), **changes) -> KeyRecord:
    _, rec = new_record(SECRET, "test", role, namespaces)
    return replace(rec, **changes)


# --- pure -----------------------------------------------------------------------------


def test_generated_keys_have_the_format_and_are_unique() -> None:
    keys = [generate_key() for _ in range(200)]
    for key_id, plaintext in keys:
        match = KEY_RE.match(plaintext)
        assert match, plaintext
        assert match[1] == key_id
        assert parse_key_id(plaintext) == key_id
    assert len({p for _, p in keys}) == 200
    assert len({k for k, _ in keys}) == 200


@pytest.mark.parametrize(
    "text",
    [
        "",
        "lh_",
        "lh_abcdefghijkl",
        "lh_abcdefghijkl_short",
        "xx_abcdefghijkl_" + "a" * 40,
        "lh_ABCDEFGHIJKL_" + "a" * 40,  # ids are lower-case
        "lh_abcdefghijk_" + "a" * 40,  # 11-character id
        "Bearer lh_abcdefghijkl_" + "a" * 40,
    ],
)
def test_malformed_keys_have_no_id(text: str) -> None:
    assert parse_key_id(text) is None


def test_hash_is_hmac_sha256_of_the_whole_key_and_verifies() -> None:
    plaintext, rec = new_record(SECRET, "etl", "write", ["team-a*"])
    assert rec.key_hash == hmac.new(SECRET, plaintext.encode(), hashlib.sha256).hexdigest()
    assert rec.key_hash == hash_key(plaintext, SECRET)
    assert plaintext not in repr(rec)
    assert rec.key_id == parse_key_id(plaintext)
    assert rec.namespaces == ("team-a*",)
    assert verify_key(rec, plaintext, SECRET)
    assert not verify_key(rec, plaintext, b"another-secret")
    tampered = plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")
    assert not verify_key(rec, tampered, SECRET)
    other_plaintext, _ = new_record(SECRET, "other", "write")
    assert not verify_key(rec, other_plaintext, SECRET)


def test_unknown_role_is_refused() -> None:
    with pytest.raises(ValueError, match="write, read, admin"):
        new_record(SECRET, "x", "owner")


def test_roles() -> None:
    assert authorize(record("write"), "write", "any")
    assert not authorize(record("write"), "read", "any")
    assert authorize(record("read"), "read", "any")
    denied = authorize(record("read"), "write", "any")
    assert not denied
    assert "lineagehouse keys create --role write" in denied.reason
    assert authorize(record("admin"), "write", "any")
    assert authorize(record("admin"), "read", "any")
    assert not authorize(None, "write", "any")
    revoked = authorize(record("admin", revoked_at=datetime.now(UTC)), "write", "any")
    assert not revoked
    assert "revoked" in revoked.reason


def test_namespace_scopes() -> None:
    scoped = record("write", ("team-a*", "spark"))
    assert authorize(scoped, "write", "team-a")
    assert authorize(scoped, "write", "team-a-prod")
    assert authorize(scoped, "write", "spark")
    assert not authorize(scoped, "write", "sparky")
    assert not authorize(scoped, "write", "Team-A")  # case-sensitive
    denied = authorize(scoped, "write", "team-b")
    assert not denied
    assert "'team-b'" in denied.reason and "--namespace" in denied.reason
    assert authorize(scoped, "write", None)  # role only
    everything = record("write", ())
    assert authorize(everything, "write", "whatever/namespace://x")
    admin_scoped = record("admin", ("team-a*",))
    assert not authorize(admin_scoped, "write", "team-b")


def test_missing_server_secret_names_the_setting_and_the_fix(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(api={"key_secret": None})
    assert settings.api.key_secret is None
    with pytest.raises(KeySecretMissing) as info:
        server_secret(settings)
    assert isinstance(info.value, ConfigError)
    assert "LINEAGEHOUSE_API__KEY_SECRET" in str(info.value)
    assert "Fix:" in str(info.value)
    assert server_secret(make_settings(api={"key_secret": "s3cret"})) == b"s3cret"


# --- ClickHouse adapter -----------------------------------------------------------------


@pytest.fixture
def keyed(make_settings: Callable[..., Settings]) -> Settings:
    settings = make_settings(api={"key_secret": SECRET.decode()})
    migrate(settings)
    return settings


def test_create_list_revoke_in_clickhouse(keyed: Settings, ch: Client) -> None:
    client = connect(keyed.clickhouse)
    plaintext, created = create_key(client, keyed, "airflow", "write", ["airflow-*"])
    _, other = create_key(client, keyed, "reader", "read")
    assert verify_key(created, plaintext, SECRET)
    listed = {r.key_id: r for r in list_keys(client, keyed)}
    assert set(listed) == {created.key_id, other.key_id}
    assert listed[created.key_id].namespaces == ("airflow-*",)
    assert listed[created.key_id].key_hash == created.key_hash
    assert not listed[created.key_id].revoked

    revoked = revoke_key(client, keyed, created.key_id)
    assert revoked is not None and revoked.revoked
    assert revoked.version > created.version
    assert get_key(client, keyed, created.key_id).revoked
    assert not get_key(client, keyed, other.key_id).revoked
    assert revoke_key(client, keyed, "nosuchkey000") is None
    again = revoke_key(client, keyed, created.key_id)
    assert again is not None and again.revoked_at == revoked.revoked_at

    # Revocation is a new version of the row; FINAL shows one row per key.
    db = keyed.clickhouse.database
    assert ch.command(f"SELECT count() FROM {db}.api_keys FINAL") == 2
    assert ch.command(f"SELECT count() FROM {db}.api_keys") >= 3
    stored = repr(ch.query(f"SELECT * FROM {db}.api_keys").result_rows)
    assert plaintext not in stored  # only the hash is kept


class Forwarder:
    """A TCP forwarder to ClickHouse that can be cut, to simulate an outage."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            with self.lock:
                self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def cut(self) -> None:
        with contextlib.suppress(OSError):  # wakes the blocked accept(); close alone does not
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        with self.lock:
            for s in self.sockets:
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
                s.close()


@pytest.fixture
def forwarder(clickhouse_url: str) -> Iterator[Forwarder]:
    fwd = Forwarder(int(clickhouse_url.rsplit(":", 1)[1]))
    yield fwd
    fwd.cut()


def test_key_store_keeps_its_cache_through_a_clickhouse_outage(
    keyed: Settings, forwarder: Forwarder
) -> None:
    direct = connect(keyed.clickhouse)
    plaintext, created = create_key(direct, keyed, "etl", "write")
    via = keyed.model_copy(
        update={
            "clickhouse": keyed.clickhouse.model_copy(
                update={"url": f"http://127.0.0.1:{forwarder.port}", "connect_timeout_s": 2.0}
            )
        }
    )
    store = KeyStore(connect(via.clickhouse), via, ttl_s=60, miss_refresh_s=0)
    assert not store.ready
    assert store.refresh()
    assert store.ready
    assert store.authenticate(plaintext) == created

    forwarder.cut()
    late_plaintext, _ = create_key(direct, keyed, "late", "write")
    started = time.monotonic()
    assert not store.refresh()  # ClickHouse unreachable: the last good cache stays
    assert time.monotonic() - started < 30
    assert store.last_error
    assert store.ready
    assert store.authenticate(plaintext) == created
    assert store.authenticate(late_plaintext) is None  # unknown, and cannot be read now
    assert store.authenticate("lh_" + created.key_id + "_" + "x" * 40) is None


class CountingKeyStore(KeyStore):
    """A KeyStore that counts its reads of ClickHouse."""

    reads = 0

    def _refresh_locked(self) -> bool:
        self.reads += 1
        return super()._refresh_locked()


def test_a_key_created_just_after_a_read_works_at_once(keyed: Settings) -> None:
    """The miss that follows a read by less than `miss_refresh_s` waits for the next read,
    instead of refusing a key created a moment ago (the guide's `keys create`, then the
    first event, on a fast machine)."""
    store = CountingKeyStore(connect(keyed.clickhouse), keyed, ttl_s=60, miss_refresh_s=1.0)
    assert store.refresh()
    plaintext, created = create_key(connect(keyed.clickhouse), keyed, "fresh", "write")
    assert store.authenticate(plaintext) == created
    assert store.reads == 2


def test_unknown_keys_do_not_make_the_store_read_more_often(keyed: Settings) -> None:
    store = CountingKeyStore(connect(keyed.clickhouse), keyed, ttl_s=60, miss_refresh_s=0.5)
    assert store.refresh()
    bogus = ["lh_" + f"{i:012d}" + "_" + "x" * 40 for i in range(10)]
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=5) as pool:
        assert not any(pool.map(store.authenticate, bogus * 2))
    elapsed = time.monotonic() - started
    assert 1 < store.reads <= 1 + elapsed / 0.5 + 1, (store.reads, elapsed)


def test_key_store_applies_a_revocation_within_its_ttl(keyed: Settings) -> None:
    client = connect(keyed.clickhouse)
    plaintext, created = create_key(client, keyed, "etl", "write")
    store = KeyStore(connect(keyed.clickhouse), keyed, ttl_s=0.5)
    store.start()
    try:
        assert store.ready
        assert authorize(store.authenticate(plaintext), "write", "ns")
        revoke_key(client, keyed, created.key_id)
        started = time.monotonic()
        wait_for(
            lambda: not authorize(store.authenticate(plaintext), "write", "ns"),
            10,
            "the revocation to reach the cache",
        )
        assert time.monotonic() - started < 3
    finally:
        store.stop()


def test_key_store_needs_the_secret(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(api={"key_secret": None})
    with pytest.raises(KeySecretMissing, match="LINEAGEHOUSE_API__KEY_SECRET"):
        KeyStore(connect(settings.clickhouse, database=None), settings)
