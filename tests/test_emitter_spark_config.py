"""docs/emitters/spark.md without Spark: the listener jar lives on Maven Central, which is
not reachable here, so no Spark job can run. Instead the guide's `spark.openlineage.*`
settings are parsed as the listener's HTTP transport reads them (url + endpoint, a url
with a path and an endpoint refused; `auth.type=api_key` -> `Authorization: Bearer
<apiKey>`), and REAL events captured from the Spark integration (OpenLineage 1.23.0, in
../shared/openlineage/corpus) are sent through that request to `lineagehouse api`.

They must be accepted (201) and land as a run with its job, state and datasets. The
captured events carry the listener's default job namespace `default` (they were recorded
without `spark.openlineage.namespace`): they are not rewritten, so a key scoped the way
the guide scopes it (`spark-team-a*`) must refuse them (403), and a key for every
namespace must accept them under `default`."""

from __future__ import annotations

import gzip
import itertools
import json
import re
import shlex
import subprocess
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from lineagehouse.settings import Settings
from lineagehouse.store.migrations import migrate
from lineagehouse.topics import ensure_topics
from tests.conftest import CORPUS, REPO, run_cli, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

GUIDE = REPO / "docs" / "emitters" / "spark.md"
DOC_URL = "http://127.0.0.1:5000"
SPARK_PRODUCER = "https://github.com/OpenLineage/OpenLineage/tree/1.23.0/integration/spark"
# One SQL execution of a Dataproc test application: START, RUNNING, RUNNING, COMPLETE.
RUN_ID = "019299c5-73cf-7069-a70f-74eb8070b577"
JOB = "cl_i_test_application.execute_insert_into_hive_table.warehouse_t2"
LISTENER = "io.openlineage.spark.agent.OpenLineageSparkListener"


