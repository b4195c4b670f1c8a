"""The embedded ClickHouse server: the ClickHouse HTTP interface over chDB.

This process is the one owner of a chDB data directory. clickhouse-connect, curl and
Grafana talk to it as to a ClickHouse server (`lineagehouse clickhouse`).

Design: stdlib `ThreadingHTTPServer` (HTTP/1.1 keep-alive, one thread per connection;
chDB releases the GIL while it works). An `Engine` owns the chDB connections: a pool of
stateless connections for requests without `session_id`, and a bounded LRU map of session
connections (serialized per session, expiring when idle). A semaphore bounds concurrent
queries (excess requests queue). Every query runs with the configured `max_memory_usage`
and `max_execution_time`; clients may lower them, never raise them.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import email.parser
import email.policy
import hmac
import json
import logging
import os
import re
import signal
import socket
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from lineagehouse.embedded.clickhouse_http import (
    AUTHENTICATION_FAILED,
    BAD_ARGUMENTS,
    CANNOT_DECOMPRESS,
    CANNOT_READ_ALL_DATA,
    CHDB_PYTHON_FORMATS,
    NOT_IMPLEMENTED,
    READONLY,
    SESSION_NOT_FOUND,
    SETTING_CONSTRAINT_VIOLATION,
    SYNTAX_ERROR,
    TOO_MANY_SIMULTANEOUS_QUERIES,
    UNKNOWN_EXCEPTION,
    UNKNOWN_FORMAT,
    ClickHouseError,
    Statement,
    analyze,
    choose_response_encoding,
    compress_response,
    content_type,
    error_body,
    error_from_chdb,
    quote_identifier,
    quote_literal,
    request_decoder,
)
from lineagehouse.metrics import CLICKHOUSE_QUERIES, render
from lineagehouse.settings import EmbeddedClickHouseSettings

log = logging.getLogger("lineagehouse.clickhouse")

_SETTINGS_CLAUSE = re.compile(r"\sSETTINGS\s", re.IGNORECASE)


def _pull(stream: Iterator[bytes], head: bytearray) -> bool:
    """Append the next chunk of `stream` to `head`; False when the stream is exhausted."""
    chunk = next(stream, None)
    if chunk is None:
        return False
    head += chunk
    return True


def _split_settings(prefix: str) -> tuple[str, str]:
    """'INSERT INTO t (a) SETTINGS x=1' -> ('INSERT INTO t (a)', 'SETTINGS x=1')."""
    match = _SETTINGS_CLAUSE.search(prefix)
    if match is None:
        return prefix.rstrip(), ""
    return prefix[: match.start()].rstrip(), prefix[match.start() :].strip()


ABORTED = 236

# URL parameters that are about the HTTP exchange, never ClickHouse settings for chDB.
CLIENT_PARAMS = frozenset(
    {
        "query",
        "query_id",
        "database",
        "default_format",
        "user",
        "password",
        "quota_key",
        "session_id",
        "session_timeout",
        "session_check",
        "wait_end_of_query",
        "buffer_size",
        "compress",
        "decompress",
        "enable_http_compression",
        "http_zlib_compression_level",
        "send_progress_in_http_headers",
        "http_headers_progress_interval_ms",
        "cancel_http_readonly_queries_on_client_close",
        "client_protocol_version",
        "role",
        "readonly",  # emulated per request; SET readonly would lock a pooled connection
        "max_query_size",
        "output_format_parallel_formatting",
    }
)
LIMITED_SETTINGS = ("max_memory_usage", "max_execution_time")

HEAD_BYTES = 64 * 1024  # request bytes read before deciding query vs INSERT with data
MAX_QUERY_BYTES = 256 * 1024 * 1024  # a non-INSERT body larger than this is refused
READ_BYTES = 1024 * 1024  # socket read size for request bodies
DRAIN_BYTES = 256 * 1024 * 1024  # after an error, read at most this much of the body


# ---------------------------------------------------------------------------------------------
# Engine: chDB connections, sessions, limits


class _Conn:
    """One chDB connection plus what we know of its session state."""

    __slots__ = ("applied", "database", "raw")

    def __init__(self, raw: Any) -> None:
        self.raw = raw
        self.applied: dict[str, str | None] = {}  # settings we SET; None = unknown
        self.database: str | None = None  # current database, None = unknown

    def forget_settings(self) -> None:
        self.applied = dict.fromkeys(self.applied)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.raw.close()


@dataclass
class _Session:
    conn: _Conn
    timeout: float
    last_used: float
    lock: threading.Lock = field(default_factory=threading.Lock)
    users: int = 0  # requests running or waiting on this session


@dataclass
class QueryRequest:
    sql: str
    statement: Statement
    output_format: str = "TabSeparated"
    params: dict[str, str] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    database: str | None = None
    session_id: str | None = None
    session_timeout: float = 0.0
    session_check: bool = False


def _summary(
    read_rows: int = 0,
    read_bytes: int = 0,
    written_rows: int = 0,
    written_bytes: int = 0,
    result_rows: int = 0,
    result_bytes: int = 0,
    elapsed_s: float = 0.0,
) -> dict[str, str]:
    return {
        "read_rows": str(read_rows),
        "read_bytes": str(read_bytes),
        "written_rows": str(written_rows),
        "written_bytes": str(written_bytes),
        "total_rows_to_read": str(read_rows),
        "result_rows": str(result_rows),
        "result_bytes": str(result_bytes),
        "elapsed_ns": str(int(elapsed_s * 1e9)),
    }


class Engine:
    """Owns the chDB engine on one data directory and every connection to it."""

    def __init__(self, data_dir: Path, limits: EmbeddedClickHouseSettings) -> None:
        import chdb

        self._chdb = chdb
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.limits = limits
        self._lock = threading.Lock()
        self._closed = False
        self._anchor = self._connect()  # keeps the engine alive while the pools churn
        row = self._anchor.raw.query("SELECT version(), timezone()", "TabSeparated").bytes()
        self.version, self.timezone = row.decode().rstrip("\n").split("\t")
        rows = self._anchor.raw.query("SELECT name, value FROM system.settings", "TSV").bytes()
        defaults = dict(line.split("\t", 1) for line in rows.decode().splitlines())
        self.setting_names = frozenset(defaults)
        # chDB reports enable_http_compression=1, so clickhouse-connect expects compressed
        # answers whenever it sends Accept-Encoding: honour that default.
        self.http_compression = defaults.get("enable_http_compression", "0")
        self._free: list[_Conn] = []
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._slots = threading.BoundedSemaphore(limits.max_concurrent_queries)
        self._caps: dict[str, float] = {
            "max_memory_usage": float(limits.max_memory_usage_bytes),
            "max_execution_time": float(limits.max_execution_time_s),
        }

    def _connect(self) -> _Conn:
        try:
            return _Conn(self._chdb.connect(str(self.data_dir)))
        except Exception as exc:
            raise error_from_chdb(exc) from exc

    # -- limits ---------------------------------------------------------------------------

    def _format_cap(self, name: str, value: float) -> str:
        return str(int(value)) if name == "max_memory_usage" else f"{value:g}"

    def desired_settings(self, settings: dict[str, str]) -> dict[str, str]:
        """Client settings with the server limits applied (lower wins, 0 = the limit)."""
        desired = dict(settings)
        for name, cap in self._caps.items():
            if cap <= 0:
                continue
            asked = desired.get(name)
            try:
                value = float(asked) if asked is not None else 0.0
            except ValueError:
                raise ClickHouseError(
                    BAD_ARGUMENTS, f"Cannot parse setting {name} value {asked!r}"
                ) from None
            desired[name] = self._format_cap(name, value if 0 < value <= cap else cap)
        return desired

    def check_statement_limits(self, st: Statement) -> None:
        """SET / SETTINGS in the SQL may not raise a limit either."""
        if st.first != "SET" and not st.has_settings:
            return
        for name, raw in st.assignments:
            cap = self._caps.get(name, 0.0)
            if cap <= 0:
                continue
            try:
                value = float(raw)
            except ValueError:
                value = -1.0
            if not 0 < value <= cap:
                raise ClickHouseError(
                    SETTING_CONSTRAINT_VIOLATION,
                    f"Setting {name} shouldn't be greater than {self._format_cap(name, cap)} "
                    f"or 0 (unlimited) on this server. (SETTING_CONSTRAINT_VIOLATION)",
                )

    # -- connections ----------------------------------------------------------------------

    @contextlib.contextmanager
    def checkout(self, req: QueryRequest) -> Iterator[_Conn]:
        """A connection for one request: the session's, or a pooled stateless one."""
        if self._closed:
            raise ClickHouseError(ABORTED, "Server is shutting down")
        if req.session_id:
            sess = self._acquire_session(req.session_id, req.session_timeout, req.session_check)
            try:
                with sess.lock, self._slot():
                    self._prepare(sess.conn, req, stateless=False)
                    yield sess.conn
            finally:
                with self._lock:
                    sess.users -= 1
                    sess.last_used = time.monotonic()
            return
        with self._slot():
            with self._lock:
                conn = self._free.pop() if self._free else None
            if conn is None:
                conn = self._connect()
            keep = False
            try:
                self._prepare(conn, req, stateless=True)
                yield conn
                keep = not req.statement.changes_session
            finally:
                if keep and not self._closed:
                    with self._lock:
                        self._free.append(conn)
                else:  # SET/USE/temporary tables must not leak to other clients
                    conn.close()

    @contextlib.contextmanager
    def _slot(self) -> Iterator[None]:
        self._slots.acquire()
        try:
            yield
        finally:
            self._slots.release()

    def _prepare(self, conn: _Conn, req: QueryRequest, stateless: bool) -> None:
        desired = self.desired_settings(req.settings)
        parts = [
            f"{name} = {quote_literal(value)}"
            for name, value in desired.items()
            if conn.applied.get(name) != value
        ]
        parts += [f"{name} = DEFAULT" for name in conn.applied if name not in desired]
        if parts:
            try:
                conn.raw.query("SET " + ", ".join(parts), "TabSeparated")
            except Exception as exc:
                conn.applied = dict.fromkeys(set(conn.applied) | set(desired))
                raise error_from_chdb(exc) from exc
            conn.applied = dict(desired)
        database = req.database or ("default" if stateless else None)
        if database and conn.database != database:
            conn.database = None
            try:
                conn.raw.query(f"USE {quote_identifier(database)}", "TabSeparated")
            except Exception as exc:
                raise error_from_chdb(exc) from exc
            conn.database = database

    def _acquire_session(self, sid: str, timeout: float, check: bool) -> _Session:
        limit = self.limits.session_idle_timeout_s
        timeout = min(timeout, limit) if timeout > 0 else limit
        with self._lock:
            now = time.monotonic()
            sess = self._sessions.get(sid)
            if sess is not None and sess.users == 0 and now - sess.last_used > sess.timeout:
                self._drop_session(sid)
                sess = None
            if sess is None:
                if check:
                    raise ClickHouseError(
                        SESSION_NOT_FOUND, f"Session {sid} not found. (SESSION_NOT_FOUND)"
                    )
                self._make_room(now)
                sess = _Session(conn=self._connect(), timeout=timeout, last_used=now)
                self._sessions[sid] = sess
                log.debug("session opened", extra={"session_id": sid})
            else:
                self._sessions.move_to_end(sid)
                sess.timeout = timeout
            sess.users += 1
            return sess

    def _make_room(self, now: float) -> None:
        """Called under the lock before opening a session."""
        self._expire(now)
        if len(self._sessions) < self.limits.max_sessions:
            return
        for sid, sess in self._sessions.items():  # least recently used first
            if sess.users == 0:
                log.warning(
                    "session pool full, closing the least recently used session",
                    extra={"session_id": sid, "max_sessions": self.limits.max_sessions},
                )
                self._drop_session(sid)
                return
        raise ClickHouseError(
            TOO_MANY_SIMULTANEOUS_QUERIES,
            f"Too many simultaneous sessions: all {self.limits.max_sessions} are busy",
        )

    def _expire(self, now: float) -> None:
        expired = [
            sid
            for sid, sess in self._sessions.items()
            if sess.users == 0 and now - sess.last_used > sess.timeout
        ]
        for sid in expired:
            self._drop_session(sid)
            log.debug("session expired", extra={"session_id": sid})

    def _drop_session(self, sid: str) -> None:
        sess = self._sessions.pop(sid)
        sess.conn.close()

    def expire_sessions(self) -> None:
        with self._lock:
            self._expire(time.monotonic())

    @property
    def session_count(self) -> int:
        return len(self._sessions)

    # -- execution ------------------------------------------------------------------------

    def query(self, req: QueryRequest) -> tuple[bytes, dict[str, str]]:
        self.check_statement_limits(req.statement)
        with self.checkout(req) as conn:
            try:
                res = conn.raw.query(req.sql, req.output_format, params=req.params)
            except Exception as exc:
                raise error_from_chdb(exc) from exc
            finally:
                self._after(conn, req.statement)
            data = res.bytes()
            summary = _summary(
                read_rows=res.storage_rows_read(),
                read_bytes=res.storage_bytes_read(),
                written_rows=res.rows_written(),
                written_bytes=res.bytes_written(),
                result_rows=res.rows_read(),
                result_bytes=len(data),
                elapsed_s=res.elapsed(),
            )
            return data, summary

    def insert(self, req: QueryRequest, prefix: str, fmt: str, data: Iterator[bytes]) -> dict:
        """Spool an INSERT's data, then `INSERT ... FROM INFILE` it.

        chDB's streaming `send_insert` reports success even when the table refuses the
        rows (e.g. "too many partitions for single INSERT block": nothing is stored, yet
        rows_written is returned), so it must not be used: a client would lose data
        silently. `FROM INFILE` runs as an ordinary query and raises every error. The
        spool is an in-memory file (memfd) where Linux has one, so no disk is involved.
        """
        self.check_statement_limits(req.statement)
        with self._spool() as (spool, path):
            try:
                for chunk in data:
                    spool.write(chunk)
                spool.flush()
            except ClickHouseError:
                raise
            except Exception as exc:
                raise error_from_chdb(exc) from exc
            head, settings = _split_settings(prefix)
            sql = f"{head} FROM INFILE {quote_literal(path)} {settings} FORMAT {fmt}"
            with self.checkout(req) as conn:
                try:
                    result = conn.raw.query(sql, "CSV")
                except Exception as exc:
                    raise error_from_chdb(exc) from exc
                return _summary(
                    written_rows=result.rows_written(),
                    written_bytes=result.bytes_written(),
                    elapsed_s=result.elapsed(),
                )

    @contextlib.contextmanager
    def _spool(self) -> Iterator[tuple[Any, str]]:
        """A writable binary file and a path chDB (in this process) can read it by."""
        if hasattr(os, "memfd_create"):
            fd = os.memfd_create("lineagehouse-insert")
            with os.fdopen(fd, "wb") as handle:
                yield handle, f"/proc/self/fd/{fd}"
            return
        spool_dir = self.data_dir / "tmp"
        spool_dir.mkdir(exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=spool_dir, suffix=".insert") as handle:
            yield handle, handle.name

    @staticmethod
    def _after(conn: _Conn, st: Statement) -> None:
        if st.first == "SET":
            conn.forget_settings()  # the client may have changed a setting we manage
        elif st.first == "USE":
            conn.database = None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            conns = self._free + [s.conn for s in self._sessions.values()]
            self._free = []
            self._sessions.clear()
        for conn in conns:
            conn.close()
        self._anchor.close()


