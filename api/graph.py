"""The lineage graph in memory, and directed, point-in-time traversal over it (pure).

What it holds (fed from `io_edges` and `runs`, see `graph_feed.py`):

- jobs by (namespace, name); for each job its runs that reported inputs or outputs,
  sorted by run start, and per run the datasets it read and wrote;
- datasets by the name they were sent under, joined into one node when they share a
  `dataset_key` (the naming rule and the `symlinks` facet, `processors/naming.py`): a
  union-find, so joins are incremental and never depend on arrival order.

The rule for "as of time T" (issue 6): each job's inputs and outputs are those of its
latest run that started at or before T; with no T, its latest run. A run's start is its
START event's time, else its first event's. Depth counts jobs: a job `k` jobs away from
the start node is shown when `k <= depth`, with the datasets on its far side.

Every update is idempotent and commutative (set unions, minimums, maximums), so feeding
the same rows twice, or in another order, yields the same graph. Not thread-safe by
itself: `LineageGraph.lock` guards it (the feed writes, requests read).
"""

from __future__ import annotations

import threading
from bisect import bisect_right, insort
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

Direction = Literal["upstream", "downstream", "both"]
Granularity = Literal["job", "run"]

_NO_TIME = 2**62  # "now": later than any event


class NodeNotFound(LookupError):
    """The start node is not in the graph."""


@dataclass(slots=True)
class _Run:
    run_id: str
    job: int
    started_at: int | None = None  # START event time, ms
    first_seen: int = _NO_TIME  # earliest event or edge time, ms
    inputs: set[int] = field(default_factory=set)  # dataset name ids
    outputs: dict[int, str] = field(default_factory=dict)  # name id -> column_lineage_id
    listed: tuple[int, str] | None = None  # its (start, run_id) entry in the job's runs

    @property
    def start(self) -> int:
        return self.started_at if self.started_at is not None else self.first_seen


@dataclass(frozen=True, slots=True)
class NodeRef:
    """A parsed node id: `dataset:<ns>:<name>`, `job:<ns>:<name>` or `run:<run_id>`."""

    kind: Literal["dataset", "job", "run"]
    namespace: str = ""
    name: str = ""
    run_id: str = ""

    @classmethod
    def parse(cls, node_id: str) -> NodeRef:
        """Raises ValueError with the accepted grammar when `node_id` is malformed.

        Namespaces may contain ':' (e.g. `postgres://host:5432`), so the name is what
        follows the last ':' that is not part of `://`... which is ambiguous; the rule
        here: the namespace ends at the first ':' that is not followed by '//' and is
        not inside a `host:port` (digits up to the next '/' or ':')."""
        kind, sep, rest = node_id.partition(":")
        if kind == "run" and sep and rest:
            return cls("run", run_id=rest)
        if kind in ("dataset", "job") and sep:
            namespace, name = split_namespace(rest)
            if namespace and name:
                return cls(kind, namespace, name)  # type: ignore[arg-type]
        raise ValueError(
            f"bad node id {node_id!r}: use dataset:<namespace>:<name>, "
            "job:<namespace>:<name> or run:<run_id>"
        )

    def __str__(self) -> str:
        if self.kind == "run":
            return f"run:{self.run_id}"
        return f"{self.kind}:{self.namespace}:{self.name}"


def split_namespace(rest: str) -> tuple[str, str]:
    """`<namespace>:<name>` -> (namespace, name), where a namespace may hold `scheme://`
    and `host:port` (digits) parts, as the OpenLineage naming spec makes them."""
    i = 0
    while True:
        j = rest.find(":", i)
        if j < 0:
            return "", ""
        if rest.startswith("//", j + 1):  # scheme://
            i = j + 3
            continue
        port_end = j + 1
        while port_end < len(rest) and rest[port_end].isdigit():
            port_end += 1
        if port_end > j + 1 and (port_end == len(rest) or rest[port_end] in "/:"):
            if port_end < len(rest) and rest[port_end] == ":":  # host:port:name
                return rest[:port_end], rest[port_end + 1 :]
            if port_end == len(rest):  # ns:123 -> a numeric name
                return rest[:j], rest[j + 1 :]
            i = port_end  # host:port/path... keep looking
            continue
        return rest[:j], rest[j + 1 :]


