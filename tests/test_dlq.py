"""Dead letters end to end: worker -> DLQ + ClickHouse; `lineagehouse dlq list/show/replay`."""

from __future__ import annotations

import subprocess
from collections.abc import Callable

import orjson
import pytest
from clickhouse_connect.driver.client import Client

from lineagehouse.embedded.process import stop_process
from lineagehouse.settings import Settings
from lineagehouse.store.migrations import migrate
from lineagehouse.topics import ensure_topics
from tests.conftest import produce, run_cli, wait_for
from tests.events import encode, run_event, run_key

pytestmark = pytest.mark.timeout(300)


def cli(settings: Settings, *args: str) -> subprocess.CompletedProcess:
    return run_cli(settings, "dlq", *args, timeout=120)


def final_count(ch: Client, settings: Settings, table: str) -> int:
    return ch.command(f"SELECT count() FROM {settings.clickhouse.database}.{table} FINAL")


def test_dead_letters_list_show_and_replay_after_a_fix(
    make_settings: Callable[..., Settings], ch: Client, start_worker
) -> None:
    strict = make_settings(ingest={"max_event_bytes": 4096})
    migrate(strict)
    ensure_topics(strict)
    good = [run_event(i, job="dlq_cli") for i in range(20)]
    big = []
    for i in range(3):
        event = run_event(100 + i, job="dlq_cli_big")
        event["job"]["facets"] = {
            "documentation": {
                "_producer": "p",
                "description": "d" * 6000,
                "_schemaURL": "https://openlineage.io/spec/facets/1-1-0/"
                "DocumentationJobFacet.json#/$defs/DocumentationJobFacet",
            }
        }
        big.append(event)
    garbage = [(b"g1", b"not json at all"), (b"g2", b'{"eventTime": "x"}')]
    produce(strict, [(run_key(e), encode(e)) for e in good + big] + garbage)

    worker = start_worker(strict)
    wait_for(
        lambda: (
            final_count(ch, strict, "events_raw") == 20
            and final_count(ch, strict, "dead_letters") == 5
        ),
        120,
        "20 accepted events and 5 dead letters",
        alive=worker,
    )

    listed = cli(strict, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    entries = [orjson.loads(line) for line in listed.stdout.splitlines()]
    assert len(entries) == 5
    too_big = [e for e in entries if "over the limit" in e["message"]]
    assert len(too_big) == 3 and not any(e["accepted_since"] for e in entries)

    human = cli(strict, "list", "--reason", "over the limit")
    assert human.returncode == 0 and "3 of 3 shown" in human.stdout

    shown = cli(strict, "show", too_big[0]["id"][:10])
    assert shown.returncode == 0, shown.stderr
    assert "over the limit of 4096 bytes" in shown.stdout
    assert '"description"' in shown.stdout  # the whole original event is kept
    assert cli(strict, "show", "ffffffff-dead").returncode == 1

    # The fix: a larger limit. Restart the worker with it and replay the size rejects.
    stop_process(worker)
    fixed = make_settings(ingest={"max_event_bytes": 900_000})
    fixed = strict.model_copy(update={"ingest": fixed.ingest})
    worker = start_worker(fixed)
    replayed = cli(fixed, "replay", "--reason", "over the limit")
    assert replayed.returncode == 0, replayed.stderr
    assert "Replayed 3 dead letter(s)" in replayed.stdout
    wait_for(
        lambda: final_count(ch, fixed, "events_raw") == 23,
        120,
        "the 3 replayed events accepted",
        alive=worker,
    )
    after = [orjson.loads(line) for line in cli(fixed, "list", "--json").stdout.splitlines()]
    assert sorted(e["accepted_since"] for e in after) == [False, False, True, True, True]

    # Replay is idempotent: everything again changes no count.
    assert cli(fixed, "replay", "--all").returncode == 0
    ids = [e["id"] for e in after if not e["accepted_since"]]
    assert cli(fixed, "replay", *ids).returncode == 0
    wait_for(lambda: _drained(fixed), 60, "the replays to be consumed", alive=worker)
    assert final_count(ch, fixed, "events_raw") == 23
    assert final_count(ch, fixed, "dead_letters") == 5


def test_replay_needs_a_selection(settings: Settings) -> None:
    result = cli(settings, "replay")
    assert result.returncode == 2 and "--all" in result.stderr


def _drained(settings: Settings) -> bool:
    from lineagehouse.drain import wait_until_drained

    return wait_until_drained(settings, timeout_s=0) == []
