"""The HTTP ingest gateway end to end: the real `lineagehouse api`, broker and ClickHouse.

Events are sent with openlineage-python's own HttpTransport where it can say what is
tested (201s), and with httpx for the answers the transport turns into exceptions.
"""

from __future__ import annotations

import gzip
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import OFFSET_BEGINNING, Consumer, Message, TopicPartition
from openlineage.client import event_v2
from openlineage.client.facet_v2 import parent_run
from openlineage.client.serde import Serde
from openlineage.client.transport.http import (
    ApiKeyTokenProvider,
    HttpCompression,
    HttpConfig,
    HttpTransport,
)
from openlineage.client.transport.kafka import KafkaConfig, KafkaTransport

from lineagehouse.apikeys import create_key
from lineagehouse.embedded.process import free_port, http_ok, stop_process, wait_until
from lineagehouse.processors.events import event_id
from lineagehouse.settings import Settings
from lineagehouse.store.client import connect
from lineagehouse.store.migrations import migrate
from lineagehouse.topics import ensure_topics
from tests.conftest import CORPUS, lineagehouse_cmd, run_cli, settings_env, wait_for
from tests.events import encode, run_event
from tests.test_apikeys import Forwarder

pytestmark = pytest.mark.timeout(180)

SECRET = "gateway-test-secret-0123456789abcdef"
PRODUCER = "https://github.com/lineagehouse/lineagehouse/tests"


# --- harness --------------------------------------------------------------------------


def api_env(settings: Settings) -> dict[str, str]:
    api = settings.api
    env = {
        **settings_env(settings),
        "LINEAGEHOUSE_API__AUTH_ENABLED": str(api.auth_enabled).lower(),
        "LINEAGEHOUSE_API__KEY_CACHE_TTL_S": str(api.key_cache_ttl_s),
        "LINEAGEHOUSE_API__MAX_BODY_BYTES": str(api.max_body_bytes),
        "LINEAGEHOUSE_API__PRODUCE_TIMEOUT_S": str(api.produce_timeout_s),
    }
    if api.key_secret is not None:
        env["LINEAGEHOUSE_API__KEY_SECRET"] = api.key_secret.get_secret_value()
    return env


@contextmanager
def running_api(settings: Settings, log_path: Path) -> Iterator[str]:
    """`lineagehouse api` with `settings`; yields its base URL."""
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            lineagehouse_cmd("api"), env=api_env(settings), stdout=log, stderr=log
        )
        url = f"http://127.0.0.1:{settings.api.port}"
        try:
            wait_until(lambda: http_ok(f"{url}/healthz"), "API", 60, proc)
            yield url
        finally:
            stop_process(proc)


@pytest.fixture
def keyed(make_settings: Callable[..., Settings]) -> Callable[..., Settings]:
    """Settings with the key secret, migrated, topics created."""

    def make(**api: Any) -> Settings:
        settings = make_settings(api={"key_secret": SECRET, **api})
        migrate(settings)
        ensure_topics(settings)
        return settings

    return make


@pytest.fixture
def start_api(tmp_path: Path) -> Iterator[Callable[[Settings], str]]:
    stack: list[Any] = []

    def start(settings: Settings) -> str:
        ctx = running_api(settings, tmp_path / f"api-{settings.api.port}.log")
        url = ctx.__enter__()
        stack.append(ctx)
        return url

    yield start
    for ctx in reversed(stack):
        ctx.__exit__(None, None, None)


