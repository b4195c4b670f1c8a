"""The sample DAG of docs/emitters/airflow.md, run by tests/test_emitter_airflow.py.

Tasks and how the OpenLineage provider describes each:

* ``create_tables``, ``build_customer_revenue``: ``SQLExecuteQueryOperator`` on the
  PostgreSQL connection ``lh_shop_db`` (``AIRFLOW_CONN_LH_SHOP_DB``). The provider's default
  extraction parses their SQL: tables read are inputs, tables written are outputs.
* ``publish_report``: a PythonOperator with manual ``inlets`` / ``outlets`` (an Airflow
  ``Asset`` and an OpenLineage ``Dataset``), which the provider reports as they are.
* ``export_revenue``: ``LhExportOperator``, described by the custom extractor
  ``lh_extractors.LhExportExtractor`` (input, output and the run facet ``lhExtractor``).
* ``check_revenue``: raises, so the task run and the DAG run end FAIL.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.providers.common.sql.operators.sql import SQLExecuteQueryOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, Asset, BaseOperator
from openlineage.client.event_v2 import Dataset

CONN_ID = "lh_shop_db"
EXPORT_BUCKET = "lh-exports"
EXPORT_KEY = "revenue/customer_revenue.parquet"


class LhExportOperator(BaseOperator):
    """Stands in for an operator that exports a table to object storage; it has no
    OpenLineage methods of its own, so only a custom extractor can describe it."""

    def __init__(
        self, *, conn_id: str, table: str, bucket: str, key: str, export_format: str, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.table = table
        self.bucket = bucket
        self.key = key
        self.export_format = export_format

    def execute(self, context: Any) -> None:
        self.log.info("exporting %s to s3://%s/%s", self.table, self.bucket, self.key)


def publish_report() -> None:
    print("report published")


def check_revenue() -> None:
    raise ValueError("revenue check failed: customer 2 has no orders this month")


with DAG(
    dag_id="lh_shop",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    default_args={"retries": 0},
    tags=["lineagehouse-sample"],
):
    create_tables = SQLExecuteQueryOperator(
        task_id="create_tables",
        conn_id=CONN_ID,
        sql=[
            "CREATE TABLE IF NOT EXISTS raw_orders"
            " (order_id INTEGER, customer_id INTEGER, amount NUMERIC(10, 2))",
            "CREATE TABLE IF NOT EXISTS raw_customers (customer_id INTEGER, country TEXT)",
            "CREATE TABLE IF NOT EXISTS customer_revenue"
            " (customer_id INTEGER, country TEXT, revenue NUMERIC(12, 2))",
            "TRUNCATE raw_orders, raw_customers, customer_revenue",
            "INSERT INTO raw_orders VALUES (1, 1, 10.00), (2, 1, 5.50), (3, 2, 7.25)",
            "INSERT INTO raw_customers VALUES (1, 'NL'), (2, 'DE')",
        ],
    )
    build_customer_revenue = SQLExecuteQueryOperator(
        task_id="build_customer_revenue",
        conn_id=CONN_ID,
        sql="""
            INSERT INTO customer_revenue (customer_id, country, revenue)
            SELECT c.customer_id, c.country, SUM(o.amount)
            FROM raw_orders o JOIN raw_customers c ON c.customer_id = o.customer_id
            GROUP BY c.customer_id, c.country
        """,
    )
    export_revenue = LhExportOperator(
        task_id="export_revenue",
        conn_id=CONN_ID,
        table="customer_revenue",
        bucket=EXPORT_BUCKET,
        key=EXPORT_KEY,
        export_format="parquet",
    )
    publish = PythonOperator(
        task_id="publish_report",
        python_callable=publish_report,
        inlets=[
            Dataset(namespace=f"s3://{EXPORT_BUCKET}", name=EXPORT_KEY),
            Asset("file:///srv/reports/templates/revenue.html"),
        ],
        outlets=[Asset("file:///srv/reports/revenue_report.pdf")],
    )
    check = PythonOperator(task_id="check_revenue", python_callable=check_revenue)

    create_tables >> build_customer_revenue >> [export_revenue, check]
    export_revenue >> publish