# ---------------------------------------------------------------------------------------------
# HTTP


class _BodyError(Exception):
    pass


class _Body:
    """The request body: Content-Length or chunked, read in pieces."""

    def __init__(self, rfile: Any, headers: Any) -> None:
        self._rfile = rfile
        self.chunked = "chunked" in (headers.get("Transfer-Encoding") or "").lower()
        try:
            self._remaining = 0 if self.chunked else int(headers.get("Content-Length") or 0)
        except ValueError:
            raise ClickHouseError(BAD_ARGUMENTS, "Invalid Content-Length") from None
        self._chunk_left = 0
        self.done = not self.chunked and self._remaining == 0

    def read(self, size: int = READ_BYTES) -> bytes:
        """Up to `size` raw bytes; b"" at the end."""
        if self.done:
            return b""
        if not self.chunked:
            data = self._rfile.read(min(size, self._remaining))
            if not data:
                raise _BodyError("client closed the connection before the end of the body")
            self._remaining -= len(data)
            self.done = self._remaining == 0
            return data
        if self._chunk_left == 0:
            line = self._rfile.readline(65537)
            try:
                self._chunk_left = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                raise _BodyError(f"bad chunk size line {line[:40]!r}") from None
            if self._chunk_left == 0:
                while self._rfile.readline(65537) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                self.done = True
                return b""
        data = self._rfile.read(min(size, self._chunk_left))
        if not data:
            raise _BodyError("client closed the connection inside a chunk")
        self._chunk_left -= len(data)
        if self._chunk_left == 0:
            self._rfile.readline(65537)  # CRLF after the chunk
        return data

    def drain(self, limit: int = DRAIN_BYTES) -> bool:
        """Skip the rest of the body; False if it was too long (close the connection)."""
        total = 0
        try:
            while not self.done:
                total += len(self.read())
                if total > limit:
                    return False
        except (_BodyError, OSError):
            return False
        return True


