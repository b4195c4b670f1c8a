"""Pure: OpenLineage event validation. Bytes in, a verdict with reasons out.

What is checked, in order:

1. The message itself: at most `max_bytes`, UTF-8, JSON, a JSON object.
2. The envelope against the CURRENT core schema (2-0-2), whatever version the event's
   `schemaURL` names: emitters' `schemaURL`s are often missing, old or dangling, and the
   current core accepts older events. The named version is recorded (`core_version`), not
   trusted. The core definition is chosen by shape: `run` => RunEvent, else `dataset` =>
   DatasetEvent, else `job` => JobEvent.
3. `eventTime` must parse with `datetime.fromisoformat` and convert to UTC, or the event is
   unusable.
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
detailed errors and warnings collected. Facet bodies repeat from event to event (whole
facets objects too: same producer, same job), so results are kept in one bounded LRU: per
facets object (keyed by its place and exact JSON bytes: errors, warnings, custom keys) and
per facet (keyed by schema URL and exact JSON bytes). Equal bytes mean equal content, so a
cached result is the result. Facets naming a core base definition that the core schema
already applied at their place are not checked twice. Above these, the facets part of a
whole event's result is kept too (keyed by the exact JSON of the run and job facets and of
the inputs and outputs, or of the dataset facets): with a clean envelope such an event
costs one parse, one envelope `is_valid`, one `orjson.dumps` and one lookup. Each layer
rests where it seldom hits (`_Payoff`: the whole event's facets; the facets object at one
place, e.g. `run.facets`; one facet of one schema, e.g. `nominalTime`): facets that change
from run to run are checked without building keys and storing entries nobody reads.

Imports nothing from faust, Kafka, ClickHouse or HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson

from lineagehouse.processors.events import parse_time
from lineagehouse.processors.schema_registry import LRU, SchemaSet, Target

MAX_PROBLEMS = 20  # errors (and warnings) reported per event; the rest are counted
MAX_MESSAGE = 300  # characters of one message
DEFAULT_CACHE_SIZE = 8192  # facet results kept
_MAX_CUSTOM_PATHS = 4096  # JSON paths of custom facets kept (cleared when full)
_MAX_EVENT_RESULTS = 1024  # facets parts of whole events kept
_PAYOFF_MISSES = 128  # misses: when there were fewer hits meanwhile, a cache layer ...
_PAYOFF_REST = 4096  # ... is not used for this many lookups (see _Payoff)
_MAX_PAYOFFS = 4096  # kinds of lookups followed per layer (cleared when full)

_KINDS = {"run": "RunEvent", "dataset": "DatasetEvent", "job": "JobEvent"}

_CORE_VERSION = re.compile(r"/spec/(\d+-\d+-\d+)/OpenLineage\.json")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_Kind = jsonschema_rs.ValidationErrorKind
_BRANCHING = (_Kind.AnyOf, _Kind.OneOfNotValid)

Path_ = tuple[str | int, ...]
_MISSING = object()
_CLEAN: tuple[tuple, tuple] = ((), ())  # a facet with neither errors nor warnings
_CLEAN_GROUP: tuple[tuple, tuple, tuple] = ((), (), ())  # ... a facets object, no custom
_CLEAN_EVENT: tuple[tuple, ...] = ((), (), (), (), ())  # ... all of an event's facets
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


_new = object.__new__
_set_event = Verdict.event.__set__  # type: ignore[attr-defined]
_set_errors = Verdict.errors.__set__  # type: ignore[attr-defined]
_set_warnings = Verdict.warnings.__set__  # type: ignore[attr-defined]
_set_kind = Verdict.kind.__set__  # type: ignore[attr-defined]
_set_core_version = Verdict.core_version.__set__  # type: ignore[attr-defined]
_set_custom_facets = Verdict.custom_facets.__set__  # type: ignore[attr-defined]
assert [f.name for f in fields(Verdict)] == [
    "event",
    "errors",
    "warnings",
    "kind",
    "core_version",
    "custom_facets",
]


def _verdict(
    event: dict,
    errors: tuple[Problem, ...],
    warnings: tuple[Problem, ...],
    kind: str,
    core_version: str | None,
    custom_facets: tuple[str, ...],
) -> Verdict:
    """Verdict(...) for the hot path: the same object, built through its slots (the frozen
    dataclass __init__ costs twice as much)."""
    verdict = _new(Verdict)
    _set_event(verdict, event)
    _set_errors(verdict, errors)
    _set_warnings(verdict, warnings)
    _set_kind(verdict, kind)
    _set_core_version(verdict, core_version)
    _set_custom_facets(verdict, custom_facets)
    return verdict


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


@lru_cache(maxsize=16384)
def _problem(path: Path_, message: str) -> Problem:
    # Problems repeat from event to event (the same facet, the same format warning).
    return Problem(json_path(path), message)


def _bounded(found: list[_Found], what: str) -> tuple[Problem, ...]:
    unique = list(dict.fromkeys(found)) if len(found) > 1 else found
    problems = [_problem(path, message) for path, message in unique[:MAX_PROBLEMS]]
    if len(unique) > MAX_PROBLEMS:
        more = len(unique) - MAX_PROBLEMS
        problems.append(Problem("$", f"{more} more {what} not shown"))
    return tuple(problems)


@lru_cache(maxsize=1024)
def _core_version(schema_url: str) -> str | None:
    match = _CORE_VERSION.search(schema_url)
    return match.group(1) if match else None


def _reject(message: str, event: dict | None = None) -> Verdict:
    return Verdict(event, (Problem("$", message),), (), "", None, ())


@lru_cache(maxsize=4096)
def _key_path(key: str) -> str:
    """The JSON-path step for an object key: ".name" or "['odd.name']"."""
    return json_path((key,))[1:]


_Group = tuple[Path_, dict, bool, str]


class _Payoff:
    """Whether a cache layer pays off for one kind of lookup (the whole facets of events;
    the facets object at one place of an event; one facet of one schema). Counted over
    `_PAYOFF_MISSES` misses: when there were fewer hits meanwhile, the layer rests for
    `_PAYOFF_REST` lookups, answered without it (no JSON key, no entry to store and evict:
    facets that change with every run cost less without a cache), then is tried again."""

    __slots__ = ("hits", "misses", "resting")

    def __init__(self) -> None:
        self.hits = self.misses = self.resting = 0

    def rests(self) -> bool:
        """True (and one lookup of the rest spent) while the layer rests."""
        if self.resting > 0:
            self.resting -= 1
            return True
        return False

    def hit(self) -> None:
        self.hits += 1

    def miss(self) -> None:
        self.misses += 1
        if self.misses >= _PAYOFF_MISSES:
            if self.hits < self.misses:
                self.resting = _PAYOFF_REST
            self.hits = self.misses = 0


def _payoff(payoffs: dict[Any, _Payoff], kind: Any) -> _Payoff:
    found = payoffs.get(kind)
    if found is None:
        if len(payoffs) >= _MAX_PAYOFFS:
            payoffs.clear()
        found = payoffs[kind] = _Payoff()
    return found


def _event_time_problem(event: dict) -> _Found | None:
    """An eventTime string Python cannot parse, or whose UTC time is out of range
    ("0001-01-01T00:00:00+01:00"), makes the event unusable (the schema's
    `format: date-time` alone is only a warning)."""
    event_time = event.get("eventTime")
    if type(event_time) is str:
        try:
            parse_time(event_time)
        except ValueError:
            return (("eventTime",), _short(f"{event_time!r} is not an ISO 8601 date-time"))
        except OverflowError:
            return (("eventTime",), _short(f"{event_time!r} is out of range in UTC"))
    return None


def _facet_groups(event: dict, kind: str) -> list[_Group]:
    """(path, facets, deletable, place) of each non-empty facets object the core defines."""
    groups: list[_Group] = []
    if kind == "dataset":
        owner = event.get("dataset")
        if type(owner) is dict:
            facets = owner.get("facets")
            if type(facets) is dict and facets:
                groups.append((_DATASET_FACETS, facets, True, "dataset"))
        return groups
    if kind == "run":
        owner = event.get("run")
        if type(owner) is dict:
            facets = owner.get("facets")
            if type(facets) is dict and facets:
                groups.append((_RUN_FACETS, facets, False, "run"))
    owner = event.get("job")
    if type(owner) is dict:
        facets = owner.get("facets")
        if type(facets) is dict and facets:
            groups.append((_JOB_FACETS, facets, True, "job"))
    for side, extra, where in _SIDES:
        datasets = event.get(side)
        if type(datasets) is not list:
            continue
        for i, dataset in enumerate(datasets):
            if type(dataset) is not dict:
                continue
            facets = dataset.get("facets")
            if type(facets) is dict and facets:
                groups.append(((side, i, "facets"), facets, True, "dataset"))
            facets = dataset.get(extra)
            if type(facets) is dict and facets:
                groups.append(((side, i, extra), facets, False, where))
    return groups


_DATASET_FACETS = ("dataset", "facets")
_RUN_FACETS = ("run", "facets")
_JOB_FACETS = ("job", "facets")
_SIDES = (("inputs", "inputFacets", "input"), ("outputs", "outputFacets", "output"))


class EventValidator:
    """Validates OpenLineage events (RunEvent, DatasetEvent, JobEvent) given as bytes.

    `extra_schema_dirs`: directories of JSON Schema files (each with an `$id`) for custom
    facets; a facet whose `_schemaURL` names one of them is validated against it.
    `cache_size`: how many facet results to keep (keyed by schema URL and the facet's
    exact JSON); 0 turns the cache off. Verdicts are the same either way.
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
        # The envelope without what the core says of each facet, and that part per facets
        # object (cached with the rest of the facets object's result).
        envelopes = {kind: self.schemas.envelope(name) for kind, name in _KINDS.items()}
        self._split = all(envelopes.values())
        self._envelope = envelopes if self._split else self._core
        self._places = self.schemas.places()
        self._facet_cache = LRU(cache_size)
        # Per event, the facets part of the result (absolute paths), keyed by the exact
        # JSON of all the event's facets objects; rested when it seldom hits.
        self._event_cache = LRU(min(cache_size, _MAX_EVENT_RESULTS))
        self._event_data = self._event_cache.data
        self._fast = cache_size > 0  # the short way for clean envelopes (validate)
        self._event_payoff = _Payoff()
        self._group_payoffs: dict[Path_, _Payoff] = {}  # by the facets object's place
        self._facet_payoffs: dict[tuple[str, str], _Payoff] = {}  # by schema URL and key
        # (facets object path, custom keys) -> their JSON paths (they repeat too)
        self._custom_paths: dict[tuple[Path_, tuple[str, ...]], tuple[str, ...]] = {}

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
        core_version = _core_version(schema_url) if type(schema_url) is str else None

        if (
            kind
            and self._fast
            and self._event_payoff.resting <= 0
            and (kind != "dataset" or "job" not in event)
            and self._envelope[kind].formats.is_valid(event)
        ):
            # The common case in short: a clean envelope, the facets part known.
            entry = self._event_entry(event, kind)
            if entry is not None and _event_time_problem(event) is None:
                return _verdict(event, entry[3], entry[4], kind, core_version, entry[2])

        errors: list[_Found] = []
        warnings: list[_Found] = []
        custom: list[str] = []
        self._check(event, kind, errors, warnings, custom)

        if (
            kind == "dataset"
            and "job" in event
            and not errors
            and self._core["job"].plain.is_valid(event)
        ):
            errors.append(
                (
                    (),
                    "valid both as a DatasetEvent and as a JobEvent: the core schema "
                    "requires exactly one; send 'dataset' or 'job', not both",
                )
            )
        time_problem = _event_time_problem(event)
        if time_problem is not None:
            errors.append(time_problem)

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

    def _check(
        self,
        event: dict,
        kind: str,
        errors: list[_Found],
        warnings: list[_Found],
        custom: list[str],
    ) -> None:
        """The envelope against the core definition, then each facets object: what the core
        says of each facet in it, and each facet against its own schema."""
        core = self._envelope[kind] if kind else self._core["run"]
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
            return
        cache = self._facet_cache
        if cache.maxsize <= 0:
            for group_path, facets, deletable, where in _facet_groups(event, kind):
                found = self._group_result(facets, deletable, where, None)
                if found is not _CLEAN_GROUP:
                    self._merge(group_path, found, errors, warnings, custom)
            return
        entry = self._event_entry(event, kind)
        if entry is None:
            self._groups(event, kind, errors, warnings, custom)
            return
        if entry is _CLEAN_EVENT:
            return
        if entry[0]:
            errors.extend(entry[0])
        if entry[1]:
            warnings.extend(entry[1])
        if entry[2]:
            custom.extend(entry[2])

    def _event_entry(self, event: dict, kind: str) -> tuple | None:
        """The facets part of the event's result (cached per event, see `_event_cache`):
        (errors, warnings, custom facet paths, and those errors and warnings as problems
        for when nothing else is found); None when that cache is not used."""
        payoff = self._event_payoff
        if payoff.rests():  # the whole-facets cache is not paying off
            return None
        # All of the event's facets repeat too (same producer, same job, same datasets):
        # one lookup for them, keyed by the exact JSON of every part they come from.
        if kind == "dataset":
            owner = event.get("dataset")
            parts: Any = owner.get("facets") if type(owner) is dict else None
        else:
            owner = event.get("run")
            run_facets = owner.get("facets") if type(owner) is dict else None
            owner = event.get("job")
            job_facets = owner.get("facets") if type(owner) is dict else None
            parts = (run_facets, job_facets, event.get("inputs"), event.get("outputs"))
        try:
            event_key = (kind, orjson.dumps(parts))
        except orjson.JSONEncodeError:  # e.g. nested too deep for orjson.dumps
            return None
        events = self._event_cache
        data = self._event_data
        entry = data.get(event_key)
        if entry is None:
            payoff.miss()
            errors: list[_Found] = []
            warnings: list[_Found] = []
            custom: list[str] = []
            self._groups(event, kind, errors, warnings, custom)
            if errors or warnings or custom:
                entry = (
                    tuple(errors),
                    tuple(warnings),
                    tuple(custom),
                    _bounded(errors, "errors"),
                    _bounded(warnings, "warnings"),
                )
            else:
                entry = _CLEAN_EVENT
            events.put(event_key, entry)
            return entry
        payoff.hit()
        try:
            data.move_to_end(event_key)
        except KeyError:  # evicted by a racing thread
            events.put(event_key, entry)
        return entry

    def _groups(
        self,
        event: dict,
        kind: str,
        errors: list[_Found],
        warnings: list[_Found],
        custom: list[str],
    ) -> None:
        """What the core says of each facets object and of each facet in it, each facets
        object's result cached (keyed by its place and exact JSON)."""
        cache = self._facet_cache
        data = cache.data
        dumps = orjson.dumps
        payoffs = self._group_payoffs
        for group_path, facets, deletable, where in _facet_groups(event, kind):
            payoff = payoffs.get(group_path) or _payoff(payoffs, group_path)
            if payoff.rests():
                found = self._group_result(facets, deletable, where, cache)
            else:
                group_key = (where, dumps(facets))
                found = data.get(group_key)
                if found is None:
                    payoff.miss()
                    found = self._group_result(facets, deletable, where, cache)
                    cache.put(group_key, found)
                else:
                    payoff.hit()
                    try:
                        data.move_to_end(group_key)
                    except KeyError:  # evicted by a racing thread
                        cache.put(group_key, found)
            if found is not _CLEAN_GROUP:
                self._merge(group_path, found, errors, warnings, custom)

    def _merge(
        self,
        group_path: Path_,
        found: tuple[tuple[_Found, ...], tuple[_Found, ...], tuple[str, ...]],
        errors: list[_Found],
        warnings: list[_Found],
        custom: list[str],
    ) -> None:
        """Adds one facets object's result, its paths made absolute."""
        found_errors, found_warnings, custom_keys = found
        if custom_keys:
            paths = self._custom_paths.get((group_path, custom_keys))
            if paths is None:
                prefix = _group_json_path(group_path)
                paths = tuple(prefix + _key_path(key) for key in custom_keys)
                if len(self._custom_paths) >= _MAX_CUSTOM_PATHS:
                    self._custom_paths.clear()
                self._custom_paths[(group_path, custom_keys)] = paths
            custom.extend(paths)
        if found_errors:
            errors.extend(((*group_path, *path), message) for path, message in found_errors)
        if found_warnings:
            warnings.extend(((*group_path, *path), msg) for path, msg in found_warnings)

    def _group_result(
        self, facets: dict, deletable: bool, where: str, cache: LRU | None
    ) -> tuple[tuple[_Found, ...], tuple[_Found, ...], tuple[str, ...]]:
        """(errors, warnings, custom facet keys) of one facets object, paths from its keys."""
        targets = self.schemas.targets
        resolve = self.schemas.facet_target
        payoffs = self._facet_payoffs
        errors: list[_Found] = []
        warnings: list[_Found] = []
        custom: list[str] = []
        if self._split:
            place = self._places[where]
            if not place.formats.is_valid(facets):
                found_errors, found_warnings = _problems(place, facets)
                errors.extend(found_errors)
                warnings.extend(found_warnings)
        for key, body in facets.items():
            if type(body) is not dict:
                continue  # the core schema reports it
            url = body.get("_schemaURL")
            if type(url) is not str:
                continue  # the core schema reports it
            if deletable and body.get("_deleted") is True:
                continue  # a deletion marker: no facet schema applies
            target = targets.get(url, _MISSING)
            if target is _MISSING:
                target = resolve(url)
            if target is None or target.base_only:
                custom.append(key)
                if target is None or where in target.implied:
                    continue  # unknown, or exactly what the core schema has checked
            if cache is None:
                found = _facet_result(target, key, body)
            else:
                kind = (target.url, key)
                payoff = payoffs.get(kind) or _payoff(payoffs, kind)
                if payoff.rests():
                    found = _facet_result(target, key, body)
                else:
                    cache_key = (target.url, key if target.wrap else None, orjson.dumps(body))
                    found = cache.get(cache_key)
                    if found is None:
                        payoff.miss()
                        found = _facet_result(target, key, body)
                        cache.put(cache_key, found)
                    else:
                        payoff.hit()
            if found is _CLEAN:
                continue
            errors.extend(((key, *path), message) for path, message in found[0])
            warnings.extend(((key, *path), message) for path, message in found[1])
        if not errors and not warnings and not custom:
            return _CLEAN_GROUP
        return tuple(errors), tuple(warnings), tuple(custom)


def _facet_result(
    target: Target, key: str, body: dict
) -> tuple[tuple[_Found, ...], tuple[_Found, ...]]:
    """Problems of one facet against the schema its `_schemaURL` names, paths from it."""
    instance = {key: body} if target.wrap else body
    if target.formats.is_valid(instance):
        return _CLEAN
    found_errors, found_warnings = _problems(target, instance)
    if target.wrap:  # paths start at the key of the {key: facet} wrapper
        found_errors = tuple((path[1:], message) for path, message in found_errors)
        found_warnings = tuple((path[1:], message) for path, message in found_warnings)
    return found_errors, found_warnings


@lru_cache(maxsize=1024)
def _group_json_path(group_path: Path_) -> str:
    return json_path(group_path)


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
