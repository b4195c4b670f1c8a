"""Grafana provisioning and dashboards (deploy/grafana).

Grafana itself cannot run here, so the test does what Grafana and the ClickHouse plugin
would do with the files:

- structure: every dashboard parses, uids are unique, panels sit on the 24-column grid
  without overlapping, every panel, query and variable names a provisioned data source
  (by uid and type);
- Prometheus: every metric a PromQL expression names is one `lineagehouse.metrics`
  registers (with its sample suffix: `_total`, `_bucket`, ...), and every label it groups
  or filters by is one of that metric's labels;
- ClickHouse (slow): the real openlineage-python client emits runs of several jobs in two
  namespaces over a week of October 2026 through Kafka into a running worker (schemas and
  a schema change, failing and passing `dataQualityAssertions`, `dataQualityMetrics`, a
  duration outlier, failed and aborted runs), then every panel query and every query
  variable is expanded the way the plugin expands it (`$__conditionalAll`, template
  variables with "All", then the backend macros `$__timeFilter` & co.) and run against
  the embedded ClickHouse server: each must run and return rows.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from clickhouse_connect.driver.client import Client
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import data_quality_assertions_dataset as dqa
from openlineage.client.facet_v2 import data_quality_metrics_input_dataset as dqm
from openlineage.client.facet_v2 import error_message_run, schema_dataset
from openlineage.client.transport.kafka import KafkaConfig, KafkaTransport
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.parser import text_string_to_metric_families

from lineagehouse import metrics
from lineagehouse.drain import wait_until_drained
from lineagehouse.settings import Settings
from lineagehouse.store.migrations import migrate
from lineagehouse.topics import ensure_topics
from tests.conftest import wait_for

GRAFANA = Path(__file__).resolve().parents[2] / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
DATASOURCES = GRAFANA / "provisioning" / "datasources" / "lineagehouse.yaml"
PROVIDERS = GRAFANA / "provisioning" / "dashboards" / "lineagehouse.yaml"
CLICKHOUSE = "grafana-clickhouse-datasource"
PROMETHEUS = "prometheus"
PRODUCER = "https://github.com/lineagehouse/lineagehouse/tests/grafana"


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def panels_of(board: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside (collapsed) rows."""
    for panel in board.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def provisioned() -> dict[str, str]:
    """uid -> type of every provisioned data source."""
    config = yaml.safe_load(DATASOURCES.read_text())
    return {ds["uid"]: ds["type"] for ds in config["datasources"]}


# --- structure ----------------------------------------------------------------------------


def test_provisioning_files() -> None:
    config = yaml.safe_load(DATASOURCES.read_text())
    by_type = {ds["type"]: ds for ds in config["datasources"]}
    assert set(by_type) == {CLICKHOUSE, PROMETHEUS}
    ch = by_type[CLICKHOUSE]["jsonData"]
    # the HTTP interface: what the embedded server speaks (lineagehouse up, port 8123)
    assert (ch["protocol"], ch["port"], ch["username"]) == ("http", 8123, "default")
    assert ch["defaultDatabase"] == "lineagehouse"
    assert by_type[PROMETHEUS]["url"].startswith("http")
    (provider,) = yaml.safe_load(PROVIDERS.read_text())["providers"]
    assert provider["type"] == "file" and provider["options"]["path"]


