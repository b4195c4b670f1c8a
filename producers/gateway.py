"""The HTTP ingest gateway: OpenLineage events over HTTP -> the events topic.

`POST /api/v1/lineage` speaks what openlineage-python's `HttpTransport` (and the Java /
Spark client) send: one JSON event, optionally `Content-Encoding: gzip`, with
`Authorization: Bearer <API key>`. `POST /api/v1/lineage/batch` takes a JSON array or
NDJSON (`Content-Type: application/x-ndjson`) and answers per event.

Per event, in order:

1. 401 without a valid, unrevoked key; 403 when the key's role cannot write or the
   event's namespace (the job's; a DatasetEvent's dataset's) is outside its patterns.
   Nothing is written for either.
2. Validation (`processors.validate`). A bad event gets 400 with its reasons and becomes
   a dead letter: a DLQ topic record and a `dead_letters` row, both awaited; a failure
   of either is logged and counted, the answer is still 400.
3. A good event goes to the events topic, as received, keyed like openlineage-python's
   `KafkaTransport` would (`producers.keys`); 201 only after the broker acknowledged it.
   If the broker is unreachable or does not acknowledge within
   `api.produce_timeout_s`: 503 with `Retry-After` (re-sending is harmless: identical
   events collapse in storage).

The Kafka producer is idempotent with acks=all; a poll thread turns delivery reports into
asyncio futures.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
import zlib
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from clickhouse_connect.driver.client import Client
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse

from lineagehouse import metrics
from lineagehouse.apikeys import (
    KeyRecord,
    KeyStore,
    authorize,
    bearer_token,
    namespace_allowed,
)
from lineagehouse.processors.deadletter import DEAD_LETTERS_COLUMNS, DeadLetter, dead_letter
from lineagehouse.processors.events import Source, event_id
from lineagehouse.processors.validate import EventValidator, Problem, Verdict
from lineagehouse.producers.keys import message_key, message_key_bytes
from lineagehouse.settings import KafkaSettings, Settings

log = logging.getLogger("lineagehouse.gateway")

NDJSON_TYPES = {
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "application/jsonlines",
}
RETRY_AFTER_S = 5
CREATE_KEY_HINT = "create a key with `lineagehouse keys create --name NAME --role write`"


class ProduceFailed(Exception):
    """The broker did not acknowledge a message (unreachable, timed out, or refused)."""


# --- Kafka producer adapter -----------------------------------------------------------


class KafkaProducerAdapter:
    """confluent-kafka `Producer` (idempotent, acks=all) with awaitable sends.

    `send` resolves when the broker acknowledged the message and raises ProduceFailed
    when it did not within `timeout_s` (librdkafka's `message.timeout.ms`).
    """

    def __init__(self, kafka: KafkaSettings, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._config: dict[str, Any] = {
            **kafka.events_producer_config(),
            "message.timeout.ms": max(1, int(timeout_s * 1000)),
            "linger.ms": 5,
            "error_cb": self._on_error,
        }
        self._producer: Producer | None = None
        self._fatal = False
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        with self._lock:
            if self._producer is None:
                self._producer = Producer(self._config)
        self._stop.clear()
        self._thread = threading.Thread(target=self._poll, name="gateway-producer", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            producer = self._producer
            if producer is None:
                time.sleep(0.1)
            else:
                producer.poll(0.1)  # runs the delivery callbacks

    def _on_error(self, err: KafkaError) -> None:
        if err.fatal():
            self._fatal = True
            log.error(
                "Kafka producer failed fatally; it will be replaced", extra={"error": str(err)}
            )
        else:
            log.warning("Kafka producer error", extra={"error": str(err)})

    def _current(self) -> Producer:
        with self._lock:
            if self._producer is None or self._fatal:
                old, self._producer = self._producer, Producer(self._config)
                self._fatal = False
                if old is not None:
                    old.purge()  # its messages fail (ProduceFailed) instead of hanging
                    old.poll(0)
            return self._producer

    async def send(
        self,
        topic: str,
        value: bytes,
        key: bytes | None = None,
        headers: Sequence[tuple[str, bytes]] | None = None,
    ) -> tuple[int, int]:
        """(partition, offset) once the broker acknowledged; ProduceFailed otherwise."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[tuple[int, int]] = loop.create_future()

        def settle(err: KafkaError | None, msg: Message) -> None:
            if done.done():
                return
            if err is not None:
                done.set_exception(ProduceFailed(f"{err.name()}: {err.str()}"))
            else:
                done.set_result((msg.partition(), msg.offset()))

        def on_delivery(err: KafkaError | None, msg: Message) -> None:  # poll thread
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(settle, err, msg)

        started = time.perf_counter()
        try:
            self._current().produce(
                topic,
                value=value,
                key=key,
                headers=list(headers) if headers else None,
                on_delivery=on_delivery,
            )
        except BufferError as exc:
            raise ProduceFailed("the producer's local queue is full") from exc
        except KafkaException as exc:
            raise ProduceFailed(str(exc)) from exc
        try:
            # librdkafka fails the message after message.timeout.ms; this is a backstop.
            result = await asyncio.wait_for(done, self.timeout_s + 2.0)
        except TimeoutError as exc:
            raise ProduceFailed(f"no acknowledgement within {self.timeout_s} s") from exc
        metrics.GATEWAY_PRODUCE_SECONDS.observe(time.perf_counter() - started)
        return result

    def close(self, timeout_s: float = 5.0) -> None:
        with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            left = producer.flush(timeout_s)
            if left:
                log.warning("messages not acknowledged at shutdown", extra={"messages": left})
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
            self._thread = None


# --- request helpers ------------------------------------------------------------------


class GatewayError(Exception):
    def __init__(self, status: int, message: str, *, counted: bool = False, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.counted = counted  # its events were counted in the metrics already
        self.extra = extra

    def response(self) -> JSONResponse:
        headers = None
        if self.status == 503:
            headers = {"Retry-After": str(RETRY_AFTER_S)}
        elif self.status == 401:
            headers = {"WWW-Authenticate": "Bearer"}
        return JSONResponse(
            {"error": self.message, **self.extra}, status_code=self.status, headers=headers
        )


def _reasons(problems: Sequence[Problem]) -> list[dict[str, str]]:
    return [{"path": p.path, "message": p.message} for p in problems]


def gunzip(body: bytes, limit: int) -> bytes:
    """Decompress a gzip body (several members allowed), at most `limit` bytes out."""
    out = bytearray()
    data = body
    try:
        while data:
            inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out += inflater.decompress(data, limit + 1 - len(out))
            if len(out) > limit or inflater.unconsumed_tail:
                raise GatewayError(
                    413, f"the decompressed body is larger than {limit} bytes (api.max_body_bytes)"
                )
            if not inflater.eof:
                raise GatewayError(400, "the gzip body is truncated")
            data = inflater.unused_data
    except zlib.error as exc:
        raise GatewayError(400, f"the body is not valid gzip: {exc}") from None
    return bytes(out)


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, gunzipped if sent so; GatewayError 413 beyond `limit` bytes."""
    too_large = GatewayError(
        413,
        f"the body is larger than {limit} bytes (LINEAGEHOUSE_API__MAX_BODY_BYTES); "
        "send fewer events per request",
    )
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    body = b"".join(chunks)
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding in ("gzip", "x-gzip"):
        return gunzip(body, limit)
    raise GatewayError(415, f"Content-Encoding {encoding!r} is not supported; use gzip or none")


def event_namespace(event: Any) -> str | None:
    """The namespace a key's scope applies to: the job's, or a DatasetEvent's dataset's."""
    if not isinstance(event, dict):
        return None
    owner = event.get("dataset") if "run" not in event and "dataset" in event else event.get("job")
    namespace = owner.get("namespace") if isinstance(owner, dict) else None
    return namespace if isinstance(namespace, str) else None


@dataclass(slots=True)
class Outcome:
    """What happened to one event of a request."""

    status: int  # 201, 400, 403
    reasons: list[dict[str, str]]
    key: str | None = None
    warnings: tuple[Problem, ...] = ()


# --- the router -----------------------------------------------------------------------


def create_gateway_router(
    settings: Settings, ch_client: Client, store: KeyStore | None
) -> APIRouter:
    """The ingest routes. `store` (None when auth is off) is started and stopped by the
    router's lifespan; the read routes share it."""
    api, ingest = settings.api, settings.ingest
    validator = EventValidator(ingest.max_event_bytes, ingest.extra_schema_dirs)
    producer = KafkaProducerAdapter(settings.kafka, api.produce_timeout_s)
    # The validator's caches are not thread-safe: one thread validates, off the event loop.
    validating = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gateway-validate")
    dead_letters_table = f"{settings.clickhouse.database}.dead_letters"
    max_bytes = ingest.max_event_bytes

    @asynccontextmanager
    async def lifespan(_app: FastAPI):  # type: ignore[no-untyped-def]
        producer.start()
        if store is not None:
            await asyncio.to_thread(store.start)
            if not store.ready:
                log.error(
                    "API keys could not be read; ingestion answers 503 until they can",
                    extra={"error": store.last_error},
                )
        try:
            yield
        finally:
            if store is not None:
                await asyncio.to_thread(store.stop)
            await asyncio.to_thread(producer.close, 5.0)
            validating.shutdown(wait=False)

    router = APIRouter(lifespan=lifespan, tags=["ingest"])

    async def authenticate(request: Request) -> KeyRecord | None:
        """The caller's key record (None with auth off); GatewayError 401/403/503."""
        if store is None:
            return None
        token = bearer_token(request.headers.get("authorization", ""))
        if token is None:
            raise GatewayError(
                401,
                "missing API key: send `Authorization: Bearer <key>` (openlineage-python: "
                f"transport auth type api_key); {CREATE_KEY_HINT}",
            )
        if not store.ready:
            raise GatewayError(
                503,
                "API keys could not be read from ClickHouse yet; retry later (check "
                "ClickHouse and that `lineagehouse migrate` ran)",
            )
        record = await asyncio.to_thread(store.authenticate, token)
        if record is None:
            raise GatewayError(401, f"invalid API key; {CREATE_KEY_HINT}")
        if record.revoked:
            raise GatewayError(401, f"API key {record.key_id} was revoked; {CREATE_KEY_HINT}")
        decision = authorize(record, "write", None)
        if not decision:
            raise GatewayError(403, decision.reason)
        return record

    def judge(values: list[bytes]) -> list[Verdict]:
        return [validator.validate(value) for value in values]

    async def validate(values: list[bytes]) -> list[Verdict]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(validating, judge, values)

    def out_of_scope(record: KeyRecord | None, verdict: Verdict) -> Outcome | None:
        if record is None:
            return None
        namespace = event_namespace(verdict.event)
        if namespace is None or namespace_allowed(record, namespace):
            return None
        decision = authorize(record, "write", namespace)
        path = "$.dataset.namespace" if verdict.kind == "dataset" else "$.job.namespace"
        return Outcome(403, [{"path": path, "message": decision.reason}])

    async def record_dead_letters(letters: list[DeadLetter]) -> None:
        """DLQ records and `dead_letters` rows, both awaited; failures are logged only."""
        if not letters:
            return
        sends = [
            producer.send(
                settings.topics.dlq, dl.topic_value(max_bytes), dl.key, dl.headers(max_bytes)
            )
            for dl in letters
        ]
        insert = asyncio.wait_for(
            asyncio.to_thread(
                ch_client.insert,
                dead_letters_table,
                [dl.row() for dl in letters],
                column_names=list(DEAD_LETTERS_COLUMNS),
            ),
            api.produce_timeout_s,
        )
        results = await asyncio.gather(insert, *sends, return_exceptions=True)
        if isinstance(results[0], BaseException):
            metrics.GATEWAY_DEAD_LETTER_FAILURES.labels("clickhouse").inc(len(letters))
            log.error(
                "could not store dead letters in ClickHouse",
                extra={"error": repr(results[0])[:300], "dead_letters": len(letters)},
            )
        failed = [r for r in results[1:] if isinstance(r, BaseException)]
        if failed:
            metrics.GATEWAY_DEAD_LETTER_FAILURES.labels("kafka").inc(len(failed))
            log.error(
                "could not send dead letters to the DLQ topic",
                extra={"error": repr(failed[0])[:300], "dead_letters": len(failed)},
            )

    async def ingest_all(record: KeyRecord | None, values: list[bytes]) -> list[Outcome]:
        """Validate, dead-letter and produce `values`; ProduceFailed if any good one failed."""
        verdicts = await validate(values)
        now = datetime.now(UTC)
        outcomes: list[Outcome] = []
        letters: list[DeadLetter] = []
        goods: list[tuple[Outcome, bytes, bytes | None]] = []
        for value, verdict in zip(values, verdicts, strict=True):
            denied = out_of_scope(record, verdict)
            if denied is not None:
                outcomes.append(denied)
                continue
            event = verdict.event
            if not verdict.accepted:
                key = message_key_bytes(event, strict=True)
                letters.append(
                    dead_letter(
                        value,
                        key,
                        verdict.errors,
                        Source("http", -1, -1, key),
                        "http",
                        now,
                        ingest.max_reasons,
                        event_id=event_id(event) if isinstance(event, dict) else None,
                    )
                )
                outcomes.append(Outcome(400, _reasons(verdict.errors)))
                continue
            assert event is not None
            key_text = message_key(event)
            outcome = Outcome(201, [], key_text, verdict.warnings)
            outcomes.append(outcome)
            goods.append((outcome, value, key_text.encode() if key_text is not None else None))

        headers = [("lineagehouse.origin", b"http")]
        if record is not None:
            headers.append(("lineagehouse.api_key", record.key_id.encode()))
        sends = [
            producer.send(settings.topics.events, value, key, headers) for _, value, key in goods
        ]
        results = await asyncio.gather(record_dead_letters(letters), *sends, return_exceptions=True)
        if isinstance(results[0], BaseException):  # a bug, not an outage: let it surface
            raise results[0]
        failed = [r for r in results[1:] if isinstance(r, BaseException)]
        for exc in failed:
            if not isinstance(exc, ProduceFailed):
                raise exc
        _count(outcomes, unavailable=bool(failed))
        if failed:
            raise failed[0]
        return outcomes

    def unavailable(exc: ProduceFailed) -> GatewayError:
        log.error("events not acknowledged by Kafka", extra={"error": str(exc)[:300]})
        return GatewayError(
            503,
            f"Kafka did not acknowledge the event(s) ({exc}); nothing was accepted, retry later",
            counted=True,
        )

    body_schema = {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"type": "object"}}},
        }
    }

    @router.post(
        "/api/v1/lineage",
        status_code=201,
        openapi_extra=body_schema,
        responses={
            400: {"description": "not a valid OpenLineage event (dead-lettered)"},
            401: {"description": "no valid API key"},
            403: {"description": "the key may not write this namespace"},
            413: {"description": "body too large"},
            503: {"description": "Kafka did not acknowledge; retry after Retry-After"},
        },
    )
    async def post_lineage(request: Request) -> Response:
        """Ingest one OpenLineage event (RunEvent, DatasetEvent or JobEvent)."""
        try:
            record = await authenticate(request)
            body = await read_body(request, api.max_body_bytes)
            try:
                (outcome,) = await ingest_all(record, [body])
            except ProduceFailed as exc:
                raise unavailable(exc) from None
        except GatewayError as exc:
            _count_error(exc)
            return exc.response()
        if outcome.status == 201:
            return JSONResponse(
                {
                    "status": "accepted",
                    "key": outcome.key,
                    "warnings": _reasons(outcome.warnings),
                },
                status_code=201,
            )
        if outcome.status == 403:
            return JSONResponse(
                {"error": outcome.reasons[0]["message"], "reasons": outcome.reasons},
                status_code=403,
            )
        return JSONResponse(
            {
                "error": "not a valid OpenLineage event; it was dead-lettered",
                "reasons": outcome.reasons,
            },
            status_code=400,
        )

    @router.post(
        "/api/v1/lineage/batch",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {"schema": {"type": "array", "items": {"type": "object"}}},
                    "application/x-ndjson": {"schema": {"type": "string"}},
                },
            }
        },
        responses={503: {"description": "Kafka did not acknowledge; retry the whole batch"}},
    )
    async def post_lineage_batch(request: Request) -> Response:
        """Ingest many events: a JSON array, or NDJSON with Content-Type application/x-ndjson.

        Answers 200 with one result per event (`index` counts events from 0; blank NDJSON
        lines are skipped): 201 accepted, 400 invalid (dead-lettered), 403 outside the
        key's namespaces. 503 for the whole batch when Kafka does not acknowledge.
        """
        try:
            record = await authenticate(request)
            body = await read_body(request, api.max_body_bytes)
            values = split_batch(body, request.headers.get("content-type", ""))
            try:
                outcomes = await ingest_all(record, values)
            except ProduceFailed as exc:
                raise unavailable(exc) from None
        except GatewayError as exc:
            _count_error(exc)
            return exc.response()
        results = [
            {"index": i, "status": o.status, "reasons": o.reasons} for i, o in enumerate(outcomes)
        ]
        accepted = sum(1 for o in outcomes if o.status == 201)
        return JSONResponse(
            {"results": results, "accepted": accepted, "rejected": len(outcomes) - accepted}
        )

    return router


