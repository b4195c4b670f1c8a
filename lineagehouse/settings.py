"""One typed, frozen settings object for every process.

Sources, highest first: explicit overrides (CLI flags), environment variables
(`LINEAGEHOUSE_` prefix, nested with `__`, e.g. `LINEAGEHOUSE_KAFKA__BOOTSTRAP_SERVERS`),
a `.env` file, then secret files in `LINEAGEHOUSE_SECRETS_DIR` (one file per setting,
named like the variable without the prefix, e.g. `clickhouse__password`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NestedSecretsSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

ENV_PREFIX = "LINEAGEHOUSE_"

# The codecs Kafka producers take (`compression.type`), and what our producers of events use.
Compression = Literal["none", "gzip", "snappy", "lz4", "zstd"]
DEFAULT_COMPRESSION: Compression = "zstd"


class ConfigError(Exception):
    """A setting has a bad value; the message names the setting and the fix."""


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(_Section):
    bootstrap_servers: str = Field("127.0.0.1:9092", description="host:port[,host:port...]")
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_cafile: str | None = None
    client_id: str = "lineagehouse"
    # Tansu's first group join waits about half the session timeout; production keeps
    # librdkafka-like values by configuration.
    session_timeout_s: float = Field(6.0, gt=0)
    heartbeat_interval_s: float = Field(1.0, gt=0)
    rebalance_timeout_s: float = Field(6.0, gt=0)
    compression: Compression = Field(
        DEFAULT_COMPRESSION,
        description="compression.type of the producers that write events to the events "
        "topic (the HTTP ingest gateway, `lineagehouse dlq replay`, `demo`); on the benchmark's "
        "events zstd halved the broker's CPU per event and cut its memory ~4x "
        "(BENCHMARKS.md); consumers read every codec",
    )
    fetch_max_wait_s: float = Field(
        0.5,
        gt=0,
        le=60,
        description="longest a consumer's fetch waits at the broker for new data "
        "(librdkafka fetch.wait.max.ms): lower is less latency, more requests when idle",
    )

    @field_validator("bootstrap_servers")
    @classmethod
    def _check_servers(cls, value: str) -> str:
        for server in value.split(","):
            host, _, port = server.strip().rpartition(":")
            if not host or not port.isdigit():
                raise ValueError(f"{server!r} is not host:port (example: 127.0.0.1:9092)")
        return value

    def confluent_config(self) -> dict[str, Any]:
        """librdkafka settings shared by producers, consumers and the admin client."""
        conf: dict[str, Any] = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
            "client.id": self.client_id,
        }
        if self.sasl_mechanism:
            conf["sasl.mechanism"] = self.sasl_mechanism
            conf["sasl.username"] = self.sasl_username or ""
            conf["sasl.password"] = (
                self.sasl_password.get_secret_value() if self.sasl_password else ""
            )
        if self.ssl_cafile:
            conf["ssl.ca.location"] = self.ssl_cafile
        return conf

    def events_producer_config(self) -> dict[str, Any]:
        """`confluent_config()` plus what every producer of events takes: idempotent,
        acknowledged by all replicas, compressed."""
        return {
            **self.confluent_config(),
            "enable.idempotence": True,
            "acks": "all",
            "compression.type": self.compression,
        }

    def consumer_config(self) -> dict[str, Any]:
        """`confluent_config()` plus the settings only consumers take."""
        return {
            **self.confluent_config(),
            "fetch.wait.max.ms": int(self.fetch_max_wait_s * 1000),
        }


class TopicSettings(_Section):
    events: str = "openlineage.events"
    dlq: str = "openlineage.events.dlq"
    events_partitions: int = Field(6, ge=1)
    dlq_partitions: int = Field(1, ge=1)
    replication_factor: int = Field(1, ge=1)
    derived_prefix: str | None = Field(
        None, description="prefix of the derived record topics [default: <events>.derived]"
    )

    def derived(self, kind: str) -> str:
        """The topic of one derived record kind, e.g. `openlineage.events.derived.runs`."""
        return f"{self.derived_prefix or self.events + '.derived'}.{kind}"


class ClickHouseSettings(_Section):
    url: str = Field("http://127.0.0.1:8123", description="ClickHouse HTTP interface")
    user: str = "default"
    password: SecretStr = SecretStr("")
    database: str = "lineagehouse"
    cluster: str | None = None
    connect_timeout_s: float = Field(10.0, gt=0)
    send_receive_timeout_s: float = Field(300.0, gt=0)
    tune_merges: bool = Field(
        True,
        description="`migrate` gives every MergeTree table wider, fewer background merges "
        "(store.migrations.MERGE_SETTINGS, where the server knows them); false leaves the "
        "server's merge settings alone",
    )

    @field_validator("url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError(f"{value!r} is not an http(s) URL (example: http://127.0.0.1:8123)")
        return value.rstrip("/")

    @field_validator("database")
    @classmethod
    def _check_database(cls, value: str) -> str:
        if not value.replace("_", "").isalnum():
            raise ValueError("use letters, digits and underscores only")
        return value


class EmbeddedClickHouseSettings(_Section):
    """Limits of the embedded ClickHouse server (the one process owning the data dir)."""

    max_sessions: int = Field(32, ge=1)
    session_idle_timeout_s: float = Field(60.0, gt=0)
    max_concurrent_queries: int = Field(8, ge=1)
    max_memory_usage_bytes: int = Field(4 * 1024**3, ge=0)
    max_execution_time_s: float = Field(120.0, ge=0)


FAULT_POINTS = (
    "processor.after_consume",
    "processor.after_produce",
    "processor.after_commit",
    "sink.after_consume",
    "sink.mid_insert",
    "sink.after_insert",
    "sink.after_commit",
    "issues.after_write",
    "issues.after_commit",
)


class WorkerSettings(_Section):
    group_id: str = Field("lineagehouse-worker", description="consumer group of the processor")
    batch_size: int = Field(2000, ge=1, description="events the processor takes at once")
    batch_timeout_s: float = Field(0.25, gt=0, description="max wait to fill a processor batch")
    sink_group_id: str = Field("lineagehouse-sink", description="consumer group of the sink")
    sink_batch_rows: int = Field(
        100_000, ge=1, description="the sink inserts once this many rows are buffered"
    )
    sink_flush_interval_s: float = Field(
        1.0,
        gt=0,
        description="... or once the oldest event its buffered rows come from is this old "
        "(counted from when the event was produced)",
    )
    sink_backlog_flush_interval_s: float = Field(
        3.0,
        gt=0,
        description="when the events being written were produced longer ago than this (a "
        "backlog), the sink waits as long as they are past this age, up to this long: "
        "larger inserts, less ClickHouse work per row, a faster catch-up",
    )
    derived_message_bytes: int = Field(
        900_000, ge=1024, description="largest Avro message on a derived topic (split above)"
    )
    fault_point: Literal[FAULT_POINTS] | None = Field(  # type: ignore[valid-type]
        None, description="TESTS ONLY: the worker kills itself at this commit-protocol step"
    )
    fault_after: int = Field(1, ge=1, description="TESTS ONLY: ... the Nth time it gets there")
    insert_retry_max_backoff_s: float = Field(10.0, gt=0)
    keep_freed_memory_mb: int = Field(
        256,
        ge=0,
        description="memory a worker process keeps for its next batches instead of returning "
        "it to the system (Python's empty arenas, up to this many MiB; and glibc's heaps are "
        "not trimmed): fewer page faults, ~5% less CPU per event in the benchmark, for a "
        "resident size that stays near its peak; 0: return freed memory at once",
    )
    shutdown_grace_s: float = Field(15.0, gt=0, description="time to finish a batch on stop")
    web_host: str = "0.0.0.0"
    web_port: int = Field(6066, ge=0, le=65535, description="faust web / metrics port; 0 = off")
    drain_timeout_s: float = Field(120.0, ge=0, description="`up`: max wait to drain on stop")
    up_processors: int | None = Field(
        None,
        ge=0,
        description="`up`: processor processes (`worker --stage processor`) it starts, "
        "sharing the events' partitions; the worker then runs the sink and issues stages "
        "only. 0: the worker runs every stage itself. Their metrics are on the web ports "
        "after the worker's. Default: one per usable CPU core (the process's CPU affinity, "
        "capped by a container's CPU limit), at most 4; 0 on one core",
    )

    def processor_processes(self) -> int:
        """How many processor processes `up` starts: the setting, or one per usable core
        (max 4), none on one core. The processor's Python work fills a process (one
        GIL), so each core gets a processor; the sink and issues stages, which mostly wait
        on ClickHouse and the broker, share one more process. A processor in the same
        process as the sink got as many partitions as the others and less of a core: its
        partitions finished last (BENCHMARKS.md, session 14)."""
        if self.up_processors is not None:
            return self.up_processors
        cores = usable_cpus()
        return min(cores, 4) if cores > 1 else 0


CGROUP_V2_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1_CPU_QUOTA = Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")
CGROUP_V1_CPU_PERIOD = Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us")


def cgroup_cpu_limit(
    cpu_max: str | None, cfs_quota_us: str | None = None, cfs_period_us: str | None = None
) -> float | None:
    """The CPU limit (in cores) that a container's cgroup sets, from the text of cgroup v2's
    `cpu.max` ("200000 100000"; "max ..." = none) or else cgroup v1's `cpu.cfs_quota_us`
    (-1 = none) and `cpu.cfs_period_us`; None when there is no limit or it cannot be read."""
    try:
        if cpu_max is not None:
            quota, _, period = cpu_max.strip().partition(" ")
            if quota == "max":
                return None
            return int(quota) / int(period or "100000")
        if cfs_quota_us is not None and cfs_period_us is not None:
            quota_us = int(cfs_quota_us)
            return None if quota_us <= 0 else quota_us / int(cfs_period_us)
    except (ValueError, ZeroDivisionError):
        return None
    return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def usable_cpus() -> int:
    """CPU cores this process can use: the cores it may run on (`taskset`, cpusets), capped
    by a container's CPU limit, rounded up (`os.cpu_count()` sees every core of the host)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    limit = cgroup_cpu_limit(
        _read(CGROUP_V2_CPU_MAX), _read(CGROUP_V1_CPU_QUOTA), _read(CGROUP_V1_CPU_PERIOD)
    )
    if limit is not None:
        cores = min(cores, max(1, math.ceil(limit)))
    return cores


class ApiSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(5000, ge=1, le=65535)
    auth_enabled: bool = Field(True, description="require an API key to ingest and to read")
    key_secret: SecretStr | None = Field(
        None, description="server secret for API key HMACs (`up` creates one in the data dir)"
    )
    key_cache_ttl_s: float = Field(
        30.0, gt=0, description="how often keys are re-read; a revocation applies within it"
    )
    max_body_bytes: int = Field(16 * 1024 * 1024, ge=1024, description="HTTP ingest body limit")
    produce_timeout_s: float = Field(10.0, gt=0, description="broker ack wait before a 503")
    expose_sql: bool = Field(
        False,
        description="show a job's SQL and source code (to keys with the read role on its "
        "namespace, or admin)",
    )
    lineage_max_depth: int = Field(100, ge=1, description="cap on a lineage request's depth")
    lineage_max_nodes: int = Field(
        10_000, ge=10, description="cap on a lineage request's node limit (max_nodes)"
    )


class IngestSettings(_Section):
    """What counts as an acceptable event, for the worker and the HTTP gateway alike."""

    max_event_bytes: int = Field(
        900_000, ge=1024, description="larger events are dead-lettered (broker limit ~1 MiB)"
    )
    extra_schema_dirs: list[Path] = Field(
        default_factory=list, description="directories of JSON Schemas for custom facets"
    )
    max_reasons: int = Field(20, ge=1, description="reasons kept per dead-lettered event")
    max_facet_bytes: int = Field(
        256 * 1024,
        ge=1024,
        description="larger facets are summarised in `facets` (events_raw keeps them whole)",
    )


