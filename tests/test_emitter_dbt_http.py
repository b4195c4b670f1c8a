"""docs/emitters/dbt.md, followed as written: `dbt-ol seed/run/test` on the sample project
over the HTTP transport with an API key, into `lineagehouse api` and the worker.

The transport configuration, the key command, the dbt-ol commands and the verification
commands are the guide's own fenced blocks (found by their `<!-- snippet: NAME -->`
marker), with only the placeholders replaced: `<API_KEY>` and the default URL
`http://127.0.0.1:5000`. `seed` and `run` use the guide's `openlineage.yml`, `test` the
guide's environment variables. A key that the API does not know is refused first: dbt-ol
still exits with dbt's code, logs the refusal, and nothing of that call arrives."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client

from lineagehouse.apikeys import create_key, generate_key
from lineagehouse.settings import Settings
from lineagehouse.store.client import connect
from lineagehouse.store.migrations import migrate
from lineagehouse.topics import ensure_topics
from tests.conftest import REPO, run_cli, wait_for
from tests.emitters import dbt_env

pytestmark = [pytest.mark.slow, pytest.mark.emitters, pytest.mark.timeout(900)]

GUIDE = REPO / "docs" / "emitters" / "dbt.md"
DOC_URL = "http://127.0.0.1:5000"
DOC_BROKER = "127.0.0.1:9092"
WRAPPER_JOB = "dbt-run-lh_shop"
TESTED_MODEL = "lh.main.stg_orders"
# dbt's status of a node -> the final state dbt-ol reports for its run.
EXPECTED_STATE = {"success": "COMPLETE", "pass": "COMPLETE", "error": "FAIL", "fail": "FAIL"}


def snippet(name: str, path: Path = GUIDE) -> str:
    """The fenced block right after `<!-- snippet: name -->` in the guide."""
    pattern = rf"<!-- snippet: {re.escape(name)} -->\n```[\w-]*\n(.*?)\n```"
    found = re.findall(pattern, path.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert len(found) == 1, f"{path.name}: expected one snippet {name!r}, found {len(found)}"
    return found[0]


def fill(text: str, **values: str) -> str:
    """Replace each `<NAME>` placeholder and the guide's default addresses."""
    for name, value in values.items():
        text = text.replace(f"<{name}>", value)
    return text


def exported(script: str) -> dict[str, str]:
    """The variables a bash snippet of `export` lines sets, as bash itself evaluates them."""
    clean = {"PATH": os.defpath, "HOME": os.environ.get("HOME", "/tmp")}

    def env_after(code: str) -> dict[str, str]:
        out = subprocess.run(
            ["bash", "-euc", code + "\nenv -0"], env=clean, capture_output=True, check=True
        ).stdout.decode()
        return dict(item.split("=", 1) for item in out.split("\0") if "=" in item)

    before, after = env_after(":"), env_after(script)
    return {k: v for k, v in after.items() if before.get(k) != v}


def test_guide_kafka_snippets_match_the_tested_kafka_transport() -> None:
    """The guide's Kafka env vars are those tests/test_emitter_dbt.py runs dbt-ol with."""
    assert exported(snippet("kafka-env")) == dbt_env.kafka_transport_env(
        DOC_BROKER, "openlineage.events"
    )
    yaml_text = snippet("kafka-yaml")
    for line in ("type: kafka", "topic: openlineage.events", f"bootstrap.servers: {DOC_BROKER}"):
        assert line in yaml_text