class LineageGraph:
    def __init__(self) -> None:
        self.lock = threading.RLock()
        # datasets: names and dataset keys share one union-find space
        self._name_ids: dict[tuple[str, str], int] = {}
        self._names: list[tuple[str, str] | None] = []  # None for a key entry
        self._key_ids: dict[str, int] = {}
        self._parent: list[int] = []
        self._members: dict[int, list[int]] = {}  # root -> name ids (not keys)
        self._consumers: dict[int, set[int]] = {}  # root -> jobs that ever read it
        self._producers: dict[int, set[int]] = {}  # root -> jobs that ever wrote it
        # jobs and runs
        self._job_ids: dict[tuple[str, str], int] = {}
        self._jobs: list[tuple[str, str]] = []
        self._job_runs: list[list[tuple[int, str]]] = []  # sorted (start, run_id)
        self._runs: dict[str, _Run] = {}
        self.edge_count = 0
        self._listed_runs = 0
        self._dataset_nodes = 0

    # --- updates --------------------------------------------------------------------

    def add_run(
        self,
        run_id: str,
        job_namespace: str,
        job_name: str,
        started_at: int | None,
        first_event_time: int,
    ) -> None:
        """What a `runs` row says about a run's start (ms since the epoch)."""
        run = self._run(run_id, self._job(job_namespace, job_name))
        if started_at is not None and (run.started_at is None or started_at < run.started_at):
            run.started_at = started_at
        run.first_seen = min(run.first_seen, first_event_time)
        self._relist(run)

    def add_edge(
        self,
        job_namespace: str,
        job_name: str,
        run_id: str,
        direction: str,
        namespace: str,
        name: str,
        dataset_key: str,
        column_lineage_id: str,
        first_seen: int,
    ) -> None:
        """What an `io_edges` row says. An empty run id (a JobEvent's lineage) counts as
        one run of that job, started when the first such event was seen."""
        job = self._job(job_namespace, job_name)
        run = self._run(run_id or f"job-event:{job_namespace}/{job_name}", job)
        dataset = self._dataset(namespace, name, dataset_key)
        root = self._find(dataset)
        if direction == "input":
            if dataset not in run.inputs:
                run.inputs.add(dataset)
                self.edge_count += 1
            self._consumers.setdefault(root, set()).add(job)
        else:
            previous = run.outputs.get(dataset)
            if previous is None:
                self.edge_count += 1
            run.outputs[dataset] = max(previous or "", column_lineage_id)
            self._producers.setdefault(root, set()).add(job)
        run.first_seen = min(run.first_seen, first_seen)
        self._relist(run)

    def _job(self, namespace: str, name: str) -> int:
        key = (namespace, name)
        job = self._job_ids.get(key)
        if job is None:
            job = self._job_ids[key] = len(self._jobs)
            self._jobs.append(key)
            self._job_runs.append([])
        return job

    def _run(self, run_id: str, job: int) -> _Run:
        run = self._runs.get(run_id)
        if run is None:
            run = self._runs[run_id] = _Run(run_id, job)
        return run

    def _relist(self, run: _Run) -> None:
        """Keep the run at its place in its job's runs (only runs with edges count)."""
        if not run.inputs and not run.outputs:
            return
        entry = (run.start, run.run_id)
        if run.listed == entry:
            return
        runs = self._job_runs[run.job]
        if run.listed is not None:
            runs.remove(run.listed)
        else:
            self._listed_runs += 1
        insort(runs, entry)
        run.listed = entry

    def _dataset(self, namespace: str, name: str, dataset_key: str) -> int:
        key = (namespace, name)
        node = self._name_ids.get(key)
        if node is None:
            node = self._name_ids[key] = self._new_entry(key)
            self._members[node] = [node]
            self._dataset_nodes += 1
        if dataset_key:
            key_node = self._key_ids.get(dataset_key)
            if key_node is None:
                key_node = self._key_ids[dataset_key] = self._new_entry(None)
                self._members[key_node] = []
            self._union(node, key_node)
        return node

    def _new_entry(self, name: tuple[str, str] | None) -> int:
        self._names.append(name)
        self._parent.append(len(self._parent))
        return len(self._parent) - 1

    def _find(self, node: int) -> int:
        parent = self._parent
        root = node
        while parent[root] != root:
            root = parent[root]
        while parent[node] != root:
            parent[node], node = root, parent[node]
        return root

    def _union(self, a: int, b: int) -> None:
        ra, rb = self._find(a), self._find(b)
        if ra == rb:
            return
        if len(self._members[ra]) < len(self._members[rb]):
            ra, rb = rb, ra
        self._parent[rb] = ra
        moved_members = self._members.pop(rb)
        if moved_members and self._members[ra]:
            self._dataset_nodes -= 1
        self._members[ra].extend(moved_members)
        for table in (self._consumers, self._producers):
            moved = table.pop(rb, None)
            if moved:
                table.setdefault(ra, set()).update(moved)

    # --- reads ----------------------------------------------------------------------

    def stats(self) -> dict[str, int]:
        """Sizes, in constant time (the readiness probe asks often)."""
        return {
            "jobs": len(self._jobs),
            "datasets": self._dataset_nodes,
            "runs": self._listed_runs,
            "edges": self.edge_count,
        }

    def run_at(self, job: int, as_of: int | None) -> _Run | None:
        """The job's latest run (with edges) that started at or before `as_of`."""
        runs = self._job_runs[job]
        if not runs:
            return None
        if as_of is None:
            return self._runs[runs[-1][1]]
        i = bisect_right(runs, (as_of, "\U0010ffff"))
        return self._runs[runs[i - 1][1]] if i else None

    def run_start(self, run_id: str) -> int | None:
        run = self._runs.get(run_id)
        return None if run is None or run.start == _NO_TIME else run.start

    def run_namespace(self, run_id: str) -> str | None:
        run = self._runs.get(run_id)
        return None if run is None else self._jobs[run.job][0]

    def dataset_root(self, namespace: str, name: str) -> int | None:
        node = self._name_ids.get((namespace, name))
        return None if node is None else self._find(node)

    def job_id(self, namespace: str, name: str) -> int | None:
        return self._job_ids.get((namespace, name))

    def lineage(
        self,
        start: NodeRef,
        direction: Direction = "both",
        depth: int = 20,
        as_of: int | None = None,
        granularity: Granularity = "job",
        max_nodes: int = 1000,
    ) -> dict[str, Any]:
        """The graph around `start`: {"nodes", "edges", "truncated", "as_of"}.

        `as_of` is ms since the epoch (None: now); a run start node means "as of that
        run" unless `as_of` is given. Raises NodeNotFound."""
        walk = _Walk(self, as_of, granularity, max_nodes)
        if start.kind == "run":
            run = self._runs.get(start.run_id)
            if run is None:
                raise NodeNotFound(f"no run {start.run_id!r} with inputs or outputs")
            if as_of is None and run.start != _NO_TIME:
                walk.as_of = run.start
            walk.start_job(run.job, forced_run=run)
        elif start.kind == "job":
            job = self._job_ids.get((start.namespace, start.name))
            if job is None:
                raise NodeNotFound(f"no job {start.namespace}:{start.name} with lineage")
            walk.start_job(job)
        else:
            root = self.dataset_root(start.namespace, start.name)
            if root is None:
                raise NodeNotFound(f"no dataset {start.namespace}:{start.name} in lineage")
            walk.start_dataset(root, start.namespace, start.name)
        for way in ("upstream", "downstream"):
            if direction in (way, "both"):
                walk.run(downstream=way == "downstream", depth=depth)
        return walk.result()

    def column_lineage_ids(
        self, dataset_root: int, downstream: bool, as_of: int | None
    ) -> list[tuple[str, int]]:
        """The columnLineage ids that tie `dataset_root` to its neighbours at `as_of`:
        upstream, those its producers' runs wrote for it; downstream, those of every
        output of the runs that read it. Pairs (column_lineage_id, output root)."""
        found: list[tuple[str, int]] = []
        if downstream:
            for job in self._consumers.get(dataset_root, ()):
                run = self.run_at(job, as_of)
                if run is not None and self._touches(run.inputs, dataset_root):
                    for dataset, cl_id in run.outputs.items():
                        if cl_id:
                            found.append((cl_id, self._find(dataset)))
        else:
            for job in self._producers.get(dataset_root, ()):
                run = self.run_at(job, as_of)
                if run is None:
                    continue
                for dataset, cl_id in run.outputs.items():
                    if cl_id and self._find(dataset) == dataset_root:
                        found.append((cl_id, dataset_root))
        return sorted(set(found))

    def _touches(self, datasets: Iterable[int], root: int) -> bool:
        return any(self._find(d) == root for d in datasets)

    def dataset_names(self, root: int) -> list[tuple[str, str]]:
        return sorted(self._names[m] for m in self._members.get(root, ()))  # type: ignore[misc]

    def job_name(self, job: int) -> tuple[str, str]:
        return self._jobs[job]


