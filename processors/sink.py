"""The ClickHouse sink adapter: one insert per table per batch, retried until it lands.

It never drops rows: an error backs off and retries (blocking is the backpressure), and
the caller acknowledges the Kafka batch only after `write` returned.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import Any

from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.insert import InsertContext

from lineagehouse import metrics
from lineagehouse.settings import ClickHouseSettings
from lineagehouse.store.client import connect, is_retryable

log = logging.getLogger("lineagehouse.sink")

# A batch may span many months (backfills, replays, odd emitter clocks); ClickHouse's
# default of 100 partitions per insert would fail such a batch forever and wedge the
# pipeline, so the sink lifts the limit for its own inserts.
INSERT_SETTINGS = {"max_partitions_per_insert_block": 0}


class ClickHouseSink:
    def __init__(self, settings: ClickHouseSettings, max_backoff_s: float = 10.0) -> None:
        self._settings = settings
        self._max_backoff_s = max_backoff_s
        self._client: Client | None = None
        self._contexts: dict[str, InsertContext] = {}  # skips DESCRIBE TABLE per batch

    def write(self, table: str, columns: Sequence[str], rows: list[Sequence[Any]]) -> None:
        """Insert `rows`; returns only once ClickHouse acknowledged them."""
        if not rows:
            return
        backoff = 0.2
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                client = self._client or connect(self._settings)
                self._client = client
                context = self._contexts.get(table)
                if context is None:
                    context = client.create_insert_context(
                        table, column_names=list(columns), settings=INSERT_SETTINGS
                    )
                    self._contexts[table] = context
                context.data = rows
                client.insert(context=context)
            except Exception as exc:
                self._client = None
                self._contexts.clear()
                metrics.SINK_RETRIES.labels(table=table).inc()
                level = logging.WARNING if is_retryable(exc) else logging.ERROR
                log.log(
                    level,
                    "insert failed; retrying",
                    extra={
                        "table": table,
                        "rows": len(rows),
                        "attempt": attempt,
                        "retry_in_s": backoff,
                        "error": str(exc)[:500],
                    },
                )
                time.sleep(backoff)
                backoff = min(backoff * 2, self._max_backoff_s)
                continue
            metrics.SINK_BATCH_ROWS.labels(table=table).observe(len(rows))
            metrics.SINK_BATCH_SECONDS.labels(table=table).observe(time.perf_counter() - started)
            return