def _decoded(body: _Body, encoding: str | None) -> Iterator[bytes]:
    decoder = request_decoder(encoding)
    while True:
        try:
            raw = body.read()
        except _BodyError as exc:
            raise ClickHouseError(CANNOT_READ_ALL_DATA, f"Cannot read all data: {exc}") from None
        if not raw:
            break
        try:
            out = decoder.feed(raw)
        except ClickHouseError:
            raise
        except Exception as exc:
            raise ClickHouseError(CANNOT_DECOMPRESS, f"Cannot decompress request: {exc}") from exc
        if out:
            yield out
    decoder.end()


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "lineagehouse-clickhouse"
    sys_version = ""
    disable_nagle_algorithm = True
    timeout = 600  # idle keep-alive connections are closed after this many seconds
    server: _HTTPServer

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        return None  # access log would be one line per query; metrics count them instead

    def setup(self) -> None:
        super().setup()
        self.server.app._track(self.connection, add=True)

    def finish(self) -> None:
        self.server.app._track(self.connection, add=False)
        super().finish()

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_HEAD(self) -> None:
        self._dispatch("HEAD")

    # -- routing --------------------------------------------------------------------------

    def _dispatch(self, method: str) -> None:
        app = self.server.app
        app._busy(+1)
        try:
            path, _, qs = self.path.partition("?")
            params = dict(parse_qsl(qs, keep_blank_values=True))
            if (
                path == "/ping"
                or path == "/replicas_status"
                or (path == "/" and "query" not in params and method != "POST")
            ):
                self._simple(200, b"Ok.\n", "text/html; charset=UTF-8", method)
            elif path == "/metrics":
                data, ctype = render()
                self._simple(200, data, ctype, method)
            elif path != "/" or method == "HEAD":
                msg = f"There is no handle {path}\n\nUse / or /ping for health checks.\n"
                self._simple(404, msg.encode(), "text/plain; charset=UTF-8", method)
            else:
                self._query(method, params)
        finally:
            app._busy(-1)

    def _simple(self, status: int, body: bytes, ctype: str, method: str) -> None:
        _Body(self.rfile, self.headers).drain() or self._close_after()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(body)

    def _close_after(self) -> None:
        self.close_connection = True

    # -- queries --------------------------------------------------------------------------

    def _query(self, method: str, params: dict[str, str]) -> None:
        app = self.server.app
        engine = app.engine
        query_id = params.get("query_id") or str(uuid.uuid4())
        started = time.perf_counter()
        kind = "unknown"
        body = _Body(self.rfile, self.headers)
        try:
            self._authenticate(params)
            if (self.headers.get("Content-Type") or "").startswith("multipart/form-data"):
                self._read_form(body, params)
            if _truthy(params.get("decompress")):
                raise ClickHouseError(
                    NOT_IMPLEMENTED, "decompress=1 (ClickHouse block compression) is not supported"
                )
            req = QueryRequest(sql="", statement=Statement())
            req.database = params.get("database") or self.headers.get("X-ClickHouse-Database")
            req.session_id = params.get("session_id") or None
            req.session_check = _truthy(params.get("session_check"))
            try:
                req.session_timeout = float(params.get("session_timeout") or 0)
            except ValueError:
                raise ClickHouseError(BAD_ARGUMENTS, "Invalid session_timeout") from None
            req.params = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
            req.settings = {
                k: v
                for k, v in params.items()
                if k in engine.setting_names and k not in CLIENT_PARAMS
            }
            read_only = method == "GET" or params.get("readonly", "0") not in ("", "0")

            insert = self._read_statement(body, params.get("query", ""), req)
            st = req.statement
            kind = st.kind
            if not st.first:
                raise ClickHouseError(SYNTAX_ERROR, "Empty query. (SYNTAX_ERROR)")
            if st.multi:
                raise ClickHouseError(
                    SYNTAX_ERROR, "Multi-statements are not allowed. (SYNTAX_ERROR)"
                )
            if read_only and not st.read_only:
                raise ClickHouseError(
                    READONLY,
                    "Cannot execute query in readonly mode. For queries over HTTP, method GET "
                    "implies readonly. You should use method POST for modifying queries. "
                    "(READONLY)",
                )
            default_format = (
                params.get("default_format")
                or self.headers.get("X-ClickHouse-Format")
                or "TabSeparated"
            )
            req.output_format = st.output_format or default_format
            if req.output_format.lower() in CHDB_PYTHON_FORMATS:
                raise ClickHouseError(
                    UNKNOWN_FORMAT, f"Unknown format {req.output_format}. (UNKNOWN_FORMAT)"
                )
            if insert is not None:
                prefix, fmt, data = insert
                result, summary = b"", engine.insert(req, prefix, fmt, data)
            else:
                result, summary = engine.query(req)
            with_format = st.read_only or bool(result)
            out_format = req.output_format if with_format else None
            self._reply(params, query_id, result, summary, out_format)
            CLICKHOUSE_QUERIES.labels(kind=kind, status="ok").inc()
            elapsed = time.perf_counter() - started
            level = logging.INFO if elapsed >= app.slow_query_s else logging.DEBUG
            if log.isEnabledFor(level):
                log.log(
                    level,
                    "query",
                    extra={
                        "query_id": query_id,
                        "kind": kind,
                        "elapsed_ms": round(elapsed * 1000, 1),
                        "written_rows": summary.get("written_rows"),
                        "result_rows": summary.get("result_rows"),
                    },
                )
        except ClickHouseError as err:
            CLICKHOUSE_QUERIES.labels(kind=kind, status="error").inc()
            log.info(
                "query failed",
                extra={"query_id": query_id, "kind": kind, "code": err.code, "error": err.message},
            )
            self._fail(err, query_id, body)
        except (ConnectionError, TimeoutError):
            self._close_after()
            raise
        except Exception as exc:
            CLICKHOUSE_QUERIES.labels(kind=kind, status="error").inc()
            log.exception("internal error", extra={"query_id": query_id})
            err = ClickHouseError(UNKNOWN_EXCEPTION, f"{type(exc).__name__}: {exc}")
            self._fail(err, query_id, body)

    def _authenticate(self, params: dict[str, str]) -> None:
        app = self.server.app
        if app.password is None:
            return
        user: str | None = None
        password = ""
        auth = self.headers.get("Authorization") or ""
        if auth[:6].lower() == "basic ":
            try:
                user, _, password = base64.b64decode(auth[6:].strip()).decode().partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise ClickHouseError(BAD_ARGUMENTS, "Invalid Authorization header") from None
        if self.headers.get("X-ClickHouse-User"):
            user = self.headers["X-ClickHouse-User"]
            password = self.headers.get("X-ClickHouse-Key") or ""
        if "user" in params:
            user, password = params["user"], params.get("password", "")
        user = user or "default"
        ok_user = hmac.compare_digest(user.encode(), app.user.encode())
        ok_password = hmac.compare_digest(password.encode(), app.password.encode())
        if not (ok_user and ok_password):
            raise ClickHouseError(
                AUTHENTICATION_FAILED,
                f"{user}: Authentication failed: password is incorrect, or there is no user "
                "with such name. (AUTHENTICATION_FAILED)",
            )

    def _read_form(self, body: _Body, params: dict[str, str]) -> None:
        """multipart/form-data (clickhouse-connect sends long bind parameters this way)."""
        raw = b"".join(_decoded(body, self.headers.get("Content-Encoding")))
        head = f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode()
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
        for part in msg.iter_parts():  # type: ignore[attr-defined]
            name = part.get_param("name", header="content-disposition")
            if part.get_filename():
                raise ClickHouseError(NOT_IMPLEMENTED, "External data tables are not supported")
            if name:
                value = part.get_payload(decode=True) or b""
                params[str(name)] = value.decode()

    def _read_statement(
        self, body: _Body, query_param: str, req: QueryRequest
    ) -> tuple[str, str, Iterator[bytes]] | None:
        """Fill req.sql/statement; for an INSERT with inline data return (prefix, fmt, data)."""
        stream = _decoded(body, self.headers.get("Content-Encoding"))
        head = bytearray()
        if query_param:
            head += query_param.rstrip(" \t\r\n").encode()
            if not body.done:
                head += b"\n"
        exhausted = False
        while True:
            if not exhausted and len(head) < HEAD_BYTES:
                exhausted = not _pull(stream, head)
                continue
            st = analyze(head.decode("latin-1"), complete=exhausted)
            if st.insert_format is not None:
                req.statement = st
                req.sql = st.insert_prefix.encode("latin-1").decode("utf-8", "replace")  # type: ignore[union-attr]
                rest = bytes(head[st.data_start :])

                def data(rest: bytes = rest) -> Iterator[bytes]:
                    if rest:
                        yield rest
                    yield from stream

                return req.sql, st.insert_format, data()
            if st.needs_more and not exhausted:
                if len(head) > MAX_QUERY_BYTES:
                    raise ClickHouseError(SYNTAX_ERROR, "Query is too large")
                exhausted = not _pull(stream, head)
                continue
            break
        for chunk in stream:
            head += chunk
            if len(head) > MAX_QUERY_BYTES:
                raise ClickHouseError(SYNTAX_ERROR, "Query is too large")
        try:
            req.sql = head.decode("utf-8")
        except UnicodeDecodeError:
            raise ClickHouseError(SYNTAX_ERROR, "Query is not valid UTF-8") from None
        req.statement = analyze(req.sql)
        return None

    # -- responses ------------------------------------------------------------------------

    def _common_headers(self, query_id: str) -> None:
        app = self.server.app
        self.send_header("X-ClickHouse-Query-Id", query_id)
        self.send_header("X-ClickHouse-Timezone", app.engine.timezone)
        self.send_header("X-ClickHouse-Server-Display-Name", app.display_name)

    def _reply(
        self,
        params: dict[str, str],
        query_id: str,
        data: bytes,
        summary: dict[str, str],
        fmt: str | None,
    ) -> None:
        encoding = None
        enabled = params.get("enable_http_compression", self.server.app.engine.http_compression)
        if data and _truthy(enabled):
            encoding = choose_response_encoding(self.headers.get("Accept-Encoding"))
        if encoding:
            data = compress_response(data, encoding)
        self.send_response(200)
        self._common_headers(query_id)
        if fmt:
            self.send_header("X-ClickHouse-Format", fmt)
        self.send_header("Content-Type", content_type(fmt))
        self.send_header("X-ClickHouse-Summary", json.dumps(summary, separators=(",", ":")))
        if encoding:
            self.send_header("Content-Encoding", encoding)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data:
            self.wfile.write(data)

    def _fail(self, err: ClickHouseError, query_id: str, body: _Body) -> None:
        if not body.drain():
            self._close_after()
        payload = error_body(err, self.server.app.engine.version)
        self.send_response(err.http_status)
        self._common_headers(query_id)
        self.send_header("X-ClickHouse-Exception-Code", str(err.code))
        self.send_header("Content-Type", "text/plain; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    app: ClickHouseServer


# ---------------------------------------------------------------------------------------------
# Server object and entry point


class ClickHouseServer:
    """The server without the blocking loop: start(), then stop()."""

    def __init__(
        self,
        data_dir: Path,
        host: str = "127.0.0.1",
        port: int = 8123,
        user: str | None = None,
        password: str | None = None,
        limits: EmbeddedClickHouseSettings | None = None,
        slow_query_s: float = 1.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.host = host
        self.requested_port = port
        self.user = user or "default"
        self.password = password or None
        self.limits = limits or EmbeddedClickHouseSettings()
        self.slow_query_s = slow_query_s
        self.display_name = socket.gethostname()
        self.engine: Engine
        self._httpd: _HTTPServer | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()
        self._active = 0
        self._active_cond = threading.Condition()
        self._sockets: set[socket.socket] = set()

    @property
    def port(self) -> int:
        assert self._httpd is not None
        return int(self._httpd.server_address[1])

    def start(self) -> None:
        self.engine = Engine(self.data_dir, self.limits)
        try:
            httpd = _HTTPServer((self.host, self.requested_port), _Handler)
        except OSError:
            self.engine.close()
            raise
        httpd.app = self
        self._httpd = httpd
        serve = threading.Thread(target=httpd.serve_forever, name="clickhouse-http", daemon=True)
        janitor = threading.Thread(target=self._janitor, name="clickhouse-sessions", daemon=True)
        self._threads = [serve, janitor]
        serve.start()
        janitor.start()
        log.info(
            "embedded ClickHouse listening",
            extra={
                "host": self.host,
                "port": self.port,
                "data_dir": str(self.data_dir),
                "engine_version": self.engine.version,
                "auth": self.password is not None,
                "max_concurrent_queries": self.limits.max_concurrent_queries,
                "max_sessions": self.limits.max_sessions,
            },
        )

    def stop(self, grace_s: float = 10.0) -> None:
        """Stop accepting, let running queries finish (up to grace_s), close chDB."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        deadline = time.monotonic() + grace_s
        with self._active_cond:
            while self._active and time.monotonic() < deadline:
                self._active_cond.wait(0.1)
            busy = self._active
        for sock in list(self._sockets):  # idle keep-alive connections
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self.engine.close()
        self._httpd = None
        log.info("embedded ClickHouse stopped", extra={"unfinished_requests": busy})

    def _busy(self, delta: int) -> None:
        with self._active_cond:
            self._active += delta
            self._active_cond.notify_all()

    def _track(self, sock: socket.socket, add: bool) -> None:
        with self._active_cond:
            if add:
                self._sockets.add(sock)
            else:
                self._sockets.discard(sock)

    def _janitor(self) -> None:
        interval = max(0.5, min(5.0, self.limits.session_idle_timeout_s / 2))
        while not self._stopping.wait(interval):
            try:
                self.engine.expire_sessions()
            except Exception:
                log.exception("session expiry failed")


def serve(
    data_dir: Path,
    host: str,
    port: int,
    user: str | None,
    password: str | None,
    limits: EmbeddedClickHouseSettings,
) -> None:
    """Blocking. Serves until SIGTERM/SIGINT, then shuts down cleanly (closes chDB, exit 0)."""
    server = ClickHouseServer(data_dir, host, port, user, password, limits)
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        log.info("signal received, stopping", extra={"signal": signal.Signals(signum).name})
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        try:
            server.start()
        except ClickHouseError as err:
            log.error(
                "cannot open the ClickHouse data directory",
                extra={"data_dir": str(data_dir), "code": err.code, "error": err.message},
            )
            raise SystemExit(1) from None
        except OSError as exc:
            log.error("cannot listen", extra={"host": host, "port": port, "error": str(exc)})
            raise SystemExit(1) from None
        while not stop.wait(0.5):
            pass
        server.stop()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
