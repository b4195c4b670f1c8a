"""Benchmark: lineage query latency of the API's in-memory index, at 10k, 100k and 1M edges,
and of the dataset pages (ClickHouse reads) at the same sizes.

Run: python bench/bench_lineage.py [--sizes 10000,100000,1000000] [--requests 200]
     [--page-requests 50] [--max-nodes 1000] [--seed 7] [--generate-only]

Starts the embedded broker and ClickHouse server, and for each size writes a seeded,
layered lineage graph straight into `io_edges` and `runs` of a database of its own
(`INSERT ... SELECT FROM numbers()`, no Kafka), then starts `lineagehouse api` on that
database and measures from a keep-alive HTTP client:

  - the generation time, the API's warm-up (start until /readyz is 200) and its peak RSS;
  - p50/p95/max latency, median result node count and body size, and the share of
    truncated results of GET /api/v2/lineage for: downstream depth 5, upstream and
    downstream depth 20, both directions depth 5, and upstream depth 20 as of a time
    between each job's two runs (the same seeded start datasets for each);
  - a check that as-of answers show each job's older inputs and plain answers its newer;
  - the reference: a GET of an unknown path on the same connection (HTTP and FastAPI),
    and GET /readyz (20 times; it counts the index);
  - p50/p95/max latency of the dataset and job routes, for the first `--page-requests`
    start datasets and as many seeded jobs: GET /api/v2/datasets/{ns}/{name} (its
    jobs), .../versions, Marquez's GET /api/v1/namespaces/{ns}/datasets/{name} (its
    latest facets, last modification), GET /api/v1/lineage depth 2 (the same for every
    dataset of the answer, and every job's latest run), GET /api/v2/runs of a job and
    Marquez's job runs. These read ClickHouse, so their cost must follow the dataset or
    job, not the size of the store.

The graph (`--sizes` counts distinct (job, dataset) pairs; each must be a multiple of 8):

  - LAYERS (30) dataset layers; the jobs of job layer l read dataset layer l and write
    layer l+1 (jobs are dealt to the 29 job layers in turn);
  - every job writes 3 datasets of its own in the next layer (one writer per dataset),
    and reads 4 of the previous layer (seeded hash picks): one of the layer's "hub"
    tables (the first max(2, n/500) datasets of a layer of n: 20-30 readers each at 10k
    edges, 170-240 at 100k and 1M) and three others, one from each of three disjoint
    thirds of the rest of the layer (~1 reader each on average);
  - every job has 2 runs, an older one (day 1) and a newer one (day 2, after AS_OF);
    they write the same outputs and share 3 inputs, but the older run's third-range
    input is the next dataset after the newer run's, so a job has 4 + 3 + 1 = 8 distinct
    datasets and as-of lineage differs from the latest for every job;
  - io_edges first_seen/last_seen = the run's start; runs are COMPLETE 10 minutes later;
  - one `facets` row per edge: the dataset's schema (10 columns) and dataSource facets.

Prints a table and one JSON line at the end.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import clickhouse_connect
import httpx
import orjson
from clickhouse_connect.driver.client import Client

from lineagehouse.embedded.broker import start_broker
from lineagehouse.embedded.process import free_port, stop_process
from lineagehouse.processors.hashing import blake2b
from lineagehouse.processors.naming import identity
from lineagehouse.settings import Settings, load_settings
from lineagehouse.store.migrations import migrate
from lineagehouse.topics import ensure_topics

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from tests.conftest import settings_env, start_clickhouse  # noqa: E402

LAYERS = 30  # dataset layers; LAYERS - 1 job layers
INPUTS, OUTPUTS = 4, 3  # per run; plus 1 input only the older run read
PAIRS_PER_JOB = INPUTS + OUTPUTS + 1
HUB_EVERY = 500  # a layer of n datasets has max(2, n // HUB_EVERY) hubs
JOB_NS = "etl"
DS_NS = "postgres://warehouse:5432"
T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z: older runs start on day 1, newer on day 2
AS_OF = "2026-01-01T18:00:00Z"  # after every older run's start, before every newer one's
RUN_MS = 600_000
READY_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Shape:
    """Where things are in the graph of one size."""

    edges: int

    @property
    def jobs(self) -> int:
        return self.edges // PAIRS_PER_JOB

    @property
    def job_layers(self) -> int:
        return LAYERS - 1

    def jobs_in(self, job_layer: int) -> int:
        base, extra = divmod(self.jobs, self.job_layers)
        return base + (1 if job_layer < extra else 0)

    def datasets_in(self, layer: int) -> int:
        return OUTPUTS * self.jobs_in(max(layer - 1, 0))

    def hubs_in(self, layer: int) -> int:
        return max(2, self.datasets_in(layer) // HUB_EVERY)


def dataset_name(layer: int, idx: int) -> str:
    return f"analytics.l{layer:02d}_t{idx:06d}"


def short(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n / 1000:g}k"


# --- generation in ClickHouse ----------------------------------------------------------

# One row per (job j, run r): r = 0 is the older run, r = 1 the newer.
_RUNS_SQL = """
SELECT
    j, r, layer, idx,
    concat('l', leftPad(toString(layer), 2, '0'), '.job', leftPad(toString(idx), 6, '0'))
        AS job_name,
    toString(reinterpretAsUUID(sipHash128({seed}, j, r))) AS run_id,
    fromUnixTimestamp64Milli(toInt64({t0} + r * 86400000 + (j % 43200) * 1000), 'UTC')
        AS started,
    fromUnixTimestamp64Milli(toInt64({t0} + r * 86400000 + (j % 43200) * 1000 + {run_ms}), 'UTC')
        AS ended
