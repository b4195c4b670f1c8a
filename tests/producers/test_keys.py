"""The message key rule, case by case and against openlineage-python's own KafkaTransport.

The differential tests build each corpus event with openlineage-python's classes (the
parts the key depends on: kind, job, dataset, parent and root facets) and compare
`message_key(dict)` with `KafkaTransport._get_message_key(object)`.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterator
from typing import Any

import attr
import orjson
import pytest
from openlineage.client import event_v2
from openlineage.client.facet_v2 import parent_run
from openlineage.client.transport.kafka import KafkaConfig, KafkaTransport

from lineagehouse.producers.keys import message_key, message_key_bytes
from tests.conftest import CORPUS

TIME = "2024-05-01T12:00:00+00:00"
PRODUCER = "https://github.com/lineagehouse/lineagehouse/tests"


@pytest.fixture(scope="module")
def transport() -> Iterator[KafkaTransport]:
    # The producer never connects: only the key rule is used.
    kafka = KafkaTransport(
        KafkaConfig(
            config={"bootstrap.servers": "127.0.0.1:1", "log_level": 0}, topic="unused", flush=False
        )
    )
    yield kafka
    kafka.producer = None


def to_openlineage(event: dict[str, Any]) -> Any:
    """The event as openlineage-python's v2 classes (the fields the key depends on).

    attrs validators are off: some valid corpus events have runIds that are not UUIDs
    (a format warning for us), which the classes would refuse.
    """
    with attr.validators.disabled():
        return _to_openlineage(event)


def _to_openlineage(event: dict[str, Any]) -> Any:
    common = {"eventTime": event["eventTime"], "producer": event.get("producer") or PRODUCER}
    if "run" in event:
        facets: dict[str, Any] = {}
        parent = (event["run"].get("facets") or {}).get("parent")
        if parent:
            root = parent.get("root")
            facets["parent"] = parent_run.ParentRunFacet(
                run=parent_run.Run(runId=parent["run"]["runId"]),
                job=parent_run.Job(
                    namespace=parent["job"]["namespace"], name=parent["job"]["name"]
                ),
                root=parent_run.Root(
                    run=parent_run.RootRun(runId=root["run"]["runId"]),
                    job=parent_run.RootJob(
                        namespace=root["job"]["namespace"], name=root["job"]["name"]
                    ),
                )
                if root
                else None,
            )
        event_type = event.get("eventType")
        return event_v2.RunEvent(
            eventType=event_v2.RunState(event_type) if event_type else None,
            run=event_v2.Run(runId=event["run"]["runId"], facets=facets),
            job=event_v2.Job(namespace=event["job"]["namespace"], name=event["job"]["name"]),
            **common,
        )
    if "dataset" in event:
        dataset = event["dataset"]
        return event_v2.DatasetEvent(
            dataset=event_v2.StaticDataset(namespace=dataset["namespace"], name=dataset["name"]),
            **common,
        )
    return event_v2.JobEvent(
        job=event_v2.Job(namespace=event["job"]["namespace"], name=event["job"]["name"]),
        **common,
    )


def corpus() -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in (CORPUS / "valid.jsonl").read_bytes().splitlines()]


def parent_of(event: dict[str, Any]) -> dict[str, Any] | None:
    return ((event.get("run") or {}).get("facets") or {}).get("parent")


def with_root(event: dict[str, Any], i: int) -> dict[str, Any]:
    """A copy of a run event with a parent whose facet also names a root job."""
    event = copy.deepcopy(event)
    parent = parent_of(event)
    assert parent is not None
    parent["root"] = {
        "run": {"runId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"root/{i}"))},
        "job": {"namespace": f"root-ns-{i}", "name": f"root.dag_{i}"},
    }
    return event


def corpus_case(case: str) -> list[dict[str, Any]]:
    events = corpus()
    runs = [e for e in events if "run" in e]
    if case == "parent":
        return [e for e in runs if parent_of(e)]
    if case == "root":
        return [with_root(e, i) for i, e in enumerate(runs) if parent_of(e)]
    if case == "no parent":
        return [e for e in runs if not parent_of(e)]
    if case == "dataset":
        return [e for e in events if "run" not in e and "dataset" in e]
    assert case == "job"
    return [e for e in events if "run" not in e and "dataset" not in e and "job" in e]


def run(namespace: str = "ns", name: str = "job", parent: dict | None = None) -> dict[str, Any]:
    facets = {"parent": parent} if parent is not None else {}
    return {
        "eventType": "START",
        "eventTime": TIME,
        "run": {"runId": str(uuid.uuid4()), "facets": facets},
        "job": {"namespace": namespace, "name": name},
        "producer": PRODUCER,
    }


def parent(namespace: str, name: str, root: tuple[str, str] | None = None) -> dict[str, Any]:
    facet: dict[str, Any] = {
        "run": {"runId": str(uuid.uuid4())},
        "job": {"namespace": namespace, "name": name},
    }
    if root is not None:
        facet["root"] = {
            "run": {"runId": str(uuid.uuid4())},
            "job": dict(zip(("namespace", "name"), root, strict=True)),
        }
    return facet


# One example per case, with the expected key spelled out; each is also checked against
# the transport.
CASES = {
    "parent": (run("ns", "child", parent("airflow", "dag")), "run:airflow/dag"),
    "root": (
        run("ns", "grandchild", parent("airflow", "task", root=("airflow", "dag"))),
        "run:airflow/dag",
    ),
    "no parent": (run("ns", "job.task"), "run:ns/job.task"),
    "dataset": (
        {
            "eventTime": TIME,
            "dataset": {"namespace": "postgres://db:5432", "name": "public.orders"},
            "producer": PRODUCER,
        },
        "dataset:postgres://db:5432/public.orders",
    ),
    "job": (
        {
            "eventTime": TIME,
            "job": {"namespace": "dbt", "name": "model.orders"},
            "producer": PRODUCER,
        },
        "job:dbt/model.orders",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_key_case(case: str, transport: KafkaTransport) -> None:
    event, expected = CASES[case]
    assert message_key(event) == expected
    assert transport._get_message_key(to_openlineage(event)) == expected
    assert message_key_bytes(event) == expected.encode()


@pytest.mark.parametrize("case", list(CASES))
def test_key_matches_kafka_transport_on_corpus(case: str, transport: KafkaTransport) -> None:
    events = corpus_case(case)
    assert events, f"no corpus events for case {case!r}"
    for event in events:
        expected = transport._get_message_key(to_openlineage(event))
        assert message_key(event) == expected, (case, event.get("job"), parent_of(event))


def test_empty_parent_or_root_names_fall_back_like_the_transport(
    transport: KafkaTransport,
) -> None:
    # The transport falls back to the event's own job, not from root to parent.
    for event in (
        run("ns", "own", parent("", "dag")),
        run("ns", "own", parent("airflow", "")),
        run("ns", "own", parent("airflow", "task", root=("", "dag"))),
        run("ns", "own", parent("airflow", "task", root=("airflow", ""))),
    ):
        expected = transport._get_message_key(to_openlineage(event))
        assert expected == "run:ns/own"
        assert message_key(event) == expected


def test_no_key_for_non_events() -> None:
    assert message_key({"eventTime": TIME}) is None
    assert message_key([1, 2]) is None  # type: ignore[arg-type]
    assert message_key_bytes(None) is None
    assert message_key_bytes("text") is None


def test_strict_bytes_refuse_keys_made_of_missing_names() -> None:
    broken = {"eventTime": TIME, "run": {"runId": "x"}, "job": {"name": "only-name"}}
    assert message_key(broken) == "run:None/only-name"
    assert message_key_bytes(broken, strict=True) is None
    assert message_key_bytes(run("a", "b"), strict=True) == b"run:a/b"
    dataset = {"eventTime": TIME, "dataset": {"namespace": "n", "name": 5}}
    assert message_key_bytes(dataset, strict=True) is None
