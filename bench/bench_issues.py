"""Benchmark: the issues stage's evaluation of one batch, against the size of the history.

Run: python bench/bench_issues.py [--runs 1000000] [--jobs 10000] [--repeat 5]

Starts the embedded ClickHouse server, writes `--runs` finished runs spread over `--jobs`
jobs straight into `runs` (`INSERT ... SELECT FROM numbers()`; the `job_runs` view fills
as in production), then times `IssueDetector.evaluate` (what the stage does per batch:
read each touched job's latest runs from ClickHouse and apply the rules) for batches
touching 1, 20, 200 and 2,000 jobs, each by one new finished run: reading every history
whole (`issues.history_cache_subjects=0`), and with the histories kept from an earlier
batch (the default), which reads only the touched runs. The reference, measured in the
same run: one full read of the merged run history (`runs FINAL`, the job and state of
every run).

Prints a table and one JSON line at the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import clickhouse_connect

from lineagehouse.embedded.process import free_port, stop_process
from lineagehouse.processors.issue_stage import IssueDetector, Subjects
from lineagehouse.settings import load_settings
from lineagehouse.store.migrations import migrate

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.conftest import start_clickhouse  # noqa: E402

BATCHES = (1, 20, 200, 2000)
RUN_COLUMNS = (
    "run_id",
    "job_namespace",
    "job_name",
    "state",
    "started_at",
    "first_event_time",
    "last_event_time",
    "event_types",
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000_000)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        log = open(Path(tmp) / "clickhouse.log", "wb")  # noqa: SIM115
        port = free_port()
        proc = start_clickhouse(Path(tmp), port, log)
        try:
            result = measure(args, f"http://127.0.0.1:{port}", port, tmp)
        finally:
            stop_process(proc)
            log.close()
    print(f"\n{'measure':<52}{'value':>12}")
    print("-" * 64)
    print(f"{'reference: full read of runs FINAL, s':<52}{result['full_read_s']:>12.3f}")
    for jobs, seconds in result["evaluate_s"].items():
        label = f"evaluate a batch touching {jobs} job(s), s (median)"
        print(f"{label:<52}{seconds:>12.3f}")
        ratio = seconds / result["full_read_s"]
        print(f"{'  ratio to the full read':<52}{ratio:>12.2f}")
        kept = result["evaluate_kept_s"][jobs]
        print(f"{'  histories kept: read only the touched runs, s':<52}{kept:>12.3f}")
        ratio = kept / result["full_read_s"]
        print(f"{'  ratio to the full read':<52}{ratio:>12.2f}")
    print(json.dumps({"bench": "issues", **result}))


def measure(args: argparse.Namespace, url: str, port: int, tmp: str) -> dict:
    settings = load_settings(
        data_dir=Path(tmp), clickhouse={"url": url, "database": "bench_issues"}
    )
    migrate(settings)
    client = clickhouse_connect.get_client(host="127.0.0.1", port=port)
    started = time.perf_counter()
    client.command(
        f"""
        INSERT INTO bench_issues.runs (run_id, job_namespace, job_name, state, started_at,
                                       first_event_time, last_event_time, event_types)
        SELECT toString(generateUUIDv4()), 'bench', concat('job_', toString(number % {args.jobs})),
               tuple(1, toDateTime64('2026-01-01', 3, 'UTC') + number * 60, 'e',
                     if(number % 17 = 0, 'FAIL', 'COMPLETE')),
               toDateTime64('2026-01-01', 3, 'UTC') + number * 60 - 50 - number % 7,
               toDateTime64('2026-01-01', 3, 'UTC') + number * 60 - 60,
               toDateTime64('2026-01-01', 3, 'UTC') + number * 60, ['COMPLETE']
        FROM numbers({args.runs})
        """
    )
    print(
        f"{args.runs:,} runs of {args.jobs:,} jobs written in {time.perf_counter() - started:.1f} s"
    )
    full = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        client.command(
            "SELECT sum(length(job_name) + length(tupleElement(state, 'name'))) "
            "FROM (SELECT * FROM bench_issues.runs FINAL)"
        )
        full.append(time.perf_counter() - t)
    whole_settings = settings.model_copy(
        update={"issues": settings.issues.model_copy(update={"history_cache_subjects": 0})}
    )
    whole = IssueDetector(whole_settings, client)  # reads every history whole, every batch
    kept = IssueDetector(settings, client)  # reads a history whole once, then what changed
    evaluate: dict[int, float] = {}
    delta: dict[int, float] = {}
    fresh = iter(range(args.runs, args.runs * 2))  # numbers of the runs added per batch

    def add_runs(jobs: list[tuple[str, str]]) -> dict[tuple[str, str], set[str]]:
        """One more finished run for each job (later than all before): a batch's touch."""
        touched = {}
        rows = []
        for _, name in jobs:
            number = next(fresh)
            run_id = f"new-{number}"
            ended = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=number)
            state = (1, ended, "e", "FAIL" if number % 17 == 0 else "COMPLETE")
            started = ended - timedelta(seconds=50 + number % 7)
            rows.append([run_id, "bench", name, state, started, started, ended, ["COMPLETE"]])
            touched[("bench", name)] = {run_id}
        client.insert("bench_issues.runs", rows, column_names=RUN_COLUMNS)
        return touched

    for batch in BATCHES:
        step = max(args.jobs // batch, 1)
        jobs = [("bench", f"job_{i}") for i in range(0, args.jobs, step)[:batch]]
        subjects = Subjects()
        subjects.jobs = add_runs(jobs)
        kept.evaluate(subjects)  # the first batch of these jobs reads them whole
        kept.written()
        for detector, into in ((whole, evaluate), (kept, delta)):
            times = []
            for _ in range(args.repeat):
                subjects.jobs = add_runs(jobs)  # each job touched by one new run
                t = time.perf_counter()
                detector.evaluate(subjects)
                times.append(time.perf_counter() - t)
                detector.written()
            into[batch] = round(statistics.median(times), 4)
    return {
        "runs": args.runs,
        "jobs": args.jobs,
        "full_read_s": round(statistics.median(full), 4),
        "evaluate_s": evaluate,
        "evaluate_kept_s": delta,
    }


if __name__ == "__main__":
    main()