FROM (SELECT number AS j, j % {job_layers} AS layer, intDiv(j, {job_layers}) AS idx
      FROM numbers({jobs}))
ARRAY JOIN [0, 1] AS r
"""

# Per run: its inputs (in the job's layer) and outputs (the next layer) as (direction,
# dataset layer, dataset index); the input ranges are described in the module docstring.
_EDGES_SQL = """
SELECT
    job_name, run_id, started,
    if(e.1 = 0, 'input', 'output') AS direction,
    toUInt16(e.2) AS ds_layer,
    toUInt32(e.3) AS ds_idx
FROM (
    SELECT *,
        toUInt64({outputs} * (intDiv({jobs}, {job_layers})
            + if(if(layer = 0, 0, layer - 1) < {jobs} % {job_layers}, 1, 0))) AS n_in,
        toUInt64(greatest(2, intDiv(n_in, {hub_every}))) AS hubs,
        toUInt64(intDiv(n_in - hubs, 3)) AS span,
        sipHash64({seed}, j, 4) % span AS last_pick,
        arrayMap(x -> toUInt64(x), [
            sipHash64({seed}, j, 0) % hubs,
            hubs + sipHash64({seed}, j, 1) % span,
            hubs + span + sipHash64({seed}, j, 2) % span,
            hubs + 2 * span + if(r = 1, last_pick, (last_pick + 1) % span)]) AS inputs,
        arrayConcat(
            arrayMap(x -> (0, toUInt64(layer), x), inputs),
            arrayMap(o -> (1, toUInt64(layer + 1), toUInt64(idx * {outputs} + o)), range({outputs}))
        ) AS io
    FROM ({runs})
)
ARRAY JOIN io AS e
"""


def runs_sql(shape: Shape, seed: int) -> str:
    return _RUNS_SQL.format(
        seed=seed, t0=T0_MS, run_ms=RUN_MS, job_layers=shape.job_layers, jobs=shape.jobs
    )


def edges_sql(shape: Shape, seed: int) -> str:
    return _EDGES_SQL.format(
        runs=runs_sql(shape, seed),
        seed=seed,
        jobs=shape.jobs,
        job_layers=shape.job_layers,
        outputs=OUTPUTS,
        hub_every=HUB_EVERY,
    )


def generate(client: Client, db: str, shape: Shape, seed: int) -> float:
    """Write the graph of `shape` into `db`; returns the seconds it took."""
    started = time.perf_counter()
    client.command(
        f"CREATE TABLE {db}.bench_dataset_keys (layer UInt16, idx UInt32, dataset_key String) "
        "ENGINE = MergeTree ORDER BY (layer, idx)"
    )
    keys = [
        (layer, idx, identity(DS_NS, dataset_name(layer, idx), None)[0])
        for layer in range(LAYERS)
        for idx in range(shape.datasets_in(layer))
    ]
    client.insert(
        f"{db}.bench_dataset_keys",
        keys,
        column_names=["layer", "idx", "dataset_key"],
        column_type_names=["UInt16", "UInt32", "String"],
    )
    edges = edges_sql(shape, seed)
    client.command(
        f"""INSERT INTO {db}.io_edges (job_namespace, job_name, run_id, direction, namespace,
            name, dataset_key, version_id, first_seen, last_seen)
        SELECT '{JOB_NS}', e.job_name, e.run_id, e.direction, '{DS_NS}',
            concat('analytics.l', leftPad(toString(e.ds_layer), 2, '0'), '_t',
                   leftPad(toString(e.ds_idx), 6, '0')),
            k.dataset_key, concat('v-', k.dataset_key), e.started, e.started
        FROM ({edges}) AS e
        INNER JOIN {db}.bench_dataset_keys AS k ON k.layer = e.ds_layer AND k.idx = e.ds_idx""",
        settings={"max_insert_threads": 2},
    )
    # One dataset facets row per edge, as a run event's input or output carries it (each
    # facet named with its value's id), the two values once, and each dataset's latest
    # value of each facet: what the dataset pages read.
    values = {name: orjson.dumps(body) for name, body in DATASET_FACETS.items()}
    ids = {name: blake2b(value, 16).hexdigest() for name, value in values.items()}
    client.insert(
        f"{db}.facet_values",
        [[ids[name], values[name]] for name in values],
        column_names=["facet_id", "facet_json"],
    )
    client.command(
        f"""INSERT INTO {db}.facets (event_id, event_time, run_id, entity_kind,
            entity_namespace, entity_name, facet_group, facet_names, facet_ids, custom,
            summarised)
        SELECT reinterpretAsUUID(sipHash128({seed}, run_id, direction, name)), first_seen,
            run_id, direction, namespace, name, 'facets', {{names:Array(String)}},
            {{ids:Array(String)}}, [], []
        FROM {db}.io_edges""",
        parameters={"names": list(ids), "ids": list(ids.values())},
        settings={"max_insert_threads": 2},
    )
    client.command(
        f"""INSERT INTO {db}.dataset_facets
        SELECT namespace, name, facet.1, max(tuple(first_seen,
            toString(reinterpretAsUUID(sipHash128({seed}, run_id, direction, name))),
            facet.2)), max(first_seen)
        FROM {db}.io_edges
        ARRAY JOIN arrayZip({{names:Array(String)}}, {{jsons:Array(String)}}) AS facet
        GROUP BY namespace, name, facet.1""",
        parameters={"names": list(values), "jsons": [v.decode() for v in values.values()]},
        settings={"max_insert_threads": 2},
    )
    # The catalog rows the pages start from: each dataset with one schema version (10
    # columns), each job with its latest run.
    client.command(
        f"""INSERT INTO {db}.datasets (namespace, name, dataset_key, first_seen, last_seen,
            version)
        SELECT namespace, name, any(dataset_key), min(first_seen), max(last_seen),
            tuple(min(first_seen), any(version_id))
        FROM {db}.io_edges GROUP BY namespace, name"""
    )
    client.command(
        f"""INSERT INTO {db}.dataset_versions (namespace, name, version_id, schema_hash,
            field_names, field_types, field_descriptions, fields_json)
        SELECT namespace, name, any(version_id), 'bench-10-columns',
            arrayMap(i -> concat('col_', toString(i)), range(10)),
            arrayResize(['BIGINT'], 10, 'BIGINT'), arrayResize([''], 10, ''), ''
        FROM {db}.io_edges GROUP BY namespace, name"""
    )
    runs = runs_sql(shape, seed)
    client.command(
        f"""INSERT INTO {db}.jobs (namespace, name, first_seen, last_seen, latest_run)
        SELECT '{JOB_NS}', job_name, min(started), max(started),
            tuple(max(started), argMax(run_id, started))
        FROM ({runs}) GROUP BY job_name"""
    )
    client.command(
        f"""INSERT INTO {db}.runs (run_id, job_namespace, job_name, state, started_at,
            first_event_time, last_event_time, producer, event_types)
        SELECT run_id, '{JOB_NS}', job_name,
            tuple(toUInt8(1), ended, toString(reinterpretAsUUID(sipHash128({seed}, j, r, 1))),
                  'COMPLETE'),
            started, started, ended, 'bench_lineage', ['START', 'COMPLETE']
        FROM ({runs})"""
    )
    client.command(f"DROP TABLE {db}.bench_dataset_keys")
    return time.perf_counter() - started


_SPEC = "https://openlineage.io/spec/facets"
# What each edge's dataset carries: a schema of 10 columns and a dataSource.
DATASET_FACETS = {
    "schema": {
        "_producer": "bench_lineage",
        "_schemaURL": f"{_SPEC}/1-1-0/SchemaDatasetFacet.json#/$defs/SchemaDatasetFacet",
        "fields": [{"name": f"col_{i}", "type": "BIGINT"} for i in range(10)],
    },
    "dataSource": {
        "_producer": "bench_lineage",
        "_schemaURL": f"{_SPEC}/1-0-0/DatasourceDatasetFacet.json#/$defs/DatasourceDatasetFacet",
        "name": "warehouse",
        "uri": DS_NS,
    },
}


def verify(client: Client, db: str, shape: Shape) -> dict[str, int]:
    """Check the stored graph with SQL: the pair count, runs, and the as-of difference."""
    q = client.command
    found = {
        "pairs": int(
            q(
                "SELECT count() FROM (SELECT DISTINCT job_namespace, job_name, namespace, name "
                f"FROM {db}.io_edges)"
            )
        ),
        "rows": int(q(f"SELECT count() FROM {db}.io_edges")),
        # the dataset index the views fill: one row per edge here, and one per facet
        "dataset_io": int(q(f"SELECT count() FROM {db}.dataset_io")),
        "facets": int(q(f"SELECT count() FROM {db}.facets")),
        # every dataset's two facets (schema, dataSource), the latest of each
        "dataset_facets": int(q(f"SELECT count() FROM {db}.dataset_facets FINAL")),
        "runs": int(q(f"SELECT count() FROM {db}.runs")),
        # every job's outputs are its own: 3 per job, one writer each
        "outputs": int(
            q(f"SELECT uniqExact(namespace, name) FROM {db}.io_edges WHERE direction = 'output'")
        ),
        "output_writers": int(
            q(
                f"SELECT uniqExact(namespace, name, job_name) FROM {db}.io_edges "
                "WHERE direction = 'output'"
            )
        ),
        # runs as of AS_OF: exactly one per job (the older), and none started later
        "runs_as_of": int(
            q(
                f"SELECT if(count() = uniqExact(job_name), count(), -1) FROM {db}.runs "
                f"WHERE started_at <= parseDateTime64BestEffort('{AS_OF}', 3, 'UTC')"
            )
        ),
        # (job, input) pairs one run alone read: the older run's and the newer run's 4th
        "inputs_one_run": int(
            q(
                f"SELECT count() FROM (SELECT job_name, name FROM {db}.io_edges "
                "WHERE direction = 'input' GROUP BY job_name, name HAVING count() = 1)"
            )
        ),
    }
    found_datasets = int(
        q(f"SELECT count() FROM (SELECT DISTINCT namespace, name FROM {db}.io_edges)")
    )
    expected = {
        "pairs": shape.edges,
        "rows": 2 * (INPUTS + OUTPUTS) * shape.jobs,
        "dataset_io": 2 * (INPUTS + OUTPUTS) * shape.jobs,
        "facets": 2 * (INPUTS + OUTPUTS) * shape.jobs,
        "dataset_facets": 2 * found_datasets,
        "runs": 2 * shape.jobs,
        "outputs": OUTPUTS * shape.jobs,
        "output_writers": OUTPUTS * shape.jobs,
        "runs_as_of": shape.jobs,
        "inputs_one_run": 2 * shape.jobs,
    }
    if found != expected:
        raise SystemExit(
            f"generated graph in {db} is not as designed:\n{found}\nexpected\n{expected}"
        )
    return {**found, "datasets": found_datasets}


def as_of_samples(client: Client, db: str, seed: int, n: int) -> list[tuple]:
    """(job node id, the older run's own input, the newer run's own input) for `n` jobs of
    the middle layers."""
    lo, hi = LAYERS // 3, 2 * LAYERS // 3
    rows = client.query(
        "SELECT job_name, argMin(name, first_seen), argMax(name, first_seen) FROM ("
        f"  SELECT job_name, name, min(first_seen) AS first_seen FROM {db}.io_edges"
        "   WHERE direction = 'input' GROUP BY job_name, name HAVING count() = 1)"
        f" WHERE toUInt32(substring(job_name, 2, 2)) BETWEEN {lo} AND {hi}"
        f" GROUP BY job_name ORDER BY sipHash64({seed}, job_name) LIMIT {n}"
    ).result_rows
    return [(f"job:{JOB_NS}:{job}", old, new) for job, old, new in rows]


# --- the API ---------------------------------------------------------------------------


@dataclass
class Scenario:
    label: str
    direction: str
    depth: int
    as_of: str | None = None
    ms: list[float] = field(default_factory=list)
    nodes: list[int] = field(default_factory=list)
    kb: list[float] = field(default_factory=list)
    truncated: int = 0

    def p(self, q: float) -> float:
        ordered = sorted(self.ms)
        return ordered[int(q * (len(ordered) - 1))]


def scenarios() -> list[Scenario]:
    return [
        Scenario("downstream d5", "downstream", 5),
        Scenario("upstream d20", "upstream", 20),
        Scenario("downstream d20", "downstream", 20),
        Scenario("both d5", "both", 5),
        Scenario("upstream d20 as-of", "upstream", 20, AS_OF),
    ]


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def peak_rss_mb(pid: int) -> float:
    """VmHWM of `pid` and its direct children, MB."""
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    total = 0.0
    for p in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024
    return total


def start_api(settings: Settings, log_path: Path) -> subprocess.Popen:
    env = {
        **settings_env(settings),
        "LINEAGEHOUSE_API__AUTH_ENABLED": "false",
        "LINEAGEHOUSE_LOG_LEVEL": "WARNING",
    }
    log = open(log_path, "wb")  # noqa: SIM115
    return subprocess.Popen(
        [sys.executable, "-m", "lineagehouse.cli", "api"], env=env, stdout=log, stderr=log
    )


def wait_ready(base: str, proc: subprocess.Popen, log_path: Path) -> dict[str, Any]:
    """Poll /readyz until 200; fail with the log's tail if the API exits, has no /readyz,
    or is not ready after READY_TIMEOUT_S."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    missing = 0
    with httpx.Client(base_url=base, timeout=10) as client:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise SystemExit(
                    f"the API exited with {proc.returncode} before /readyz was 200; "
                    f"its log:\n{tail(log_path)}"
                )
            try:
                resp = client.get("/readyz")
            except httpx.HTTPError:
                time.sleep(0.2)
                continue
            if resp.status_code == 200:
                return resp.json()
            missing = missing + 1 if resp.status_code == 404 else 0
            if missing >= 5:
                raise SystemExit(
                    "GET /readyz answers 404: this API has no readiness route yet "
                    f"(the lineage engine is not in place); its log:\n{tail(log_path)}"
                )
            time.sleep(0.2)
    raise SystemExit(
        f"the API was not ready after {READY_TIMEOUT_S:.0f} s (GET /readyz never 200); "
        f"its log:\n{tail(log_path)}"
    )