def split_batch(body: bytes, content_type: str) -> list[bytes]:
    """The events of a batch body: NDJSON lines, or the elements of a JSON array."""
    media = content_type.split(";", 1)[0].strip().lower()
    if media in NDJSON_TYPES:
        return [line.strip() for line in body.split(b"\n") if line.strip()]
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise GatewayError(
            400,
            f"the batch is not JSON ({exc}); send a JSON array of events, or NDJSON with "
            "Content-Type: application/x-ndjson",
        ) from None
    if not isinstance(parsed, list):
        raise GatewayError(
            400,
            "a batch is a JSON array of events (or NDJSON with Content-Type: "
            "application/x-ndjson); send a single event to /api/v1/lineage",
        )
    return [orjson.dumps(item) for item in parsed]


_OUTCOME_LABELS = {201: "accepted", 400: "rejected", 403: "forbidden"}
_ERROR_LABELS = {401: "unauthorized", 403: "forbidden", 503: "unavailable"}


def _count(outcomes: list[Outcome], unavailable: bool) -> None:
    """Count each event's outcome; with Kafka down, the would-be accepted are unavailable."""
    for status in (201, 400, 403):
        n = sum(1 for o in outcomes if o.status == status)
        if n:
            label = "unavailable" if status == 201 and unavailable else _OUTCOME_LABELS[status]
            metrics.GATEWAY_EVENTS.labels(label).inc(n)


def _count_error(exc: GatewayError) -> None:
    """Count a request refused as a whole (events already counted are not counted again)."""
    label = _ERROR_LABELS.get(exc.status)
    if label is not None and not exc.counted:
        metrics.GATEWAY_EVENTS.labels(label).inc()
