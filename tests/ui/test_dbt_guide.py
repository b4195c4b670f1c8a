"""docs/emitters/dbt.md with `lineagehouse up`, tried as a new user would.

`lineagehouse up` starts as a subprocess (free ports, a data dir `.lineagehouse` in a temp
"home" directory it runs in, like a user's); its banner gives the Kafka address, the API
URL and the admin key. Then the guide is followed with its own fenced blocks (found by
their `<!-- snippet: NAME -->` marker), only the placeholders and the default addresses
(`127.0.0.1:9092`, `http://127.0.0.1:5000`) replaced by what the banner printed:

- `dbt-ol seed` with the guide's Kafka `openlineage.yml`;
- `dbt-ol run` with the guide's HTTP `openlineage.yml`, `<API_KEY>` = the key `up` printed;
- `dbt-ol test` with the guide's HTTP environment variables and a write key made by the
  guide's `lineagehouse keys create`, run from up's directory after the guide's
  `up-key-secret` line (the `not_null(customer_id)` test of `stg_orders` fails).

(The Kafka environment variables are the ones tests/ui/test_ui.py runs dbt-ol with.)

Then headless Chromium follows "Check that it arrived": log in with up's key, **Runs**
filtered by namespace `dbt` (every model and test job with dbt's outcome), a model's run
and its graph (upstream datasets as in dbt's manifest, column lineage in the side panel),
the tested dataset's **Quality** (its checks, the failing one), and **Issues**
(`assertion_failed`, and `run_failed` for the test job and the `dbt-ol test` invocation).
Screenshots of each step: `artifacts/screenshots/dbt-guide-*.png`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page

from tests.conftest import wait_for
from tests.emitters import dbt_env
from tests.test_emitter_dbt_http import (
    DOC_BROKER,
    DOC_URL,
    EXPECTED_STATE,
    closure,
    exported,
    fill,
    snippet,
)
from tests.ui.test_ui import ARTIFACTS, browser_page, graph_nodes, rendered
from tests.ui.user_up import Banner, running_up

pytestmark = [pytest.mark.slow, pytest.mark.emitters, pytest.mark.timeout(900)]

WRAPPER_JOB = "dbt-run-lh_shop"
MODEL_JOB = "lh.main.lh_shop.country_revenue"  # the most downstream model
MODEL_OUTPUT = "lh.main.country_revenue"
TESTED = "lh.main.stg_orders"
TESTED_NODE = "model.lh_shop.stg_orders"
DOC_CLICKHOUSE_PORT = "8123"


class UserUp:
    def __init__(self, banner: Banner, home: Path, env: dict[str, str]) -> None:
        self.banner = banner
        self.home = home
        self.env = env  # the user's shell: no LINEAGEHOUSE_* settings
        self.kafka = banner.field("Kafka (embedded, memory only)").split()[0]
        self.clickhouse = banner.field("ClickHouse HTTP (embedded)").split()[0]
        self.url = banner.api_url
        self.key = banner.key


@pytest.fixture
def user_up(tmp_path: Path) -> Iterator[UserUp]:
    """`lineagehouse up` run from a fresh directory (its data dir: `./.lineagehouse`)."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LINEAGEHOUSE_")}
    with running_up(home, home / ".lineagehouse", env, tmp_path / "up.out") as banner:
        yield UserUp(banner, home, env)


class Shots:
    """Screenshots of each step, to the test's tmp dir and artifacts/screenshots/."""

    def __init__(self, tmp_path: Path) -> None:
        self.dirs = [tmp_path / "screenshots", ARTIFACTS]
        for d in self.dirs:
            d.mkdir(parents=True, exist_ok=True)

    def __call__(self, page: Page, step: str) -> None:
        page.wait_for_timeout(250)  # let the last layout settle
        first = self.dirs[0] / f"dbt-guide-{step}.png"
        page.screenshot(path=str(first))
        for d in self.dirs[1:]:
            shutil.copyfile(first, d / first.name)


