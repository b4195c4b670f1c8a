"""The issue rules (pure): each against a brute-force reading of its definition where one
is short, and against hand-checked histories where the definition is the test."""

from __future__ import annotations

import random
import statistics

import pytest

from lineagehouse.processors.issues import (
    CheckResult,
    RunFact,
    SchemaFact,
    assertion_issues,
    mean_and_spread,
    run_issues,
    schema_diff,
    schema_issues,
)

MINUTE = 60_000


def completed(durations_s: list[float], start: int = 0, gap_ms: int = 3_600_000) -> list[RunFact]:
    runs = []
    for i, seconds in enumerate(durations_s):
        started = start + i * gap_ms
        runs.append(RunFact(f"r{i:03d}", "COMPLETE", started + int(seconds * 1000), started))
    return runs


def test_one_slow_run_is_one_outlier_and_the_next_normal_run_resolves_it() -> None:
    rng = random.Random(7)
    durations = [60 + rng.uniform(-2, 2) for _ in range(10)] + [300.0, 60.5]
    issues = run_issues("ns", "job", completed(durations))
    assert [i.kind for i in issues] == ["duration_outlier"]
    (outlier,) = issues
    assert outlier.run_id == "r010"
    assert outlier.resolved_by_run == "r011"
    assert outlier.details["duration_ms"] == 300_000
    assert outlier.details["history_runs"] == 10


def test_outlier_needs_minimum_history_and_skips_streaming_jobs() -> None:
    runs = completed([60, 61, 59, 60, 300])  # only 4 runs before the slow one
    assert run_issues("ns", "job", runs, min_history=5) == []
    assert len(run_issues("ns", "job", runs, min_history=4)) == 1
    assert run_issues("ns", "job", runs, min_history=4, streaming=True) == []


def test_jitter_within_ten_percent_is_not_an_outlier() -> None:
    # identical durations: stddev 0, so only the 10% floor keeps 63 s in range
    assert run_issues("ns", "job", completed([60] * 8 + [63])) == []
    assert len(run_issues("ns", "job", completed([60] * 8 + [67]))) == 1


def test_outliers_match_the_definition_on_random_histories() -> None:
    rng = random.Random(1)
    for _ in range(200):
        durations = [rng.choice([10, 60, 61, 62, 200]) * 1.0 for _ in range(rng.randint(1, 40))]
        window, min_history = rng.randint(2, 10), rng.randint(2, 6)
        got = {
            i.run_id
            for i in run_issues(
                "n", "j", completed(durations), window=window, min_history=min_history
            )
        }
        expected = set()
        for index, seconds in enumerate(durations):
            history = [d * 1000 for d in durations[:index]][-window:]
            if len(history) < min_history:
                continue
            mean, spread = statistics.fmean(history), statistics.pstdev(history)
            if abs(seconds * 1000 - mean) > max(3 * spread, 0.1 * mean):
                expected.add(f"r{index:03d}")
        assert got == expected


def test_mean_and_spread_agree_with_the_exact_statistics() -> None:
    rng = random.Random(2)
    for _ in range(500):
        values = [rng.choice([0, 1, 60_000, 3_600_000, rng.randint(0, 10**9)]) for _ in range(30)]
        count = rng.randint(1, 30)
        mean, spread = mean_and_spread(values[:count])
        assert mean == pytest.approx(statistics.fmean(values[:count]), rel=1e-12, abs=1e-9)
        assert spread == pytest.approx(statistics.pstdev(values[:count]), rel=1e-9, abs=1e-6)
    assert mean_and_spread([60_000] * 30) == (60_000, 0.0)  # equal runs: no spread at all


def test_runs_are_ordered_by_event_time_not_by_arrival() -> None:
    runs = completed([60, 61, 59, 60, 62, 300, 60])
    shuffled = runs[:]
    random.Random(3).shuffle(shuffled)
    assert run_issues("ns", "job", shuffled) == run_issues("ns", "job", runs)


def test_a_failed_run_is_resolved_by_the_next_complete() -> None:
    runs = [
        RunFact("a", "COMPLETE", 1 * MINUTE),
        RunFact("b", "FAIL", 2 * MINUTE, error_message="division by zero"),
        RunFact("c", "ABORT", 3 * MINUTE),
        RunFact("d", "COMPLETE", 4 * MINUTE),
        RunFact("e", "FAIL", 5 * MINUTE),
    ]
    issues = {i.run_id: i for i in run_issues("ns", "job", runs)}
    assert set(issues) == {"b", "c", "e"}
    assert issues["b"].severity == "error" and "division by zero" in issues["b"].summary
    assert issues["c"].severity == "warning"
    assert issues["b"].resolved_by_run == issues["c"].resolved_by_run == "d"
    assert issues["e"].resolved_at is None
    # the ids depend on kind, subject and run only: a longer history gives the same ids
    longer = run_issues("ns", "job", [*runs, RunFact("f", "COMPLETE", 6 * MINUTE)])
    assert {i.issue_id for i in longer} == {i.issue_id for i in issues.values()}
    assert {i.run_id: i.resolved_by_run for i in longer}["e"] == "f"


def test_truncated_history_does_not_judge_runs_without_their_window() -> None:
    runs = completed([60] * 5 + [300] + [60] * 3)
    assert len(run_issues("ns", "job", runs, window=30)) == 1
    assert run_issues("ns", "job", runs, window=30, history_complete=False) == []


def test_assertion_failures_open_and_the_next_pass_resolves_them() -> None:
    results = [
        CheckResult("r1", 1, "pass"),
        CheckResult("r2", 2, "fail", severity="error", actual="3"),
        CheckResult("r3", 3, "skipped"),
        CheckResult("r4", 4, "fail", severity="warn"),
        CheckResult("r5", 5, "pass"),
        CheckResult("r6", 6, "fail"),
    ]
    issues = assertion_issues("db", "orders", "not_null", "id", "not_null_orders_id", results)
    by_run = {i.run_id: i for i in issues}
    assert set(by_run) == {"r2", "r4", "r6"}
    assert by_run["r2"].resolved_by_run == by_run["r4"].resolved_by_run == "r5"
    assert by_run["r4"].severity == "warning" and by_run["r2"].severity == "error"
    assert by_run["r6"].resolved_at is None
    assert by_run["r2"].column_name == "id" and by_run["r2"].details["actual"] == "3"


def test_schema_changes_between_consecutive_outputs() -> None:
    a = [("id", "int"), ("name", "string")]
    b = [("id", "int"), ("name", "string"), ("email", "string")]
    c = [("id", "bigint"), ("email", "string")]
    writes = [
        SchemaFact("r1", 1, "A", a),
        SchemaFact("r2", 2, "A", a),
        SchemaFact("r3", 3, "B", b),
        SchemaFact("r4", 4, "", []),  # a run without a schema changes nothing
        SchemaFact("r5", 5, "C", c),
    ]
    issues = schema_issues("db", "users", list(reversed(writes)))
    assert [(i.run_id, i.severity) for i in issues] == [("r3", "info"), ("r5", "breaking")]
    assert issues[0].resolved_by_run == "r3"  # informational: resolved as it opens
    assert issues[1].resolved_at is None
    assert issues[1].details["removed"] == ["name"]
    assert issues[1].details["retyped"] == [{"name": "id", "from": "int", "to": "bigint"}]
    assert schema_diff(a, a) == {"added": [], "removed": [], "retyped": []}