def test_dashboards_are_valid_and_use_provisioned_sources() -> None:
    sources = provisioned()
    assert {p.stem for p in DASHBOARDS} == {"lineage-activity", "data-quality", "pipeline-health"}
    uids = []
    for path in DASHBOARDS:
        board = load(path)
        uids.append(board["uid"])
        assert board["title"] and 36 <= board["schemaVersion"] <= 41, path.name
        assert board.get("id") is None, f"{path.name}: provisioned dashboards carry no id"
        ids = [panel["id"] for panel in panels_of(board)]
        assert len(ids) == len(set(ids)) and ids, f"{path.name}: panel ids"
        boxes = []
        for panel in panels_of(board):
            where = f"{path.name}: {panel.get('title')!r}"
            grid = panel["gridPos"]
            assert all(isinstance(grid[k], int) for k in ("h", "w", "x", "y")), where
            assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= 24, where
            box = (grid["x"], grid["y"], grid["x"] + grid["w"], grid["y"] + grid["h"])
            for other in boxes:
                overlap = box[0] < other[2] and other[0] < box[2]
                overlap = overlap and box[1] < other[3] and other[1] < box[3]
                assert not overlap, f"{where} overlaps another panel"
            boxes.append(box)
            if panel["type"] == "row":
                continue
            refs = [panel["datasource"]] + [t["datasource"] for t in panel["targets"]]
            assert panel["targets"], where
            for ref in refs:
                assert ref["uid"] in sources, f"{where}: data source {ref} is not provisioned"
                assert ref["type"] == sources[ref["uid"]], where
            for target in panel["targets"]:
                if target["datasource"]["type"] == CLICKHOUSE:
                    assert target["rawSql"].strip() and target["editorType"] == "sql", where
                else:
                    assert target["expr"].strip(), where
        for var in board["templating"]["list"]:
            if "datasource" in var:
                assert var["datasource"]["uid"] in sources, f"{path.name}: ${var['name']}"
    assert len(uids) == len(set(uids))
    # the provider loads the folder these files are in
    assert all(p.parent.name == "dashboards" for p in DASHBOARDS)


# --- Prometheus ---------------------------------------------------------------------------

SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_sum", "_count", "_created"),
    "summary": ("", "_sum", "_count", "_created"),
    "info": ("_info",),
}
PROMQL_FUNCTIONS = {
    "sum", "min", "max", "avg", "count", "stddev", "topk", "bottomk", "quantile",
    "rate", "irate", "increase", "delta", "deriv", "histogram_quantile", "abs", "clamp_min",
    "clamp_max", "label_replace", "vector", "scalar", "time", "round", "max_over_time",
    "min_over_time", "avg_over_time", "sum_over_time", "absent",
}  # fmt: skip
PROMQL_WORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or",
                "unless", "bool", "offset"}  # fmt: skip
TARGET_LABELS = {"job", "instance"}


def registered_metrics() -> dict[str, tuple[str, set[str]]]:
    """Sample name -> (family name, label names) for every metric of lineagehouse.metrics."""
    found: dict[str, tuple[str, set[str]]] = {}
    for value in vars(metrics).values():
        if not isinstance(value, MetricWrapperBase):
            continue
        (family,) = value.describe()
        labels = set(value._labelnames)
        if family.type == "histogram":
            labels.add("le")
        for suffix in SUFFIXES[family.type]:
            found[family.name + suffix] = (family.name, labels)
    return found


def promql_names(expr: str) -> tuple[set[str], set[str]]:
    """(metric names, label names) an expression uses: label names from `{...}` matchers
    and `by`/`without`/`on`/`ignoring` clauses; metric names are every other identifier
    that is not a function, keyword or number."""
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)  # string literals
    text = re.sub(r"\[[^\]]*\]", "", text)  # ranges: [5m], [$__rate_interval]
    labels: set[str] = set()
    for matchers in re.findall(r"\{([^}]*)\}", text):
        labels |= set(re.findall(r"([A-Za-z_]\w*)\s*(?:=~|!~|!=|=)", matchers))
    text = re.sub(r"\{[^}]*\}", " ", text)
    for clause in re.findall(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", text):
        labels |= {name.strip() for name in clause.split(",") if name.strip()}
    text = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", " ", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][\w:]*", text):
        word = match.group(0)
        called = text[match.end() :].lstrip().startswith("(")
        if word in PROMQL_WORDS or (called and word in PROMQL_FUNCTIONS):
            continue
        assert not called, f"unknown PromQL function {word!r} in {expr!r}"
        names.add(word)
    return names, labels


