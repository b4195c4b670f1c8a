"""Settings: precedence one pair per test, nested env, secret files, clear errors."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from lineagehouse.settings import ConfigError, cgroup_cpu_limit, load_settings
from tests.conftest import lineagehouse_cmd


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("LINEAGEHOUSE_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)  # no stray .env file


def test_defaults_are_the_design_contracts() -> None:
    s = load_settings()
    assert s.kafka.bootstrap_servers == "127.0.0.1:9092"
    assert s.clickhouse.url == "http://127.0.0.1:8123"
    assert s.clickhouse.database == "lineagehouse"
    assert s.api.port == 5000
    assert (s.topics.events, s.topics.dlq) == ("openlineage.events", "openlineage.events.dlq")
    assert s.data_dir == Path(".lineagehouse")


def test_nested_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINEAGEHOUSE_KAFKA__BOOTSTRAP_SERVERS", "k1:9093,k2:9093")
    monkeypatch.setenv("LINEAGEHOUSE_TOPICS__EVENTS_PARTITIONS", "24")
    s = load_settings()
    assert s.kafka.bootstrap_servers == "k1:9093,k2:9093"
    assert s.topics.events_partitions == 24


def test_consumers_get_the_fetch_wait_and_producers_do_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LINEAGEHOUSE_KAFKA__FETCH_MAX_WAIT_S", "0.1")
    kafka = load_settings().kafka
    assert kafka.consumer_config()["fetch.wait.max.ms"] == 100
    assert kafka.consumer_config()["bootstrap.servers"] == kafka.bootstrap_servers
    assert "fetch.wait.max.ms" not in kafka.confluent_config()  # producers would warn


def test_our_producers_of_events_compress_as_set(monkeypatch: pytest.MonkeyPatch) -> None:
    from lineagehouse.demo import client_for
    from lineagehouse.producers.gateway import KafkaProducerAdapter

    def codecs() -> tuple[str, str, str]:
        kafka = load_settings().kafka
        gateway = KafkaProducerAdapter(kafka, 1.0)._config  # the HTTP ingest gateway
        demo = client_for(kafka.bootstrap_servers, compression=kafka.compression)
        return (
            kafka.events_producer_config()["compression.type"],  # `dlq replay` too
            gateway["compression.type"],
            demo.transport.kafka_config.config["compression.type"],
        )

    assert codecs() == ("zstd",) * 3
    monkeypatch.setenv("LINEAGEHOUSE_KAFKA__COMPRESSION", "none")
    assert codecs() == ("none",) * 3
    assert "compression.type" not in load_settings().kafka.confluent_config()  # consumers


def test_override_beats_env_and_keeps_sibling_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINEAGEHOUSE_API__PORT", "7000")
    monkeypatch.setenv("LINEAGEHOUSE_API__HOST", "0.0.0.0")
    s = load_settings(api={"port": 7001})
    assert (s.api.host, s.api.port) == ("0.0.0.0", 7001)


def test_env_beats_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("LINEAGEHOUSE_API__PORT=7100\nLINEAGEHOUSE_LOG_LEVEL=DEBUG\n")
    monkeypatch.setenv("LINEAGEHOUSE_API__PORT", "7200")
    s = load_settings()
    assert (s.api.port, s.log_level) == (7200, "DEBUG")


def test_secret_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "lineagehouse_clickhouse__password").write_text("s3cret")
    monkeypatch.setenv("LINEAGEHOUSE_SECRETS_DIR", str(secrets))
    s = load_settings()
    assert s.clickhouse.password.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(s) and "s3cret" not in str(s.masked())


def test_env_beats_secret_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "lineagehouse_log_level").write_text("ERROR")
    monkeypatch.setenv("LINEAGEHOUSE_SECRETS_DIR", str(secrets))
    monkeypatch.setenv("LINEAGEHOUSE_LOG_LEVEL", "WARNING")
    assert load_settings().log_level == "WARNING"


def test_frozen() -> None:
    s = load_settings()
    with pytest.raises(Exception, match="frozen"):
        s.api.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("LINEAGEHOUSE_KAFKA__SESSION_TIMEOUT_S", "soon", "use a number"),
        ("LINEAGEHOUSE_CLICKHOUSE__URL", "localhost:8123", "http(s) URL"),
        ("LINEAGEHOUSE_KAFKA__BOOTSTRAP_SERVERS", "localhost", "host:port"),
        ("LINEAGEHOUSE_KAFKA__SECURITY_PROTOCOL", "TLS", "use one of"),
        ("LINEAGEHOUSE_API__PORT", "70000", "less than or equal to 65535"),
        ("LINEAGEHOUSE_TOPICS__EVENTS_PARTITIONS", "0", "greater than or equal to 1"),
        ("LINEAGEHOUSE_KAFKA__COMPRESSION", "brotli", "'zstd'"),
    ],
)
def test_bad_value_names_setting_and_fix(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as info:
        load_settings()
    message = str(info.value)
    assert name in message and "Fix:" in message and expected in message


def test_missing_secrets_dir_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LINEAGEHOUSE_SECRETS_DIR", "/nonexistent/secrets")
    with pytest.raises(ConfigError, match="LINEAGEHOUSE_SECRETS_DIR"):
        load_settings()


def test_cli_reports_bad_setting_and_exits_2(tmp_path: Path) -> None:
    import os

    env = {**os.environ, "LINEAGEHOUSE_CLICKHOUSE__URL": "nope"}
    result = subprocess.run(
        lineagehouse_cmd("migrate"), env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "LINEAGEHOUSE_CLICKHOUSE__URL" in result.stderr and "Fix:" in result.stderr


def test_effective_settings_logged_masked(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lineagehouse.cli import _settings

    monkeypatch.setenv("LINEAGEHOUSE_CLICKHOUSE__PASSWORD", "hunter2")
    monkeypatch.setenv("LINEAGEHOUSE_LOG_FORMAT", "text")
    with caplog.at_level(logging.INFO, logger="lineagehouse.cli"):
        _settings()
    logged = [r for r in caplog.records if r.getMessage() == "effective settings"]
    assert logged, "effective settings were not logged"
    shown = logged[0].settings  # type: ignore[attr-defined]
    assert shown["clickhouse"]["password"] == "**********"
    assert "hunter2" not in str(shown)


@pytest.mark.parametrize(
    ("cpu_max", "quota", "period", "expected"),
    [
        ("max 100000\n", None, None, None),  # cgroup v2, no limit
        ("150000 100000\n", None, None, 1.5),  # a container limited to 1.5 cores
        ("50000 100000", "400000", "100000", 0.5),  # v2 wins when both are readable
        (None, "-1\n", "100000\n", None),  # cgroup v1, no limit
        (None, "300000\n", "100000\n", 3.0),
        (None, None, None, None),  # neither readable (not Linux, or no cgroup fs)
        ("garbage", None, None, None),
        ("100000 0", None, None, None),
    ],
)
def test_cgroup_cpu_limit(
    cpu_max: str | None, quota: str | None, period: str | None, expected: float | None
) -> None:
    assert cgroup_cpu_limit(cpu_max, quota, period) == expected


def test_up_starts_one_processor_per_usable_core() -> None:
    """`up`'s default counts the cores the process may run on, not the host's: pinned to
    one core it starts no processor process (the worker runs every stage), pinned to two
    it starts two."""
    import os

    cores = sorted(os.sched_getaffinity(0))
    code = (
        "from lineagehouse.settings import Settings; print(Settings().worker.processor_processes())"
    )
    runs = {1: 0, 2: 2} if len(cores) >= 2 else {1: 0}
    for pinned, expected in runs.items():
        mask = ",".join(str(core) for core in cores[:pinned])
        out = subprocess.run(
            ["taskset", "-c", mask, sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
        )
        assert int(out.stdout) == expected, out.stderr
