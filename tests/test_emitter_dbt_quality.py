"""dbt-ol data quality, for real: the sample dbt project (dbt-core + dbt-duckdb) is seeded,
run and tested with the OpenLineage Kafka transport into the running worker twice. In the
first round one generic test of `stg_orders` fails (seed order 105 has no customer) while
the model's other tests pass; then the seed is fixed and the project runs again.

One `assertion_failed` issue must open on the failing check's dataset and column and be
resolved by the second test run, and the dataset's quality history must show both test
runs with the pass/fail counts dbt's own run_results.json states. The project is a copy
of tests/emitters/dbt_project (the shared one is left as it is)."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client

from lineagehouse.settings import Settings
from lineagehouse.store.migrations import migrate
from lineagehouse.topics import ensure_topics
from tests.conftest import REPO, redeliver_stored_events, wait_for
from tests.emitters import dbt_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

MODEL = "model.lh_shop.stg_orders"
JOB_NAMESPACE = "dbt"
BROKEN_ROW = "105,,7.75,completed"
FIXED_ROW = "105,2,7.75,completed"


def outcomes_of(project: Path, model: str) -> dict[str, dict[str, Any]]:
    """dbt's outcome of every test of the last invocation whose tested node is `model`,
    by test unique_id: {assertion, column, name, status}. The tested node is picked as
    dbt-ol does: the last model/source/seed parent of the test in parent_map."""
    target = project / "target"
    results = json.loads((target / "run_results.json").read_text())
    manifest = json.loads((target / "manifest.json").read_text())
    assert results["args"]["which"] == "test"
    found: dict[str, dict[str, Any]] = {}
    for result in results["results"]:
        unique_id = result["unique_id"]
        if not unique_id.startswith("test."):
            continue
        parents = [
            p
            for p in manifest["parent_map"][unique_id]
            if p.startswith(("model.", "source.", "seed."))
        ]
        if not parents or parents[-1] != model:
            continue
        node = manifest["nodes"][unique_id]
        metadata = node.get("test_metadata") or {}
        found[unique_id] = {
            "assertion": metadata.get("name") or node["name"],
            "column": (metadata.get("kwargs") or {}).get("column_name") or node.get("column_name"),
            "name": node["name"],
            "status": result["status"],
        }
    return found


def names(project: Path, model: str) -> tuple[str, str]:
    """The model's dataset name and the name of the job dbt-ol runs its tests under."""
    node = json.loads((project / "target" / "manifest.json").read_text())["nodes"][model]
    prefix = f"{node['database']}.{node['schema']}"
    return f"{prefix}.{node['alias']}", f"{prefix}.{model.removeprefix('model.')}.test"


def count(outcomes: dict[str, dict[str, Any]], status: str) -> int:
    return sum(1 for o in outcomes.values() if o["status"] == status)


