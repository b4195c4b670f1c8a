"""Pure: OpenLineage event validation. Bytes in, a verdict with reasons out.

What is checked, in order:

1. The message itself: at most `max_bytes`, UTF-8, JSON, a JSON object.
2. The envelope against the CURRENT core schema (2-0-2), whatever version the event's
   `schemaURL` names: emitters' `schemaURL`s are often missing, old or dangling, and the
   current core accepts older events. The named version is recorded (`core_version`), not
   trusted. The core definition is chosen by shape: `run` => RunEvent, else `dataset` =>
   DatasetEvent, else `job` => JobEvent.
3. `eventTime` must parse with `datetime.fromisoformat`, or the event is unusable.
4. Each facet against the schema its `_schemaURL` names, when that schema is known
   locally (every published OpenLineage facet version ships with the package, plus the
   operator's `extra_schema_dirs`). A job or dataset facet `{"_deleted": true, ...}` is a
   deletion marker: the core still checks its base fields, the facet schema does not
   apply. Facets whose schema is not known (custom facets, vendor facets, moved or never
   published URLs, missing `#pointer`s), or that name a core base definition such as
   `OpenLineage.json#/$defs/RunFacet`, are kept and reported in `custom_facets`.

JSON-Schema `format` problems (date-time, uri, uuid, ...) are warnings, never rejections.

Speed: every schema is compiled once by `jsonschema-rs` (Rust). Each target has two
validators, formats ignored (the verdict) and formats asserted (warnings); the fast path is
one formats-asserted `is_valid` per envelope and per facet. Only when it fails are the
detailed errors and warnings collected; for facets that result is kept in a bounded LRU
keyed by the schema URL and the facet's canonical JSON, since facet bodies repeat.

Imports nothing from faust, Kafka, ClickHouse or HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson

from lineagehouse.processors.schema_registry import LRU, SchemaSet, Target

MAX_PROBLEMS = 20  # errors (and warnings) reported per event; the rest are counted
MAX_MESSAGE = 300  # characters of one message
DEFAULT_CACHE_SIZE = 4096  # facet results kept (slow path only)

_KINDS = {"run": "RunEvent", "dataset": "DatasetEvent", "job": "JobEvent"}
_CORE_VERSION = re.compile(r"/spec/(\d+-\d+-\d+)/OpenLineage\.json")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_Kind = jsonschema_rs.ValidationErrorKind
_BRANCHING = (_Kind.AnyOf, _Kind.OneOfNotValid)

Path_ = tuple[str | int, ...]
_MISSING = object()
_Found = tuple[Path_, str]


@dataclass(frozen=True, slots=True)
class Problem:
    path: str  # JSON path, "$" for the whole message
    message: str


@dataclass(frozen=True, slots=True)
class Verdict:
    event: dict | None  # the parsed event (None when not JSON/object)
    errors: tuple[Problem, ...]  # empty => accepted
    warnings: tuple[Problem, ...]  # format problems etc.
    kind: str  # "run" | "dataset" | "job" | ""
    core_version: str | None  # e.g. "2-0-2" named by the event's schemaURL (recorded, not trusted)
    custom_facets: tuple[str, ...]  # JSON paths of facets not validated against a spec schema

    @property
    def accepted(self) -> bool:
        return not self.errors


def json_path(parts: Sequence[str | int]) -> str:
    """("run", "facets", "spark.logicalPlan", 0) -> "$.run.facets['spark.logicalPlan'][0]"."""
    out = ["$"]
    for part in parts:
        if isinstance(part, int):
            out.append(f"[{part}]")
        elif _IDENT.fullmatch(part):
            out.append(f".{part}")
        else:
            escaped = part.replace("\\", "\\\\").replace("'", "\\'")
            out.append(f"['{escaped}']")
    return "".join(out)


def _short(message: str) -> str:
    return message if len(message) <= MAX_MESSAGE else message[:MAX_MESSAGE] + "..."


def _error_leaves(error: Any, out: list[_Found]) -> None:
    """The errors that say what is wrong; anyOf/oneOf failures point into their best branch."""
    kind = error.kind
    if isinstance(kind, _BRANCHING):
        branches = [branch for branch in kind.context if branch]
        if branches:
            best = max(
                branches,
                key=lambda b: (max(len(e.instance_path) for e in b), -len(b)),
            )
            for sub in best:
                _error_leaves(sub, out)
            return
    path = tuple(error.instance_path)
    if isinstance(kind, _Kind.Required):
        path += (kind.property,)
    out.append((path, _short(error.message)))


def _format_leaves(error: Any, out: list[_Found]) -> bool:
    """Collect `format` failures into `out`; True when `error` is made only of them."""
    kind = error.kind
    if isinstance(kind, _Kind.Format):
        out.append((tuple(error.instance_path), _short(error.message)))
        return True
    if isinstance(kind, _BRANCHING):
        # A branch that fails only on formats is the one that would have matched.
        found = False
        for branch in kind.context:
            leaves: list[_Found] = []
            if branch and all([_format_leaves(sub, leaves) for sub in branch]):
                out.extend(leaves)
                found = True
        return found
    return False


def _problems(target: Target, instance: Any) -> tuple[tuple[_Found, ...], tuple[_Found, ...]]:
    """(errors, format warnings) of `instance` against `target`, paths relative to it."""
    errors: list[_Found] = []
    for error in target.plain.iter_errors(instance):
        _error_leaves(error, errors)
    warnings: list[_Found] = []
    for error in target.formats.iter_errors(instance):
        _format_leaves(error, warnings)
    return tuple(errors), tuple(warnings)


def _bounded(found: list[_Found], what: str) -> tuple[Problem, ...]:
    unique = list(dict.fromkeys(found))
    problems = [Problem(json_path(path), message) for path, message in unique[:MAX_PROBLEMS]]
    if len(unique) > MAX_PROBLEMS:
        more = len(unique) - MAX_PROBLEMS
        problems.append(Problem("$", f"{more} more {what} not shown"))
    return tuple(problems)


def _reject(message: str, event: dict | None = None) -> Verdict:
    return Verdict(event, (Problem("$", message),), (), "", None, ())


@lru_cache(maxsize=4096)
def _key_path(key: str) -> str:
    """The JSON-path step for an object key: ".name" or "['odd.name']"."""
    return json_path((key,))[1:]


_Group = tuple[Path_, str, dict, bool]


def _facet_groups(event: dict, kind: str) -> list[_Group]:
    """(path, JSON path, facets, deletable) of each facets object the core schema defines."""
    groups: list[_Group] = []
    if kind == "dataset":
        owner = event.get("dataset")
        if type(owner) is dict:
            facets = owner.get("facets")
            if type(facets) is dict and facets:
                groups.append((("dataset", "facets"), "$.dataset.facets", facets, True))
        return groups
    if kind == "run":
        owner = event.get("run")
        if type(owner) is dict:
            facets = owner.get("facets")
            if type(facets) is dict and facets:
                groups.append((("run", "facets"), "$.run.facets", facets, False))
    owner = event.get("job")
    if type(owner) is dict:
        facets = owner.get("facets")
        if type(facets) is dict and facets:
            groups.append((("job", "facets"), "$.job.facets", facets, True))
    for side, extra in (("inputs", "inputFacets"), ("outputs", "outputFacets")):
        datasets = event.get(side)
        if type(datasets) is not list:
            continue
        for i, dataset in enumerate(datasets):
            if type(dataset) is not dict:
                continue
            facets = dataset.get("facets")
            if type(facets) is dict and facets:
                groups.append(((side, i, "facets"), f"$.{side}[{i}].facets", facets, True))
            facets = dataset.get(extra)
            if type(facets) is dict and facets:
                groups.append(((side, i, extra), f"$.{side}[{i}].{extra}", facets, False))
    return groups


class EventValidator:
    """Validates OpenLineage events (RunEvent, DatasetEvent, JobEvent) given as bytes.

    `extra_schema_dirs`: directories of JSON Schema files (each with an `$id`) for custom
    facets; a facet whose `_schemaURL` names one of them is validated against it.
    `cache_size`: facet results kept for bodies that failed the fast path (0 disables).
    """

    def __init__(
        self,
        max_bytes: int = 1_000_000,
        extra_schema_dirs: Sequence[Path] = (),
        *,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self.max_bytes = max_bytes
        self.schemas = SchemaSet(extra_schema_dirs)
        self._core = {kind: self.schemas.core(name) for kind, name in _KINDS.items()}
        self._facet_cache = LRU(cache_size)

    def validate(self, value: bytes) -> Verdict:
        if value is None:
            return _reject("empty message: no value")
        size = len(value)
        if size > self.max_bytes:
            return _reject(f"message is {size} bytes, over the limit of {self.max_bytes} bytes")
        try:
            event = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            return _reject(_not_json(value, exc))
        if type(event) is not dict:
            return _reject(f"not a JSON object: the message is a JSON {_json_type(event)}")

        kind = "run" if "run" in event else "dataset" if "dataset" in event else ""
        if not kind and "job" in event:
            kind = "job"
        schema_url = event.get("schemaURL")
        match = _CORE_VERSION.search(schema_url) if type(schema_url) is str else None
        core_version = match.group(1) if match else None

        errors: list[_Found] = []
        warnings: list[_Found] = []
        custom: list[str] = []

        core = self._core[kind or "run"]
        if not core.formats.is_valid(event):
            found_errors, found_warnings = _problems(core, event)
            errors.extend(found_errors)
            warnings.extend(found_warnings)
        if not kind:
            errors.insert(
                0,
                (
                    (),
                    "not an OpenLineage event: it needs 'run' (RunEvent), 'dataset' "
                    "(DatasetEvent) or 'job' (JobEvent)",
                ),
            )
        elif kind == "dataset" and "job" in event and not errors:
            if self._core["job"].plain.is_valid(event):
                errors.append(
                    (
                        (),
                        "valid both as a DatasetEvent and as a JobEvent: the core schema "
                        "requires exactly one; send 'dataset' or 'job', not both",
                    )
                )

        event_time = event.get("eventTime")
        if type(event_time) is str:
            try:
                datetime.fromisoformat(event_time)
            except ValueError:
                errors.append(
                    (
                        ("eventTime",),
                        _short(f"{event_time!r} is not an ISO 8601 date-time"),
                    )
                )

        if kind:
            self._check_facets(event, kind, errors, warnings, custom)

        if not errors and not warnings:
            return Verdict(event, (), (), kind, core_version, tuple(custom))
        return Verdict(
            event,
            _bounded(errors, "errors"),
            _bounded(warnings, "warnings"),
            kind,
            core_version,
            tuple(custom),
        )

    def _check_facets(
        self,
        event: dict,
        kind: str,
        errors: list[_Found],
        warnings: list[_Found],
        custom: list[str],
    ) -> None:
        targets = self.schemas.targets
        resolve = self.schemas.facet_target
        for group_path, group_json_path, facets, deletable in _facet_groups(event, kind):
            for key, body in facets.items():
                if type(body) is not dict:
                    continue  # the core schema reports it
                url = body.get("_schemaURL")
                if type(url) is not str:
                    continue  # the core schema reports it
                if deletable and body.get("_deleted") is True:
                    continue  # deletion marker: no facet schema applies
                target = targets.get(url, _MISSING)
                if target is _MISSING:
                    target = resolve(url)
                if target is None:
                    custom.append(group_json_path + _key_path(key))
                    continue
                if target.base_only:
                    custom.append(group_json_path + _key_path(key))
                instance = {key: body} if target.wrap else body
                if target.formats.is_valid(instance):
                    continue
                found_errors, found_warnings = self._facet_problems(target, instance)
                base = group_path if target.wrap else (*group_path, key)
                errors.extend(((*base, *path), message) for path, message in found_errors)
                warnings.extend(((*base, *path), message) for path, message in found_warnings)

    def _facet_problems(
        self, target: Target, instance: dict
    ) -> tuple[tuple[_Found, ...], tuple[_Found, ...]]:
        cache = self._facet_cache
        if cache.maxsize <= 0:
            return _problems(target, instance)
        key = (target.url, orjson.dumps(instance, option=orjson.OPT_SORT_KEYS))
        found = cache.get(key)
        if found is None:
            found = _problems(target, instance)
            cache.put(key, found)
        return found


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "array"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "boolean"
    if value is None:
        return "null"
    return "number"


def _not_json(value: bytes, exc: orjson.JSONDecodeError) -> str:
    try:
        bytes(value).decode("utf-8")
    except UnicodeDecodeError as bad:
        return f"not UTF-8: invalid byte at offset {bad.start}"
    if not bytes(value).strip():
        return "not JSON: the message is empty"
    return _short(f"not JSON: {exc}")


@cache
def default_validator() -> EventValidator:
    """One shared validator with the default settings (compiled on first use)."""
    return EventValidator()
