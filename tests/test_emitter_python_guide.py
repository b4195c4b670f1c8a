"""docs/emitters/openlineage-python.md, followed as written: the guide's emitter (a run
with a custom run facet and a custom dataset facet) runs with the main venv's python in a
process of its own, next to the guide's `openlineage.yml`, once over HTTP with the key the
guide's `lineagehouse keys create` line makes, once over Kafka. Both runs must arrive, and
`/api/v2/runs/{id}/facets` must list the custom facets as custom and the schema facet as
standard. Only placeholders are replaced: `<API_KEY>`, `<RUN_ID>`, the default URL and
broker, and the topic name."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from lineagehouse.apikeys import create_key
from lineagehouse.settings import Settings
from lineagehouse.store.client import connect
from lineagehouse.store.migrations import migrate
from lineagehouse.topics import ensure_topics
from tests.conftest import REPO, run_cli, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

GUIDE = REPO / "docs" / "emitters" / "openlineage-python.md"
DOC_URL = "http://127.0.0.1:5000"
DOC_BROKER = "127.0.0.1:9092"
DOC_TOPIC = "openlineage.events"
SENT = re.compile(r"^sent run (\S+) of (\S+)/(\S+)$", re.MULTILINE)


def snippet(name: str) -> str:
    """The fenced block right after `<!-- snippet: name -->` in the guide."""
    pattern = rf"<!-- snippet: {re.escape(name)} -->\n```[\w-]*\n(.*?)\n```"
    found = re.findall(pattern, GUIDE.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert len(found) == 1, f"{GUIDE.name}: expected one snippet {name!r}, found {len(found)}"
    return found[0]


def run_emitter(workdir: Path, config: str) -> tuple[str, str, str]:
    """Write `openlineage.yml` and the guide's emitter into `workdir`, run it there as the
    guide says (`python emit_orders.py`); returns (run id, job namespace, job name)."""
    workdir.mkdir()
    (workdir / "openlineage.yml").write_text(config)
    (workdir / "emit_orders.py").write_text(snippet("emitter"))
    # The client must find its configuration only where the guide puts it.
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENLINEAGE")}
    env["HOME"] = str(workdir)  # no ~/.openlineage/openlineage.yml of this machine
    done = subprocess.run(
        [sys.executable, "emit_orders.py"],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    found = SENT.search(done.stdout)
    assert found, done.stdout + done.stderr
    return found[1], found[2], found[3]


def test_the_guides_emitter_with_custom_facets_over_http_and_kafka(
    make_settings: Callable[..., Settings],
    start_worker: Any,
    start_api: Any,
    tmp_path: Path,
) -> None:
    settings = make_settings()
    migrate(settings)
    ensure_topics(settings)
    worker = start_worker(settings)
    url = start_api(settings)

    key_line = snippet("key")
    assert key_line.startswith("lineagehouse keys create "), key_line
    made = run_cli(settings, *shlex.split(key_line)[1:])
    assert made.returncode == 0, made.stderr
    write_key = made.stdout.strip().splitlines()[-1]
    client = connect(settings.clickhouse)
    try:
        read_key, _ = create_key(client, settings, "python-guide-reader", "read")
    finally:
        client.close()

    http_yaml = snippet("http-yaml").replace("<API_KEY>", write_key).replace(DOC_URL, url)
    kafka_yaml = (
        snippet("kafka-yaml")
        .replace(DOC_BROKER, settings.kafka.bootstrap_servers)
        .replace(DOC_TOPIC, settings.topics.events)
    )
    sent = {
        "http": run_emitter(tmp_path / "http", http_yaml),
        "kafka": run_emitter(tmp_path / "kafka", kafka_yaml),
    }
    assert sent["http"][0] != sent["kafka"][0]

    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {read_key}"}, timeout=30)

    def finished(run_id: str) -> dict[str, Any] | None:
        resp = api.get(f"/api/v2/runs/{run_id}")
        if resp.status_code == 404:
            return None
        assert resp.status_code == 200, resp.text
        body = resp.json()
        return body if body["state"] == "COMPLETE" else None

    for via, (run_id, namespace, job_name) in sent.items():
        run = wait_for(lambda r=run_id: finished(r), 120, f"the {via} run", alive=worker)
        assert (run["job_namespace"], run["job_name"]) == (namespace, job_name)
        assert [(d["namespace"], d["name"]) for d in run["inputs"]] == [
            ("postgres://db.example.com:5432", "shop.public.orders")
        ]
        assert [(d["namespace"], d["name"]) for d in run["outputs"]] == [
            ("s3://my-bucket", "curated/orders_daily")
        ]

        # The guide's verification command, as written.
        verify = snippet("verify").replace("<API_KEY>", read_key).replace("<RUN_ID>", run_id)
        done = subprocess.run(
            ["bash", "-euc", verify.replace(DOC_URL, url)],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        facets = json.loads(done.stdout)
        assert facets["run_id"] == run_id and facets["job_name"] == job_name
        custom = facets["run"]["custom"]
        assert set(custom) == {"myorg_queue"}, facets["run"]
        assert (custom["myorg_queue"]["queue"], custom["myorg_queue"]["waitSeconds"]) == (
            "etl-high",
            12.5,
        )
        assert custom["myorg_queue"]["_schemaURL"].startswith("https://my-org.example.com/")
        assert "myorg_queue" not in facets["run"]["standard"]
        (output,) = facets["outputs"]
        assert set(output["facets"]["custom"]) == {"myorg_retention"}, output
        assert output["facets"]["custom"]["myorg_retention"]["days"] == 400
        assert "schema" in output["facets"]["standard"], output
        assert facets["inputs"] == []  # the input carried no facets
