"""`lineagehouse demo`: a realistic sample estate, sent through openlineage-python.

Ten days of an Airflow-style DAG `shop_daily` (a parent run per day with four task runs
under it) and a downstream dbt-style job, over Postgres tables and S3 paths, with:

- schemas, column lineage, an SQL job facet, output statistics and quality metrics;
- quality checks on `analytics.daily_revenue`, one failing on the last day
  (`assertion_failed`);
- `load_revenue` failing on day 6 and recovering on day 7 (`run_failed`, resolved);
- `curated/orders_clean` losing its `coupon_code` column on day 8 (`schema_changed`);
- `transform_orders` taking 300 s on the last day instead of ~60 s (`duration_outlier`).

Event times are anchored to midnight UTC of today and run ids derive from job and day, so
running the demo twice on one day sends the same events again and changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    column_lineage_dataset,
    data_quality_assertions_dataset,
    data_quality_metrics_input_dataset,
    documentation_job,
    error_message_run,
    job_type_job,
    nominal_time_run,
    parent_run,
    schema_dataset,
    sql_job,
)
from openlineage.client.facet_v2 import (
    output_statistics_output_dataset as output_statistics,
)

from lineagehouse.settings import DEFAULT_COMPRESSION, Compression

PRODUCER = "https://github.com/lineagehouse/lineagehouse/demo"
JOBS = "demo-airflow"
SHOP_DB = "postgres://shop-db:5432"
LAKE = "s3://demo-lake"
WAREHOUSE = "postgres://warehouse:5432"
DAYS = 10
_IDS = uuid.UUID("5f1f6d5e-2b1a-4c1e-9a52-1c4b3f0e7d10")

ORDERS = [("order_id", "BIGINT"), ("customer_id", "BIGINT"), ("amount", "DECIMAL(12,2)")]
ORDERS += [("coupon_code", "VARCHAR"), ("ordered_at", "TIMESTAMP")]
CUSTOMERS = [("customer_id", "BIGINT"), ("country", "VARCHAR"), ("signup_date", "DATE")]
REVENUE = [("day", "DATE"), ("country", "VARCHAR"), ("revenue", "DECIMAL(14,2)")]
LTV = [("customer_id", "BIGINT"), ("lifetime_value", "DECIMAL(14,2)")]


def _schema(fields: list[tuple[str, str]]) -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name=n, type=t) for n, t in fields]
    )


def _lineage(mapping: dict[str, list[tuple[str, str, str]]]) -> Any:
    """columnLineage: output field -> [(input namespace, input name, input field)]."""
    return column_lineage_dataset.ColumnLineageDatasetFacet(
        fields={
            out: column_lineage_dataset.Fields(
                inputFields=[
                    column_lineage_dataset.InputField(
                        namespace=ns,
                        name=name,
                        field=field,
                        transformations=[
                            column_lineage_dataset.Transformation(
                                type="DIRECT", subtype="TRANSFORMATION"
                            )
                        ],
                    )
                    for ns, name, field in sources
                ]
            )
            for out, sources in mapping.items()
        }
    )


def _run_id(job: str, day: int) -> str:
    return str(uuid.uuid5(_IDS, f"{job}/{day}"))


def demo_events(today: datetime | None = None, days: int = DAYS) -> list[RunEvent]:
    """Every event of the sample estate, in the order an emitter would send them."""
    midnight = (today or datetime.now(UTC)).replace(hour=0, minute=0, second=0, microsecond=0)
    events: list[RunEvent] = []
    for day in range(days):
        start = midnight - timedelta(days=days - day) + timedelta(hours=2)
        events += _dag_day(day, days, start)
    return events


def _dag_day(day: int, days: int, start: datetime) -> list[RunEvent]:
    last = day == days - 1
    dag_run = _run_id("shop_daily", day)
    dag_job = Job(
        namespace=JOBS,
        name="shop_daily",
        facets={
            "jobType": job_type_job.JobTypeJobFacet(
                processingType="BATCH", integration="AIRFLOW", jobType="DAG"
            ),
            "documentation": documentation_job.DocumentationJobFacet(
                description="Daily shop pipeline: orders to revenue."
            ),
        },
    )
    nominal = nominal_time_run.NominalTimeRunFacet(nominalStartTime=start.isoformat())
    parent = parent_run.ParentRunFacet(
        run=parent_run.Run(runId=dag_run),
        job=parent_run.Job(namespace=JOBS, name="shop_daily"),
    )
    orders_clean = ORDERS if day < 7 else [f for f in ORDERS if f[0] != "coupon_code"]
    lake_raw = ("raw/orders", ORDERS)
    clean = ("curated/orders_clean", orders_clean)

    def task(
        name: str,
        offset_s: float,
        seconds: float,
        inputs: list[InputDataset],
        outputs: list[OutputDataset],
        state: RunState = RunState.COMPLETE,
        sql: str | None = None,
    ) -> list[RunEvent]:
        job_facets: dict[str, Any] = {
            "jobType": job_type_job.JobTypeJobFacet(
                processingType="BATCH", integration="AIRFLOW", jobType="TASK"
            )
        }
        if sql:
            job_facets["sql"] = sql_job.SQLJobFacet(query=sql)
        job = Job(namespace=JOBS, name=f"shop_daily.{name}", facets=job_facets)
        run_id = _run_id(name, day)
        began = start + timedelta(seconds=offset_s)
        end_facets: dict[str, Any] = {"parent": parent}
        if state == RunState.FAIL:
            end_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message="relation analytics.daily_revenue is locked by another transaction",
                programmingLanguage="python",
            )
        return [
            RunEvent(
                eventType=RunState.START,
                eventTime=began.isoformat(),
                run=Run(runId=run_id, facets={"parent": parent, "nominalTime": nominal}),
                job=job,
                producer=PRODUCER,
                inputs=inputs,
                outputs=outputs,
            ),
            RunEvent(
                eventType=state,
                eventTime=(began + timedelta(seconds=seconds)).isoformat(),
                run=Run(runId=run_id, facets=end_facets),
                job=job,
                producer=PRODUCER,
                inputs=inputs,
                outputs=outputs,
            ),
        ]

    def ds(namespace: str, name: str, fields: list[tuple[str, str]]) -> dict[str, Any]:
        return {"namespace": namespace, "name": name, "facets": {"schema": _schema(fields)}}

    rows = 10_000 + 137 * day
    revenue_ok = not last
    checks = data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
        assertions=[
            data_quality_assertions_dataset.Assertion(
                assertion="not_null", success=True, column="revenue", severity="error"
            ),
            data_quality_assertions_dataset.Assertion(
                assertion="accepted_range",
                success=revenue_ok,
                column="revenue",
                severity="error",
                expected=">= 0",
                actual="0" if revenue_ok else "-1250.00",
            ),
            data_quality_assertions_dataset.Assertion(
                assertion="row_count_between", success=True, severity="warn"
            ),
        ]
    )
    metrics = data_quality_metrics_input_dataset.DataQualityMetricsInputDatasetFacet(
        rowCount=40 + day,
        bytes=8_192 + 64 * day,
        columnMetrics={
            "revenue": data_quality_metrics_input_dataset.ColumnMetrics(
                nullCount=0, distinctCount=38 + day, min=-1250.0 if last else 12.5, max=9_830.0
            ),
            "country": data_quality_metrics_input_dataset.ColumnMetrics(
                nullCount=day % 3, distinctCount=12
            ),
        },
    )
    load_failed = day == 5
    dag_seconds = 900
    events = [
        RunEvent(
            eventType=RunState.START,
            eventTime=start.isoformat(),
            run=Run(runId=dag_run, facets={"nominalTime": nominal}),
            job=dag_job,
            producer=PRODUCER,
        )
    ]
    events += task(
        "extract_orders",
        5,
        42 + day % 4,
        [InputDataset(**ds(SHOP_DB, "shop.public.orders", ORDERS))],
        [
            OutputDataset(
                **ds(LAKE, lake_raw[0], lake_raw[1]),
                outputFacets={
                    "outputStatistics": output_statistics.OutputStatisticsOutputDatasetFacet(
                        rowCount=rows, size=rows * 120
                    )
                },
            )
        ],
    )
    events += task(
        "transform_orders",
        60,
        300 if last else 60 + (day % 5) - 2,
        [InputDataset(**ds(LAKE, lake_raw[0], lake_raw[1]))],
        [
            OutputDataset(
                namespace=LAKE,
                name=clean[0],
                facets={
                    "schema": _schema(clean[1]),
                    "columnLineage": _lineage({f: [(LAKE, lake_raw[0], f)] for f, _ in clean[1]}),
                },
            )
        ],
    )
    revenue_sql = (
        "INSERT INTO analytics.daily_revenue SELECT o.ordered_at::date, c.country, "
        "sum(o.amount) FROM curated.orders_clean o JOIN shop.public.customers c "
        "USING (customer_id) GROUP BY 1, 2"
    )
    events += task(
        "load_revenue",
        420,
        95 + day % 3,
        [
            InputDataset(**ds(LAKE, clean[0], clean[1])),
            InputDataset(**ds(SHOP_DB, "shop.public.customers", CUSTOMERS)),
        ],
        [
            OutputDataset(
                namespace=WAREHOUSE,
                name="analytics.public.daily_revenue",
                facets={
                    "schema": _schema(REVENUE),
                    "columnLineage": _lineage(
                        {
                            "day": [(LAKE, clean[0], "ordered_at")],
                            "country": [(SHOP_DB, "shop.public.customers", "country")],
                            "revenue": [(LAKE, clean[0], "amount")],
                        }
                    ),
                },
            )
        ],
        state=RunState.FAIL if load_failed else RunState.COMPLETE,
        sql=revenue_sql,
    )
    if not load_failed:
        events += task(
            "check_revenue",
            600,
            20,
            [
                InputDataset(
                    namespace=WAREHOUSE,
                    name="analytics.public.daily_revenue",
                    inputFacets={"dataQualityAssertions": checks, "dataQualityMetrics": metrics},
                )
            ],
            [],
        )
        events += task(
            "customer_ltv",
            700,
            150,
            [InputDataset(**ds(LAKE, clean[0], clean[1]))],
            [OutputDataset(**ds(WAREHOUSE, "marketing.public.customer_ltv", LTV))],
        )
    events.append(
        RunEvent(
            eventType=RunState.FAIL if load_failed else RunState.COMPLETE,
            eventTime=(start + timedelta(seconds=dag_seconds)).isoformat(),
            run=Run(runId=dag_run),
            job=dag_job,
            producer=PRODUCER,
        )
    )
    return events


class BrokerUnreachable(RuntimeError):
    """The Kafka broker did not answer, or has no events topic."""


def check_broker(bootstrap: str, topic: str, timeout_s: float = 10.0) -> None:
    """Fail fast (instead of a producer waiting minutes) when nothing serves `topic`."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        topics = admin.list_topics(timeout=timeout_s).topics
    except KafkaException as exc:
        raise BrokerUnreachable(f"no Kafka broker answers on {bootstrap}") from exc
    if topic not in topics:
        raise BrokerUnreachable(f"the broker on {bootstrap} has no topic {topic!r}")