def guide_key(up: UserUp) -> str:
    """The guide's `keys create`, run from up's directory after its `up-key-secret` line
    (and, since up runs on another ClickHouse port than 8123, the ClickHouse URL the
    guide says to export then)."""
    secret_line = snippet("up-key-secret")
    assert ".lineagehouse/api_key_secret" in secret_line, secret_line
    create_line = snippet("key")
    assert create_line.startswith("lineagehouse keys create "), create_line
    port = up.clickhouse.rsplit(":", 1)[1]
    assert port != DOC_CLICKHOUSE_PORT
    script = "\n".join(
        [
            secret_line,
            f"export LINEAGEHOUSE_CLICKHOUSE__URL=http://127.0.0.1:{port}",
            create_line,
        ]
    )
    shell_env = {**up.env, "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.defpath])}
    done = subprocess.run(
        ["bash", "-euc", script],
        cwd=up.home,
        env=shell_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    keys = re.findall(r"^(lh_\S+)$", done.stdout, re.MULTILINE)
    assert len(keys) == 1, done.stdout
    return keys[0]


def checks_of_tested_model(project: Path) -> set[tuple[str, str]]:
    """(test name, column) of every generic test dbt attaches to `stg_orders`."""
    manifest = json.loads((project / "target" / "manifest.json").read_text())
    return {
        (node["test_metadata"]["name"], node["column_name"])
        for node in manifest["nodes"].values()
        if node["resource_type"] == "test"
        and node.get("test_metadata")
        and node.get("attached_node") == TESTED_NODE
    }


def emitted(output: str) -> int:
    counts = re.findall(r"Emitted (\d+) OpenLineage events", output)
    assert counts, output[-3000:]
    return int(counts[-1])


def test_dbt_guide_with_lineagehouse_up(user_up: UserUp, tmp_path: Path) -> None:
    up = user_up
    assert up.key.startswith("lh_") and up.url.startswith("http://127.0.0.1:"), up.banner.text
    bin_dir = dbt_env.dbt_venv(Path(sys.executable).parent.parent / "emitters")
    project = dbt_env.copy_project(tmp_path / "project")
    duckdb_path = tmp_path / "lh.duckdb"
    namespace = f"duckdb://{duckdb_path}"
    db_env = {"DBT_DUCKDB_PATH": str(duckdb_path)}
    commands = [line.split() for line in snippet("commands").splitlines()]
    assert [c[:1] for c in commands] == [["dbt-ol"]] * 3, commands
    seed, run, test = (c[1:] for c in commands)
    yaml_path = project / "openlineage.yml"  # dbt-ol runs in the project directory

    def dbt_ol(args: list[str], env: dict[str, str], exit_code: int) -> str:
        done = dbt_env.run_dbt_ol(bin_dir, project, args, {**db_env, **env})
        output = done.stdout + done.stderr
        assert done.returncode == exit_code, f"dbt-ol {' '.join(args)}:\n{output[-3000:]}"
        assert "failed to emit" not in output, output[-3000:]
        assert "Couldn't find any OpenLineage transport" not in output, output[-3000:]
        return output

    # ---- seed: the guide's Kafka openlineage.yml, at the broker `up` printed
    kafka_yaml = snippet("kafka-yaml")
    assert DOC_BROKER in kafka_yaml
    yaml_path.write_text(kafka_yaml.replace(DOC_BROKER, up.kafka))
    assert emitted(dbt_ol(seed, {}, 0)) == 2

    # ---- run: the guide's HTTP openlineage.yml, with the key `up` printed
    yaml_path.write_text(fill(snippet("http-yaml"), API_KEY=up.key).replace(DOC_URL, up.url))
    output = dbt_ol(run, {}, 0)
    model_statuses = dbt_env.run_results(project)
    assert emitted(output) == 2 + 2 * len(model_statuses), output[-3000:]
    edges = dbt_env.manifest_edges(project, include_seeds=False)

    # ---- test: the guide's HTTP variables, with a write key from the guide's command
    write_key = guide_key(up)
    yaml_path.unlink()  # the guide: the file would win over the variables
    variables = exported(fill(snippet("http-env"), API_KEY=write_key).replace(DOC_URL, up.url))
    output = dbt_ol(test, variables, 1)  # one failing test
    test_statuses = dbt_env.run_results(project)
    assert emitted(output) == 2 + 2 * len(test_statuses), output[-3000:]
    assert test_statuses["lh.main.lh_shop.stg_orders.test"] == "fail", test_statuses
    checks = checks_of_tested_model(project)
    assert ("not_null", "customer_id") in checks, checks

    # ---- wait until the worker has stored it all (the API, with up's key)
    api = httpx.Client(base_url=up.url, headers={"Authorization": f"Bearer {up.key}"}, timeout=30)
    expected = {
        job: [EXPECTED_STATE[status]] for job, status in {**model_statuses, **test_statuses}.items()
    }
    # newest first, as Runs lists them: seed and run complete, test fails
    expected[WRAPPER_JOB] = ["FAIL", "COMPLETE", "COMPLETE"]

    def stored_runs() -> dict[str, list[str]] | None:
        resp = api.get("/api/v2/runs", params={"namespace": "dbt", "limit": 1000})
        assert resp.status_code == 200, resp.text
        found: dict[str, list[str]] = {}
        for item in resp.json()["items"]:
            found.setdefault(item["job_name"], []).append(item["state"])
        return found if found == expected else None

    wait_for(stored_runs, 180, "every dbt run with its final state in /api/v2/runs")

    def open_assertion_issues() -> list[dict[str, Any]]:
        resp = api.get("/api/v2/issues", params={"kind": "assertion_failed", "status": "open"})
        assert resp.status_code == 200, resp.text
        return resp.json()["items"]

    (issue,) = wait_for(open_assertion_issues, 120, "the assertion_failed issue")
    assert issue["dataset"] == {"namespace": namespace, "name": TESTED}, issue
    assert (issue["assertion"], issue["column"]) == ("not_null", "customer_id"), issue
    upstream = closure(MODEL_OUTPUT, edges)
    assert upstream, edges
    column_edges = api.get(
        "/api/v2/column-lineage",
        params={"node_id": f"dataset:{namespace}:{MODEL_OUTPUT}", "direction": "both", "depth": 5},
    ).json()
    fields = {n["id"]: f"{n['name']}.{n['field']}" for n in column_edges["nodes"]}
    column_lines = {f"{fields[e['source']]} → {fields[e['target']]}" for e in column_edges["edges"]}
    assert any(line.endswith(f"→ {MODEL_OUTPUT}.revenue") for line in column_lines), column_lines
    api.close()

    shots = Shots(tmp_path)
    with browser_page() as (page, errors):
        # ---- log in with the key `up` printed
        page.goto(up.url + "/")
        page.wait_for_selector("#login-form")
        shots(page, "login")
        page.fill("#api-key", up.key)
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("table.runs-table tbody tr[data-run-id]")

        # ---- 1. Runs, filtered by namespace dbt: every job with dbt's outcome
        page.wait_for_selector("#f-namespace option[value='dbt']", state="attached")
        page.select_option("#f-namespace", "dbt")
        page.click("form.filters button[type=submit]")
        page.wait_for_function("location.hash.includes('namespace=dbt')")
        rendered(page)
        rows = page.eval_on_selector_all(
            "table.runs-table tbody tr[data-run-id]",
            "rs => rs.map(r => [r.dataset.job, r.querySelector('td .badge').textContent])",
        )
        shown: dict[str, list[str]] = {}
        for job, state in rows:
            shown.setdefault(job, []).append(state)
        assert shown == expected, shown
        shots(page, "runs")

        # ---- 2. a model's run, then its graph: dbt's upstream datasets
        page.click(f"tr[data-job='{MODEL_JOB}'] a.run-link")
        page.wait_for_selector(".run-title")
        assert MODEL_JOB in page.inner_text(".run-title")
        assert "COMPLETE" in page.inner_text(".run-title")
        shots(page, "model-run")
        page.click("#run-graph-link")
        page.wait_for_selector("svg.graph g.node")
        nodes = graph_nodes(page)
        prefix = f"dataset:{namespace}:"
        datasets = {n.removeprefix(prefix) for n in nodes if n.startswith(prefix)}
        assert datasets - {MODEL_OUTPUT} == upstream, (datasets, upstream)
        assert all(n.startswith((prefix, "job:dbt:")) for n in nodes), nodes
        model_node = page.locator(f"g.node[data-node-id='job:dbt:{MODEL_JOB}']")
        assert model_node.get_attribute("data-state") == "COMPLETE"
        shots(page, "lineage")
        page.click("#fit-button")  # the whole graph: every upstream dataset in view
        shots(page, "lineage-fit")

        # column lineage in the dataset's side panel
        page.click(f"g.node[data-node-id='{prefix}{MODEL_OUTPUT}']")
        page.wait_for_selector(f"#side-panel[data-node-id='{prefix}{MODEL_OUTPUT}']")
        page.click("#side-panel button:has-text('Column lineage')")
        page.wait_for_selector("#side-panel ul.column-list li")
        listed = page.eval_on_selector_all(
            "#side-panel ul.column-list li", "els => els.map(e => e.textContent)"
        )
        assert set(listed) == column_lines, listed
        shots(page, "column-lineage")

        # ---- 3. the tested dataset: Quality lists the test run and its checks
        page.click("#fit-button")  # selecting a node moved the graph to it
        page.click(f"g.node[data-node-id='{prefix}{TESTED}']")
        page.wait_for_selector(f"#side-panel[data-node-id='{prefix}{TESTED}']")
        page.click("#side-panel .panel-links a:text-is('Quality')")
        page.wait_for_selector("table.assertion-grid tbody tr")
        assert page.inner_text(".dataset-title") == TESTED
        grid = page.eval_on_selector_all(
            "table.assertion-grid tbody tr",
            "rs => rs.map(r => [r.dataset.assertion, r.dataset.column,"
            " r.querySelector('td[class^=cell-]').className])",
        )
        assert {(a, c) for a, c, _ in grid} == checks, grid
        for assertion, column, cell in grid:
            failing = (assertion, column) == ("not_null", "customer_id")
            assert cell == ("cell-fail" if failing else "cell-pass"), (assertion, column, cell)
        quality_runs = page.locator("table.quality-runs tbody tr")
        assert quality_runs.count() == 1
        assert "FAIL" in quality_runs.first.inner_text()
        assert "1 open issue" in page.inner_text(".quality-summary")
        shots(page, "quality")

        # ---- 4. Issues: the assertion_failed issue of the failing test
        page.click("#nav a[data-nav=issues]")
        row = page.locator(f"tr[data-issue-id='{issue['issue_id']}']")
        row.wait_for()
        assert row.get_attribute("data-kind") == "assertion_failed"
        text = row.inner_text()
        assert TESTED in text and "customer_id" in text, text
        assert page.locator("table.issues-table tr[data-kind=assertion_failed]").count() == 1
        # the failing test job and the `dbt-ol test` invocation: run_failed
        failed_jobs = page.eval_on_selector_all(
            "table.issues-table tr[data-kind=run_failed]", "rs => rs.map(r => r.cells[5].innerText)"
        )
        assert sorted(failed_jobs) == [WRAPPER_JOB, "lh.main.lh_shop.stg_orders.test"], failed_jobs
        shots(page, "issues")

        assert errors == [], errors
