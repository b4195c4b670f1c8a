"""Every Prometheus metric Lineagehouse exports, in one place."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest

EVENTS_CONSUMED = Counter(
    "lineagehouse_events_consumed_total", "Messages read from the events topic"
)
EVENTS_ACCEPTED = Counter("lineagehouse_events_accepted_total", "Events written to ClickHouse")
EVENTS_REJECTED = Counter(
    "lineagehouse_events_rejected_total", "Messages dead-lettered", ["origin"]
)
SINK_BATCH_ROWS = Histogram(
    "lineagehouse_sink_batch_rows",
    "Rows per ClickHouse insert",
    ["table"],
    buckets=(1, 10, 100, 500, 1000, 2000, 5000, 10000, 50000),
)
SINK_BATCH_SECONDS = Histogram(
    "lineagehouse_sink_batch_seconds", "Latency of one ClickHouse insert", ["table"]
)
SINK_RETRIES = Counter(
    "lineagehouse_sink_retries_total", "ClickHouse inserts retried after an error", ["table"]
)
CONSUMER_LAG = Gauge(
    "lineagehouse_consumer_lag", "Messages behind the end of a partition", ["topic", "partition"]
)
MEMORY_KEPT = Gauge(
    "lineagehouse_memory_kept_bytes",
    "Freed Python memory kept for the next batches (worker.keep_freed_memory_mb)",
)
MEMORY_KEEP_LIMIT = Gauge(
    "lineagehouse_memory_keep_limit_bytes",
    "How much freed Python memory may be kept (worker.keep_freed_memory_mb; 0: none)",
)
API_LATENCY = Histogram(
    "lineagehouse_api_request_seconds", "API latency by route", ["method", "route", "status"]
)
CLICKHOUSE_QUERIES = Counter(
    "lineagehouse_embedded_clickhouse_queries_total",
    "Queries served by the embedded ClickHouse server",
    ["kind", "status"],
)


def render() -> tuple[bytes, str]:
    """Exposition text and content type for a /metrics endpoint."""
    return generate_latest(), CONTENT_TYPE_LATEST


GATEWAY_EVENTS = Counter(
    "lineagehouse_gateway_events_total",
    "Events received by the HTTP gateway, by outcome "
    "(accepted, rejected, unauthorized, forbidden, unavailable)",
    ["status"],
)
GATEWAY_PRODUCE_SECONDS = Histogram(
    "lineagehouse_gateway_produce_seconds",
    "Time from produce to the broker's acknowledgement in the HTTP gateway",
)
GATEWAY_DEAD_LETTER_FAILURES = Counter(
    "lineagehouse_gateway_dead_letter_failures_total",
    "Dead letters the HTTP gateway could not record, by destination",
    ["destination"],
)

DERIVED_ROWS = Counter(
    "lineagehouse_derived_rows_total", "Records produced to the derived topics, by kind", ["kind"]
)
DERIVED_MESSAGES = Counter(
    "lineagehouse_derived_messages_total",
    "Avro messages the processor produced to the derived topics (acknowledged by the broker)",
)
PROCESSOR_BATCH_SECONDS = Histogram(
    "lineagehouse_processor_batch_seconds",
    "Time to validate, derive and produce one batch (broker acks included)",
)
SINK_COMMITTED_MESSAGES = Counter(
    "lineagehouse_sink_committed_messages_total",
    "Derived-topic messages whose rows ClickHouse acknowledged and whose offsets were committed",
)
ISSUES_WRITTEN = Counter(
    "lineagehouse_issues_written_total",
    "Issue rows the issues stage wrote (an issue when it is new or changed; ids dedupe)",
)
WEBHOOK_CALLS = Counter(
    "lineagehouse_webhook_calls_total",
    "Webhook calls by outcome (delivered, retrying, failed = gave up)",
    ["outcome"],
)
