"""dbt-ol, for real: a dbt project (dbt-core + dbt-duckdb) run and tested with the
OpenLineage Kafka transport into the running worker. The stored io edges must equal the
model dependencies dbt's own manifest.json states, and every run's final state dbt's
result (run_results.json). dbt-ol runs in a virtualenv of its own (tests/emitters)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from clickhouse_connect.driver.client import Client

from lineagehouse.settings import Settings
from lineagehouse.store.migrations import migrate
from lineagehouse.topics import ensure_topics
from tests.conftest import REPO, wait_for
from tests.emitters import dbt_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

# dbt's status of a node -> the final OpenLineage state dbt-ol reports for its run.
EXPECTED_STATE = {
    "success": "COMPLETE",
    "pass": "COMPLETE",
    "warn": "COMPLETE",
    "error": "FAIL",
    "fail": "FAIL",
}
WRAPPER_JOB = "dbt-run-lh_shop"


def final_states(ch: Client, db: str) -> dict[str, list[str]]:
    rows = ch.query(
        f"SELECT job_name, state_name FROM {db}.run_states ORDER BY started"
    ).result_rows
    states: dict[str, list[str]] = {}
    for job, state in rows:
        states.setdefault(job, []).append(state)
    return states


def closure(start: str, pairs: set[tuple[str, str]]) -> set[str]:
    """Everything `start` reaches through (from, to) pairs, walking from `to` to `from`."""
    found: set[str] = set()
    todo = [start]
    while todo:
        node = todo.pop()
        for before, after in pairs:
            if after == node and before not in found:
                found.add(before)
                todo.append(before)
    return found


def test_dbt_run_and_test_over_kafka(
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
    env = {
        "DBT_DUCKDB_PATH": str(tmp_path / "lh.duckdb"),
        **dbt_env.kafka_transport_env(settings.kafka.bootstrap_servers, settings.topics.events),
    }
    for command, exit_code in (("seed", 0), ("run", 0), ("test", 1)):
        done = dbt_env.run_dbt_ol(bin_dir, project, [command], env)
        assert done.returncode == exit_code, f"dbt-ol {command}:\n{done.stdout[-3000:]}"
        if command == "run":
            run_statuses = dbt_env.run_results(project)
            edges = dbt_env.manifest_edges(project, include_seeds=False)
    test_statuses = dbt_env.run_results(project)

    expected = {**run_statuses, **test_statuses}
    assert len(run_statuses) == 5 and any(s == "fail" for s in test_statuses.values())
    wait_for(
        lambda: (
            set(expected) <= set(final_states(ch, db))
            and len(final_states(ch, db).get(WRAPPER_JOB, [])) == 3
            and ch.command(f"SELECT count() FROM {db}.run_states WHERE ended_at IS NULL") == 0
        ),
        180,
        "every dbt node's run to finish in ClickHouse",
        alive=worker,
    )

    # Every run's final state is dbt's result.
    states = final_states(ch, db)
    for job, status in expected.items():
        assert states[job] == [EXPECTED_STATE[status]], (job, status, states[job])
    assert states[WRAPPER_JOB] == ["COMPLETE", "COMPLETE", "FAIL"]  # seed, run, test

    # The io edges of the model runs are dbt's model dependencies.
    stored = ch.query(
        f"""
        SELECT i.name, o.name
        FROM (SELECT run_id, name FROM {db}.io_edges FINAL WHERE direction = 'input') AS i
        JOIN (SELECT run_id, name FROM {db}.io_edges FINAL WHERE direction = 'output') AS o
          ON i.run_id = o.run_id
        JOIN (SELECT run_id FROM {db}.run_states WHERE job_type = 'MODEL') AS r
          ON r.run_id = i.run_id
        """
    ).result_rows
    assert set(map(tuple, stored)) == edges

    # Every model and test run hangs under the dbt invocation that ran it.
    orphans = ch.command(
        f"SELECT count() FROM {db}.run_states "
        f"WHERE job_name != '{WRAPPER_JOB}' AND (parent_job_name != '{WRAPPER_JOB}' "
        f"OR root_job_name != '{WRAPPER_JOB}' OR parent_run_id != root_run_id)"
    )
    assert orphans == 0
    # The failing test's assertions arrived as facets of its input dataset.
    assertions = ch.command(
        f"SELECT count() FROM {db}.facets FINAL WHERE has(facet_names, 'dataQualityAssertions')"
    )
    assert assertions > 0

    # The API's lineage of every model is the closure of dbt's dependencies, both ways.
    url = start_api(settings, LINEAGEHOUSE_API__AUTH_ENABLED="false")
    namespace_of = dict(ch.query(f"SELECT DISTINCT name, namespace FROM {db}.io_edges").result_rows)
    reverse = {(after, before) for before, after in edges}
    models = {after for _, after in edges}
    for model in models:
        for direction, pairs in (("upstream", edges), ("downstream", reverse)):
            resp = httpx.get(
                f"{url}/api/v2/lineage",
                params={
                    "node_id": f"dataset:{namespace_of[model]}:{model}",
                    "direction": direction,
                    "depth": 50,
                },
            )
            assert resp.status_code == 200, resp.text
            got = {n["name"] for n in resp.json()["nodes"] if n["type"] == "dataset"}
            assert got - {model} == closure(model, pairs), (model, direction)
