"""A custom OpenLineage extractor, registered with the provider through
``AIRFLOW__OPENLINEAGE__EXTRACTORS=lh_extractors.LhExportExtractor`` (or
``[openlineage] extractors`` in airflow.cfg).

Airflow puts the DAG folder on ``sys.path``, so this module is importable as
``lh_extractors`` from every task. The provider picks an extractor by the operator's class
name (``get_operator_classnames``) and calls ``extract()`` when the task starts and
``extract_on_complete()`` / ``extract_on_failure()`` when it ends.
"""

from __future__ import annotations

import attrs
from airflow.providers.openlineage.extractors.base import BaseExtractor, OperatorLineage
from airflow.sdk import BaseHook
from openlineage.client.event_v2 import Dataset
from openlineage.client.facet_v2 import RunFacet

# Where the facet's JSON Schema would live: any URL that is not an OpenLineage spec URL
# makes the facet "custom" for Lineagehouse (kept as sent, listed under `custom`).
LH_EXTRACTOR_SCHEMA = "https://lineagehouse.example/schemas/LhExtractorRunFacet.json"


@attrs.define
class LhExtractorRunFacet(RunFacet):
    """The custom run facet ``lhExtractor``: which extractor described the run, and what the
    export wrote. ``_producer`` and ``_schemaURL`` are filled in by the client's base class."""

    extractor: str
    export_format: str
    target: str

    @staticmethod
    def _get_schema() -> str:
        return LH_EXTRACTOR_SCHEMA


class LhExportExtractor(BaseExtractor):
    """Lineage of ``LhExportOperator``: reads a PostgreSQL table, writes a file to S3."""

    @classmethod
    def get_operator_classnames(cls) -> list[str]:
        return ["LhExportOperator"]

    def _execute_extraction(self) -> OperatorLineage:
        op = self.operator
        conn = BaseHook.get_connection(op.conn_id)
        source = Dataset(
            namespace=f"postgres://{conn.host}:{conn.port}",
            name=f"{conn.schema}.public.{op.table}",
        )
        target = Dataset(namespace=f"s3://{op.bucket}", name=op.key)
        facet = LhExtractorRunFacet(
            extractor=type(self).__name__,
            export_format=op.export_format,
            target=f"s3://{op.bucket}/{op.key}",
        )
        return OperatorLineage(inputs=[source], outputs=[target], run_facets={"lhExtractor": facet})
