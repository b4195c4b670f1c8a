"""The web UI in a real browser (Debian's Chromium driven by playwright) against the running
product, loaded with real emitter data:

- openlineage-python over Kafka: `etl/orders_pipeline` reads `shop.public.orders` and
  writes `analytics.daily_orders` (SQL job facet, column lineage, metrics) in ten runs of
  ~60 s; the eleventh takes 300 s (a duration outlier), carries a custom run facet
  (`myCompany_deployment`), adds a column to `daily_orders` and writes one more output
  (`analytics.order_summary`); `etl/publish_report` reads `daily_orders` and fails last;
- dbt-ol (the sample project) seeded, run and tested: the not_null test of
  `stg_orders.customer_id` fails (an assertion_failed issue).

The browser logs in with a read key, finds the outlier run in Runs, opens its graph,
switches "as of" to an older run and sees the older graph (without `order_summary`), opens
the failing dbt dataset's Quality view and its issue, reads the custom facet in the run's
Info, sees the duration outlier and the compared runs, and finds the SQL hidden; then, on
an API with `LINEAGEHOUSE_API__EXPOSE_SQL=true`, shown. A key limited to `etl*` sees no
dbt run; with auth off the UI needs no login. Chromium not starting fails the test.

Screenshots (1440x900) go to the test's tmp dir and `artifacts/screenshots/`; with
`LINEAGEHOUSE_UPDATE_SCREENSHOTS=1` also to `docs/screenshots/` (the README shows those).
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote

import attr
import httpx
import pytest
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    RunFacet,
    column_lineage_dataset,
    data_quality_metrics_input_dataset,
    error_message_run,
    parent_run,
    schema_dataset,
    sql_job,
)
from openlineage.client.facet_v2 import (
    output_statistics_output_dataset as output_stats,
)
from openlineage.client.transport.kafka import KafkaConfig, KafkaTransport
from playwright.sync_api import Page, sync_playwright

from lineagehouse.settings import Settings
from lineagehouse.store.migrations import migrate
from lineagehouse.topics import ensure_topics
from tests.conftest import REPO, run_cli, wait_for
from tests.emitters import dbt_env

pytestmark = [pytest.mark.slow, pytest.mark.emitters, pytest.mark.timeout(1500)]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1440, "height": 900}
ARTIFACTS = REPO / "artifacts" / "screenshots"
DOCS_SHOTS = REPO / "docs" / "screenshots"
PRODUCER = "https://github.com/lineagehouse/lineagehouse/tests/ui"

SOURCE_NS = "postgres://db.example:5432"
SOURCE = "shop.public.orders"
WAREHOUSE = "warehouse"
DAILY = "analytics.daily_orders"
SUMMARY = "analytics.order_summary"
REPORT_NS = "reports"
REPORT = "daily_revenue_report"
SQL = (
    "-- daily revenue\n"
    "INSERT INTO analytics.daily_orders\n"
    "SELECT date(created_at) AS day, count(id) AS orders, sum(amount) AS revenue\n"
    "FROM shop.public.orders\n"
    "WHERE status = 'completed'\n"
    "GROUP BY 1"
)
DBT_MODEL = "model.lh_shop.stg_orders"


@attr.define
class MyCompanyDeploymentRunFacet(RunFacet):
    """A custom run facet: its schema URL is not an OpenLineage spec URL."""

    environment: str
    version: str
    team: str

    @staticmethod
    def _get_schema() -> str:
        return "https://schemas.mycompany.example/facets/DeploymentRunFacet.json"


def schema(*fields: tuple[str, str]) -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in fields]
    )


def lineage_of(*pairs: tuple[str, str, str]) -> column_lineage_dataset.ColumnLineageDatasetFacet:
    """(output field, input field, transformation type) of SOURCE."""
    return column_lineage_dataset.ColumnLineageDatasetFacet(
        fields={
            out: column_lineage_dataset.Fields(
                inputFields=[
                    column_lineage_dataset.InputField(
                        namespace=SOURCE_NS,
                        name=SOURCE,
                        field=src,
                        transformations=[column_lineage_dataset.Transformation(type=kind)],
                    )
                ]
            )
            for out, src, kind in pairs
        }
    )


class Emitter:
    """openlineage-python's client on the Kafka transport, one START and one end event
    per run at synthetic times."""

    def __init__(self, settings: Settings) -> None:
        config = KafkaConfig(
            topic=settings.topics.events,
            config={"bootstrap.servers": settings.kafka.bootstrap_servers, "acks": "all"},
            flush=True,
        )
        self.client = OpenLineageClient(transport=KafkaTransport(config))

    def run(
        self,
        namespace: str,
        name: str,
        start: datetime,
        seconds: float,
        state: RunState = RunState.COMPLETE,
        inputs: list[InputDataset] | None = None,
        outputs: list[OutputDataset] | None = None,
        run_facets: dict[str, Any] | None = None,
        job_facets: dict[str, Any] | None = None,
    ) -> str:
        run_id = str(uuid.uuid4())
        for event_type, at in (
            (RunState.START, start),
            (state, start + timedelta(seconds=seconds)),
        ):
            facets = dict(run_facets or {})
            if event_type == RunState.FAIL:
                facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                    message="report server refused the upload", programmingLanguage="python"
                )
            self.client.emit(
                RunEvent(
                    eventType=event_type,
                    eventTime=at.isoformat(),
                    run=Run(runId=run_id, facets=facets),
                    job=Job(namespace=namespace, name=name, facets=job_facets or {}),
                    producer=PRODUCER,
                    inputs=inputs or [],
                    outputs=outputs or [],
                )
            )
        return run_id


def emit_pipeline(settings: Settings, t0: datetime) -> dict[str, Any]:
    """The openlineage-python runs; returns their ids."""
    emit = Emitter(settings)
    jitter = [0.0, 1.5, -1.2, 2.0, -2.0, 0.7, -0.4, 1.1, -1.8, 0.3]
    sql_facet = {"sql": sql_job.SQLJobFacet(query=SQL, dialect="postgres")}
    daily_v1 = schema(("day", "DATE"), ("orders", "INTEGER"), ("revenue", "DECIMAL"))
    daily_v2 = schema(
        ("day", "DATE"), ("orders", "INTEGER"), ("revenue", "DECIMAL"), ("currency", "STRING")
    )
    columns = lineage_of(
        ("day", "created_at", "DIRECT"),
        ("orders", "id", "INDIRECT"),
        ("revenue", "amount", "DIRECT"),
    )

    def source(day: int) -> InputDataset:
        metrics = data_quality_metrics_input_dataset.DataQualityMetricsInputDatasetFacet(
            rowCount=1000 + 37 * day,
            columnMetrics={
                "customer_id": data_quality_metrics_input_dataset.ColumnMetrics(
                    nullCount=day % 3, distinctCount=300 + 5 * day
                ),
                "amount": data_quality_metrics_input_dataset.ColumnMetrics(
                    nullCount=0, distinctCount=800 + 20 * day
                ),
            },
        )
        return InputDataset(
            namespace=SOURCE_NS,
            name=SOURCE,
            facets={
                "schema": schema(
                    ("id", "INTEGER"),
                    ("customer_id", "INTEGER"),
                    ("amount", "DECIMAL"),
                    ("status", "STRING"),
                    ("created_at", "TIMESTAMP"),
                )
            },
            inputFacets={"dataQualityMetrics": metrics},
        )

    def daily(day: int, facet: schema_dataset.SchemaDatasetFacet) -> OutputDataset:
        return OutputDataset(
            namespace=WAREHOUSE,
            name=DAILY,
            facets={"schema": facet, "columnLineage": columns},
            outputFacets={
                "outputStatistics": output_stats.OutputStatisticsOutputDatasetFacet(
                    rowCount=30 + day
                )
            },
        )

    runs = []
    for day, delta in enumerate(jitter):
        runs.append(
            emit.run(
                "etl",
                "orders_pipeline",
                t0 + timedelta(days=day),
                60 + delta,
                inputs=[source(day)],
                outputs=[daily(day, daily_v1)],
                job_facets=sql_facet,
            )
        )
    summary = OutputDataset(
        namespace=WAREHOUSE,
        name=SUMMARY,
        facets={"schema": schema(("customer_id", "INTEGER"), ("total", "DECIMAL"))},
    )
    deployment = MyCompanyDeploymentRunFacet(environment="prod", version="2.4.1", team="revenue")
    outlier = emit.run(
        "etl",
        "orders_pipeline",
        t0 + timedelta(days=10),
        300,
        inputs=[source(10)],
        outputs=[daily(10, daily_v2), summary],
        run_facets={"myCompany_deployment": deployment},
        job_facets=sql_facet,
    )
    runs.append(outlier)

    def report_run(day: int, state: RunState, parent: str) -> str:
        facet = parent_run.ParentRunFacet(
            run=parent_run.Run(runId=parent),
            job=parent_run.Job(namespace="etl", name="orders_pipeline"),
        )
        return emit.run(
            "etl",
            "publish_report",
            t0 + timedelta(days=day, minutes=10),
            12,
            state,
            inputs=[InputDataset(namespace=WAREHOUSE, name=DAILY)],
            outputs=[OutputDataset(namespace=REPORT_NS, name=REPORT)],
            run_facets={"parent": facet},
        )

    report_ok = report_run(9, RunState.COMPLETE, runs[9])
    report_failed = report_run(10, RunState.FAIL, outlier)
    return {"pipeline": runs, "outlier": outlier, "report": [report_ok, report_failed]}


def run_dbt(settings: Settings, tmp_path: Path) -> dict[str, str]:
    """seed, run and test the sample project under dbt-ol (one test fails)."""
    bin_dir = dbt_env.dbt_venv(REPO / ".venv" / "emitters")
    project = dbt_env.copy_project(tmp_path / "project")
    duckdb_path = tmp_path / "lh.duckdb"
    env = {
        "DBT_DUCKDB_PATH": str(duckdb_path),
        **dbt_env.kafka_transport_env(settings.kafka.bootstrap_servers, settings.topics.events),
    }
    for command, exit_code in (("seed", 0), ("run", 0), ("test", 1)):
        done = dbt_env.run_dbt_ol(bin_dir, project, [command], env)
        assert done.returncode == exit_code, f"dbt-ol {command}:\n{done.stdout[-3000:]}"
    manifest = (project / "target" / "manifest.json").read_text()
    import json

    node = json.loads(manifest)["nodes"][DBT_MODEL]
    return {
        "namespace": f"duckdb://{duckdb_path}",
        "name": f"{node['database']}.{node['schema']}.{node['alias']}",
    }


def create_key(settings: Settings, name: str, *namespaces: str) -> str:
    args = ["keys", "create", "--name", name, "--role", "read"]
    for namespace in namespaces:
        args += ["--namespace", namespace]
    done = run_cli(settings, *args)
    assert done.returncode == 0, done.stderr
    (key,) = [line.strip() for line in done.stdout.splitlines() if line.strip().startswith("lh_")]
    return key


# --- the browser ---------------------------------------------------------------------------


@contextmanager
def browser_page() -> Iterator[tuple[Page, list[str]]]:
    """A 1440x900 page of Debian's Chromium; the list collects uncaught page errors."""
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            context = browser.new_context(viewport=VIEWPORT)
            page = context.new_page()
            page.set_default_timeout(20_000)
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            yield page, errors
        finally:
            browser.close()