def prometheus_targets() -> Iterator[tuple[str, dict[str, Any]]]:
    for path in DASHBOARDS:
        for panel in panels_of(load(path)):
            for target in panel.get("targets", []):
                if target["datasource"]["type"] == PROMETHEUS:
                    yield f"{path.name}: {panel['title']!r}", target


def test_prometheus_panels_use_registered_metrics() -> None:
    known = registered_metrics()
    used: set[str] = set()
    targets = list(prometheus_targets())
    assert targets, "no Prometheus panels"
    for where, target in targets:
        names, labels = promql_names(target["expr"])
        assert names, f"{where}: no metric in {target['expr']!r}"
        unknown = names - set(known)
        assert not unknown, f"{where}: not exported by lineagehouse.metrics: {sorted(unknown)}"
        allowed = set().union(*(known[name][1] for name in names)) | TARGET_LABELS
        assert labels <= allowed, f"{where}: labels {sorted(labels - allowed)} not on {names}"
        legend = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", target.get("legendFormat", "")))
        assert legend <= labels | TARGET_LABELS, f"{where}: legend names {sorted(legend)}"
        used |= {known[name][0] for name in names}
    # the panels the brief promises are there
    for family in (
        "lineagehouse_events_consumed",
        "lineagehouse_events_accepted",
        "lineagehouse_events_rejected",
        "lineagehouse_derived_rows",
        "lineagehouse_sink_batch_rows",
        "lineagehouse_sink_batch_seconds",
        "lineagehouse_sink_retries",
        "lineagehouse_consumer_lag",
        "lineagehouse_api_request_seconds",
        "lineagehouse_webhook_calls",
    ):
        assert family in used, f"no panel shows {family}"


def test_promql_parser_catches_unknown_names() -> None:
    names, labels = promql_names(
        'sum by (le, route) (rate(foo_bucket{route=~"/api.*", method!="GET"}[$__rate_interval]))'
    )
    assert names == {"foo_bucket"} and labels == {"le", "route", "method"}


# --- ClickHouse: expansion as the plugin does it -----------------------------------------

# The range the expansion uses: it covers the emitted event times (2026-10-01 .. 10-09).
RANGE_FROM = datetime(2026, 9, 28, tzinfo=UTC)
RANGE_TO = datetime(2026, 10, 15, tzinfo=UTC)
DEFAULT_INTERVAL_S = 1800  # what Grafana picks for ~17 days on a ~1000 px wide panel


def interval_seconds(text: str | None) -> int:
    if not text:
        return DEFAULT_INTERVAL_S
    number, unit = re.fullmatch(r"(\d+)([smhd])", text.strip().lstrip(">")).groups()
    return int(number) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]


def macro_calls(sql: str, name: str) -> Iterator[tuple[int, int, list[str]]]:
    """(start, end, top-level arguments) of each `$__name(...)` in `sql`."""
    for match in re.finditer(re.escape(f"$__{name}") + r"\(", sql):
        depth, args, begin = 1, [], match.end()
        for i in range(match.end(), len(sql)):
            char = sql[i]
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth == 0:
                    args.append(sql[begin:i])
                    yield match.start(), i + 1, [a.strip() for a in args]
                    break
            elif char == "," and depth == 1:
                args.append(sql[begin:i])
                begin = i + 1
        else:
            raise AssertionError(f"unbalanced $__{name}( in {sql!r}")


def conditional_all(sql: str, all_selected: set[str]) -> str:
    """The plugin's frontend `$__conditionalAll(condition, $var)`: `1=1` when the
    variable is All (or empty), else the condition."""
    while True:
        calls = list(macro_calls(sql, "conditionalAll"))
        if not calls:
            return sql
        start, end, args = calls[-1]
        assert len(args) == 2, args
        var = args[1].strip().lstrip("$").strip("{}")
        phrase = "1=1" if var in all_selected else args[0]
        sql = sql[:start] + phrase + sql[end:]