def new_key(settings: Settings, role: str = "write", namespaces: tuple[str, ...] = ()) -> str:
    client = connect(settings.clickhouse)
    try:
        plaintext, _ = create_key(client, settings, f"test-{role}", role, list(namespaces))
    finally:
        client.close()
    return plaintext


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def read_topic(
    settings: Settings,
    topic: str,
    until: Callable[[list[Message]], bool],
    quiet_s: float = 2.0,
    timeout_s: float = 60,
) -> list[Message]:
    """Every message of `topic` from the start: poll until `until(messages)` holds, then
    keep reading until nothing new arrived for `quiet_s` (to see anything unexpected)."""
    consumer = Consumer(
        {
            **settings.kafka.confluent_config(),
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        got: list[Message] = []

        def poll() -> bool:
            got.extend(m for m in consumer.consume(100, 0.5) if not m.error())
            return until(got)

        wait_for(poll, timeout_s, f"messages on {topic}")
        last = time.monotonic()
        while time.monotonic() - last < quiet_s:
            more = [m for m in consumer.consume(100, 0.5) if not m.error()]
            if more:
                got.extend(more)
                last = time.monotonic()
        return got
    finally:
        consumer.close()


def has_value(value: bytes) -> Callable[[list[Message]], bool]:
    return lambda messages: any(m.value() == value for m in messages)


def dead_letter_rows(ch: Client, settings: Settings) -> list[tuple]:
    db = settings.clickhouse.database
    return ch.query(
        "SELECT value, message_key, origin, reason_paths, reason_messages, source_topic, "
        f"source_partition, source_offset, event_id FROM {db}.dead_letters FINAL",
        column_formats={"value": "bytes", "message_key": "bytes"},
    ).result_rows


def ol_run(
    namespace: str,
    name: str,
    parent: tuple[str, str] | None = None,
    root: tuple[str, str] | None = None,
) -> event_v2.RunEvent:
    facets: dict[str, Any] = {}
    if parent:
        facets["parent"] = parent_run.ParentRunFacet(
            run=parent_run.Run(runId=str(uuid.uuid4())),
            job=parent_run.Job(namespace=parent[0], name=parent[1]),
            root=parent_run.Root(
                run=parent_run.RootRun(runId=str(uuid.uuid4())),
                job=parent_run.RootJob(namespace=root[0], name=root[1]),
            )
            if root
            else None,
        )
    return event_v2.RunEvent(
        eventType=event_v2.RunState.START,
        eventTime="2024-05-01T12:00:00.000Z",
        run=event_v2.Run(runId=str(uuid.uuid4()), facets=facets),
        job=event_v2.Job(namespace=namespace, name=name),
        producer=PRODUCER,
    )


def invalid_event(namespace: str = "team-a", name: str = "broken") -> dict[str, Any]:
    event = run_event(1, job=name, namespace=namespace)
    event["eventTime"] = "yesterday"
    del event["run"]["runId"]
    return event


# --- tests ----------------------------------------------------------------------------


def test_http_transport_events_reach_the_topic_with_kafka_transport_keys(
    keyed: Callable[..., Settings], start_api: Callable[[Settings], str]
) -> None:
    settings = keyed()
    key = new_key(settings, "write", ("team-*",))
    url = start_api(settings)
    events = [
        ol_run("team-a", "etl.load"),
        ol_run("team-a", "etl.child", parent=("team-a", "etl.dag")),
        ol_run("team-a", "etl.leaf", parent=("team-a", "etl.task"), root=("team-root", "dag")),
        event_v2.DatasetEvent(
            eventTime="2024-05-01T12:00:00Z",
            dataset=event_v2.StaticDataset(namespace="team-b", name="public.orders"),
            producer=PRODUCER,
        ),
        event_v2.JobEvent(
            eventTime="2024-05-01T12:00:00Z",
            job=event_v2.Job(namespace="team-b", name="model.orders"),
            producer=PRODUCER,
        ),
    ]
    plain = HttpTransport(
        HttpConfig(url=url, endpoint="api/v1/lineage", auth=ApiKeyTokenProvider({"api_key": key}))
    )
    gzipped = HttpTransport(
        HttpConfig(
            url=url,
            endpoint="api/v1/lineage",
            auth=ApiKeyTokenProvider({"apiKey": key}),
            compression=HttpCompression.GZIP,
        )
    )
    for i, event in enumerate(events):
        response = (gzipped if i % 2 else plain).emit(event)
        assert response.status_code == 201, response.text

    kafka = KafkaTransport(
        KafkaConfig(config=settings.kafka.confluent_config(), topic="unused", flush=False)
    )
    expected = {Serde.to_json(e).encode(): kafka._get_message_key(e).encode() for e in events}
    assert len(set(expected.values())) == 5
    assert b"run:team-root/dag" in expected.values()
    got = read_topic(
        settings, settings.topics.events, lambda ms: {m.value() for m in ms} >= set(expected)
    )
    assert len(got) == len(events)
    for message in got:
        assert message.key() == expected[message.value()]
        assert dict(message.headers())["lineagehouse.origin"] == b"http"

    text = httpx.get(f"{url}/metrics").text
    assert 'lineagehouse_gateway_events_total{status="accepted"} 5.0' in text


def test_unauthorized_and_out_of_scope_requests_write_nothing(
    keyed: Callable[..., Settings], start_api: Callable[[Settings], str], ch: Client
) -> None:
    settings = keyed()
    key = new_key(settings, "write", ("team-a*",))
    reader = new_key(settings, "read")
    url = start_api(settings)
    endpoint = f"{url}/api/v1/lineage"
    outside = encode(run_event(1, job="x", namespace="team-b"))
    inside = encode(run_event(2, job="x", namespace="team-a"))

    wrong_secret = key[: -len("abcd")] + ("abcd" if not key.endswith("abcd") else "wxyz")
    for headers in ({}, bearer("nonsense"), bearer(wrong_secret), {"Authorization": key}):
        for body in (inside, encode(invalid_event())):
            resp = httpx.post(endpoint, content=body, headers=headers)
            assert resp.status_code == 401, (headers, resp.text)
            assert "lineagehouse keys create" in resp.json()["error"]
            assert resp.headers["www-authenticate"] == "Bearer"
    resp = httpx.post(f"{endpoint}/batch", content=b"[" + inside + b"]", headers=bearer("x"))
    assert resp.status_code == 401

    resp = httpx.post(endpoint, content=inside, headers=bearer(reader))
    assert resp.status_code == 403
    assert "--role write" in resp.json()["error"]
    resp = httpx.post(endpoint, content=outside, headers=bearer(key))
    assert resp.status_code == 403
    assert "team-b" in resp.json()["error"]
    assert "lineagehouse keys create" in resp.json()["error"]
    # An invalid event outside the key's namespaces is refused, not dead-lettered.
    resp = httpx.post(endpoint, content=encode(invalid_event("team-b")), headers=bearer(key))
    assert resp.status_code == 403

    # Sentinels: one accepted event and one dead letter; nothing else may appear.
    assert httpx.post(endpoint, content=inside, headers=bearer(key)).status_code == 201
    bad = encode(invalid_event("team-a", "sentinel"))
    assert httpx.post(endpoint, content=bad, headers=bearer(key)).status_code == 400
    events = read_topic(settings, settings.topics.events, has_value(inside))
    assert [m.value() for m in events] == [inside]
    dlq = read_topic(settings, settings.topics.dlq, has_value(bad))
    assert [m.value() for m in dlq] == [bad]
    assert [row[0] for row in dead_letter_rows(ch, settings)] == [bad]


def test_bad_event_is_400_with_reasons_and_dead_lettered(
    keyed: Callable[..., Settings], start_api: Callable[[Settings], str], ch: Client
) -> None:
    settings = keyed()
    key = new_key(settings)
    url = start_api(settings)
    event = invalid_event("team-a", "broken")
    body = encode(event)
    resp = httpx.post(f"{url}/api/v1/lineage", content=body, headers=bearer(key))
    assert resp.status_code == 400
    answer = resp.json()
    assert answer["error"]
    paths = {r["path"] for r in answer["reasons"]}
    assert {"$.run.runId", "$.eventTime"} <= paths, answer
    assert all(r["message"] for r in answer["reasons"])

    garbage = b"{not json"
    resp = httpx.post(f"{url}/api/v1/lineage", content=garbage, headers=bearer(key))
    assert resp.status_code == 400
    assert resp.json()["reasons"][0]["message"].startswith("not JSON")

    dlq = read_topic(
        settings, settings.topics.dlq, lambda ms: {m.value() for m in ms} >= {body, garbage}
    )
    by_value = {m.value(): m for m in dlq}
    assert set(by_value) == {body, garbage}
    record = by_value[body]
    assert record.key() == b"run:team-a/broken"
    headers = dict(record.headers())
    assert headers["lineagehouse.origin"] == b"http"
    assert headers["lineagehouse.source"] == b"http/-1/-1"
    assert headers["lineagehouse.reason"]
    reasons = orjson.loads(headers["lineagehouse.reasons"])
    assert {r["path"] for r in reasons["reasons"]} == paths
    assert by_value[garbage].key() is None

    rows = {row[0]: row for row in dead_letter_rows(ch, settings)}
    assert set(rows) == {body, garbage}
    _value, message_key, origin, reason_paths, messages, topic, partition, offset, eid = rows[body]
    assert (message_key, origin, topic, partition, offset) == (
        b"run:team-a/broken",
        "http",
        "http",
        -1,
        -1,
    )
    assert set(reason_paths) == paths and all(messages)
    assert eid == event_id(event)
    assert rows[garbage][1] == b"" and rows[garbage][8] is None

    text = httpx.get(f"{url}/metrics").text
    assert 'lineagehouse_gateway_events_total{status="rejected"} 2.0' in text


def test_gzip_bodies_and_limits(
    keyed: Callable[..., Settings], start_api: Callable[[Settings], str]
) -> None:
    settings = keyed(max_body_bytes=64 * 1024)
    key = new_key(settings)
    url = start_api(settings)
    endpoint = f"{url}/api/v1/lineage"
    body = encode(run_event(7, job="zipped", namespace="team-a"))
    zipped = {**bearer(key), "Content-Encoding": "gzip", "Content-Type": "application/json"}

    resp = httpx.post(endpoint, content=gzip.compress(body), headers=zipped)
    assert resp.status_code == 201, resp.text
    assert resp.json()["key"] == "run:team-a/zipped"
    got = read_topic(settings, settings.topics.events, has_value(body), quiet_s=0.5)
    assert [m.value() for m in got] == [body]

    assert httpx.post(endpoint, content=b"\x1f\x8b garbage", headers=zipped).status_code == 400
    assert httpx.post(endpoint, content=gzip.compress(body)[:-9], headers=zipped).status_code == 400
    # Too large, before and after decompression (a small gzip of a big body).
    big = b'{"padding": "' + b" " * (70 * 1024) + b'"}'
    assert httpx.post(endpoint, content=big, headers=bearer(key)).status_code == 413
    resp = httpx.post(endpoint, content=gzip.compress(big), headers=zipped)
    assert resp.status_code == 413
    assert "max_body_bytes" in resp.json()["error"]
    other = {**bearer(key), "Content-Encoding": "br"}
    assert httpx.post(endpoint, content=body, headers=other).status_code == 415


def test_batch_array_and_ndjson_with_mixed_results(
    keyed: Callable[..., Settings], start_api: Callable[[Settings], str], ch: Client
) -> None:
    settings = keyed()
    key = new_key(settings, "write", ("team-a*",))
    url = start_api(settings)
    good = [run_event(i, job=f"batch{i}", namespace="team-a") for i in range(4)]
    bad = invalid_event("team-a", "bad-in-batch")
    foreign = run_event(9, job="foreign", namespace="team-b")

    array = [good[0], bad, foreign, good[1]]
    resp = httpx.post(
        f"{url}/api/v1/lineage/batch", content=orjson.dumps(array), headers=bearer(key)
    )
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert [r["index"] for r in answer["results"]] == [0, 1, 2, 3]
    assert [r["status"] for r in answer["results"]] == [201, 400, 403, 201]
    assert (answer["accepted"], answer["rejected"]) == (2, 2)
    assert answer["results"][0]["reasons"] == []
    assert "$.eventTime" in {r["path"] for r in answer["results"][1]["reasons"]}
    assert "team-b" in answer["results"][2]["reasons"][0]["message"]

    ndjson = b"\n".join([encode(good[2]), b"", b"{oops", encode(good[3]), b""])
    resp = httpx.post(
        f"{url}/api/v1/lineage/batch",
        content=gzip.compress(ndjson),
        headers={
            **bearer(key),
            "Content-Type": "application/x-ndjson",
            "Content-Encoding": "gzip",
        },
    )
    assert resp.status_code == 200, resp.text
    answer = resp.json()
    assert [r["status"] for r in answer["results"]] == [201, 400, 201]
    assert (answer["accepted"], answer["rejected"]) == (2, 1)

    resp = httpx.post(f"{url}/api/v1/lineage/batch", content=b'{"a": 1}', headers=bearer(key))
    assert resp.status_code == 400
    assert "JSON array" in resp.json()["error"]

    expected = {orjson.dumps(e) for e in good}
    got = read_topic(
        settings, settings.topics.events, lambda ms: {m.value() for m in ms} >= expected
    )
    assert sorted(m.value() for m in got) == sorted(expected)
    assert {m.key() for m in got} == {f"run:team-a/batch{i}".encode() for i in range(4)}
    rows = dead_letter_rows(ch, settings)
    assert sorted(row[0] for row in rows) == sorted([orjson.dumps(bad), b"{oops"])


def test_kafka_unreachable_is_503_with_retry_after(
    keyed: Callable[..., Settings],
    make_settings: Callable[..., Settings],
    start_api: Callable[[Settings], str],
    ch: Client,
) -> None:
    reachable = keyed()
    key = new_key(reachable)
    # The same database, a broker that is not there.
    settings = make_settings(
        api={"key_secret": SECRET, "produce_timeout_s": 1.5},
        clickhouse={"database": reachable.clickhouse.database},
        kafka={"bootstrap_servers": f"127.0.0.1:{free_port()}"},
    )
    url = start_api(settings)
    endpoint = f"{url}/api/v1/lineage"
    body = encode(run_event(1, job="nowhere", namespace="team-a"))
    started = time.monotonic()
    resp = httpx.post(endpoint, content=body, headers=bearer(key), timeout=30)
    assert resp.status_code == 503, resp.text
    assert time.monotonic() - started < 15
    assert int(resp.headers["retry-after"]) > 0
    assert "retry" in resp.json()["error"]

    resp = httpx.post(
        f"{endpoint}/batch", content=b"[" + body + b"]", headers=bearer(key), timeout=30
    )
    assert resp.status_code == 503
    assert "retry-after" in resp.headers

    # A bad event is still answered 400, and its dead letter still reaches ClickHouse.
    bad = encode(invalid_event("team-a", "bad-while-down"))
    resp = httpx.post(endpoint, content=bad, headers=bearer(key), timeout=30)
    assert resp.status_code == 400
    assert [row[0] for row in dead_letter_rows(ch, settings)] == [bad]


def keys_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(settings, "keys", *args, timeout=60, env=api_env(settings))


def test_keys_cli_and_revocation_within_the_cache_ttl(
    keyed: Callable[..., Settings], start_api: Callable[[Settings], str]
) -> None:
    settings = keyed(key_cache_ttl_s=1.0)
    for command in ((), ("create",), ("list",), ("revoke",)):
        done = keys_cli(settings, *command, "--help")
        assert done.returncode == 0, done.stderr
        assert "Usage" in done.stdout

    done = keys_cli(
        settings,
        "create",
        "--name",
        "ci",
        "--role",
        "write",
        "--namespace",
        "team-a*",
        "--namespace",
        "ci",
    )
    assert done.returncode == 0, done.stderr
    plaintexts = [line for line in done.stdout.split() if line.startswith("lh_")]
    assert len(plaintexts) == 1
    key = plaintexts[0]
    key_id = key.split("_")[1]
    assert "will not be shown again" in done.stderr

    listed = keys_cli(settings, "list")
    assert listed.returncode == 0, listed.stderr
    assert key_id in listed.stdout and "ci" in listed.stdout and "active" in listed.stdout
    assert key not in listed.stdout
    as_json = [
        orjson.loads(line)
        for line in keys_cli(settings, "list", "--json").stdout.split("\n")
        if line
    ]
    assert [(k["key_id"], k["role"], k["namespaces"]) for k in as_json] == [
        (key_id, "write", ["team-a*", "ci"])
    ]
    bad_role = keys_cli(settings, "create", "--name", "x", "--role", "owner")
    assert bad_role.returncode != 0

    url = start_api(settings)
    endpoint = f"{url}/api/v1/lineage"
    body = encode(run_event(1, job="cli", namespace="team-a"))
    assert httpx.post(endpoint, content=body, headers=bearer(key)).status_code == 201

    done = keys_cli(settings, "revoke", key_id)
    assert done.returncode == 0, done.stderr
    assert "Revoked" in done.stdout
    revoked_at = time.monotonic()
    wait_for(
        lambda: httpx.post(endpoint, content=body, headers=bearer(key)).status_code == 401,
        15,
        "the revoked key to be refused",
    )
    assert time.monotonic() - revoked_at < 5  # TTL 1 s, plus a re-read
    assert "revoked" in httpx.post(endpoint, content=body, headers=bearer(key)).json()["error"]
    assert "revoked" in keys_cli(settings, "list").stdout
    missing = keys_cli(settings, "revoke", "nosuchkey000")
    assert missing.returncode == 1
    assert "no API key" in missing.stderr


def test_api_refuses_to_start_without_a_key_secret_unless_auth_is_off(
    make_settings: Callable[..., Settings], start_api: Callable[[Settings], str]
) -> None:
    settings = make_settings(api={"key_secret": None})
    migrate(settings)
    done = subprocess.run(
        lineagehouse_cmd("api"), env=api_env(settings), capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "LINEAGEHOUSE_API__KEY_SECRET" in done.stderr
    assert "Fix:" in done.stderr

    open_settings = make_settings(api={"auth_enabled": False})
    migrate(open_settings)
    ensure_topics(open_settings)
    url = start_api(open_settings)
    body = encode(run_event(3, job="open", namespace="anything"))
    resp = httpx.post(f"{url}/api/v1/lineage", content=body)
    assert resp.status_code == 201, resp.text
    got = read_topic(open_settings, open_settings.topics.events, has_value(body), quiet_s=0.5)
    assert [m.key() for m in got] == [b"run:anything/open"]


def test_clickhouse_outage_keeps_keys_and_still_answers_400(
    keyed: Callable[..., Settings],
    make_settings: Callable[..., Settings],
    start_api: Callable[[Settings], str],
    clickhouse_url: str,
    tmp_path: Path,
) -> None:
    reachable = keyed()
    key = new_key(reachable)
    forwarder = Forwarder(int(clickhouse_url.rsplit(":", 1)[1]))
    try:
        settings = make_settings(
            api={"key_secret": SECRET},
            clickhouse={
                "url": f"http://127.0.0.1:{forwarder.port}",
                "database": reachable.clickhouse.database,
                "connect_timeout_s": 2,
            },
            topics=reachable.topics.model_dump(),
        )
        url = start_api(settings)
        endpoint = f"{url}/api/v1/lineage"
        first = encode(run_event(1, job="before", namespace="team-a"))
        assert httpx.post(endpoint, content=first, headers=bearer(key)).status_code == 201

        forwarder.cut()  # ClickHouse is gone for the API
        second = encode(run_event(2, job="during", namespace="team-a"))
        resp = httpx.post(endpoint, content=second, headers=bearer(key), timeout=30)
        assert resp.status_code == 201, resp.text  # the cached key still works
        bad = encode(invalid_event("team-a", "bad-while-clickhouse-down"))
        resp = httpx.post(endpoint, content=bad, headers=bearer(key), timeout=30)
        assert resp.status_code == 400
        assert resp.json()["reasons"]
        dlq = read_topic(settings, settings.topics.dlq, has_value(bad), quiet_s=0.5)
        assert [m.value() for m in dlq] == [bad]
        wait_for(
            lambda: (
                b"could not store dead letters"
                in (tmp_path / f"api-{settings.api.port}.log").read_bytes()
            ),
            10,
            "the failed dead-letter insert to be logged",
        )
    finally:
        forwarder.cut()


def test_corpus_through_the_gateway(
    keyed: Callable[..., Settings], start_api: Callable[[Settings], str], ch: Client
) -> None:
    """Every valid corpus event is accepted (201, on the topic), every invalid one is 400
    with reasons and recorded as a dead letter (origin http)."""
    settings = keyed()
    headers = bearer(new_key(settings, role="write"))
    url = start_api(settings)
    valid = [v for v in (CORPUS / "valid.jsonl").read_bytes().splitlines() if v.strip()]
    invalid = [v for v in (CORPUS / "invalid.jsonl").read_bytes().splitlines() if v.strip()]
    with httpx.Client(timeout=30) as http:
        for value in valid:
            resp = http.post(f"{url}/api/v1/lineage", content=value, headers=headers)
            assert resp.status_code == 201, (resp.text, value[:200])
        for value in invalid:
            resp = http.post(f"{url}/api/v1/lineage", content=value, headers=headers)
            assert resp.status_code == 400, (resp.text, value[:200])
            reasons = resp.json()["reasons"]
            assert reasons and all(r["path"].startswith("$") and r["message"] for r in reasons)
    produced = read_topic(
        settings,
        settings.topics.events,
        lambda got: len({m.value() for m in got}) >= len(set(valid)),
    )
    assert {m.value() for m in produced} == set(valid)
    wait_for(
        lambda: len(dead_letter_rows(ch, settings)) == len(set(invalid)),
        30,
        "one dead letter per invalid corpus event",
    )
    rows = dead_letter_rows(ch, settings)
    assert {r[0] for r in rows} == set(invalid)
    assert {r[2] for r in rows} == {"http"}