def lineage(
    client: httpx.Client,
    node: str,
    direction: str,
    depth: int,
    max_nodes: int,
    as_of: str | None = None,
) -> tuple[float, dict[str, Any], int]:
    """(milliseconds, answer, body bytes) of one GET /api/v2/lineage; exits on anything
    but 200."""
    params: dict[str, Any] = {
        "node_id": node,
        "direction": direction,
        "depth": depth,
        "max_nodes": max_nodes,
    }
    if as_of:
        params["as_of"] = as_of
    started = time.perf_counter()
    resp = client.get("/api/v2/lineage", params=params)
    elapsed = (time.perf_counter() - started) * 1000
    if resp.status_code != 200:
        raise SystemExit(
            f"GET /api/v2/lineage {params} answered {resp.status_code}: {resp.text[:500]}"
        )
    return elapsed, resp.json(), len(resp.content)


def start_nodes(shape: Shape, n: int, seed: int) -> list[str]:
    """`n` seeded dataset node ids of the middle dataset layers."""
    rnd = random.Random(seed)
    nodes = []
    for _ in range(n):
        layer = rnd.randint(LAYERS // 3, 2 * LAYERS // 3)
        idx = rnd.randrange(shape.datasets_in(layer))
        nodes.append(f"dataset:{DS_NS}:{dataset_name(layer, idx)}")
    return nodes


def timed_gets(
    client: httpx.Client, label: str, paths: list[str], expect: int | None = None
) -> Scenario:
    """Latency of a GET of each of `paths` (no traversal); with `expect`, any other status
    fails the run, and a Marquez `graph` answer counts its nodes."""
    sc = Scenario(label, "", 0)
    for path in paths:
        began = time.perf_counter()
        resp = client.get(path)
        sc.ms.append((time.perf_counter() - began) * 1000)
        if expect is not None and resp.status_code != expect:
            raise SystemExit(f"GET {path}: {resp.status_code} {resp.text[:300]}")
        sc.nodes.append(len(resp.json().get("graph", ())) if expect is not None else 0)
        sc.kb.append(len(resp.content) / 1024)
    return sc


def page_routes() -> list[tuple[str, str, str]]:
    """(kind, label, path) of the routes that dataset and job pages and Marquez's UI call
    ({ns}, {name}: URL-encoded; {node}: the node id); they read ClickHouse."""
    return [
        ("dataset", "v2 dataset", "/api/v2/datasets/{ns}/{name}"),
        ("dataset", "v2 dataset versions", "/api/v2/datasets/{ns}/{name}/versions"),
        ("dataset", "v1 dataset", "/api/v1/namespaces/{ns}/datasets/{name}"),
        ("dataset", "v1 lineage depth 2", "/api/v1/lineage?nodeId={node}&depth=2"),
        ("job", "v2 runs of a job", "/api/v2/runs?namespace={ns}&job={name}"),
        ("job", "v1 job runs", "/api/v1/namespaces/{ns}/jobs/{name}/runs"),
    ]


def start_jobs(shape: Shape, n: int, seed: int) -> list[str]:
    """`n` seeded job names (any layer)."""
    rnd = random.Random(seed)
    jobs = [rnd.randrange(shape.jobs) for _ in range(n)]
    return [f"l{j % shape.job_layers:02d}.job{j // shape.job_layers:06d}" for j in jobs]


def page_paths(template: str, targets: list[tuple[str, str, str]]) -> list[str]:
    """`template` filled for each (namespace, name, node id) of `targets`."""
    return [
        template.format(ns=quote(ns, safe=""), name=quote(name, safe=""), node=quote(node, safe=""))
        for ns, name, node in targets
    ]


def check_as_of(client: httpx.Client, samples: list[tuple], max_nodes: int) -> int:
    """How many sampled jobs show the older run's own input (not the newer's) as of AS_OF,
    and the newer run's (not the older's) without as_of."""
    good = 0
    for node, old, new in samples:
        names = {}
        for as_of in (AS_OF, None):
            _, answer, _ = lineage(client, node, "upstream", 1, max_nodes, as_of)
            names[as_of] = {n["id"] for n in answer["nodes"]}
        old_id, new_id = f"dataset:{DS_NS}:{old}", f"dataset:{DS_NS}:{new}"
        then, now = names[AS_OF], names[None]
        good += old_id in then and new_id not in then and new_id in now and old_id not in now
    return good


@dataclass
class SizeResult:
    edges: int
    generate_s: float
    stored: dict[str, int]
    warmup_s: float = 0.0
    ready: dict[str, Any] = field(default_factory=dict)
    rss_mb: float = 0.0
    as_of_ok: int = 0
    as_of_checked: int = 0
    scenarios: list[Scenario] = field(default_factory=list)


def measure(
    settings: Settings, shape: Shape, args: argparse.Namespace, tmp: Path, result: SizeResult
) -> None:
    """Start the API on the size's database and fill `result` with what it measured."""
    log_path = tmp / f"api-{shape.edges}.log"
    base = f"http://127.0.0.1:{settings.api.port}"
    started = time.perf_counter()
    proc = start_api(settings, log_path)
    try:
        ready = wait_ready(base, proc, log_path)
        result.warmup_s = time.perf_counter() - started
        result.ready = ready.get("lineage", ready)
        print(f"  API ready in {result.warmup_s:.1f} s: {json.dumps(result.ready)}", flush=True)
        ch = clickhouse_connect.get_client(
            host="127.0.0.1", port=int(settings.clickhouse.url.rsplit(":", 1)[1])
        )
        samples = as_of_samples(ch, settings.clickhouse.database, args.seed, 20)
        ch.close()
        nodes = start_nodes(shape, args.requests, args.seed)
        with httpx.Client(base_url=base, timeout=60) as client:
            result.as_of_ok = check_as_of(client, samples, args.max_nodes)
            result.as_of_checked = len(samples)
            print(f"  as-of check: {result.as_of_ok}/{len(samples)} jobs", flush=True)
            for node in nodes[:10]:  # warm the connection and the code paths
                lineage(client, node, "both", 5, args.max_nodes)
            result.scenarios.append(
                timed_gets(client, "ref: 404 HTTP floor", ["/bench-no-such-route"] * len(nodes))
            )
            result.scenarios.append(
                timed_gets(client, "GET /readyz", ["/readyz"] * len(nodes[:20]))
            )
            for sc in scenarios():
                for node in nodes:
                    ms, answer, size = lineage(
                        client, node, sc.direction, sc.depth, args.max_nodes, sc.as_of
                    )
                    sc.ms.append(ms)
                    sc.kb.append(size / 1024)
                    sc.nodes.append(len(answer.get("nodes", ())))
                    sc.truncated += bool(answer.get("truncated"))
                result.scenarios.append(sc)
                print(
                    f"  {sc.label:<20} p50 {statistics.median(sc.ms):7.2f} ms  "
                    f"p95 {sc.p(0.95):7.2f} ms  nodes {statistics.median(sc.nodes):,.0f}",
                    flush=True,
                )
            targets = {
                "dataset": [
                    (DS_NS, node.removeprefix(f"dataset:{DS_NS}:"), node)
                    for node in nodes[: args.page_requests]
                ],
                "job": [
                    (JOB_NS, job, f"job:{JOB_NS}:{job}")
                    for job in start_jobs(shape, args.page_requests, args.seed)
                ],
            }
            for kind, label, template in page_routes():
                sc = timed_gets(client, label, page_paths(template, targets[kind]), 200)
                result.scenarios.append(sc)
                print(
                    f"  {sc.label:<20} p50 {statistics.median(sc.ms):7.2f} ms  "
                    f"p95 {sc.p(0.95):7.2f} ms",
                    flush=True,
                )
        result.rss_mb = peak_rss_mb(proc.pid)
    finally:
        stop_process(proc)


def make_settings(tmp: str, kafka: str, url: str, name: str, api_port: int) -> Settings:
    return load_settings(
        data_dir=tmp,
        kafka={"bootstrap_servers": kafka},
        clickhouse={"url": url, "database": name},
        topics={"events": f"{name}.events", "dlq": f"{name}.dlq", "events_partitions": 1},
        worker={"group_id": f"{name}-p", "sink_group_id": f"{name}-s"},
        api={"port": api_port, "auth_enabled": False},
    )


def report(results: list[SizeResult], args: argparse.Namespace) -> None:
    print()
    print(
        f"Graph: {LAYERS} dataset layers; each job reads {INPUTS} datasets of the previous "
        f"layer (1 hub) and writes {OUTPUTS}; 2 runs per job whose 4th input differs; "
        f"start nodes: {args.requests} seeded datasets of layers {LAYERS // 3}-"
        f"{2 * LAYERS // 3}; max_nodes={args.max_nodes}; as_of={AS_OF}"
    )
    print(
        "gen s: INSERT ... SELECT into ClickHouse; warm-up s: API start until /readyz is 200;"
        " load s: the index load (from /readyz); API RSS: peak (VmHWM)"
    )
    print()
    print(
        f"{'edges':>6} {'jobs':>8} {'datasets':>9} {'gen s':>6} {'warm-up s':>9} {'load s':>7} "
        f"{'API RSS MB':>10} {'as-of ok':>8}"
    )
    print("-" * 70)
    for r in results:
        ok = f"{r.as_of_ok}/{r.as_of_checked}" if r.as_of_checked else "-"
        warm = f"{r.warmup_s:.1f}" if r.warmup_s else "-"
        load = r.ready.get("load_seconds")
        load_s = f"{load:.1f}" if isinstance(load, int | float) else "-"
        rss = f"{r.rss_mb:,.0f}" if r.rss_mb else "-"
        print(
            f"{short(r.edges):>6} {r.edges // PAIRS_PER_JOB:>8,} {r.stored['datasets']:>9,} "
            f"{r.generate_s:>6.1f} {warm:>9} {load_s:>7} {rss:>10} {ok:>8}"
        )
    measured = [r for r in results if r.scenarios]
    if not measured:
        return
    print()
    print(
        f"{'edges':>6}  {'scenario':<20}{'p50 ms':>8}{'p95 ms':>8}{'max ms':>8}"
        f"{'nodes p50':>10}{'KB p50':>8}{'truncated':>10}"
    )
    print("-" * 80)
    for r in measured:
        for sc in r.scenarios:
            print(
                f"{short(r.edges):>6}  {sc.label:<20}{statistics.median(sc.ms):>8.2f}"
                f"{sc.p(0.95):>8.2f}{max(sc.ms):>8.2f}{statistics.median(sc.nodes):>10,.0f}"
                f"{statistics.median(sc.kb):>8,.0f}"
                f"{sc.truncated / len(sc.ms):>10.0%}"
            )
    largest = max(measured, key=lambda r: r.edges)
    deep = sorted(
        ms for sc in largest.scenarios if sc.depth == 20 and sc.as_of is None for ms in sc.ms
    )
    p95 = deep[int(0.95 * (len(deep) - 1))] if deep else float("nan")
    print(
        f"\nratio: p95 of directed depth 20 (up + down) at {short(largest.edges)} edges / "
        f"20 ms target = {p95:.2f} / 20 = {p95 / 20:.2f}"
    )
    print(
        json.dumps(
            {
                "bench": "lineage",
                "layers": LAYERS,
                "max_nodes": args.max_nodes,
                "requests": args.requests,
                "seed": args.seed,
                "cpus": os.cpu_count(),
                "sizes": [
                    {
                        "edges": r.edges,
                        "generate_s": round(r.generate_s, 2),
                        "warmup_s": round(r.warmup_s, 2),
                        "api_peak_rss_mb": round(r.rss_mb),
                        "index": r.ready,
                        "as_of_ok": r.as_of_ok,
                        "scenarios": {
                            sc.label: {
                                "p50_ms": round(statistics.median(sc.ms), 2),
                                "p95_ms": round(sc.p(0.95), 2),
                                "max_ms": round(max(sc.ms), 2),
                                "nodes_p50": statistics.median(sc.nodes),
                                "kb_p50": round(statistics.median(sc.kb)),
                                "truncated": sc.truncated,
                            }
                            for sc in r.scenarios
                        },
                    }
                    for r in measured
                ],
                "directed_d20_p95_ms": round(p95, 2),
                "ratio_to_20ms": round(p95 / 20, 2),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--requests", type=int, default=200, help="per scenario")
    parser.add_argument("--max-nodes", type=int, default=1000)
    parser.add_argument(
        "--page-requests", type=int, default=50, help="per dataset-page route (ClickHouse reads)"
    )
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--generate-only", action="store_true", help="generate and verify the graphs, no API"
    )
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    for size in sizes:
        shape = Shape(size)
        thin = any(shape.datasets_in(i) - shape.hubs_in(i) < 8 for i in range(LAYERS))
        if size % PAIRS_PER_JOB or thin:
            raise SystemExit(f"--sizes: {size} must be a multiple of {PAIRS_PER_JOB}, >= 928")

    results: list[SizeResult] = []
    failure: str | None = None
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        services = open(tmp / "services.log", "wb")  # noqa: SIM115
        kafka_port, ch_port = free_port(), free_port()
        broker = start_broker("127.0.0.1", kafka_port, output=services)
        ch_proc: subprocess.Popen | None = None
        try:
            ch_proc = start_clickhouse(tmp, ch_port, services)
            url = f"http://127.0.0.1:{ch_port}"
            client = clickhouse_connect.get_client(host="127.0.0.1", port=ch_port)
            for size in sizes:
                shape = Shape(size)
                db = f"bench_lineage_{short(size).replace('.', '_')}"
                settings = make_settings(tmp_name, f"127.0.0.1:{kafka_port}", url, db, free_port())
                migrate(settings)
                ensure_topics(settings)  # the API tails the derived topics once they exist
                print(f"{short(size)} edges: {shape.jobs:,} jobs", flush=True)
                generate_s = generate(client, db, shape, args.seed)
                stored = verify(client, db, shape)
                print(
                    f"  generated in {generate_s:.1f} s: {stored['rows']:,} io_edges rows, "
                    f"{stored['pairs']:,} (job, dataset) pairs, {stored['runs']:,} runs, "
                    f"{stored['datasets']:,} datasets "
                    "(verified)",
                    flush=True,
                )
                result = SizeResult(size, generate_s, stored)
                results.append(result)
                if not args.generate_only:
                    try:
                        measure(settings, shape, args, tmp, result)
                    except SystemExit as exc:  # report the sizes measured so far, then fail
                        failure = str(exc)
                        break
            client.close()
        finally:
            if ch_proc is not None:
                stop_process(ch_proc)
            stop_process(broker)
            services.close()
    report(results, args)
    if failure:
        raise SystemExit(f"\nFAILED: {failure}")


if __name__ == "__main__":
    main()