def test_dbt_ol_over_http_with_an_api_key_as_the_guide_says(
    make_settings: Callable[..., Settings],
    ch: Client,
    start_worker: Any,
    start_api: Any,
    tmp_path: Path,
) -> None:
    bin_dir = dbt_env.dbt_venv(REPO / ".venv" / "emitters")
    settings = make_settings()
    migrate(settings)
    ensure_topics(settings)
    worker = start_worker(settings)
    url = start_api(settings)  # auth on: every call needs a key

    # The guide's key command, run as written.
    create_line = snippet("key")
    assert create_line.startswith("lineagehouse keys create "), create_line
    made = run_cli(settings, *shlex.split(create_line)[1:])
    assert made.returncode == 0, made.stderr
    write_key = made.stdout.strip().splitlines()[-1]
    assert write_key.startswith("lh_"), made.stdout
    client = connect(settings.clickhouse)
    try:
        read_key, _ = create_key(client, settings, "dbt-guide-reader", "read")
    finally:
        client.close()

    project = dbt_env.copy_project(tmp_path / "project")
    duckdb_path = tmp_path / "lh.duckdb"
    db_env = {"DBT_DUCKDB_PATH": str(duckdb_path)}
    commands = [shlex.split(line) for line in snippet("commands").splitlines()]
    assert [c[:1] for c in commands] == [["dbt-ol"]] * 3, commands
    seed, run, test = (c[1:] for c in commands)
    yaml_path = project / "openlineage.yml"

    def dbt_ol(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
        return dbt_env.run_dbt_ol(bin_dir, project, args, {**db_env, **env})

    # ---- a key the API does not know: refused, logged, nothing arrives
    _, unknown_key = generate_key()
    yaml_path.write_text(fill(snippet("http-yaml"), API_KEY=unknown_key).replace(DOC_URL, url))
    refused = dbt_ol(seed, {})
    output = refused.stdout + refused.stderr
    assert refused.returncode == 0, output[-3000:]
    assert "failed to emit event" in output and "401" in output, output[-3000:]
    assert "Emitted 0 OpenLineage events" in output, output[-3000:]

    # ---- seed and run with the guide's openlineage.yml (found in the working directory)
    yaml_path.write_text(fill(snippet("http-yaml"), API_KEY=write_key).replace(DOC_URL, url))
    for args, exit_code in ((seed, 0), (run, 0)):
        done = dbt_ol(args, {})
        output = done.stdout + done.stderr
        assert done.returncode == exit_code, output[-3000:]
        assert "failed to emit" not in output, output[-3000:]
    emitted = re.findall(r"Emitted (\d+) OpenLineage events", output)
    assert emitted and int(emitted[-1]) == 12, output[-3000:]  # 5 models x 2 + the wrapper's 2
    run_statuses = dbt_env.run_results(project)
    edges = dbt_env.manifest_edges(project, include_seeds=False)

    # ---- test with the guide's environment variables (the file would win over them)
    yaml_path.unlink()
    env = fill(snippet("http-env"), API_KEY=write_key).replace(DOC_URL, url)
    variables = exported(env)
    assert set(variables) == {
        "OPENLINEAGE_URL",
        "OPENLINEAGE_ENDPOINT",
        "OPENLINEAGE_API_KEY",
        "OPENLINEAGE_NAMESPACE",
    }
    done = dbt_ol(test, variables)
    output = done.stdout + done.stderr
    assert done.returncode == 1, output[-3000:]  # one failing test
    assert "failed to emit" not in output, output[-3000:]
    test_statuses = dbt_env.run_results(project)
    assert test_statuses[TESTED_MODEL.replace("lh.main.", "lh.main.lh_shop.") + ".test"] == "fail"

    # ---- what the API shows, with a read key
    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {read_key}"}, timeout=30)

    def runs() -> dict[str, list[str]]:
        resp = api.get("/api/v2/runs", params={"namespace": "dbt", "limit": 1000})
        assert resp.status_code == 200, resp.text
        found: dict[str, list[str]] = {}
        for item in sorted(resp.json()["items"], key=lambda r: (r["started_at"], r["run_id"])):
            found.setdefault(item["job_name"], []).append(item["state"])
        return found

    expected = {**run_statuses, **test_statuses}
    finished = {"COMPLETE", "FAIL"}

    def all_finished() -> dict[str, list[str]] | None:
        found = runs()
        done = set(expected) <= set(found) and len(found.get(WRAPPER_JOB, [])) == 3
        return found if done and all(set(s) <= finished for s in found.values()) else None

    states = wait_for(all_finished, 180, "every dbt run in /api/v2/runs", alive=worker)
    # seed, run, test: the refused seed call added nothing.
    assert states[WRAPPER_JOB] == ["COMPLETE", "COMPLETE", "FAIL"], states
    for job, status in expected.items():
        assert states[job] == [EXPECTED_STATE[status]], (job, status, states[job])

    # A run can be queryable a flush before its job (the sink writes runs last in a flush,
    # but one kind's rows can reach it a fetch ahead of another's; ARCHITECTURE.md, step 6).
    def every_job_listed() -> bool:
        resp = api.get("/api/v2/jobs", params={"namespace": "dbt", "limit": 1000})
        assert resp.status_code == 200, resp.text
        return set(expected) | {WRAPPER_JOB} <= {j["name"] for j in resp.json()["items"]}

    wait_for(every_job_listed, 60, "every dbt job in /api/v2/jobs", alive=worker)

    # Lineage: the most downstream model's upstream datasets are dbt's dependencies.
    namespace = f"duckdb://{duckdb_path}"
    last = "lh.main.country_revenue"
    want = closure(last, edges)
    resp = api.get(
        "/api/v2/lineage",
        params={"node_id": f"dataset:{namespace}:{last}", "direction": "upstream", "depth": 50},
    )
    assert resp.status_code == 200, resp.text
    assert {n["name"] for n in resp.json()["nodes"] if n["type"] == "dataset"} - {last} == want

    # Test results: an assertion_failed issue and the quality history of the tested model.
    def issues() -> list[dict[str, Any]]:
        resp = api.get("/api/v2/issues", params={"kind": "assertion_failed", "status": "open"})
        assert resp.status_code == 200, resp.text
        return resp.json()["items"]

    (issue,) = wait_for(issues, 60, "the assertion_failed issue", alive=worker)
    assert issue["dataset"] == {"namespace": namespace, "name": TESTED_MODEL}
    assert (issue["column"], issue["assertion"]) == ("customer_id", "not_null")

    seg = urllib.parse.quote
    quality = api.get(
        f"/api/v2/datasets/{seg(namespace, safe='')}/{seg(TESTED_MODEL, safe='')}/quality"
    )
    assert quality.status_code == 200, quality.text
    history = quality.json()
    assert len(history["runs"]) == 1, history
    (checked,) = history["runs"]
    assert checked["state"] == "FAIL"
    assert checked["counts"]["fail"] == 1 and checked["counts"]["pass"] >= 1, checked
    failed = [a for a in checked["assertions"] if a["status"] == "fail"]
    assert [(a["assertion"], a["column"]) for a in failed] == [("not_null", "customer_id")]
    assert history["open_issues"] == 1 and issue["run_id"] == checked["run_id"]

    # ---- the guide's verification commands, as written (curl, with the read key)
    for line in snippet("verify").splitlines():
        body = _curl(fill(line, API_KEY=read_key).replace(DOC_URL, url))
        assert body["total"] >= 1 and body["items"], line
    quality_script = fill(snippet("verify-quality"), API_KEY=read_key).replace(DOC_URL, url)
    quality_script = quality_script.replace("duckdb:///data/lh.duckdb", namespace)
    assert _curl(quality_script)["runs"][0]["run_id"] == checked["run_id"]


def _curl(script: str) -> Any:
    done = subprocess.run(["bash", "-euc", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def closure(start: str, pairs: set[tuple[str, str]]) -> set[str]:
    """Every dataset `start` depends on through (upstream, downstream) pairs."""
    found: set[str] = set()
    todo = [start]
    while todo:
        node = todo.pop()
        for before, after in pairs:
            if after == node and before not in found:
                found.add(before)
                todo.append(before)
    return found
