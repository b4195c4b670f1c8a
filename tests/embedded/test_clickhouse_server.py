"""The embedded ClickHouse server, driven as a real CLI subprocess through clickhouse-connect.

Each server is `python -m lineagehouse.cli clickhouse` on a temporary data directory.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import clickhouse_connect
import lz4.frame
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

pytestmark = pytest.mark.timeout(120)

START_TIMEOUT_S = 60.0
PASSWORD = "s3cret-pw"
CLI = [sys.executable, "-m", "lineagehouse.cli", "clickhouse"]


@dataclass
class Server:
    proc: subprocess.Popen
    port: int
    data_dir: Path
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, **kwargs):
        return clickhouse_connect.get_client(host="127.0.0.1", port=self.port, **kwargs)

    def logs(self) -> str:
        return self.log_path.read_text(errors="replace")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, timeout: float = 5.0) -> tuple[int, bytes, dict[str, str]]:
    return _request(url, None, {}, "GET", timeout)


def _request(
    url: str, body: bytes | None, headers: dict[str, str], method: str = "POST", timeout=30.0
) -> tuple[int, bytes, dict[str, str]]:
    req = urllib.request.Request(url, data=body, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read(), dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, err.read(), dict(err.headers)


def start_server(data_dir: Path, **env_extra: str) -> Server:
    data_dir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("LINEAGEHOUSE_") and not k.startswith("CLICKHOUSE")
    }
    env.update(LINEAGEHOUSE_LOG_FORMAT="text", **env_extra)
    log_path = data_dir / f"server-{port}.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [*CLI, "--data-dir", str(data_dir), "--port", str(port)],
            env=env,
            cwd=data_dir,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    server = Server(proc, port, data_dir, log_path)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"server exited with {proc.returncode}:\n{server.logs()}")
        try:
            status, body, _ = _get(f"{server.url}/ping", timeout=1.0)
            if status == 200 and body == b"Ok.\n":
                return server
        except OSError:
            pass
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"server did not answer /ping within {START_TIMEOUT_S}s:\n{server.logs()}")


def stop_server(server: Server) -> int:
    server.proc.send_signal(signal.SIGTERM)
    try:
        return server.proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        server.proc.wait()
        pytest.fail(f"server ignored SIGTERM:\n{server.logs()}")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("ch-main"))
    yield srv
    assert stop_server(srv) == 0, srv.logs()


@pytest.fixture(scope="module")
def locked_server(tmp_path_factory) -> Iterator[Server]:
    """Password set and small limits."""
    srv = start_server(
        tmp_path_factory.mktemp("ch-locked"),
        LINEAGEHOUSE_CLICKHOUSE__PASSWORD=PASSWORD,
        LINEAGEHOUSE_EMBEDDED_CLICKHOUSE__MAX_EXECUTION_TIME_S="1",
        LINEAGEHOUSE_EMBEDDED_CLICKHOUSE__MAX_MEMORY_USAGE_BYTES=str(200 * 1024 * 1024),
    )
    yield srv
    assert stop_server(srv) == 0, srv.logs()


def _name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


# --------------------------------------------------------------------------------------------


def test_ping_root_and_metrics(server: Server) -> None:
    assert _get(f"{server.url}/ping")[:2] == (200, b"Ok.\n")
    assert _get(f"{server.url}/")[:2] == (200, b"Ok.\n")
    server.client().command("SELECT 1")
    status, body, headers = _get(f"{server.url}/metrics")
    assert status == 200
    assert b'lineagehouse_embedded_clickhouse_queries_total{kind="select",status="ok"}' in body
    assert headers["Content-Type"].startswith("text/plain")
    assert _get(f"{server.url}/nowhere")[0] == 404


def test_command_and_query(server: Server) -> None:
    client = server.client()
    db = _name("db")
    client.command(f"CREATE DATABASE {db}")
    client.command(f"CREATE TABLE {db}.t (k UInt32, v String) ENGINE = MergeTree ORDER BY k")
    client.command(f"INSERT INTO {db}.t SELECT number, toString(number * 2) FROM numbers(5)")
    assert client.command(f"SELECT count() FROM {db}.t") == 5
    assert client.command(f"SELECT k, v FROM {db}.t WHERE k = 3") == ["3", "6"]
    result = client.query(f"SELECT k, v FROM {db}.t ORDER BY k")
    assert result.result_rows == [(i, str(i * 2)) for i in range(5)]
    assert list(result.named_results())[1] == {"k": 1, "v": "2"}
    assert result.column_names == ("k", "v")
    # the `database` parameter selects the current database
    scoped = server.client(database=db)
    assert scoped.command("SELECT currentDatabase()") == db
    assert scoped.query("SELECT sum(k) FROM t").result_rows == [(10,)]


def test_query_df_and_arrow_when_installed(server: Server) -> None:
    client = server.client()
    try:
        import pandas  # noqa: F401
    except ImportError:
        pass
    else:
        df = client.query_df("SELECT number AS n, toString(number) AS s FROM numbers(4)")
        assert list(df["n"]) == [0, 1, 2, 3]
        assert list(df["s"]) == ["0", "1", "2", "3"]
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return
    table = client.query_arrow("SELECT number * 3 AS n FROM numbers(4)")
    assert table.column("n").to_pylist() == [0, 3, 6, 9]


COLUMNS = ["id", "name", "ts", "note", "kind", "tags", "attrs", "n"]
TYPES = (
    "id UUID, name String, ts DateTime64(3, 'UTC'), note Nullable(String), "
    "kind LowCardinality(String), tags Array(String), attrs Map(String, String), n UInt64"
)


def _rows(count: int) -> list[tuple]:
    base = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC)
    return [
        (
            uuid.uuid4(),
            f"näme-{i}\t'q'",
            base + dt.timedelta(milliseconds=17 * i),
            None if i % 3 == 0 else f"note {i}",
            ("START", "COMPLETE", "FAIL")[i % 3],
            [f"t{j}" for j in range(i % 4)],
            {f"k{j}": f"v{i}" for j in range(i % 3)},
            2**63 + i,
        )
        for i in range(count)
    ]


def _naive_utc(row: tuple) -> tuple:
    ts = row[2]
    if ts.tzinfo is not None:
        ts = ts.astimezone(dt.UTC).replace(tzinfo=None)
    return (*row[:2], ts, *row[3:])


@pytest.mark.parametrize("compress", [True, False], ids=["lz4", "plain"])
def test_insert_round_trip(server: Server, compress: bool) -> None:
    client = server.client(compress=compress)
    table = _name("edges")
    client.command(f"CREATE TABLE {table} ({TYPES}) ENGINE = MergeTree ORDER BY n")
    rows = _rows(2500)
    # several Native blocks (and so several LZ4 frames) in one request
    summary = client.insert(table, rows, column_names=COLUMNS, settings={"max_block_size": 1000})
    assert summary.written_rows == len(rows)
    client.insert(table, rows[:10], column_names=COLUMNS)  # a second, small insert
    back = client.query(f"SELECT {', '.join(COLUMNS)} FROM {table} ORDER BY n, id").result_rows
    expected = sorted([*rows, *rows[:10]], key=lambda r: (r[7], str(r[0])))
    assert [_naive_utc(r) for r in back] == [_naive_utc(r) for r in expected]
    assert client.command(f"SELECT count() FROM {table} WHERE note IS NULL") == sum(
        1 for r in expected if r[3] is None
    )


def test_insert_the_table_refuses_is_an_error_not_a_silent_loss(server: Server) -> None:
    """Regression: chDB's streaming insert reported success for rows the table refused."""
    client = server.client()
    table = _name("parts")
    client.command(
        f"CREATE TABLE {table} (id UInt32, at Date) ENGINE = MergeTree "
        "PARTITION BY toYYYYMM(at) ORDER BY id"
    )
    rows = [(i, dt.date(2000, 1, 1) + dt.timedelta(days=31 * i)) for i in range(150)]
    with pytest.raises(DatabaseError) as info:
        client.insert(table, rows, column_names=["id", "at"])
    assert "252" in str(info.value)  # TOO_MANY_PARTS for one insert block
    assert client.command(f"SELECT count() FROM {table}") == 0
    summary = client.insert(
        table, rows, column_names=["id", "at"], settings={"max_partitions_per_insert_block": 0}
    )
    assert summary.written_rows == 150
    assert client.command(f"SELECT count() FROM {table}") == 150