def test_dbt_failing_test_opens_and_resolves_an_issue(
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
    db = settings.clickhouse.database

    project = dbt_env.copy_project(tmp_path / "project")
    duckdb_path = tmp_path / "lh.duckdb"
    env = {
        "DBT_DUCKDB_PATH": str(duckdb_path),
        **dbt_env.kafka_transport_env(settings.kafka.bootstrap_servers, settings.topics.events),
    }

    def dbt_round(test_exit_code: int) -> dict[str, dict[str, Any]]:
        for command, exit_code in (("seed", 0), ("run", 0), ("test", test_exit_code)):
            done = dbt_env.run_dbt_ol(bin_dir, project, [command], env)
            assert done.returncode == exit_code, f"dbt-ol {command}:\n{done.stdout[-3000:]}"
        return outcomes_of(project, MODEL)

    # ---- round 1: exactly one test of stg_orders fails, the others pass
    round1 = dbt_round(1)
    failing = [o for o in round1.values() if o["status"] == "fail"]
    assert len(failing) == 1, round1
    (failed,) = failing
    assert failed["assertion"] == "not_null" and failed["column"] == "customer_id", failed
    passed1 = count(round1, "pass")
    assert passed1 >= 1 and passed1 + 1 == len(round1), round1
    # No test of any other node failed: this is the only assertion_failed issue to expect.
    name, job_name = names(project, MODEL)
    statuses = dbt_env.run_results(project)  # {job name: worst test status}
    assert {job for job, status in statuses.items() if status != "pass"} == {job_name}, statuses
    namespace = f"duckdb://{duckdb_path}"

    url = start_api(settings, LINEAGEHOUSE_API__AUTH_ENABLED="false")

    def issues(**params: str) -> list[dict[str, Any]]:
        resp = httpx.get(
            f"{url}/api/v2/issues",
            params={"kind": "assertion_failed", "limit": "1000", **params},
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert body["total"] == len(body["items"]), body
        return body["items"]

    def quality(runs: int = 10) -> dict[str, Any]:
        seg = urllib.parse.quote
        resp = httpx.get(
            f"{url}/api/v2/datasets/{seg(namespace, safe='')}/{seg(name, safe='')}/quality",
            params={"runs": runs},
        )
        assert resp.status_code == 200, resp.text
        return resp.json()

    def test_runs() -> list[str]:
        """Run ids of the stg_orders test job, oldest first."""
        rows = ch.query(
            f"SELECT run_id FROM {db}.run_states WHERE job_name = {{job:String}} "
            "AND ended_at IS NOT NULL ORDER BY started, run_id",
            parameters={"job": job_name},
        ).result_rows
        return [r[0] for r in rows]

    opened = wait_for(
        lambda: issues(dataset_name=name), 180, "the assertion_failed issue", alive=worker
    )
    wait_for(lambda: len(test_runs()) == 1, 60, "the first test run's state", alive=worker)
    (run1,) = test_runs()
    assert len(opened) == 1, opened
    issue = opened[0]
    assert issue["status"] == "open", issue
    assert issue["dataset"] == {"namespace": namespace, "name": name}
    assert issue["namespace"] == namespace
    assert issue["column"] == failed["column"]
    assert issue["assertion"] == failed["assertion"]
    assert issue["details"]["check_name"] == failed["name"]
    assert issue["job"] == {"namespace": JOB_NAMESPACE, "name": job_name}
    assert issue["run_id"] == run1
    assert issue["resolved_at"] is None and issue["resolved_by_run"] is None
    # Nothing else failed, so nothing else raised an assertion_failed issue.
    assert [i["issue_id"] for i in issues()] == [issue["issue_id"]]

    first = quality()
    assert [r["run_id"] for r in first["runs"]] == [run1], first["runs"]
    assert first["runs"][0]["counts"] == {"pass": passed1, "fail": 1, "skipped": 0}
    assert first["open_issues"] == 1

    # ---- round 2: fix the seed; every test of stg_orders passes
    seed = project / "seeds" / "raw_orders.csv"
    text = seed.read_text()
    assert text.count(BROKEN_ROW) == 1, text
    seed.write_text(text.replace(BROKEN_ROW, FIXED_ROW))
    round2 = dbt_round(0)
    assert set(round2) == set(round1)
    assert count(round2, "pass") == len(round2) == passed1 + 1, round2

    wait_for(lambda: len(test_runs()) == 2, 180, "the second test run's state", alive=worker)
    run2 = test_runs()[1]
    assert run2 != run1
    resolved = wait_for(
        lambda: [i for i in issues(dataset_name=name) if i["status"] == "resolved"],
        180,
        "the assertion_failed issue to resolve",
        alive=worker,
    )
    assert len(resolved) == 1, resolved
    after = resolved[0]
    assert after["issue_id"] == issue["issue_id"]
    assert after["resolved_by_run"] == run2, (after, run1, run2)
    assert after["resolved_at"] is not None and after["resolved_at"] >= after["opened_at"]
    assert after["run_id"] == run1 and after["column"] == failed["column"]
    # Still exactly one assertion_failed issue: the second round raised none.
    assert [i["issue_id"] for i in issues()] == [issue["issue_id"]]

    # ---- the quality history: both test runs, newest first, with dbt's counts
    def both_runs() -> dict[str, Any] | None:
        found = quality()
        return found if len(found["runs"]) == 2 else None

    history = wait_for(
        both_runs,
        60,
        "both test runs in the quality history",
        alive=worker,
    )
    runs = history["runs"]
    assert [r["run_id"] for r in runs] == [run2, run1], runs
    assert runs[0]["counts"] == {"pass": passed1 + 1, "fail": 0, "skipped": 0}
    assert runs[1]["counts"] == {"pass": passed1, "fail": 1, "skipped": 0}
    assert runs[0]["state"] == "COMPLETE" and runs[1]["state"] == "FAIL"
    for run, outcomes in ((runs[1], round1), (runs[0], round2)):
        got = {
            (a["assertion"], a["column"], a["check_name"], a["status"]) for a in run["assertions"]
        }
        want = {(o["assertion"], o["column"], o["name"], o["status"]) for o in outcomes.values()}
        assert got == want, (run["run_id"], got, want)
    summary = {(s["assertion"], s["column"], s["check_name"]): s for s in history["assertions"]}
    check = summary[(failed["assertion"], failed["column"], failed["name"])]
    assert (check["passed"], check["failed"], check["last_status"]) == (1, 1, "pass"), check
    assert history["open_issues"] == 0

    # ---- every event of the test delivered twice more: no issue count changes
    def all_issues() -> list[dict[str, Any]]:
        resp = httpx.get(f"{url}/api/v2/issues", params={"limit": 1000})
        assert resp.status_code == 200, resp.text
        return resp.json()["items"]

    everything = sorted((i["issue_id"], i["status"]) for i in all_issues())
    assert redeliver_stored_events(settings, ch, times=2) > 0
    assert sorted((i["issue_id"], i["status"]) for i in all_issues()) == everything
    assert ch.command(f"SELECT count() FROM {db}.issues FINAL") == len(everything)