class _Walk:
    """One breadth-first traversal; nodes and edges accumulate across directions."""

    def __init__(
        self, graph: LineageGraph, as_of: int | None, granularity: Granularity, cap: int
    ) -> None:
        self.g = graph
        self.as_of = as_of
        self.granularity = granularity
        self.cap = cap
        self.nodes: dict[str, dict[str, Any]] = {}
        self.edges: set[tuple[str, str]] = set()
        self.truncated = False
        self.start_jobs: list[tuple[int, _Run | None]] = []
        self.start_datasets: list[int] = []
        self.start_label: tuple[str, str] | None = None
        self.start_id = ""
        self._dataset_ids: dict[int, str] = {}  # root -> node id, once named

    def start_job(self, job: int, forced_run: _Run | None = None) -> None:
        run = forced_run or self.g.run_at(job, self.as_of)
        self.start_jobs.append((job, run))
        self.start_id = self._job_node(job, run)

    def start_dataset(self, root: int, namespace: str, name: str) -> None:
        self.start_datasets.append(root)
        self.start_label = (namespace, name)
        self.start_id = self._dataset_node(root)

    def run(self, downstream: bool, depth: int) -> None:
        g = self.g
        seen_jobs: set[int] = set()
        seen_datasets: set[int] = set(self.start_datasets)
        queue: deque[tuple[str, int, int, _Run | None]] = deque()
        for job, run in self.start_jobs:
            seen_jobs.add(job)
            queue.append(("job", job, 0, run))
        for root in self.start_datasets:
            queue.append(("dataset", root, 0, None))
        while queue and not self.truncated:  # at the node cap, stop: the answer is partial
            kind, ident, hops, run = queue.popleft()
            if kind == "job":
                if run is None:
                    continue
                job_node = self._job_node(ident, run)
                for dataset in run.outputs if downstream else run.inputs:
                    root = g._find(dataset)
                    node = self._dataset_node(root)
                    if node is None:
                        break
                    self._edge(job_node, node, downstream)
                    if root not in seen_datasets:
                        seen_datasets.add(root)
                        queue.append(("dataset", root, hops, None))
                continue
            if hops >= depth:
                continue
            dataset_node = self._dataset_node(ident)
            table = g._consumers if downstream else g._producers
            for job in sorted(table.get(ident, ())):
                job_run = g.run_at(job, self.as_of)
                if job_run is None:
                    continue
                side = job_run.inputs if downstream else job_run.outputs
                if not g._touches(side, ident):
                    continue
                node = self._job_node(job, job_run)
                if node is None or dataset_node is None:
                    break
                self._edge(node, dataset_node, not downstream)
                if job not in seen_jobs:
                    seen_jobs.add(job)
                    queue.append(("job", job, hops + 1, job_run))

    def _edge(self, a: str, b: str, a_first: bool) -> None:
        self.edges.add((a, b) if a_first else (b, a))

    def _admit(self, node_id: str) -> bool:
        if node_id in self.nodes:
            return True
        if len(self.nodes) >= self.cap:
            self.truncated = True
            return False
        return True

    def _job_node(self, job: int, run: _Run | None) -> str | None:
        namespace, name = self.g.job_name(job)
        if self.granularity == "run" and run is not None:
            node_id = f"run:{run.run_id}"
        else:
            node_id = f"job:{namespace}:{name}"
        if not self._admit(node_id):
            return None
        if node_id not in self.nodes:
            self.nodes[node_id] = {
                "id": node_id,
                "type": "run" if node_id.startswith("run:") else "job",
                "namespace": namespace,
                "name": name,
                "run_id": _public_run_id(run),
                "run_start": None if run is None or run.start == _NO_TIME else run.start,
            }
        return node_id

    def _dataset_node(self, root: int) -> str | None:
        known = self._dataset_ids.get(root)
        if known is not None:
            return known
        names = self.g.dataset_names(root)
        if root in self.start_datasets and self.start_label is not None:
            namespace, name = self.start_label
        else:
            namespace, name = names[0]
        node_id = f"dataset:{namespace}:{name}"
        if not self._admit(node_id):
            return None
        if node_id not in self.nodes:
            self.nodes[node_id] = {
                "id": node_id,
                "type": "dataset",
                "namespace": namespace,
                "name": name,
                "aliases": [f"{ns}:{n}" for ns, n in names if (ns, n) != (namespace, name)],
            }
        self._dataset_ids[root] = node_id
        return node_id

    def result(self) -> dict[str, Any]:
        edges = sorted(e for e in self.edges if e[0] in self.nodes and e[1] in self.nodes)
        return {
            "start": self.start_id,
            "as_of": self.as_of,
            "nodes": sorted(self.nodes.values(), key=lambda n: n["id"]),
            "edges": [{"source": a, "target": b} for a, b in edges],
            "truncated": self.truncated,
        }


def _public_run_id(run: _Run | None) -> str | None:
    if run is None or run.run_id.startswith("job-event:"):
        return None
    return run.run_id