def template_variables(sql: str, values: dict[str, str | list[str]]) -> str:
    """Grafana's template replacement with the plugin's formatter: a multi-value (list)
    becomes `'a','b'`, a single value is inserted as it is."""

    def replace(match: re.Match[str]) -> str:
        name, fmt = match.group(1) or match.group(3), match.group(2)
        assert fmt is None, f"format {fmt!r} of ${name} is not expanded by this test"
        assert name in values, f"unknown variable ${name}"
        value = values[name]
        return "'" + "','".join(value) + "'" if isinstance(value, list) else value

    return re.sub(r"\$\{(\w+)(?::(\w+))?\}|\$(?!__)(\w+)", replace, sql)


def backend_macros(sql: str, start: datetime, end: datetime, interval_s: int) -> str:
    """The plugin's backend macros (pkg/macros), with their expansions."""
    frm, to = int(start.timestamp()), int(end.timestamp())
    frm_ms, to_ms = frm * 1000, to * 1000

    def seconds(value: int) -> str:
        return f"toDateTime({value})"

    def millis(value: int) -> str:
        return f"fromUnixTimestamp64Milli({value})"

    def day(value: datetime) -> str:
        return f"toDate('{value:%Y-%m-%d}')"

    with_args: dict[str, Callable[[list[str]], str]] = {
        "timeFilter": lambda a: f"{a[0]} >= {seconds(frm)} AND {a[0]} <= {seconds(to)}",
        "timeFilter_ms": lambda a: f"{a[0]} >= {millis(frm_ms)} AND {a[0]} <= {millis(to_ms)}",
        "dateFilter": lambda a: f"{a[0]} >= {day(start)} AND {a[0]} <= {day(end)}",
        "dateTimeFilter": lambda a: (
            f"({a[0]} >= {day(start)} AND {a[0]} <= {day(end)}) AND "
            f"({a[1]} >= {seconds(frm)} AND {a[1]} <= {seconds(to)})"
        ),
        "timeInterval": lambda a: (
            f"toStartOfInterval(toDateTime({a[0]}), INTERVAL {interval_s} second)"
        ),
        "timeInterval_ms": lambda a: (
            f"toStartOfInterval(toDateTime64({a[0]}, 3), INTERVAL {interval_s * 1000} millisecond)"
        ),
    }
    with_args["dt"] = with_args["dateTimeFilter"]
    plain = {
        "fromTime": seconds(frm),
        "toTime": seconds(to),
        "fromTime_ms": millis(frm_ms),
        "toTime_ms": millis(to_ms),
        "interval_s": str(interval_s),
    }
    for name, expand in with_args.items():
        while calls := list(macro_calls(sql, name)):
            begin, finish, args = calls[0]
            sql = sql[:begin] + expand(args) + sql[finish:]
    for name in sorted(plain, key=len, reverse=True):
        sql = re.sub(re.escape(f"$__{name}") + r"\b", plain[name], sql)
    left = re.findall(r"\$\w+", sql)
    assert not left, f"not expanded: {left}"
    return sql


def expand(
    sql: str,
    values: dict[str, str | list[str]],
    all_selected: set[str],
    interval_s: int = DEFAULT_INTERVAL_S,
) -> str:
    sql = conditional_all(sql, all_selected)
    sql = template_variables(sql, values)
    return backend_macros(sql, RANGE_FROM, RANGE_TO, interval_s)


def test_expansion_matches_the_plugin() -> None:
    sql = (
        "SELECT $__timeInterval(t) AS time FROM ${database}.x WHERE $__timeFilter(t) "
        "AND $__conditionalAll(ns IN ($namespace), $namespace) AND n IN ($namespace) "
        "AND s > $__interval_s"
    )
    values: dict[str, str | list[str]] = {"database": "db", "namespace": ["a", "b"]}
    got = expand(sql, values, {"namespace"}, 3600)
    frm, to = int(RANGE_FROM.timestamp()), int(RANGE_TO.timestamp())
    assert got == (
        "SELECT toStartOfInterval(toDateTime(t), INTERVAL 3600 second) AS time FROM db.x "
        f"WHERE t >= toDateTime({frm}) AND t <= toDateTime({to}) AND 1=1 "
        "AND n IN ('a','b') AND s > 3600"
    )
    one = expand(sql, {"database": "db", "namespace": ["a"]}, set(), 60)
    assert "AND ns IN ('a') AND n IN ('a')" in one