class Shots:
    def __init__(self, tmp_path: Path) -> None:
        self.dirs = [tmp_path / "screenshots", ARTIFACTS]
        if os.environ.get("LINEAGEHOUSE_UPDATE_SCREENSHOTS") == "1":
            self.dirs.append(DOCS_SHOTS)
        for d in self.dirs:
            d.mkdir(parents=True, exist_ok=True)
        self.taken: list[str] = []

    def __call__(self, page: Page, name: str) -> None:
        page.wait_for_timeout(250)  # let the last layout settle
        first = self.dirs[0] / f"{name}.png"
        page.screenshot(path=str(first))
        for d in self.dirs[1:]:
            shutil.copyfile(first, d / f"{name}.png")
        self.taken.append(name)


def rendered(page: Page) -> None:
    """Wait until the page has finished rendering the current hash (`route()` in app.js
    marks `#app` with it): after a click that changes the hash, the previous view, whose
    elements may match the same selectors, stays on screen until then."""
    page.wait_for_function(
        "() => document.getElementById('app').dataset.rendered === (location.hash || '#')"
    )


def graph_nodes(page: Page) -> set[str]:
    return set(
        page.eval_on_selector_all("svg.graph g.node", "els => els.map(e => e.dataset.nodeId)")
    )


def login(page: Page, url: str, key: str) -> None:
    page.goto(url + "/")
    page.wait_for_selector("#login-form")
    page.fill("#api-key", key)
    page.click("#login-form button[type=submit]")
    page.wait_for_selector("table.runs-table tbody tr")
    rendered(page)


