"""openlineage-python, the real client and its Kafka transport, into the running worker:
a three-level hierarchy (Airflow DAG -> task -> Spark application) and a failing task."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import error_message_run, parent_run, schema_dataset
from openlineage.client.transport.kafka import KafkaConfig, KafkaTransport

from lineagehouse.settings import Settings
from lineagehouse.store.migrations import migrate
from lineagehouse.topics import ensure_topics
from tests.conftest import wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
PRODUCER = "https://github.com/lineagehouse/lineagehouse/tests/openlineage-python"


def client_for(settings: Settings) -> OpenLineageClient:
    config = KafkaConfig(
        topic=settings.topics.events,
        config={"bootstrap.servers": settings.kafka.bootstrap_servers, "acks": "all"},
        flush=True,
    )
    return OpenLineageClient(transport=KafkaTransport(config))


def test_parent_and_root_runs_arrive_as_a_hierarchy(
    make_settings: Callable[..., Settings], ch: Client, start_worker: Any
) -> None:
    settings = make_settings()
    migrate(settings)
    ensure_topics(settings)
    worker = start_worker(settings)
    client = client_for(settings)
    t0 = datetime(2024, 6, 1, 2, 0, tzinfo=UTC)
    dag_run, task_run, spark_run, bad_run = (str(uuid.uuid4()) for _ in range(4))
    dag = Job(namespace="airflow", name="sales_daily")
    task = Job(namespace="airflow", name="sales_daily.transform")
    bad_task = Job(namespace="airflow", name="sales_daily.publish")
    spark = Job(namespace="spark", name="transform_app")

    def emit(state: RunState, run: Run, job: Job, at: datetime, **kw: Any) -> None:
        client.emit(
            RunEvent(
                eventType=state,
                eventTime=at.isoformat(),
                run=run,
                job=job,
                producer=PRODUCER,
                **kw,
            )
        )

    def parent_of(run_id: str, job: Job, root: tuple[str, Job] | None = None) -> dict:
        facet = parent_run.ParentRunFacet(
            run=parent_run.Run(runId=run_id),
            job=parent_run.Job(namespace=job.namespace, name=job.name),
            root=parent_run.Root(
                run=parent_run.RootRun(runId=root[0]),
                job=parent_run.RootJob(namespace=root[1].namespace, name=root[1].name),
            )
            if root
            else None,
        )
        return {"parent": facet}

    schema = schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(name="id", type="BIGINT")]
    )
    raw = InputDataset(namespace="s3://lake", name="raw/sales", facets={"schema": schema})
    out = OutputDataset(namespace="s3://lake", name="clean/sales", facets={"schema": schema})

    emit(RunState.START, Run(runId=dag_run), dag, t0)
    emit(RunState.START, Run(runId=task_run, facets=parent_of(dag_run, dag)), task, t0)
    spark_facets = parent_of(task_run, task, root=(dag_run, dag))
    emit(RunState.START, Run(runId=spark_run, facets=spark_facets), spark, t0, inputs=[raw])
    emit(
        RunState.COMPLETE,
        Run(runId=spark_run, facets=spark_facets),
        spark,
        t0 + timedelta(minutes=3),
        inputs=[raw],
        outputs=[out],
    )
    emit(
        RunState.COMPLETE,
        Run(runId=task_run, facets=parent_of(dag_run, dag)),
        task,
        t0 + timedelta(minutes=4),
    )
    failure = {
        **parent_of(dag_run, dag),
        "errorMessage": error_message_run.ErrorMessageRunFacet(
            message="upload refused", programmingLanguage="python"
        ),
    }
    emit(RunState.START, Run(runId=bad_run, facets=parent_of(dag_run, dag)), bad_task, t0)
    emit(RunState.FAIL, Run(runId=bad_run, facets=failure), bad_task, t0 + timedelta(minutes=5))
    emit(RunState.FAIL, Run(runId=dag_run), dag, t0 + timedelta(minutes=6))
    client.transport.close() if hasattr(client.transport, "close") else None

    db = settings.clickhouse.database
    wait_for(
        lambda: ch.command(f"SELECT count() FROM {db}.run_states WHERE ended_at IS NOT NULL") == 4,
        120,
        "four finished runs",
        alive=worker,
    )
    rows = ch.query(
        f"SELECT run_id, state_name, parent_run_id, root_run_id, root_job_name, duration_ms,"
        f" error_message FROM {db}.run_states"
    ).named_results()
    runs = {r["run_id"]: r for r in rows}
    assert runs[dag_run]["state_name"] == "FAIL" and runs[dag_run]["parent_run_id"] == ""
    assert runs[dag_run]["root_run_id"] == dag_run
    assert (runs[task_run]["parent_run_id"], runs[task_run]["root_run_id"]) == (dag_run, dag_run)
    assert runs[spark_run]["parent_run_id"] == task_run
    assert (runs[spark_run]["root_run_id"], runs[spark_run]["root_job_name"]) == (
        dag_run,
        "sales_daily",
    )
    assert runs[spark_run]["duration_ms"] == 180_000
    assert (runs[bad_run]["state_name"], runs[bad_run]["error_message"]) == (
        "FAIL",
        "upload refused",
    )
    # A run is stored after the edges that reached the sink with it, but edges consumed
    # from their own topic can land one flush later (ARCHITECTURE.md, commit protocol).
    expected = [("input", "s3://lake", "raw/sales"), ("output", "s3://lake", "clean/sales")]

    def spark_edges() -> list:
        return ch.query(
            f"SELECT direction, namespace, name FROM {db}.io_edges FINAL WHERE run_id = %(r)s "
            "ORDER BY direction",
            parameters={"r": spark_run},
        ).result_rows

    wait_for(lambda: spark_edges() == expected, 30, f"the Spark run's edges {expected}", worker)
    jobs = ch.query(
        f"SELECT name, parent_job_name FROM {db}.jobs FINAL WHERE namespace = 'spark'"
    ).result_rows
    assert jobs == [("transform_app", "sales_daily.transform")]


def test_events_compressed_with_any_codec_arrive(
    make_settings: Callable[..., Settings], ch: Client, start_worker: Any
) -> None:
    """Emitters may compress (the Kafka transport's `compression.type`; our guides suggest
    zstd): the worker reads batches of every codec Kafka has."""
    settings = make_settings()
    migrate(settings)
    ensure_topics(settings)
    worker = start_worker(settings)
    codecs = ("gzip", "snappy", "lz4", "zstd")
    t0 = datetime(2024, 6, 2, 3, 0, tzinfo=UTC)
    runs = {}
    for codec in codecs:
        config = KafkaConfig(
            topic=settings.topics.events,
            config={
                "bootstrap.servers": settings.kafka.bootstrap_servers,
                "acks": "all",
                "compression.type": codec,
                "linger.ms": 50,  # several events in one compressed batch
            },
            flush=False,
        )
        client = OpenLineageClient(transport=KafkaTransport(config))
        run_id = runs[codec] = str(uuid.uuid4())
        job = Job(namespace="codecs", name=f"load_{codec}")
        for state, minutes in ((RunState.START, 0), (RunState.COMPLETE, 2)):
            client.emit(
                RunEvent(
                    eventType=state,
                    eventTime=(t0 + timedelta(minutes=minutes)).isoformat(),
                    run=Run(runId=run_id),
                    job=job,
                    producer=PRODUCER,
                )
            )
        assert client.transport.wait_for_completion(timeout=30)

    db = settings.clickhouse.database

    def finished() -> dict[str, tuple]:
        rows = ch.query(
            f"SELECT run_id, job_name, state_name, duration_ms FROM {db}.run_states "
            "WHERE job_namespace = 'codecs'"
        ).result_rows
        return {run_id: (job, state, ms) for run_id, job, state, ms in rows}

    expected = {runs[c]: (f"load_{c}", "COMPLETE", 120_000) for c in codecs}
    wait_for(lambda: finished() == expected, 120, f"one run per codec {codecs}", alive=worker)
    dead = ch.command(f"SELECT count() FROM {db}.dead_letters")
    assert dead == 0