# --- ClickHouse: real data through the real pipeline --------------------------------------

T0 = datetime(2026, 10, 1, 2, 0, tzinfo=UTC)
PG = "postgres://db:5432"
ORDERS = "shop.public.orders"


def schema(*columns: str) -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=c, type="STRING") for c in columns]
    )


def checks(*results: tuple[str, str | None, bool]) -> dqa.DataQualityAssertionsDatasetFacet:
    return dqa.DataQualityAssertionsDatasetFacet(
        assertions=[
            dqa.Assertion(assertion=name, column=column, success=ok) for name, column, ok in results
        ]
    )


class Emitter:
    """Runs of jobs through openlineage-python's Kafka transport: a START and (unless
    `state` is None) a terminal event; input quality facets ride on the terminal event."""

    def __init__(self, settings: Settings) -> None:
        config = KafkaConfig(
            topic=settings.topics.events,
            config={"bootstrap.servers": settings.kafka.bootstrap_servers, "acks": "all"},
            flush=True,
        )
        self.client = OpenLineageClient(transport=KafkaTransport(config))
        self.runs = 0
        self.finished = 0

    def run(
        self,
        namespace: str,
        job: str,
        start: datetime,
        seconds: float,
        state: RunState | None = RunState.COMPLETE,
        inputs: tuple[tuple[str, str, tuple[str, ...], dict[str, Any]], ...] = (),
        outputs: tuple[tuple[str, str, tuple[str, ...]], ...] = (),
        error: str = "",
    ) -> str:
        run_id = str(uuid.uuid4())
        self.runs += 1
        steps: list[tuple[RunState, datetime]] = [(RunState.START, start)]
        if state is not None:
            self.finished += 1
            steps.append((state, start + timedelta(seconds=seconds)))
        for event_type, at in steps:
            final = event_type != RunState.START
            facets: dict[str, Any] = {}
            if final and error:
                facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                    message=error, programmingLanguage="python"
                )
            self.client.emit(
                RunEvent(
                    eventType=event_type,
                    eventTime=at.isoformat(),
                    run=Run(runId=run_id, facets=facets),
                    job=Job(namespace=namespace, name=job),
                    producer=PRODUCER,
                    inputs=[
                        InputDataset(
                            namespace=ns,
                            name=name,
                            facets={"schema": schema(*columns)},
                            inputFacets=quality if final else {},
                        )
                        for ns, name, columns, quality in inputs
                    ],
                    outputs=[
                        OutputDataset(namespace=ns, name=name, facets={"schema": schema(*columns)})
                        for ns, name, columns in outputs
                    ],
                )
            )
        return run_id


