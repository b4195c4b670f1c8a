"""Pure helpers of the embedded ClickHouse HTTP server: SQL scanning, errors, codecs.

Nothing here touches chDB or sockets, so every function is testable on its own.
"""

from __future__ import annotations

import gzip
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import lz4.frame

try:  # clickhouse-connect depends on backports.zstd on Python < 3.14
    from backports import zstd as _zstd
except ImportError:  # pragma: no cover - optional
    _zstd = None  # type: ignore[assignment]

# ---------------------------------------------------------------------------------------------
# ClickHouse error codes we raise ourselves, and the HTTP status ClickHouse gives each code
# (after HTTPHandler's exceptionCodeToHTTPStatus).

BAD_ARGUMENTS = 36
NOT_IMPLEMENTED = 48
SYNTAX_ERROR = 62
UNKNOWN_FORMAT = 73
CANNOT_READ_ALL_DATA = 33
READONLY = 164
TOO_MANY_SIMULTANEOUS_QUERIES = 202
CANNOT_DECOMPRESS = 271
SESSION_NOT_FOUND = 372
SETTING_CONSTRAINT_VIOLATION = 452
AUTHENTICATION_FAILED = 516
UNKNOWN_EXCEPTION = 1002

_STATUS_BY_CODE: dict[int, int] = {
    194: 401,  # REQUIRED_PASSWORD
    192: 403,  # UNKNOWN_USER
    193: 403,  # WRONG_PASSWORD
    AUTHENTICATION_FAILED: 403,
    # 400: the request itself is wrong
    **dict.fromkeys(
        (
            6,  # CANNOT_PARSE_TEXT
            26,  # CANNOT_PARSE_QUOTED_STRING
            27,  # CANNOT_PARSE_INPUT_ASSERTION_FAILED
            BAD_ARGUMENTS,
            38,  # CANNOT_PARSE_DATE
            41,  # CANNOT_PARSE_DATETIME
            42,  # NUMBER_OF_ARGUMENTS_DOESNT_MATCH
            43,  # ILLEGAL_TYPE_OF_ARGUMENT
            44,  # ILLEGAL_COLUMN
            50,  # UNKNOWN_TYPE
            53,  # TYPE_MISMATCH
            SYNTAX_ERROR,
            72,  # CANNOT_PARSE_NUMBER
            117,  # INCORRECT_DATA
            184,  # ILLEGAL_AGGREGATION
            215,  # NOT_AN_AGGREGATE
            427,  # CANNOT_COMPILE_REGEXP
            456,  # UNKNOWN_QUERY_PARAMETER
            457,  # BAD_QUERY_PARAMETER
        ),
        400,
    ),
    # 404: something named in the query does not exist
    **dict.fromkeys(
        (
            16,  # NO_SUCH_COLUMN_IN_TABLE
            46,  # UNKNOWN_FUNCTION
            47,  # UNKNOWN_IDENTIFIER
            60,  # UNKNOWN_TABLE
            UNKNOWN_FORMAT,
            81,  # UNKNOWN_DATABASE
            SESSION_NOT_FOUND,
        ),
        404,
    ),
    NOT_IMPLEMENTED: 501,
    159: 408,  # TIMEOUT_EXCEEDED
}