class IssueSettings(_Section):
    """The issues stage of the worker and the webhooks it calls."""

    enabled: bool = Field(True, description="run the issues stage in `lineagehouse worker`")
    group_id: str = Field("lineagehouse-issues", description="consumer group of the issues stage")
    batch_interval_s: float = Field(
        2.0,
        gt=0,
        description="the issues stage gathers this long before judging what it saw (a job "
        "seen many times in the interval is read once)",
    )
    duration_min_history: int = Field(
        5, ge=2, description="completed runs a job needs before its durations are judged"
    )
    duration_window: int = Field(
        30, ge=2, description="previous completed runs a duration is compared with"
    )
    history_runs: int = Field(
        500, ge=10, description="latest runs (or check results) per subject read per evaluation"
    )
    history_cache_subjects: int = Field(
        2000,
        ge=0,
        description="jobs (and as many checks and output datasets) whose history the issues "
        "stage keeps between batches, reading only what each batch touched; 0: read every "
        "history whole for every batch",
    )
    history_cache_ttl_s: float = Field(
        600.0,
        gt=0,
        description="a kept history is read whole again once this old (bounds how long a "
        "change made outside the stage's own partitions, such as a replay, goes unseen)",
    )
    webhook_timeout_s: float = Field(5.0, gt=0, description="wait for a webhook's answer")
    webhook_max_attempts: int = Field(
        8, ge=1, description="calls of one webhook per issue transition before giving up"
    )
    webhook_backoff_s: float = Field(
        1.0, gt=0, description="first retry delay; doubles per attempt (capped at 10 minutes)"
    )
    webhook_sweep_interval_s: float = Field(
        5.0, gt=0, description="how often pending and retried webhook calls are looked for"
    )
    webhook_lookback_s: float = Field(
        7 * 86400.0, gt=0, description="issues updated longer ago than this are not notified"
    )