def test_parameter_binding(server: Server) -> None:
    client = server.client()
    tricky = "tab\there 'quote' back\\slash\nnewline ünï"
    result = client.query(
        "SELECT {s:String} AS s, {n:UInt32} + 1 AS n, {a:Array(String)} AS a, "
        "{m:Nullable(String)} AS m",
        parameters={"s": tricky, "n": 41, "a": ["x", "y'z"], "m": None},
    )
    assert result.result_rows == [(tricky, 42, ["x", "y'z"], None)]
    # parameters are per request: a parameter from one query is not visible in the next
    with pytest.raises(DatabaseError) as exc:
        client.query("SELECT {n:UInt32}")
    assert exc.value.code == 456  # UNKNOWN_QUERY_PARAMETER


def test_sessions_are_isolated_and_concurrent(server: Server) -> None:
    errors: list[BaseException] = []
    values: dict[str, list] = {"a": [], "b": []}

    def work(tag: str, threads: int) -> None:
        try:
            client = server.client(session_id=_name(f"session_{tag}"))
            client.command("CREATE TEMPORARY TABLE tmp (v String)")
            client.command(f"INSERT INTO tmp VALUES ('{tag}')")
            client.command(f"SET max_threads = {threads}")
            for _ in range(15):
                row = client.query(
                    "SELECT (SELECT any(v) FROM tmp), getSetting('max_threads')"
                ).result_rows[0]
                values[tag].append(row)
        except BaseException as exc:
            errors.append(exc)

    workers = [
        threading.Thread(target=work, args=("a", 1)),
        threading.Thread(target=work, args=("b", 3)),
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    assert not errors, errors
    assert values["a"] == [("a", 1)] * 15
    assert values["b"] == [("b", 3)] * 15
    # another session (and a session-less request) sees neither the table nor the setting
    other = server.client(session_id=_name("session_c"))
    with pytest.raises(DatabaseError) as exc:
        other.query("SELECT * FROM tmp")
    assert exc.value.code == 60
    assert other.command("SELECT getSetting('max_threads')") not in (1, 3)
    status, body, _ = _request(f"{server.url}/", b"SELECT getSetting('max_threads')", {})
    assert status == 200 and body not in (b"1\n", b"3\n")


def test_unknown_table_is_a_database_error(server: Server) -> None:
    client = server.client()
    missing = _name("missing")
    with pytest.raises(DatabaseError) as exc:
        client.query(f"SELECT * FROM {missing}")
    assert exc.value.code == 60
    assert "Code: 60" in str(exc.value) and missing in str(exc.value)
    assert client.command("SELECT 2") == 2  # the client and server carry on


def test_raw_http_like_curl(server: Server) -> None:
    url = server.url
    status, body, headers = _request(f"{url}/", b"SELECT 1 + 1", {})
    assert (status, body) == (200, b"2\n")
    assert headers["X-ClickHouse-Format"] == "TabSeparated"
    assert headers["X-ClickHouse-Timezone"]
    assert headers["X-ClickHouse-Server-Display-Name"]
    assert json.loads(headers["X-ClickHouse-Summary"])["result_rows"] == "1"
    assert uuid.UUID(headers["X-ClickHouse-Query-Id"])

    query = urllib.parse.urlencode({"query": "SELECT number FROM numbers(3)"})
    assert _get(f"{url}/?{query}")[:2] == (200, b"0\n1\n2\n")
    query = urllib.parse.urlencode(
        {"query": "SELECT number AS n FROM numbers(2)", "default_format": "JSONEachRow"}
    )
    status, body, headers = _get(f"{url}/?{query}&query_id=my-query")
    assert [json.loads(line) for line in body.splitlines()] == [{"n": "0"}, {"n": "1"}] or [
        json.loads(line) for line in body.splitlines()
    ] == [{"n": 0}, {"n": 1}]
    assert headers["X-ClickHouse-Format"] == "JSONEachRow"
    assert headers["X-ClickHouse-Query-Id"] == "my-query"
    # FORMAT in the query wins over default_format
    status, body, headers = _request(f"{url}/?default_format=JSON", b"SELECT 7 AS x FORMAT CSV", {})
    assert (body, headers["X-ClickHouse-Format"]) == (b"7\n", "CSV")

    # GET is read-only, as in ClickHouse
    table = _name("raw")
    create = urllib.parse.urlencode({"query": f"CREATE TABLE {table} (a UInt8) ENGINE = Memory"})
    status, body, headers = _get(f"{url}/?{create}")
    assert headers["X-ClickHouse-Exception-Code"] == "164" and status >= 400
    assert (
        _request(
            f"{url}/", f"CREATE TABLE {table} (a UInt8, s String) ENGINE = Memory".encode(), {}
        )[0]
        == 200
    )

    # INSERT: query parameter + data in the body, VALUES and JSONEachRow, gzip and lz4 bodies
    insert = urllib.parse.urlencode({"query": f"INSERT INTO {table} VALUES"})
    assert _request(f"{url}/?{insert}", b"(1, 'one'), (2, 'two')", {})[0] == 200
    assert (
        _request(
            f"{url}/",
            f"INSERT INTO {table} FORMAT JSONEachRow\n".encode() + b'{"a": 3, "s": "three"}\n',
            {},
        )[0]
        == 200
    )
    gz = gzip.compress(f"INSERT INTO {table} FORMAT TSV\n4\tfour\n".encode())
    assert _request(f"{url}/", gz, {"Content-Encoding": "gzip"})[0] == 200
    frames = lz4.frame.compress(
        f"INSERT INTO {table} FORMAT CSV\n5,".encode()
    ) + lz4.frame.compress(b'"five"\n')
    status, body, _ = _request(f"{url}/", frames, {"Content-Encoding": "lz4"})
    assert status == 200, body
    status, body, headers = _request(
        f"{url}/?enable_http_compression=1",
        f"SELECT a, s FROM {table} ORDER BY a".encode(),
        {"Accept-Encoding": "lz4"},
    )
    assert headers.get("Content-Encoding") == "lz4"
    assert lz4.frame.decompress(body) == b"1\tone\n2\ttwo\n3\tthree\n4\tfour\n5\tfive\n"

    # errors: ClickHouse format, status and code header
    status, body, headers = _request(f"{url}/", b"SELEC 1", {})
    assert status == 400 and headers["X-ClickHouse-Exception-Code"] == "62"
    assert body.startswith(b"Code: 62. DB::Exception:")
    status, body, headers = _request(f"{url}/", b"SELECT 1; SELECT 2", {})
    assert headers["X-ClickHouse-Exception-Code"] == "62"


def test_authentication(locked_server: Server) -> None:
    with pytest.raises(DatabaseError) as exc:
        locked_server.client(username="default", password="wrong")
    assert exc.value.code == 516
    client = locked_server.client(username="default", password=PASSWORD)
    assert client.command("SELECT 40 + 2") == 42

    url = locked_server.url
    status, body, headers = _request(f"{url}/", b"SELECT 1", {})
    assert headers["X-ClickHouse-Exception-Code"] == "516" and status == 403
    assert b"AUTHENTICATION_FAILED" in body
    basic = base64.b64encode(f"default:{PASSWORD}".encode()).decode()
    assert _request(f"{url}/", b"SELECT 1", {"Authorization": f"Basic {basic}"})[:2] == (
        200,
        b"1\n",
    )
    headers = {"X-ClickHouse-User": "default", "X-ClickHouse-Key": PASSWORD}
    assert _request(f"{url}/", b"SELECT 2", headers)[:2] == (200, b"2\n")
    params = urllib.parse.urlencode({"user": "default", "password": PASSWORD, "query": "SELECT 3"})
    assert _get(f"{url}/?{params}")[:2] == (200, b"3\n")
    assert _get(f"{url}/ping")[:2] == (200, b"Ok.\n")  # health checks need no credentials


def test_no_authentication_by_default(server: Server) -> None:
    client = server.client(username="anyone", password="anything")
    assert client.command("SELECT 5") == 5


def test_limits_stop_heavy_queries(locked_server: Server) -> None:
    client = locked_server.client(username="default", password=PASSWORD, send_receive_timeout=60)
    started = time.monotonic()
    with pytest.raises(DatabaseError) as exc:
        client.query(
            "SELECT count() FROM numbers_mt(1000000000000) WHERE sipHash64(number) % 7 = 3"
        )
    assert exc.value.code == 159  # TIMEOUT_EXCEEDED
    assert time.monotonic() - started < 15
    with pytest.raises(DatabaseError) as exc:
        # one allocation of ~400 MB: fails at once, long before the 1 s time limit
        client.query("SELECT length(arrayWithConstant(50000000, toUInt64(number))) FROM numbers(1)")
    assert exc.value.code == 241  # MEMORY_LIMIT_EXCEEDED
    # a client may lower a limit but not raise it
    assert client.command("SELECT getSetting('max_execution_time')") == 1
    for asked in (0, 100):  # 0 (unlimited) and larger values are capped at the limit
        setting = client.command(
            "SELECT getSetting('max_execution_time')", settings={"max_execution_time": asked}
        )
        assert setting == 1
    low = client.command(
        "SELECT getSetting('max_execution_time')", settings={"max_execution_time": 0.5}
    )
    assert float(low) == 0.5
    with pytest.raises(DatabaseError) as exc:
        client.query("SELECT 1 SETTINGS max_execution_time = 100")
    assert exc.value.code == 452  # SETTING_CONSTRAINT_VIOLATION
    # the server is still up and serving
    assert client.command("SELECT 1") == 1
    assert _get(f"{locked_server.url}/ping")[:2] == (200, b"Ok.\n")
    assert locked_server.proc.poll() is None


def test_data_survives_restart(tmp_path: Path) -> None:
    first = start_server(tmp_path / "restart")
    table = _name("kept")
    client = first.client()
    client.command(f"CREATE TABLE {table} (k UInt64, v String) ENGINE = MergeTree ORDER BY k")
    client.insert(table, [(i, f"v{i}") for i in range(1000)], column_names=["k", "v"])
    assert stop_server(first) == 0, first.logs()
    assert "embedded ClickHouse stopped" in first.logs()

    second = start_server(tmp_path / "restart")
    try:
        again = second.client()
        assert again.query(f"SELECT count(), sum(k), max(v) FROM {table}").result_rows == [
            (1000, sum(range(1000)), "v999")
        ]
    finally:
        assert stop_server(second) == 0, second.logs()