class ClickHouseError(Exception):
    """An error answered the ClickHouse way: `Code: N. DB::Exception: ...`."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return http_status_for(self.code)


def http_status_for(code: int) -> int:
    return _STATUS_BY_CODE.get(code, 500)


_CODE_PREFIX = re.compile(r"Code: (\d+)\. (?:DB::Exception: )?")


def error_from_chdb(exc: BaseException) -> ClickHouseError:
    """Turn a chDB exception ("... Code: 60. DB::Exception: msg (NAME)") into a ClickHouseError.

    chDB nests the prefix and the version trailer once per layer; keep the innermost message.
    """
    text = str(exc)
    match = _CODE_PREFIX.search(text)
    if not match:
        return ClickHouseError(UNKNOWN_EXCEPTION, text.strip() or type(exc).__name__)
    code = int(match.group(1))
    inner = text[match.end() :]
    while nested := _CODE_PREFIX.match(inner):
        inner = inner[nested.end() :]
    cut = inner.find(" (version ")
    if cut >= 0:
        inner = inner[:cut]
    return ClickHouseError(code, inner.strip())


def error_body(error: ClickHouseError, version: str) -> bytes:
    return f"Code: {error.code}. DB::Exception: {error.message} (version {version})\n".encode()


# ---------------------------------------------------------------------------------------------
# SQL scanning: just enough lexing to find statement kind, FORMAT, VALUES and ';' at top level,
# skipping string literals, quoted identifiers and comments.

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_SPACE = " \t\r\n\f\v"

# Statements that produce a result set (and may run over GET / readonly).
_READ_KINDS = {"SELECT", "WITH", "SHOW", "DESC", "DESCRIBE", "EXISTS", "EXPLAIN", "("}
_LIMITED_SETTINGS = ("max_memory_usage", "max_execution_time")


@dataclass
class Statement:
    """What the server needs to know about one SQL statement."""

    first: str = ""  # first keyword, upper case ("" for an empty query, "(" for a subquery)
    second: str = ""  # second keyword, upper case
    output_format: str | None = None  # last top-level FORMAT <name>
    multi: bool = False  # more than one statement
    # INSERT with inline data: prefix without FORMAT/VALUES, the input format, data offset
    insert_prefix: str | None = None
    insert_format: str | None = None
    data_start: int = -1
    needs_more: bool = False  # FORMAT name may continue past the scanned text
    has_settings: bool = False  # a SETTINGS clause at any depth
    assignments: list[tuple[str, str]] = field(default_factory=list)  # limited settings

    @property
    def kind(self) -> str:
        if self.first in _READ_KINDS:
            return "select"
        if self.first == "INSERT":
            return "insert"
        return "command"

    @property
    def read_only(self) -> bool:
        return self.first in _READ_KINDS

    @property
    def changes_session(self) -> bool:
        """SET, USE and temporary tables change connection state."""
        if self.first in ("SET", "USE"):
            return True
        return self.first in ("CREATE", "DROP") and "TEMPORARY" in (self.second,)


def _skip_quoted(text: str, pos: int, quote: str) -> int:
    n = len(text)
    i = pos + 1
    while i < n:
        ch = text[i]
        if ch == "\\":
            i += 2
            continue
        if ch == quote:
            if i + 1 < n and text[i + 1] == quote:  # doubled quote escape
                i += 2
                continue
            return i + 1
        i += 1
    return n


def _skip_comment(text: str, pos: int) -> int:
    """Position after a comment starting at pos, or pos if there is none."""
    if text.startswith("--", pos) or text.startswith("#!", pos) or text.startswith("# ", pos):
        end = text.find("\n", pos)
        return len(text) if end < 0 else end + 1
    if text.startswith("/*", pos):
        end = text.find("*/", pos + 2)
        return len(text) if end < 0 else end + 2
    return pos


def analyze(text: str, complete: bool = True) -> Statement:
    """Scan SQL text (or the head of a request carrying INSERT data).

    For an INSERT with inline data the scan stops at FORMAT <name> / VALUES: what follows is
    data, never SQL. `complete=False` says the text is only the head of a longer body.
    """
    st = Statement()
    n = len(text)
    i = 0
    depth = 0
    words: list[str] = []  # top-level upper-cased words, in order
    prev = ""  # previous top-level token (upper-case word or punctuation)
    after_semicolon = False
    while i < n:
        ch = text[i]
        if ch in _SPACE:
            i += 1
            continue
        skipped = _skip_comment(text, i)
        if skipped != i:
            i = skipped
            continue
        if after_semicolon:
            st.multi = True
            break
        if ch in "'\"`":
            i = _skip_quoted(text, i, ch)
            prev = "literal"
            continue
        if ch == "(":
            if not st.first:
                st.first = "("
            depth += 1
            i += 1
            prev = "("
            continue
        if ch == ")":
            depth = max(0, depth - 1)
            i += 1
            prev = ")"
            continue
        if ch == ";" and depth == 0:
            after_semicolon = True
            i += 1
            continue
        match = _WORD.match(text, i)
        if not match:
            i += 1
            prev = ch
            continue
        word = match.group(0)
        upper = word.upper()
        end = match.end()
        if upper == "SETTINGS":
            st.has_settings = True
        if not st.first:
            st.first = upper
        elif not st.second:
            st.second = upper
        if word.lower() in _LIMITED_SETTINGS:
            value = _assigned_value(text, end)
            if value is not None:
                st.assignments.append((word.lower(), value))
        if depth == 0:
            words.append(upper)
            is_insert = st.first == "INSERT"
            if upper == "FORMAT" and prev not in ("INTO", "TABLE", "."):
                name_match = _WORD.match(text, _skip_spaces(text, end))
                if name_match:
                    name = name_match.group(0)
                    if is_insert and "SELECT" not in words and "WITH" not in words[1:]:
                        if not complete and name_match.end() >= n:
                            st.needs_more = True
                            return st
                        st.insert_prefix = text[:i].rstrip()
                        st.insert_format = name
                        st.data_start = _data_start(text, name_match.end())
                        return st
                    st.output_format = name
                    i = name_match.end()
                    prev = "formatname"
                    continue
            if (
                upper == "VALUES"
                and st.first == "INSERT"
                and prev not in ("INTO", "TABLE", ".")
                and "SELECT" not in words
            ):
                st.insert_prefix = text[:i].rstrip()
                st.insert_format = "Values"
                st.data_start = end
                return st
        prev = upper
        i = end
    if not complete and st.first == "INSERT" and st.insert_format is None:
        st.needs_more = True
    return st


def _skip_spaces(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in _SPACE:
        pos += 1
    return pos


def _data_start(text: str, pos: int) -> int:
    """Inline data begins after the first newline following FORMAT <name> (or spaces)."""
    n = len(text)
    while pos < n and text[pos] in " \t":
        pos += 1
    if text.startswith("\r\n", pos):
        return pos + 2
    if pos < n and text[pos] == "\n":
        return pos + 1
    return pos


_ASSIGN = re.compile(r"\s*=\s*('(?:[^'\\]|\\.)*'|[^\s,;)]+)")


def _assigned_value(text: str, pos: int) -> str | None:
    match = _ASSIGN.match(text, pos)
    if not match:
        return None
    value = match.group(1)
    if value.startswith("'"):
        value = value[1:-1]
    return value


# ---------------------------------------------------------------------------------------------
# Formats and content types

CHDB_PYTHON_FORMATS = {"dataframe", "arrowtable", "datastore", "debug"}

_CONTENT_TYPES = {
    "tabseparated": "text/tab-separated-values; charset=UTF-8",
    "tsv": "text/tab-separated-values; charset=UTF-8",
    "tabseparatedwithnames": "text/tab-separated-values; charset=UTF-8",
    "tabseparatedwithnamesandtypes": "text/tab-separated-values; charset=UTF-8",
    "csv": "text/csv; charset=UTF-8; header=absent",
    "csvwithnames": "text/csv; charset=UTF-8; header=present",
    "json": "application/json; charset=UTF-8",
    "jsoncompact": "application/json; charset=UTF-8",
    "jsoneachrow": "application/x-ndjson; charset=UTF-8",
    "ndjson": "application/x-ndjson; charset=UTF-8",
    "native": "application/octet-stream",
    "rowbinary": "application/octet-stream",
    "rowbinarywithnamesandtypes": "application/octet-stream",
    "arrow": "application/octet-stream",
    "arrowstream": "application/octet-stream",
    "parquet": "application/octet-stream",
}


def content_type(fmt: str | None) -> str:
    if not fmt:
        return "text/plain; charset=UTF-8"
    return _CONTENT_TYPES.get(fmt.lower(), "text/plain; charset=UTF-8")


# ---------------------------------------------------------------------------------------------
# Compression of request bodies (streaming, multi-frame) and of responses.


class _FramedDecoder:
    """Decompress a concatenation of frames/members (lz4 frames, gzip members, zstd frames)."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._dec = factory()
        self._started = False

    def feed(self, data: bytes) -> bytes:
        out: list[bytes] = []
        while data:
            self._started = True
            chunk = self._dec.decompress(data)
            if chunk:
                out.append(chunk)
            if not self._dec.eof:
                break
            data = self._dec.unused_data or b""
            self._dec = self._factory()
            self._started = False
        return b"".join(out)

    def end(self) -> None:
        if self._started:
            raise ClickHouseError(CANNOT_DECOMPRESS, "Compressed request body is truncated")