def snippet(name: str) -> str:
    """The fenced block right after `<!-- snippet: name -->` in the guide."""
    pattern = rf"<!-- snippet: {re.escape(name)} -->\n```[\w-]*\n(.*?)\n```"
    found = re.findall(pattern, GUIDE.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert len(found) == 1, f"{GUIDE.name}: expected one snippet {name!r}, found {len(found)}"
    return found[0]


def submit_conf(script: str) -> dict[str, str]:
    """The `--conf key=value` pairs of a spark-submit command line."""
    words = shlex.split(script.replace("\\\n", " "))
    assert words[0] == "spark-submit", words[:1]
    conf: dict[str, str] = {}
    for flag, value in itertools.pairwise(words):
        if flag == "--conf":
            key, _, val = value.partition("=")
            conf[key] = val
    return conf


def lines_conf(text: str, sep: str | None) -> dict[str, str]:
    """`key=value` (properties) or `key value` (Databricks Spark config) lines."""
    conf: dict[str, str] = {}
    for line in text.splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, value = line.split(sep, 1) if sep else line.split(None, 1)
            conf[key.strip()] = value.strip()
    return conf


def http_request(conf: dict[str, str]) -> tuple[str, dict[str, str]]:
    """(URL, headers) of the listener's HTTP transport for these settings, by the rules
    of the OpenLineage Java client's HttpTransport."""
    prefix = "spark.openlineage.transport."
    transport = {k[len(prefix) :]: v for k, v in conf.items() if k.startswith(prefix)}
    assert transport["type"] == "http", transport
    url = urllib.parse.urlsplit(transport["url"])
    endpoint = transport.get("endpoint", "")
    if url.path not in ("", "/") and endpoint:
        raise ValueError("You can't pass both uri and endpoint parameters.")
    path = url.path if url.path not in ("", "/") else (endpoint or "/api/v1/lineage")
    if not path.startswith("/"):
        path = "/" + path
    params = {k.split(".", 1)[1]: v for k, v in transport.items() if k.startswith("urlParams.")}
    query = urllib.parse.urlencode(params)
    target = urllib.parse.urlunsplit((url.scheme, url.netloc, path, query, ""))
    headers = {"Content-Type": "application/json"}
    headers.update(
        {k.split(".", 1)[1]: v for k, v in transport.items() if k.startswith("headers.")}
    )
    if transport.get("auth.type") == "api_key":
        headers["Authorization"] = f"Bearer {transport['auth.apiKey']}"
    return target, headers


def captured_spark_run() -> list[bytes]:
    """The captured events of RUN_ID, as their original bytes, in event-time order."""
    found = []
    with (CORPUS / "valid.jsonl").open("rb") as handle:
        for line in handle:
            event = json.loads(line)
            if event.get("producer") == SPARK_PRODUCER and event["run"]["runId"] == RUN_ID:
                found.append((event["eventTime"], line.rstrip(b"\n")))
    return [raw for _, raw in sorted(found)]


def test_documented_settings_agree_and_build_the_listeners_request() -> None:
    submit = submit_conf(snippet("spark-submit"))
    databricks = lines_conf(snippet("databricks"), None)
    kafka = lines_conf(snippet("spark-kafka"), "=")
    for conf in (submit, databricks, kafka):
        assert conf["spark.extraListeners"] == LISTENER
        assert conf["spark.openlineage.namespace"] == "spark-team-a"
    # Databricks: the same settings, the key from a secret scope and a real host.
    assert set(databricks) == set(submit)
    different = {k for k in submit if submit[k] != databricks[k]}
    api_key = "spark.openlineage.transport.auth.apiKey"
    assert different == {"spark.openlineage.transport.url", api_key}
    assert re.fullmatch(r"\{\{secrets/[\w-]+/[\w-]+\}\}", databricks[api_key]), databricks
    url, headers = http_request(submit)
    assert url == f"{DOC_URL}/api/v1/lineage"
    assert headers["Authorization"] == "Bearer <API_KEY>"
    db_url, _ = http_request(databricks)
    assert db_url == "https://lineagehouse.example.com/api/v1/lineage"
    # A URL with a path plus an endpoint is what the listener refuses; the guide warns.
    with pytest.raises(ValueError, match="both uri and endpoint"):
        http_request({**submit, "spark.openlineage.transport.url": f"{DOC_URL}/api"})
    assert kafka["spark.openlineage.transport.type"] == "kafka"
    assert kafka["spark.openlineage.transport.topicName"] == "openlineage.events"
    assert "spark.openlineage.transport.properties.bootstrap.servers" in kafka


def test_captured_spark_events_through_the_documented_http_settings(
    make_settings: Callable[..., Settings],
    start_worker: Any,
    start_api: Any,
    tmp_path: Path,
) -> None:
    settings = make_settings()
    migrate(settings)
    ensure_topics(settings)
    worker = start_worker(settings)
    base = start_api(settings)

    def key(*args: str) -> str:
        made = run_cli(settings, *args)
        assert made.returncode == 0, made.stderr
        return made.stdout.strip().splitlines()[-1]

    scoped_key = key(*shlex.split(snippet("key"))[1:])  # the guide's: spark-team-a*
    any_key = key("keys", "create", "--name", "spark-any", "--role", "write")
    read_key = key("keys", "create", "--name", "spark-reader", "--role", "read")

    def request_for(api_key: str) -> tuple[str, dict[str, str]]:
        text = snippet("spark-submit").replace("<API_KEY>", api_key).replace(DOC_URL, base)
        return http_request(submit_conf(text))

    events = captured_spark_run()
    assert [json.loads(e)["eventType"] for e in events] == [
        "START",
        "RUNNING",
        "RUNNING",
        "COMPLETE",
    ]
    namespace = json.loads(events[0])["job"]["namespace"]
    assert namespace == "default"  # the listener's default: captured without the setting

    # The guide's scoped key: this namespace is outside it.
    url, headers = request_for(scoped_key)
    refused = httpx.post(url, content=events[0], headers=headers, timeout=30)
    assert refused.status_code == 403, refused.text
    assert "default" in refused.text and "spark-team-a*" in refused.text

    # A wrong key: 401.
    url, headers = request_for("lh_aaaaaaaaaaaa_" + "b" * 40)
    assert httpx.post(url, content=events[0], headers=headers, timeout=30).status_code == 401

    # A key for every namespace: every event accepted, the last one gzip-compressed
    # (`spark.openlineage.transport.compression=gzip`).
    url, headers = request_for(any_key)
    for raw in events[:-1]:
        resp = httpx.post(url, content=raw, headers=headers, timeout=30)
        assert resp.status_code == 201, resp.text
    resp = httpx.post(
        url,
        content=gzip.compress(events[-1]),
        headers={**headers, "Content-Encoding": "gzip"},
        timeout=30,
    )
    assert resp.status_code == 201, resp.text

    api = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {read_key}"}, timeout=30)

    def landed() -> dict[str, Any] | None:
        resp = api.get(f"/api/v2/runs/{RUN_ID}")
        if resp.status_code == 404:
            return None
        assert resp.status_code == 200, resp.text
        run = resp.json()
        return run if run["state"] == "COMPLETE" else None

    run = wait_for(landed, 120, "the captured Spark run", alive=worker)
    assert (run["job_namespace"], run["job_name"]) == (namespace, JOB)
    assert run["parent_job_name"] == "cl_i_test_application"
    assert run["processing_engine"] == "spark"
    assert [(d["namespace"], d["name"]) for d in run["inputs"]] == [
        ("hdfs://dataproc-producer-test-m", "/user/hive/warehouse/t1")
    ]
    assert [(d["namespace"], d["name"]) for d in run["outputs"]] == [
        ("hdfs://dataproc-producer-test-m", "/user/hive/warehouse/t2")
    ]
    runs = api.get("/api/v2/runs", params={"namespace": namespace}).json()["items"]
    assert [r["run_id"] for r in runs] == [RUN_ID]
    jobs = api.get("/api/v2/jobs", params={"namespace": namespace}).json()["items"]
    assert JOB in {j["name"] for j in jobs}

    # The guide's verification commands (curl), with the namespace these events carry.
    for line in snippet("verify").splitlines():
        line = line.replace("<API_KEY>", read_key).replace(DOC_URL, base)
        line = line.replace("namespace=spark-team-a", f"namespace={namespace}")
        done = subprocess.run(
            ["bash", "-euc", line], capture_output=True, text=True, timeout=60, check=True
        )
        assert json.loads(done.stdout)["total"] >= 1, (line, done.stdout)