def emit_history(emitter: Emitter) -> None:
    """A week of runs in namespaces `etl` and `analytics`."""
    day = timedelta(days=1)
    orders = ("id", "customer_id", "amount")
    # etl/nightly_load: ~60 s a day, then 300 s (duration_outlier); customer_id starts
    # arriving null on day 6 (assertion_failed, still open)
    for n, jitter in enumerate([0.0, 1.5, -1.2, 2.0, -2.0, 0.7, -0.4]):
        quality = {
            "dataQualityAssertions": checks(
                ("not_null", "id", True), ("not_null", "customer_id", n < 6), ("unique", "id", True)
            ),
            "dataQualityMetrics": dqm.DataQualityMetricsInputDatasetFacet(
                rowCount=1000 + 10 * n,
                columnMetrics={"customer_id": dqm.ColumnMetrics(nullCount=0 if n < 6 else 7)},
            ),
        }
        source = ((PG, ORDERS, orders, quality),)
        target = (("etl", "warehouse.orders", orders),)
        emitter.run("etl", "nightly_load", T0 + n * day, 60 + jitter, inputs=source, outputs=target)
    emitter.run(
        "etl",
        "nightly_load",
        T0 + 7 * day,
        300,
        inputs=(
            (
                PG,
                ORDERS,
                orders,
                {"dataQualityAssertions": checks(("not_null", "customer_id", False))},
            ),
        ),
        outputs=(("etl", "warehouse.orders", orders),),
    )
    # etl/build_users: a column dropped on day 3 (schema_changed, breaking)
    for n, columns in (
        (1, ("id", "name", "email")),
        (2, ("id", "name", "email")),
        (3, ("id", "email")),
    ):
        emitter.run(
            "etl", "build_users", T0 + n * day, 10, outputs=(("etl", "warehouse.users", columns),)
        )
    # etl/publish: fails on day 3 (run_failed, open)
    emitter.run("etl", "publish", T0 + 2 * day, 3)
    emitter.run("etl", "publish", T0 + 3 * day, 3, state=RunState.FAIL, error="disk full")
    # analytics/daily_report: a failing check on day 2 (passes again on day 3), a failure
    # on day 4 (resolved on day 5), an abort on day 6 (its checks count as skipped)
    for n in range(7):
        state = {4: RunState.FAIL, 6: RunState.ABORT}.get(n, RunState.COMPLETE)
        quality = {"dataQualityAssertions": checks(("row_count_above", None, n != 2))}
        emitter.run(
            "analytics",
            "daily_report",
            T0 + n * day + timedelta(hours=3),
            120 + n,
            state=state,
            inputs=(("etl", "warehouse.orders", orders, quality),),
            outputs=(("analytics", "reports.daily_orders", ("day", "orders")),),
            error="query timeout" if state == RunState.FAIL else "",
        )
    # analytics/profile_orders: metrics only
    for n in (1, 4):
        metrics_facet = dqm.DataQualityMetricsInputDatasetFacet(
            rowCount=5000 + n, bytes=123456, columnMetrics={}
        )
        emitter.run(
            "analytics",
            "profile_orders",
            T0 + n * day + timedelta(hours=5),
            5,
            inputs=((PG, ORDERS, orders, {"dataQualityMetrics": metrics_facet}),),
        )
    # analytics/live_refresh: started, not finished
    emitter.run("analytics", "live_refresh", T0 + 7 * day + timedelta(hours=6), 0, state=None)


def resolve_variables(
    ch: Client, board: dict[str, Any], database: str
) -> tuple[dict[str, str | list[str]], set[str], list[str]]:
    """Every template variable's values, running the ClickHouse query variables (in
    order, as Grafana does); returns (values with All selected, multi-value variables,
    problems)."""
    values: dict[str, str | list[str]] = {}
    multi: set[str] = set()
    problems: list[str] = []
    for var in board["templating"]["list"]:
        name = var["name"]
        if var["type"] in ("textbox", "constant"):
            values[name] = database if name == "database" else var["query"]
        elif var["type"] == "query":
            assert var["datasource"]["type"] == CLICKHOUSE, name
            raw = var["query"] if isinstance(var["query"], str) else var["query"]["rawSql"]
            sql = expand(raw, values, set())
            try:
                found = [str(row[0]) for row in ch.query(sql).result_rows]
            except Exception as exc:
                problems.append(f"variable ${name}: {exc}\n{sql}")
                found = []
            if not found:
                problems.append(f"variable ${name} returned no values:\n{sql}")
            values[name] = found if var.get("multi") or var.get("includeAll") else found[0]
            if var.get("multi") or var.get("includeAll"):
                multi.add(name)
        else:
            raise AssertionError(f"variable type {var['type']} not handled by this test")
    return values, multi, problems


