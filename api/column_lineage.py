"""Column lineage walks (pure): from a dataset or one of its fields, up or down.

The columnLineage facets that count at time T are those the jobs' runs current at T
wrote (`LineageGraph.column_lineage_ids`); their edges are content-addressed in
`column_edges`, so the caller fetches them by id and may cache them forever.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from lineagehouse.api.graph import LineageGraph


@dataclass(frozen=True, slots=True)
class ColumnEdge:
    output_namespace: str
    output_name: str
    output_field: str  # empty: the whole output depends on the input field
    input_namespace: str
    input_name: str
    input_field: str
    transformation_type: str
    transformation_subtype: str


# column_lineage_id -> its edges; the adapter queries `column_edges` for missing ids
FetchEdges = Callable[[list[str]], dict[str, list[ColumnEdge]]]

_COLUMN_CACHE_IDS = 200_000


class ColumnEdgeCache:
    """A FetchEdges over ClickHouse's `column_edges`: ids are content-addressed, so their
    edges are cached without expiry once found (cleared whole past `_COLUMN_CACHE_IDS`)."""

    def __init__(self, client: Any, db: str) -> None:
        self.client = client
        self.db = db
        self.cache: dict[str, list[ColumnEdge]] = {}

    def __call__(self, ids: list[str]) -> dict[str, list[ColumnEdge]]:
        cache = self.cache
        missing = [i for i in ids if i not in cache]
        if missing:
            rows = self.client.query(
                "SELECT DISTINCT column_lineage_id, output_namespace, output_name, "
                "output_field, input_namespace, input_name, input_field, "
                "transformation_type, transformation_subtype "
                f"FROM {self.db}.column_edges WHERE column_lineage_id IN {{ids:Array(String)}}",
                parameters={"ids": missing},
            ).result_rows
            if len(cache) > _COLUMN_CACHE_IDS:
                cache.clear()
            found: dict[str, list[ColumnEdge]] = {}
            for row in rows:
                found.setdefault(row[0], []).append(ColumnEdge(*row[1:]))
            # An id without rows is not cached: the graph feed reads the derived topics,
            # so it can know an id a moment before the sink has inserted its edges.
            cache.update(found)
        return {i: cache.get(i, []) for i in ids}


_Dataset = tuple[str, Any]  # ("root", int) for a dataset in the graph, ("name", (ns, name))


def field_id(namespace: str, name: str, field: str) -> str:
    if not field:
        return f"dataset:{namespace}:{name}"
    return f"datasetField:{namespace}:{name}:{field}"


def walk_columns(
    graph: LineageGraph,
    fetch: FetchEdges,
    namespace: str,
    name: str,
    fields: Iterable[str] | None,
    direction: str,
    depth: int,
    as_of: int | None,
    max_edges: int = 10_000,
) -> dict[str, Any]:
    """{"nodes", "edges", "truncated"} of the column graph around `namespace:name`
    (only `fields` when given), `depth` datasets away in `direction` (upstream,
    downstream or both). Call with `graph.lock` held."""
    root = graph.dataset_root(namespace, name)
    start: _Dataset = ("root", root) if root is not None else ("name", (namespace, name))
    start_fields = frozenset(fields) if fields else None
    edges: set[ColumnEdge] = set()
    truncated = False
    for downstream in (False, True):
        if direction not in ("both", "downstream" if downstream else "upstream"):
            continue
        queue: deque[tuple[_Dataset, frozenset[str] | None, int]] = deque(
            [(start, start_fields, 0)]
        )
        seen: set[tuple[_Dataset, str | None]] = set()
        while queue:
            dataset, wanted, hops = queue.popleft()
            if hops >= depth or dataset[0] != "root":
                continue
            ids = graph.column_lineage_ids(dataset[1], downstream, as_of)
            fetched = fetch([cl_id for cl_id, _ in ids])
            next_fields: dict[_Dataset, set[str]] = {}
            for cl_id, _output in ids:
                for edge in fetched.get(cl_id, ()):
                    if downstream:
                        if _resolve(graph, edge.input_namespace, edge.input_name) != dataset:
                            continue
                        if wanted is not None and edge.input_field not in wanted:
                            continue
                        hop = _resolve(graph, edge.output_namespace, edge.output_name)
                        field = edge.output_field
                    else:
                        if wanted is not None and edge.output_field not in wanted:
                            continue
                        hop = _resolve(graph, edge.input_namespace, edge.input_name)
                        field = edge.input_field
                    if len(edges) >= max_edges:
                        truncated = True
                        break
                    edges.add(edge)
                    if field and (hop, field) not in seen:
                        seen.add((hop, field))
                        next_fields.setdefault(hop, set()).add(field)
            for hop, hop_fields in next_fields.items():
                queue.append((hop, frozenset(hop_fields), hops + 1))
    return _result(edges, truncated)


def _resolve(graph: LineageGraph, namespace: str, name: str) -> _Dataset:
    root = graph.dataset_root(namespace, name)
    return ("root", root) if root is not None else ("name", (namespace, name))


def _result(edges: set[ColumnEdge], truncated: bool) -> dict[str, Any]:
    nodes: dict[str, dict[str, Any]] = {}
    out = []
    for e in sorted(
        edges,
        key=lambda e: (
            e.output_namespace,
            e.output_name,
            e.output_field,
            e.input_namespace,
            e.input_name,
            e.input_field,
            e.transformation_type,
            e.transformation_subtype,
        ),
    ):
        source = field_id(e.input_namespace, e.input_name, e.input_field)
        target = field_id(e.output_namespace, e.output_name, e.output_field)
        for node_id, ns, n, f in (
            (source, e.input_namespace, e.input_name, e.input_field),
            (target, e.output_namespace, e.output_name, e.output_field),
        ):
            nodes.setdefault(
                node_id,
                {
                    "id": node_id,
                    "type": "datasetField" if f else "dataset",
                    "namespace": ns,
                    "name": n,
                    "field": f,
                },
            )
        out.append(
            {
                "source": source,
                "target": target,
                "transformation_type": e.transformation_type,
                "transformation_subtype": e.transformation_subtype,
            }
        )
    return {
        "nodes": sorted(nodes.values(), key=lambda n: n["id"]),
        "edges": out,
        "truncated": truncated,
    }
