"""Pure: the Kafka message key of an OpenLineage event.

The same key openlineage-python's `KafkaTransport` gives the event, so events sent over
HTTP land on the same partition, in the same order, as events sent straight to Kafka:

- RunEvent: `run:<namespace>/<name>` of the root job when the parent facet names a root,
  else of the parent job, else of the event's own job. A root or parent whose job
  namespace or name is missing or empty falls back to the event's own job (the transport
  does not fall back from root to parent).
- DatasetEvent: `dataset:<namespace>/<name>`.
- JobEvent: `job:<namespace>/<name>`.

The event kind is decided by shape, as the validator does: `run` => RunEvent, else
`dataset` => DatasetEvent, else `job` => JobEvent; anything else has no key.

Imports nothing from Kafka or HTTP.
"""

from __future__ import annotations

from typing import Any


def _get(obj: Any, *path: str) -> Any:
    for part in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def _name_pair(obj: Any) -> tuple[Any, Any]:
    job = _get(obj, "job")
    return _get(job, "namespace"), _get(job, "name")


def message_key(event: dict[str, Any]) -> str | None:
    """The Kafka message key of `event`, or None when it is not an OpenLineage event."""
    if not isinstance(event, dict):
        return None
    if "run" in event:
        return _run_key(event)
    if "dataset" in event:
        dataset = event.get("dataset")
        return f"dataset:{_get(dataset, 'namespace')}/{_get(dataset, 'name')}"
    if "job" in event:
        namespace, name = _name_pair(event)
        return f"job:{namespace}/{name}"
    return None


def _run_key(event: dict[str, Any]) -> str:
    namespace, name = _name_pair(event)
    default = f"run:{namespace}/{name}"
    parent = _get(event, "run", "facets", "parent")
    if not isinstance(parent, dict) or not parent:
        return default
    root = parent.get("root")
    if isinstance(root, dict) and root:
        namespace, name = _name_pair(root)
    else:
        namespace, name = _name_pair(parent)
    if not namespace or not name:
        return default
    return f"run:{namespace}/{name}"


def message_key_bytes(event: Any, *, strict: bool = False) -> bytes | None:
    """`message_key` encoded for Kafka (None for no event or no key).

    `strict`: None unless the names the key is made of are strings (for events that
    failed validation, whose key would otherwise read like `run:None/None`).
    """
    key = message_key(event) if isinstance(event, dict) else None
    if key is None:
        return None
    if strict and not _names_are_strings(event):
        return None
    return key.encode("utf-8")


def _names_are_strings(event: dict[str, Any]) -> bool:
    """The event's own names are strings (a bad parent or root falls back to them)."""
    if "dataset" in event and "run" not in event:
        dataset = event.get("dataset")
        pair = (_get(dataset, "namespace"), _get(dataset, "name"))
    else:
        pair = _name_pair(event)
    return all(isinstance(part, str) for part in pair)
