"""The in-memory lineage graph against a brute-force reading of the definition.

Random estates (jobs with several runs whose inputs and outputs change, datasets known
under several names that share a dataset key) are fed to `LineageGraph` in a shuffled
order with duplicates; every traversal must equal the reference: as of T, each job's
edges are those of its latest run started at or before T; depth counts jobs.
"""

from __future__ import annotations

import random
from collections import deque

import pytest

from lineagehouse.api.graph import LineageGraph, NodeNotFound, NodeRef, split_namespace

Row = tuple[str, str, str, str, str, str, str, str, int]


def estate(seed: int) -> tuple[list[Row], list[tuple], dict[str, str]]:
    """io_edges rows, runs rows, and name -> the table it was made for."""
    rng = random.Random(seed)
    n_tables = rng.randint(4, 14)
    # Each table has 1-3 names; names of one table share its key (some only via a
    # second key, to exercise transitive joins).
    names: list[tuple[str, str, str]] = []  # (namespace, name, key)
    group: dict[str, str] = {}
    for t in range(n_tables):
        aliases = [("warehouse", f"t{t}")] + [
            (f"s3://bucket{a}", f"path/t{t}") for a in range(rng.randint(0, 2))
        ]
        for i, (ns, n) in enumerate(aliases):
            key = f"k{t}" if i < 2 else f"k{t}-alt"
            names.append((ns, n, key))
            group[f"{ns}:{n}"] = f"t{t}"
        if len(aliases) == 3:  # the third name's key is joined by one name carrying both
            names.append((aliases[2][0], aliases[2][1], f"k{t}"))
    edges: list[Row] = []
    runs: list[tuple] = []
    for j in range(rng.randint(2, 10)):
        for r in range(rng.randint(1, 3)):
            run_id = f"run-{j}-{r}"
            start = rng.randint(0, 50) * 10
            ins = rng.sample(names, rng.randint(0, 3))
            outs = rng.sample(names, rng.randint(1, 2))
            for ns, n, key in ins:
                edges.append(("jobs", f"job{j}", run_id, "input", ns, n, key, "", start + 5))
            for ns, n, key in outs:
                edges.append(("jobs", f"job{j}", run_id, "output", ns, n, key, "cl", start + 5))
            runs.append((run_id, "jobs", f"job{j}", start if rng.random() < 0.8 else None, start))
    return edges, runs, group


def joined_names(edges: list[Row]) -> dict[str, str]:
    """name -> a label of its table: names are one table when they share a dataset key
    in the rows (transitively), found here by a plain flood fill."""
    links: dict[str, set[str]] = {}
    for row in edges:
        name, key = f"{row[4]}:{row[5]}", f"#{row[6]}"
        links.setdefault(name, set()).add(key)
        links.setdefault(key, set()).add(name)
    label: dict[str, str] = {}
    for first in sorted(links):
        if first in label or first.startswith("#"):
            continue
        todo, members = [first], set()
        while todo:
            item = todo.pop()
            if item not in members:
                members.add(item)
                todo.extend(links[item] - members)
        for member in members:
            label[member] = min(m for m in members if not m.startswith("#"))
    return {k: v for k, v in label.items() if not k.startswith("#")}