def client_for(
    kafka_bootstrap: str | None = None,
    topic: str = "openlineage.events",
    http_url: str | None = None,
    api_key: str | None = None,
    check: bool = False,
    compression: Compression = DEFAULT_COMPRESSION,
) -> OpenLineageClient:
    """An openlineage-python client with the Kafka transport (its producer's
    `compression.type` is `compression`), or HTTP to our gateway. With `check`, the broker
    must answer and hold `topic` (BrokerUnreachable otherwise)."""
    if http_url:
        from openlineage.client.transport.http import (
            ApiKeyTokenProvider,
            HttpConfig,
            HttpTransport,
        )

        auth = ApiKeyTokenProvider({"apiKey": api_key}) if api_key else None
        config = HttpConfig(url=http_url, endpoint="api/v1/lineage")
        if auth is not None:
            config.auth = auth
        return OpenLineageClient(transport=HttpTransport(config))
    from openlineage.client.transport.kafka import KafkaConfig, KafkaTransport

    bootstrap = kafka_bootstrap or "127.0.0.1:9092"
    if check:
        check_broker(bootstrap, topic)
    config = KafkaConfig(
        topic=topic,
        config={"bootstrap.servers": bootstrap, "acks": "all", "compression.type": compression},
        flush=False,  # one flush at the end (`delivered`)
    )
    return OpenLineageClient(transport=KafkaTransport(config))


def delivered(client: OpenLineageClient, timeout_s: float = 120.0) -> bool:
    """Wait until the client's Kafka producer has handed every event to the broker (True
    for transports that send synchronously)."""
    wait = getattr(client.transport, "wait_for_completion", None)
    return True if wait is None else bool(wait(timeout=timeout_s))


def send(
    client: OpenLineageClient,
    events: list[RunEvent],
    on_progress: Callable[[int], None] = lambda n: None,
) -> int:
    for event in events:
        client.emit(event)
        on_progress(1)
    return len(events)