class _Identity:
    def feed(self, data: bytes) -> bytes:
        return data

    def end(self) -> None:
        return None


def request_decoder(encoding: str | None) -> _FramedDecoder | _Identity:
    enc = (encoding or "").strip().lower()
    if enc in ("", "identity", "none"):
        return _Identity()
    if enc == "lz4":
        return _FramedDecoder(lz4.frame.LZ4FrameDecompressor)
    if enc in ("gzip", "x-gzip"):
        return _FramedDecoder(lambda: zlib.decompressobj(16 + zlib.MAX_WBITS))
    if enc == "deflate":
        return _FramedDecoder(zlib.decompressobj)
    if enc == "zstd" and _zstd is not None:
        return _FramedDecoder(_zstd.ZstdDecompressor)
    raise ClickHouseError(BAD_ARGUMENTS, f"Unknown Content-Encoding of HTTP request: {encoding}")


RESPONSE_ENCODINGS = ("lz4", "zstd", "gzip", "deflate") if _zstd else ("lz4", "gzip", "deflate")


def choose_response_encoding(accept: str | None) -> str | None:
    """The first encoding in the client's Accept-Encoding that we can produce."""
    if not accept:
        return None
    for part in accept.split(","):
        name, _, params = part.strip().partition(";")
        name = name.strip().lower()
        if "q=0" in params.replace(" ", "") and "q=0." not in params.replace(" ", ""):
            continue
        if name in RESPONSE_ENCODINGS:
            return name
    return None


def compress_response(data: bytes, encoding: str) -> bytes:
    if encoding == "lz4":
        return lz4.frame.compress(data, store_size=False)
    if encoding == "zstd" and _zstd is not None:
        return _zstd.compress(data)
    if encoding == "gzip":
        return gzip.compress(data, compresslevel=3)
    if encoding == "deflate":
        return zlib.compress(data, 3)
    raise ValueError(encoding)


def quote_literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"