def build(edges: list[Row], runs: list[tuple], seed: int) -> LineageGraph:
    rng = random.Random(seed)
    items = [("e", e) for e in edges] + [("r", r) for r in runs]
    items += rng.sample(items, len(items) // 3)  # duplicates
    rng.shuffle(items)
    graph = LineageGraph()
    for kind, item in items:
        if kind == "e":
            graph.add_edge(*item)
        else:
            graph.add_run(*item)
    return graph


def reference(
    edges: list[Row],
    runs: list[tuple],
    group: dict[str, str],
    start: tuple[str, str],
    direction: str,
    depth: int,
    as_of: int | None,
) -> tuple[set[str], set[tuple[str, str]]]:
    """Nodes and edges by the definition, dataset nodes named by their alias group."""
    start_of: dict[str, int] = {}
    for run_id, _ns, _job, started, first in runs:
        start_of[run_id] = started if started is not None else first
    for row in edges:
        start_of.setdefault(row[2], row[8])
    by_run: dict[str, dict[str, set[str]]] = {}
    job_of: dict[str, str] = {}
    for _ns, job, run_id, direction_, ns, n, *_ in edges:
        by_run.setdefault(run_id, {"input": set(), "output": set()})[direction_].add(
            group[f"{ns}:{n}"]
        )
        job_of[run_id] = job
    current: dict[str, dict[str, set[str]]] = {}
    for job in sorted(set(job_of.values())):
        candidates = sorted(
            (start_of[r], r)
            for r in by_run
            if job_of[r] == job and (as_of is None or start_of[r] <= as_of)
        )
        if candidates:
            current[job] = by_run[candidates[-1][1]]
    kind, name = start
    nodes: set[str] = set()
    out: set[tuple[str, str]] = set()
    for downstream in (False, True):
        if direction not in ("both", "downstream" if downstream else "upstream"):
            continue
        near, far = ("input", "output") if downstream else ("output", "input")
        queue: deque[tuple[str, str, int]] = deque([(kind, name, 0)])
        seen = {(kind, name)}
        nodes.add(f"{kind}:{name}")
        while queue:
            k, n, hops = queue.popleft()
            if k == "job":
                for d in current.get(n, {}).get(far, ()):
                    nodes.add(f"dataset:{d}")
                    out.add(
                        (f"job:{n}", f"dataset:{d}") if downstream else (f"dataset:{d}", f"job:{n}")
                    )
                    if ("dataset", d) not in seen:
                        seen.add(("dataset", d))
                        queue.append(("dataset", d, hops))
            elif hops < depth:
                for job, io in current.items():
                    if n in io[near]:
                        nodes.add(f"job:{job}")
                        out.add(
                            (f"dataset:{n}", f"job:{job}")
                            if downstream
                            else (f"job:{job}", f"dataset:{n}")
                        )
                        if ("job", job) not in seen:
                            seen.add(("job", job))
                            queue.append(("job", job, hops + 1))
    return nodes, out


def as_groups(result: dict, group: dict[str, str]) -> tuple[set[str], set[tuple[str, str]]]:
    def name(node_id: str) -> str:
        kind, _, rest = node_id.partition(":")
        if kind == "dataset":
            return f"dataset:{group[rest]}"
        return f"job:{rest.partition(':')[2]}"

    return (
        {name(n["id"]) for n in result["nodes"]},
        {(name(e["source"]), name(e["target"])) for e in result["edges"]},
    )


@pytest.mark.parametrize("seed", range(60))
def test_traversal_equals_the_definition(seed: int) -> None:
    edges, runs, _ = estate(seed)
    group = joined_names(edges)
    graph = build(edges, runs, seed)
    rng = random.Random(seed * 7 + 1)
    for _ in range(8):
        direction = rng.choice(["upstream", "downstream", "both"])
        depth = rng.choice([0, 1, 2, 20])
        as_of = rng.choice([None, rng.randint(0, 520)])
        if rng.random() < 0.5:
            row = rng.choice(edges)
            ref = NodeRef("dataset", row[4], row[5])
            start = ("dataset", group[f"{row[4]}:{row[5]}"])
        else:
            row = rng.choice(edges)
            ref = NodeRef("job", row[0], row[1])
            start = ("job", row[1])
        got = graph.lineage(ref, direction, depth, as_of, "job", max_nodes=10_000)  # type: ignore[arg-type]
        assert not got["truncated"]
        assert as_groups(got, group) == reference(
            edges, runs, group, start, direction, depth, as_of
        ), (seed, ref, direction, depth, as_of)


@pytest.mark.parametrize("seed", range(20))
def test_order_and_duplicates_do_not_matter(seed: int) -> None:
    edges, runs, _ = estate(seed)
    one, other = build(edges, runs, seed), build(edges, runs, seed + 1000)
    assert one.stats() == other.stats()
    for row in edges[:10]:
        ref = NodeRef("dataset", row[4], row[5])
        for as_of in (None, 200):
            assert one.lineage(ref, "both", 20, as_of) == other.lineage(ref, "both", 20, as_of)


def test_node_cap_truncates_and_says_so() -> None:
    graph = LineageGraph()
    for j in range(50):  # a chain: d0 -> job0 -> d1 -> job1 -> ...
        graph.add_edge("ns", f"job{j}", f"r{j}", "input", "db", f"d{j}", f"k{j}", "", 1)
        graph.add_edge("ns", f"job{j}", f"r{j}", "output", "db", f"d{j + 1}", f"k{j + 1}", "", 1)
    full = graph.lineage(NodeRef("dataset", "db", "d0"), "downstream", 100, None, "job", 1000)
    assert len(full["nodes"]) == 101 and not full["truncated"]
    capped = graph.lineage(NodeRef("dataset", "db", "d0"), "downstream", 100, None, "job", 10)
    assert len(capped["nodes"]) == 10 and capped["truncated"]
    ids = {n["id"] for n in capped["nodes"]}
    assert all(e["source"] in ids and e["target"] in ids for e in capped["edges"])
    shallow = graph.lineage(NodeRef("dataset", "db", "d0"), "downstream", 3, None, "job", 1000)
    assert {n["id"] for n in shallow["nodes"] if n["type"] == "job"} == {
        "job:ns:job0",
        "job:ns:job1",
        "job:ns:job2",
    }


def test_cycles_terminate() -> None:
    graph = LineageGraph()
    graph.add_edge("ns", "a", "r1", "input", "db", "x", "kx", "", 1)
    graph.add_edge("ns", "a", "r1", "output", "db", "y", "ky", "", 1)
    graph.add_edge("ns", "b", "r2", "input", "db", "y", "ky", "", 1)
    graph.add_edge("ns", "b", "r2", "output", "db", "x", "kx", "", 1)
    result = graph.lineage(NodeRef("dataset", "db", "x"), "both", 100)
    assert {n["id"] for n in result["nodes"]} == {
        "dataset:db:x",
        "dataset:db:y",
        "job:ns:a",
        "job:ns:b",
    }
    assert len(result["edges"]) == 4


def test_as_of_a_run_and_run_granularity() -> None:
    graph = LineageGraph()
    graph.add_edge("ns", "load", "old", "input", "db", "src_v1", "k1", "", 100)
    graph.add_edge("ns", "load", "old", "output", "db", "out", "ko", "", 100)
    graph.add_edge("ns", "load", "new", "input", "db", "src_v2", "k2", "", 200)
    graph.add_edge("ns", "load", "new", "output", "db", "out", "ko", "", 200)
    graph.add_run("old", "ns", "load", 90, 90)
    graph.add_run("new", "ns", "load", 190, 190)
    now = graph.lineage(NodeRef("dataset", "db", "out"), "upstream")
    assert "dataset:db:src_v2" in {n["id"] for n in now["nodes"]}
    assert "dataset:db:src_v1" not in {n["id"] for n in now["nodes"]}
    then = graph.lineage(NodeRef("run", run_id="old"), "upstream", granularity="run")
    assert then["as_of"] == 90
    assert {n["id"] for n in then["nodes"]} == {"run:old", "dataset:db:src_v1"}
    before_any = graph.lineage(NodeRef("dataset", "db", "out"), "upstream", as_of=50)
    assert [n["id"] for n in before_any["nodes"]] == ["dataset:db:out"]
    with pytest.raises(NodeNotFound):
        graph.lineage(NodeRef("dataset", "db", "nope"))


@pytest.mark.parametrize(
    ("node_id", "namespace", "name"),
    [
        (
            "dataset:postgres://db.host:5432:shop.public.orders",
            "postgres://db.host:5432",
            "shop.public.orders",
        ),
        ("dataset:s3://bucket:path/to/file.parquet", "s3://bucket", "path/to/file.parquet"),
        ("job:airflow:dag.task", "airflow", "dag.task"),
        ("dataset:kafka://broker:9092:topic", "kafka://broker:9092", "topic"),
        ("dataset:file:/tmp/x.csv", "file", "/tmp/x.csv"),
        ("dataset:warehouse:name:with:colons", "warehouse", "name:with:colons"),
    ],
)
def test_node_id_grammar(node_id: str, namespace: str, name: str) -> None:
    ref = NodeRef.parse(node_id)
    assert (ref.namespace, ref.name) == (namespace, name)
    assert str(ref) == node_id
    assert split_namespace(node_id.partition(":")[2]) == (namespace, name)


@pytest.mark.parametrize("bad", ["", "dataset", "dataset:", "dataset:ns", "table:a:b", "run:"])
def test_bad_node_ids_say_the_grammar(bad: str) -> None:
    with pytest.raises(ValueError, match="dataset:<namespace>:<name>"):
        NodeRef.parse(bad)