def meaningful(rows: list[tuple]) -> bool:
    """Rows, and not one row of zeros/NULLs (an aggregate over nothing)."""
    if not rows:
        return False
    if len(rows) == 1 and all(v is None or isinstance(v, int | float) for v in rows[0]):
        return any(v not in (None, 0) for v in rows[0])
    return True


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_every_clickhouse_query_returns_rows_on_emitted_data(
    make_settings: Callable[..., Settings],
    ch: Client,
    start_worker: Any,
    clickhouse_url: str,
) -> None:
    settings = make_settings()
    migrate(settings)
    ensure_topics(settings)
    db = settings.clickhouse.database
    worker = start_worker(settings)
    emitter = Emitter(settings)
    emit_history(emitter)

    def finished() -> bool:
        rows = ch.query(
            f"SELECT count(), countIf(ended_at IS NOT NULL) FROM {db}.run_states"
        ).result_rows
        return rows[0] == (emitter.runs, emitter.finished)

    wait_for(finished, 180, "every run in run_states", alive=worker)
    kinds = {"assertion_failed", "run_failed", "duration_outlier", "schema_changed"}

    def issues() -> bool:
        rows = ch.query(f"SELECT DISTINCT kind, status FROM {db}.issue_states").result_rows
        return {k for k, _ in rows} == kinds and {s for _, s in rows} == {"open", "resolved"}

    wait_for(issues, 180, "open and resolved issues of every kind", alive=worker)
    assert wait_until_drained(settings, timeout_s=120) == []

    problems: list[str] = []
    ran = 0
    for path in DASHBOARDS:
        board = load(path)
        values, multi, found = resolve_variables(ch, board, db)
        problems += [f"{path.name}: {p}" for p in found]
        for panel in panels_of(board):
            for target in panel.get("targets", []):
                if target["datasource"]["type"] != CLICKHOUSE:
                    continue
                where = f"{path.name}: {panel['title']!r} ({target['refId']})"
                interval = interval_seconds(panel.get("interval"))
                # All selected (what the dashboards open with): rows expected
                sql = expand(target["rawSql"], values, multi, interval)
                started = time.monotonic()
                try:
                    rows = ch.query(sql).result_rows
                except Exception as exc:
                    problems.append(f"{where}: {exc}\n{sql}")
                    continue
                ran += 1
                took = time.monotonic() - started
                if not meaningful(rows):
                    problems.append(f"{where}: no rows\n{sql}")
                if took > 10:
                    problems.append(f"{where}: took {took:.1f} s")
                # each single value of the multi-value variables: the query must run
                for name in multi:
                    for value in values[name]:
                        one = expand(target["rawSql"], {**values, name: [value]}, multi - {name})
                        try:
                            ch.query(one)
                        except Exception as exc:
                            problems.append(f"{where} with ${name}={value}: {exc}\n{one}")
    assert not problems, "\n\n".join(problems)
    assert ran >= 15, ran

    # Grafana's plugin talks to the server the way clickhouse-go's HTTP transport does:
    # POST / with default_format=Native, the database as a parameter, basic auth.
    panel_sql = expand(
        "SELECT kind, count() FROM issue_states WHERE $__timeFilter(opened_at) GROUP BY kind",
        {},
        set(),
    )
    resp = httpx.post(
        f"{clickhouse_url}/",
        params={"default_format": "Native", "database": db, "max_execution_time": "60"},
        content=panel_sql.encode(),
        auth=("default", ""),
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    assert resp.content, "empty Native answer"

    # The worker's /metrics (what Prometheus scrapes) has the metrics the panels plot.
    body = httpx.get(f"http://127.0.0.1:{settings.worker.web_port}/metrics", timeout=10).text
    scraped = {
        sample.name for family in text_string_to_metric_families(body) for sample in family.samples
    }
    plotted = set()
    for _, target in prometheus_targets():
        plotted |= promql_names(target["expr"])[0]
    for name in (
        "lineagehouse_events_consumed_total",
        "lineagehouse_events_accepted_total",
        "lineagehouse_derived_rows_total",
        "lineagehouse_sink_batch_rows_sum",
        "lineagehouse_sink_batch_seconds_bucket",
        "lineagehouse_processor_batch_seconds_bucket",
        "lineagehouse_issues_written_total",
    ):
        assert name in plotted and name in scraped, name
