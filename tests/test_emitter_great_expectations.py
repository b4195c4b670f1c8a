"""docs/emitters/great-expectations.md, followed as written, with the real Great
Expectations 0.15.50 and OpenLineageValidationAction (openlineage-integration-common 1.39)
from their own pinned venv (tests/emitters/ge_env.py).

A SQLite table `orders` (one row without a customer) is validated by the guide's
checkpoint: `expect_column_values_to_not_be_null(customer_id)` fails, the range check on
`amount` passes. Round 1 sends over HTTP with the guide's `openlineage.yml` and a write
key; then the row is fixed and round 2 sends with the guide's alternative action
(`openlineage_host` + `openlineage_apiKey: ${LINEAGEHOUSE_API_KEY}`). The dataset's quality
history must hold both runs with the right pass/fail per expectation, and the
assertion_failed issue must open in round 1 and resolve in round 2. Everything the test
runs comes from the guide's fenced blocks; only placeholders, the URL and the sample data
are the test's."""

from __future__ import annotations

import json
import re
import shlex
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from lineagehouse.settings import Settings
from lineagehouse.store.migrations import migrate
from lineagehouse.topics import ensure_topics
from tests.conftest import REPO, run_cli, wait_for
from tests.emitters import ge_env

pytestmark = [pytest.mark.slow, pytest.mark.emitters, pytest.mark.timeout(900)]

GUIDE = REPO / "docs" / "emitters" / "great-expectations.md"
DOC_URL = "http://127.0.0.1:5000"
NAMESPACE, NAME = "sqlite", "main.orders"  # what the action reports for sqlite:///shop.db
JOB = ("ge-team-a", "orders_quality")
NOT_NULL = ("expect_column_values_to_not_be_null", "customer_id")
BETWEEN = ("expect_column_values_to_be_between", "amount")


def snippet(name: str) -> str:
    """The fenced block right after `<!-- snippet: name -->` in the guide."""
    pattern = rf"<!-- snippet: {re.escape(name)} -->\n```[\w-]*\n(.*?)\n```"
    found = re.findall(pattern, GUIDE.read_text(encoding="utf-8"), flags=re.DOTALL)
    assert len(found) == 1, f"{GUIDE.name}: expected one snippet {name!r}, found {len(found)}"
    return found[0]


def command(name: str) -> list[str]:
    (line,) = snippet(name).splitlines()
    return shlex.split(line)


def write_orders(db: Path, missing_customer: bool) -> None:
    with sqlite3.connect(db) as conn:
        conn.executescript(
            "DROP TABLE IF EXISTS orders;"
            "CREATE TABLE orders (id INTEGER PRIMARY KEY, customer_id INTEGER, amount REAL);"
            "INSERT INTO orders VALUES (1, 10, 12.5), (2, 11, 30.0), (3, 12, 7.75);"
        )
        if missing_customer:
            conn.execute("UPDATE orders SET customer_id = NULL WHERE id = 3")