def seg(text: str) -> str:
    return quote(text, safe="")


# --- the test ------------------------------------------------------------------------------


def test_web_ui_with_real_emitters(
    make_settings: Callable[..., Settings],
    start_worker: Any,
    start_api: Any,
    tmp_path: Path,
) -> None:
    settings = make_settings()
    migrate(settings)
    ensure_topics(settings)
    worker = start_worker(settings)
    t0 = (datetime.now(UTC) - timedelta(days=20)).replace(hour=2, minute=0, second=0, microsecond=0)
    ids = emit_pipeline(settings, t0)
    dbt = run_dbt(settings, tmp_path)
    key = create_key(settings, "ui-reader")
    etl_key = create_key(settings, "ui-etl-only", "etl*", "warehouse", "postgres://*", "reports")

    url = start_api(settings)  # auth on, SQL not exposed
    headers = {"Authorization": f"Bearer {key}"}

    def api(path: str, **params: Any) -> Any:
        resp = httpx.get(f"{url}{path}", params=params, headers=headers, timeout=30)
        return resp.json() if resp.status_code == 200 else None

    def issues_of(kind: str) -> list[dict[str, Any]]:
        found = api("/api/v2/issues", kind=kind, status="open")
        return found["items"] if found else []

    outlier = ids["outlier"]
    wait_for(lambda: issues_of("duration_outlier"), 180, "the duration outlier", alive=worker)
    failed_checks = wait_for(
        lambda: issues_of("assertion_failed"), 180, "the dbt assertion issue", alive=worker
    )
    (check_issue,) = [i for i in failed_checks if i["dataset"]["name"] == dbt["name"]]
    assert check_issue["column"] == "customer_id"
    wait_for(lambda: issues_of("run_failed"), 120, "the failed report run", alive=worker)
    wait_for(
        lambda: (api("/api/v2/runs/" + outlier) or {}).get("duration_ms") == 300_000,
        120,
        "the outlier run's state",
        alive=worker,
    )
    wait_for(
        lambda: any(
            n["name"] == SUMMARY
            for n in (api("/api/v2/lineage", node_id="job:etl:orders_pipeline") or {"nodes": []})[
                "nodes"
            ]
        ),
        60,
        "the newest graph in the lineage index",
    )
    old_run = ids["pipeline"][3]
    shots = Shots(tmp_path)

    with browser_page() as (page, errors):
        # ---- the page needs no key; the API does; a wrong key is refused
        resp = httpx.get(url + "/")
        assert resp.status_code == 200 and "text/html" in resp.headers["content-type"]
        assert httpx.get(url + "/api/v2/runs").status_code == 401
        page.goto(url + "/")
        page.wait_for_selector("#login-form")
        shots(page, "login")
        page.fill("#api-key", "lh_aaaaaaaaaaaa_" + "b" * 40)
        page.click("#login-form button[type=submit]")
        page.wait_for_function(
            "document.querySelector('#login-error').textContent.includes('not accepted')"
        )
        page.fill("#api-key", key)
        page.click("#login-form button[type=submit]")

        # ---- Runs: most recent first; find the outlier run of orders_pipeline
        page.wait_for_selector("table.runs-table tbody tr[data-run-id]")
        shots(page, "runs")
        page.fill("#f-job", "orders_pipeline")
        page.click("form.filters button[type=submit]")
        page.wait_for_function("location.hash.includes('job=orders_pipeline')")
        rendered(page)  # the filtered table, not the one the click left behind
        rows = page.eval_on_selector_all(
            "table.runs-table tbody tr", "rs => rs.map(r => r.dataset.runId)"
        )
        assert rows[0] == outlier, rows  # newest first
        assert rows == list(reversed(ids["pipeline"])), rows
        first = page.locator(f"tr[data-run-id='{outlier}']")
        assert "5 min" in first.inner_text()  # the 300 s duration
        assert "COMPLETE" in first.inner_text()

        # ---- its graph (as of the run: the newest graph), then as of an older run
        first.locator("a.graph-link").click()
        page.wait_for_selector("svg.graph g.node")
        newest = graph_nodes(page)
        job_node = "job:etl:orders_pipeline"
        assert {
            job_node,
            f"dataset:{SOURCE_NS}:{SOURCE}",
            f"dataset:{WAREHOUSE}:{DAILY}",
            f"dataset:{WAREHOUSE}:{SUMMARY}",
            "job:etl:publish_report",
            f"dataset:{REPORT_NS}:{REPORT}",
        } <= newest, newest
        # coloured by the state of each job's run then, marked with open issues (now):
        # publish_report failed later, on day 10 after this run started
        assert page.get_attribute(f"g.node[data-node-id='{job_node}']", "data-state") == "COMPLETE"
        report = page.locator("g.node[data-node-id='job:etl:publish_report']")
        assert report.get_attribute("data-state") == "COMPLETE"
        assert "has-issues" in (report.get_attribute("class") or "")
        shots(page, "lineage")

        page.select_option("#g-as-of", f"run:{old_run}")
        page.wait_for_function(f"location.hash.includes('as_of_run={old_run}')")
        page.wait_for_selector("#as-of-note")
        assert old_run[-4:] in page.inner_text("#as-of-note")
        page.wait_for_selector("svg.graph g.node")
        older = graph_nodes(page)
        # as of run 3: no order_summary yet (the newest run added it), and publish_report
        # had not run yet (its first run is on day 9)
        assert newest - older == {
            f"dataset:{WAREHOUSE}:{SUMMARY}",
            "job:etl:publish_report",
            f"dataset:{REPORT_NS}:{REPORT}",
        }, (newest, older)
        assert older - newest == set(), older
        shots(page, "lineage-as-of-older-run")

        # ---- side panel, collapse, column lineage
        page.click(f"g.node[data-node-id='dataset:{WAREHOUSE}:{DAILY}']")
        page.wait_for_selector("#side-panel:not(.hidden)")
        assert DAILY in page.inner_text("#side-panel .panel-title")
        page.click("#side-panel button:has-text('Column lineage')")
        page.wait_for_selector("#side-panel ul.column-list li")
        assert "orders.amount → analytics.daily_orders.revenue" in page.inner_text(
            "#side-panel ul.column-list"
        )
        shots(page, "lineage-side-panel")
        # collapsing the job hides the datasets only it connects to the start
        before = len(graph_nodes(page))
        page.click(f"g.node[data-node-id='{job_node}']")
        page.wait_for_selector(f"#side-panel[data-node-id='{job_node}']")
        page.click("#collapse-button")
        page.wait_for_function(f"document.querySelectorAll('svg.graph g.node').length < {before}")
        assert page.locator(f"g.node[data-node-id='{job_node}'] .collapse-badge").count() == 1
        page.click("#collapse-button")  # expand again
        page.wait_for_function(f"document.querySelectorAll('svg.graph g.node').length === {before}")

        # ---- now: every job coloured by its latest run (publish_report failed)
        page.select_option("#g-as-of", "now")
        page.wait_for_function("!location.hash.includes('as_of')")
        page.wait_for_selector("g.node[data-node-id='job:etl:publish_report'][data-state=FAIL]")
        assert page.locator("#as-of-note").count() == 0
        assert graph_nodes(page) == newest

        # ---- search for the failing dbt dataset; its Quality view; its issue
        page.fill("#search-input", "stg_orders")
        page.press("#search-input", "Enter")
        page.wait_for_selector("table.search-table a.result-link")
        shots(page, "search")
        page.click(f"table.search-table a.result-link:text-is('{dbt['name']}')")
        page.wait_for_selector(".dataset-title")
        page.click("nav.tabs a[data-tab=quality]")
        row = page.locator(
            "table.assertion-grid tr[data-assertion=not_null][data-column=customer_id]"
        )
        row.wait_for()
        assert "fail" in row.locator("td.cell-fail").first.inner_text()
        assert page.locator("svg.counts-chart").count() == 1
        shots(page, "dataset-quality")
        page.click(".quality-summary a.open-issues")
        issue_row = page.locator(f"tr[data-issue-id='{check_issue['issue_id']}']")
        issue_row.wait_for()
        assert "customer_id" in issue_row.inner_text()
        assert "assertion_failed" in issue_row.inner_text()
        assert issue_row.locator(f"a.run-link[href*='{check_issue['run_id']}']").count() == 1
        shots(page, "issues-of-dataset")

        # ---- the Issues page: open issues of every kind, filtered by kind
        page.click("#nav a[data-nav=issues]")
        # the previous page had an issues table too: wait for this page's rows
        page.wait_for_function(
            "() => new Set([...document.querySelectorAll("
            "'table.issues-table tbody tr[data-issue-id]')].map(r => r.dataset.kind)).size >= 3"
        )
        kinds = set(
            page.eval_on_selector_all(
                "table.issues-table tbody tr[data-issue-id]", "rs => rs.map(r => r.dataset.kind)"
            )
        )
        assert {"assertion_failed", "duration_outlier", "run_failed"} <= kinds, kinds
        shots(page, "issues")
        page.select_option("#f-kind", "duration_outlier")
        page.click("form.filters button[type=submit]")
        page.wait_for_function("location.hash.includes('kind=duration_outlier')")
        rendered(page)
        kinds = set(
            page.eval_on_selector_all(
                "table.issues-table tbody tr[data-issue-id]", "rs => rs.map(r => r.dataset.kind)"
            )
        )
        assert kinds == {"duration_outlier"}, kinds

        # ---- the outlier run: Info (custom facet, SQL hidden), Duration, Compare
        page.click(f"table.issues-table a.run-link[href*='{outlier}']")
        page.wait_for_selector("#custom-facets")
        custom = page.locator("#custom-facets .facet[data-facet=myCompany_deployment]")
        assert custom.count() == 1
        custom.locator("summary").first.click()
        assert '"prod"' in custom.inner_text() and '"2.4.1"' in custom.inner_text()
        assert page.locator("#standard-facets .facet[data-facet=myCompany_deployment]").count() == 0
        assert "LINEAGEHOUSE_API__EXPOSE_SQL" in page.inner_text("#sql-hidden")
        assert "GROUP BY" not in page.inner_text("body")
        shots(page, "run-info")

        page.click("nav.tabs a[data-tab=duration]")
        page.wait_for_selector("#duration-summary")
        assert page.locator("svg.chart circle.point.outlier").count() == 1
        assert page.locator("svg.chart rect.band").count() == 1
        assert "outlier" in page.inner_text(f"table.durations-table tr[data-run-id='{outlier}']")
        shots(page, "run-duration")

        page.click("nav.tabs a[data-tab=compare]")
        page.wait_for_selector("#compare-table")
        compare = page.inner_text("#compare-table")
        assert f"{WAREHOUSE}:{SUMMARY}" in compare
        added = page.eval_on_selector_all(
            "#compare-table li.chg.added", "els => els.map(e => e.textContent)"
        )
        assert added == [f"{WAREHOUSE}:{SUMMARY}"], added
        assert "+ currency STRING" in page.inner_text("table.schema-diff")
        shots(page, "run-compare")

        # ---- the dataset's schema versions: what changed
        page.goto(f"{url}/#/dataset/{seg(WAREHOUSE)}/{seg(DAILY)}")
        page.wait_for_selector("ol.versions li.version")
        assert page.locator("ol.versions li.version").count() == 2
        assert "+ currency" in page.inner_text("ol.versions li.version.current")
        shots(page, "dataset-schema")

        assert errors == [], errors

    # ---- a key limited to the etl namespaces sees no dbt run, and no dbt dataset
    with browser_page() as (page, errors):
        login(page, url, etl_key)
        jobs = set(
            page.eval_on_selector_all(
                "table.runs-table tbody tr[data-job]", "rs => rs.map(r => r.dataset.job)"
            )
        )
        assert jobs <= {"orders_pipeline", "publish_report"}, jobs
        page.goto(f"{url}/#/dataset/{seg(dbt['namespace'])}/{seg(dbt['name'])}")
        page.wait_for_selector(".message.error")
        assert "Not found" in page.inner_text(".message.error")
        assert errors == [], errors

    # ---- SQL shown once the operator exposes it
    exposed_settings = make_settings(
        clickhouse={"database": settings.clickhouse.database},
        topics={"events": settings.topics.events, "dlq": settings.topics.dlq},
        worker={"sink_group_id": settings.worker.sink_group_id},
    )
    exposed = start_api(exposed_settings, LINEAGEHOUSE_API__EXPOSE_SQL="true")
    with browser_page() as (page, errors):
        login(page, exposed, key)
        page.goto(f"{exposed}/#/run/{outlier}")
        page.wait_for_selector("#sql-code pre.code")
        code = page.inner_text("#sql-code")
        assert "GROUP BY" in code and "shop.public.orders" in code
        assert page.locator("#sql-code .tok-keyword").count() >= 5
        assert page.locator("#sql-hidden").count() == 0
        shots(page, "run-info-sql")
        assert errors == [], errors

    # ---- auth off: no login screen, an "auth off" note
    open_settings = make_settings(
        clickhouse={"database": settings.clickhouse.database},
        topics={"events": settings.topics.events, "dlq": settings.topics.dlq},
        worker={"sink_group_id": settings.worker.sink_group_id},
    )
    open_url = start_api(open_settings, LINEAGEHOUSE_API__AUTH_ENABLED="false")
    with browser_page() as (page, errors):
        page.goto(open_url + "/")
        page.wait_for_selector("table.runs-table tbody tr[data-run-id]")
        assert page.inner_text("#whoami") == "auth off"
        assert page.locator("#login-form").count() == 0
        assert errors == [], errors

    assert re.findall(r"[a-z-]+", " ".join(shots.taken)), shots.taken