class RetentionSettings(_Section):
    """How long each family of tables keeps rows (ClickHouse TTL, applied by `migrate`);
    0 keeps them forever. Old rows go when ClickHouse next merges their parts."""

    raw_events_days: int = Field(
        0, ge=0, description="events_raw and dead_letters (by ingest time), facets (event time)"
    )
    lineage_days: int = Field(
        0, ge=0, description="runs, jobs, datasets, io_edges, aliases (by last event time)"
    )
    quality_days: int = Field(
        0, ge=0, description="quality_assertions and dataset_metrics (by last event time)"
    )
    issues_days: int = Field(0, ge=0, description="issues and webhook_deliveries (by last update)")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        secrets_nested_delimiter="__",
        env_file=".env",
        extra="forbid",
        frozen=True,
    )

    data_dir: Path = Path(".lineagehouse")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["json", "text"] = "json"
    kafka: KafkaSettings = KafkaSettings()
    topics: TopicSettings = TopicSettings()
    clickhouse: ClickHouseSettings = ClickHouseSettings()
    embedded_clickhouse: EmbeddedClickHouseSettings = EmbeddedClickHouseSettings()
    worker: WorkerSettings = WorkerSettings()
    api: ApiSettings = ApiSettings()
    ingest: IngestSettings = IngestSettings()
    issues: IssueSettings = IssueSettings()
    retention: RetentionSettings = RetentionSettings()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # Secret files may name a nested field: `lineagehouse_clickhouse__password`.
        nested_secrets = NestedSecretsSettingsSource(file_secret_settings)
        return init_settings, env_settings, dotenv_settings, nested_secrets

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain data, secrets shown as '**********'."""
        return self.model_dump(mode="json")


def _env_name(loc: tuple[Any, ...]) -> str:
    return ENV_PREFIX + "__".join(str(part).upper() for part in loc)


def load_settings(**overrides: Any) -> Settings:
    """Build the settings or raise ConfigError naming every bad setting and its fix."""
    secrets_dir = os.environ.get(ENV_PREFIX + "SECRETS_DIR")
    kwargs: dict[str, Any] = dict(overrides)
    if secrets_dir:
        if not Path(secrets_dir).is_dir():
            raise ConfigError(
                f"{ENV_PREFIX}SECRETS_DIR={secrets_dir!r} is not a directory. "
                "Fix: point it at the folder holding secret files, or unset it."
            )
        kwargs["_secrets_dir"] = secrets_dir
    try:
        return Settings(**kwargs)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not isinstance(p, int))
            name = _env_name(loc)
            given = err.get("input")
            shown = "" if isinstance(given, dict) else f" (got {given!r})"
            fix = _fix_hint(err)
            lines.append(f"  {name}{shown}: {err['msg']}. Fix: {fix}")
        raise ConfigError("Invalid settings:\n" + "\n".join(lines)) from None


def _fix_hint(err: Any) -> str:
    kind = err["type"]
    ctx = err.get("ctx") or {}
    if kind == "extra_forbidden":
        return "remove it; it is not a Lineagehouse setting (check the spelling)"
    if kind == "literal_error":
        return f"use one of {ctx.get('expected')}"
    if kind in ("int_parsing", "int_type", "float_parsing", "float_type"):
        return "use a number"
    if kind in ("greater_than", "greater_than_equal", "less_than_equal", "less_than"):
        bounds = ", ".join(f"{k} {v}" for k, v in ctx.items())
        return f"use a number with {bounds}"
    return "correct the value as described"