def test_checkpoint_results_become_quality_history_and_issues(
    make_settings: Callable[..., Settings],
    start_worker: Any,
    start_api: Any,
    tmp_path: Path,
) -> None:
    bin_dir = ge_env.ge_venv(REPO / ".venv" / "emitters")
    settings = make_settings()
    migrate(settings)
    ensure_topics(settings)
    worker = start_worker(settings)
    url = start_api(settings)

    def key(*args: str) -> str:
        made = run_cli(settings, *args)
        assert made.returncode == 0, made.stderr
        return made.stdout.strip().splitlines()[-1]

    write_key = key(*command("key")[1:])  # the guide's: write, ge-team-a*
    read_key = key("keys", "create", "--name", "ge-reader", "--role", "read")

    # ---- the project, as the guide sets it up
    project = tmp_path / "ge"
    project.mkdir()

    def ge(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return ge_env.run(bin_dir, args, project, env or {})

    init = ge(["great_expectations", "--yes", "init"])
    assert init.returncode == 0, init.stdout[-2000:] + init.stderr[-2000:]
    write_orders(project / "shop.db", missing_customer=True)
    (project / "datasource.yml").write_text(snippet("datasource"))
    (project / "checkpoint.yml").write_text(snippet("checkpoint"))
    (project / "setup_ge.py").write_text(snippet("setup"))
    setup = ge(["python", "setup_ge.py"])
    assert setup.returncode == 0, setup.stdout[-2000:] + setup.stderr[-3000:]

    # ---- round 1: openlineage.yml (HTTP + key); one expectation fails
    http_yaml = snippet("http-yaml").replace("<API_KEY>", write_key).replace(DOC_URL, url)
    (project / "openlineage.yml").write_text(http_yaml)
    run_checkpoint = command("run")
    assert run_checkpoint[:3] == ["great_expectations", "checkpoint", "run"], run_checkpoint
    first = ge(run_checkpoint)
    output = first.stdout + first.stderr
    assert first.returncode == 1, output[-3000:]  # validation failed
    assert "Validation failed" in output and "Traceback" not in output, output[-3000:]

    api = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {read_key}"}, timeout=30)

    def quality(runs: int) -> dict[str, Any] | None:
        resp = api.get(f"/api/v2/datasets/{NAMESPACE}/{NAME}/quality")
        if resp.status_code == 404:
            return None
        assert resp.status_code == 200, resp.text
        body = resp.json()
        return body if len(body["runs"]) == runs else None

    def statuses(run: dict[str, Any]) -> dict[tuple[str, str], str]:
        return {(a["assertion"], a["column"]): a["status"] for a in run["assertions"]}

    def issues() -> list[dict[str, Any]]:
        resp = api.get(
            "/api/v2/issues",
            params={
                "kind": "assertion_failed",
                "dataset_namespace": NAMESPACE,
                "dataset_name": NAME,
            },
        )
        assert resp.status_code == 200, resp.text
        return resp.json()["items"]

    history = wait_for(lambda: quality(1), 120, "the first validation's results", alive=worker)
    (run1,) = history["runs"]
    assert statuses(run1) == {NOT_NULL: "fail", BETWEEN: "pass"}, run1
    assert run1["counts"] == {"pass": 1, "fail": 1, "skipped": 0}
    assert run1["state"] == "COMPLETE"  # the action reports a finished validation
    resp = api.get(f"/api/v2/runs/{run1['run_id']}")
    assert resp.status_code == 200, resp.text
    assert (resp.json()["job_namespace"], resp.json()["job_name"]) == JOB

    (opened,) = wait_for(issues, 60, "the assertion_failed issue", alive=worker)
    assert opened["status"] == "open" and opened["run_id"] == run1["run_id"]
    assert (opened["assertion"], opened["column"]) == NOT_NULL
    assert opened["job"] == {"namespace": JOB[0], "name": JOB[1]}

    # ---- round 2: the data fixed; the action itself carries URL and key (env variable)
    write_orders(project / "shop.db", missing_customer=False)
    (project / "openlineage.yml").unlink()  # it would win over openlineage_host
    checkpoint = yaml.safe_load(snippet("checkpoint"))
    (alternative,) = yaml.safe_load(snippet("action-http"))
    checkpoint["action_list"] = [
        alternative if a["name"] == alternative["name"] else a for a in checkpoint["action_list"]
    ]
    assert alternative["action"]["openlineage_apiKey"] == "${LINEAGEHOUSE_API_KEY}"
    alternative["action"]["openlineage_host"] = url
    (project / "checkpoint.yml").write_text(yaml.safe_dump(checkpoint, sort_keys=False))
    setup = ge(["python", "setup_ge.py"])
    assert setup.returncode == 0, setup.stderr[-3000:]
    second = ge(run_checkpoint, {"LINEAGEHOUSE_API_KEY": write_key})
    output = second.stdout + second.stderr
    assert second.returncode == 0, output[-3000:]
    assert "Traceback" not in output, output[-3000:]

    history = wait_for(lambda: quality(2), 120, "the second validation's results", alive=worker)
    run2, older = history["runs"]
    assert older["run_id"] == run1["run_id"] and run2["run_id"] != run1["run_id"]
    assert statuses(run2) == {NOT_NULL: "pass", BETWEEN: "pass"}, run2
    summary = {(s["assertion"], s["column"]): s for s in history["assertions"]}
    assert (summary[NOT_NULL]["passed"], summary[NOT_NULL]["failed"]) == (1, 1)
    assert summary[NOT_NULL]["last_status"] == "pass"
    assert (summary[BETWEEN]["passed"], summary[BETWEEN]["failed"]) == (2, 0)

    def resolved() -> list[dict[str, Any]]:
        return [i for i in issues() if i["status"] == "resolved"]

    (closed,) = wait_for(resolved, 60, "the issue to resolve", alive=worker)
    assert closed["issue_id"] == opened["issue_id"]
    assert closed["resolved_by_run"] == run2["run_id"]
    assert wait_for(lambda: quality(2), 30, "the history again", alive=worker)["open_issues"] == 0

    # ---- the guide's verification commands (curl), as written
    for line in snippet("verify").splitlines():
        line = line.replace("<API_KEY>", read_key).replace(DOC_URL, url)
        done = subprocess.run(
            ["bash", "-euc", line], capture_output=True, text=True, timeout=60, check=True
        )
        body = json.loads(done.stdout)
        assert body.get("items") or body.get("runs"), (line, body)
