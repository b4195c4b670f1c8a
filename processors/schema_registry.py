"""Pure: the OpenLineage JSON Schemas shipped in `lineagehouse.schemas`, compiled offline.

Every schema is registered under its own `$id` in one `jsonschema_rs.Registry`, so the
`$ref`s between the files (facet -> core) and the `_schemaURL`s that events name resolve
without any network access. Operators may add directories of their own schemas (for
custom facets); those are registered the same way.

Imports nothing from faust, Kafka, ClickHouse or HTTP.
"""

from __future__ import annotations

import copy
import re
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import jsonschema_rs
import orjson

SPEC_PREFIX = "https://openlineage.io/spec/"
CORE_VERSION = "2-0-2"
CORE_ID = f"{SPEC_PREFIX}{CORE_VERSION}/OpenLineage.json"

# Facets objects in the core: place -> (definition holding them, field, facet definition).
ENVELOPE_FACETS = {
    "run": ("Run", "facets", "RunFacet"),
    "job": ("Job", "facets", "JobFacet"),
    "dataset": ("Dataset", "facets", "DatasetFacet"),
    "input": ("InputDataset", "inputFacets", "InputDatasetFacet"),
    "output": ("OutputDataset", "outputFacets", "OutputDatasetFacet"),
}
ENVELOPE_ID = f"https://lineagehouse.invalid/openlineage-envelope/{CORE_VERSION}.json"

# Core definitions every facet extends. A facet whose `_schemaURL` names one of these is
# checked for its base fields only: its content is custom.
BASE_FACET_DEFS = frozenset(
    {"BaseFacet", "RunFacet", "JobFacet", "DatasetFacet", "InputDatasetFacet", "OutputDatasetFacet"}
)
_CORE_DEF = re.compile(
    r"^https://openlineage\.io/spec/\d+-\d+-\d+/OpenLineage\.json#/(?:\$defs|definitions)/(\w+)$"
)
# Core versions 1-0-4 .. 2-0-1 `$ref` relative facet files ("facets/X.json" beside the
# core) that were never published. They are unreachable from what we validate; anything
# else unresolved is a configuration error.
_UNPUBLISHED = re.compile(r"^https://openlineage\.io/spec/\d+-\d+-\d+/facets/[^/]+\.json$")


class SchemaConfigError(ValueError):
    """The schema files cannot be used as given (bad JSON, no `$id`, clashes, dangling refs)."""


def _walk(node: Traversable, rel: str = "") -> Iterator[tuple[str, Traversable]]:
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        child_rel = f"{rel}/{child.name}" if rel else child.name
        if child.is_dir():
            yield from _walk(child, child_rel)
        elif child.name.endswith(".json"):
            yield child_rel, child


def builtin_schema_files() -> Iterator[tuple[str, bytes]]:
    """(relative path, bytes) of every JSON file under `lineagehouse.schemas/openlineage`."""
    root = resources.files("lineagehouse.schemas").joinpath("openlineage")
    for rel, item in _walk(root):
        yield rel, item.read_bytes()


def dir_schema_files(directory: Path) -> Iterator[tuple[str, bytes]]:
    directory = Path(directory)
    if not directory.is_dir():
        raise SchemaConfigError(f"schema directory {directory} does not exist")
    for path in sorted(directory.rglob("*.json")):
        yield str(path), path.read_bytes()


def _add(
    schemas: dict[str, Any], origin: dict[str, str], name: str, raw: bytes, *, need_id: bool
) -> None:
    try:
        schema = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise SchemaConfigError(f"{name}: not JSON: {exc}") from exc
    sid = schema.get("$id") if isinstance(schema, dict) else None
    if not isinstance(sid, str) or not sid:
        if need_id:
            raise SchemaConfigError(f"{name}: a schema file needs a string '$id'")
        return
    sid = sid.rstrip("#")
    if sid in schemas:
        if schemas[sid] != schema:
            raise SchemaConfigError(f"{name}: '$id' {sid} is already defined by {origin[sid]}")
        return
    schemas[sid] = schema
    origin[sid] = name


def load_schemas(extra_dirs: Sequence[Path] = ()) -> dict[str, Any]:
    """{$id: schema} of the shipped OpenLineage schemas plus those in `extra_dirs`."""
    schemas: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for rel, raw in builtin_schema_files():
        _add(schemas, origin, f"lineagehouse.schemas/openlineage/{rel}", raw, need_id=False)
    if CORE_ID not in schemas:
        raise SchemaConfigError(f"the core schema {CORE_ID} is not among the shipped files")
    for directory in extra_dirs:
        for name, raw in dir_schema_files(directory):
            _add(schemas, origin, name, raw, need_id=True)
    return schemas


@dataclass(frozen=True, slots=True)
class Target:
    """A compiled schema to check an instance against (formats ignored / asserted)."""

    url: str
    plain: Any  # jsonschema_rs.Validator: formats are annotations
    formats: Any  # jsonschema_rs.Validator: formats asserted (for warnings)
    wrap: bool  # the URL names a whole facet file: validate {facetKey: facet}
    base_only: bool  # the URL names a core base definition (RunFacet, ...): custom content
    # Facet locations ("run", "job", "dataset", "input", "output") where the core schema
    # already applies this very schema (e.g. ".../1-0-2/OpenLineage.json#/$defs/RunFacet"
    # under run.facets): checking it again cannot change the verdict, so it is skipped.
    implied: frozenset[str] = frozenset()


class LRU:
    """A small bounded least-recently-used map (safe to share between threads: a race
    can only cost a cache miss or an early eviction, never a wrong value)."""

    __slots__ = ("_data", "maxsize")

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[Any, Any] = OrderedDict()

    def get(self, key: Any, default: Any = None) -> Any:
        data = self._data
        try:
            value = data[key]
            data.move_to_end(key)
        except KeyError:
            return default
        return value

    def put(self, key: Any, value: Any) -> None:
        if self.maxsize <= 0:
            return
        data = self._data
        data[key] = value
        try:
            data.move_to_end(key)
            while len(data) > self.maxsize:
                data.popitem(last=False)
        except KeyError:
            pass

    def clear(self) -> None:
        self._data.clear()

    @property
    def data(self) -> OrderedDict[Any, Any]:
        """The underlying map, for hot loops that read it directly (`get` then
        `move_to_end`, tolerating KeyError as `get` does); write through `put`."""
        return self._data

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, key: Any) -> bool:
        return key in self._data


_MISSING = object()

# Keywords that never change a verdict (compared away when looking for repeated schemas).
_ANNOTATIONS = frozenset(
    {"description", "example", "examples", "title", "$comment", "$schema", "$id", "default"}
)
_NAME_MAPS = frozenset(
    {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}
)
# Where the core schema applies which facet definition, and which locations each implies.
_CORE_FACET_DEFS = {
    "RunFacet": frozenset({"run", "job", "dataset", "input", "output"}),  # base fields only
    "JobFacet": frozenset({"job", "dataset"}),  # base fields + boolean _deleted
}


def _assertions(node: Any) -> Any:
    """`node` without annotation keywords (names under properties/$defs are kept)."""
    if isinstance(node, dict):
        return {
            k: (
                {n: _assertions(v) for n, v in node[k].items()}
                if k in _NAME_MAPS and isinstance(node[k], dict)
                else _assertions(node[k])
            )
            for k in node
            if k not in _ANNOTATIONS
        }
    if isinstance(node, list):
        return [_assertions(v) for v in node]
    return node


class SchemaSet:
    """The registry of all known schemas, and compiled validators looked up by URL."""

    def __init__(self, extra_dirs: Sequence[Path] = (), max_targets: int = 1024) -> None:
        self.schemas = load_schemas(extra_dirs)
        self.known = frozenset(self.schemas)
        unresolved: set[str] = set()

        def offline(uri: str) -> bool:
            # Never fetches: records the reference and stands in a schema nothing matches.
            unresolved.add(uri)
            return False

        self.registry = jsonschema_rs.Registry(self.schemas.items(), retriever=offline)
        dangling = sorted(u for u in unresolved if not _UNPUBLISHED.match(u))
        if dangling:
            raise SchemaConfigError(
                "schemas refer to schemas that are not registered (no network access): "
                + ", ".join(dangling[:10])
            )
        self.unresolved = frozenset(unresolved)
        self._core_facets = [
            (self._canonical(f"{CORE_ID}#/$defs/{name}"), where)
            for name, where in _CORE_FACET_DEFS.items()
        ]
        # url -> Target | None. A plain dict so the hot loop can read it directly; bounded
        # (oldest first out) because URLs come from the events.
        self.targets: dict[str, Target | None] = {}
        self.max_targets = max_targets

    def compile(self, url: str) -> tuple[Any, Any]:
        """(plain, formats-asserted) validators for the schema at `url` (may raise)."""
        wrapper = {"$ref": url}
        plain = jsonschema_rs.validator_for(wrapper, registry=self.registry)
        formats = jsonschema_rs.validator_for(
            wrapper, registry=self.registry, validate_formats=True
        )
        return plain, formats

    def core(self, definition: str) -> Target:
        plain, formats = self.compile(f"{CORE_ID}#/$defs/{definition}")
        return Target(CORE_ID, plain, formats, wrap=False, base_only=False)

    def places(self) -> dict[str, Target]:
        """For each facet place, the core's check of a whole facets object there:
        {"type": "object", "additionalProperties": {"$ref": core#/$defs/<Place>Facet}}."""
        out = {}
        for where, (_, _, definition) in ENVELOPE_FACETS.items():
            schema = {
                "type": "object",
                "additionalProperties": {"$ref": f"{CORE_ID}#/$defs/{definition}"},
            }
            plain = jsonschema_rs.validator_for(schema, registry=self.registry)
            formats = jsonschema_rs.validator_for(
                schema, registry=self.registry, validate_formats=True
            )
            out[where] = Target(CORE_ID, plain, formats, wrap=False, base_only=False)
        return out

    def envelope(self, definition: str) -> Target | None:
        """The core definition with every facets object checked only for being an object.

        Built in memory from the shipped core (the file is not changed). Together with
        `places()` applied to each facets object it is exactly the core's verdict, and the
        facets part can then be cached per facets object. None if the core does not have
        the expected shape (the caller then uses the whole core definition).
        """
        core = copy.deepcopy(self.schemas[CORE_ID])
        defs = core.get("$defs", {})
        for owner, field, facet_definition in ENVELOPE_FACETS.values():
            node = defs.get(owner, {})
            holders = [node, *node.get("allOf", [])]
            holder = next((h for h in holders if field in h.get("properties", {})), None)
            if holder is None:
                return None
            facets = holder["properties"][field]
            expected = {
                "type": "object",
                "anyOf": [
                    {
                        "type": "object",
                        "additionalProperties": {"$ref": f"#/$defs/{facet_definition}"},
                    }
                ],
            }
            if {k: v for k, v in facets.items() if k != "description"} != expected:
                return None
            holder["properties"][field] = {"type": "object"}
        core["$id"] = ENVELOPE_ID
        registry = jsonschema_rs.Registry(
            [*self.schemas.items(), (ENVELOPE_ID, core)], retriever=lambda uri: False
        )
        wrapper = {"$ref": f"{ENVELOPE_ID}#/$defs/{definition}"}
        plain = jsonschema_rs.validator_for(wrapper, registry=registry)
        formats = jsonschema_rs.validator_for(wrapper, registry=registry, validate_formats=True)
        return Target(CORE_ID, plain, formats, wrap=False, base_only=False)

    def facet_target(self, url: str) -> Target | None:
        """The compiled schema a facet's `_schemaURL` names, or None when it is not known.

        Not known: the document is not registered (custom, moved, never published), the
        `#pointer` does not exist in it, or it names a never-published reference.
        """
        targets = self.targets
        target = targets.get(url, _MISSING)
        if target is _MISSING:
            target = self._resolve(url)
            if len(targets) >= self.max_targets:
                with suppress(KeyError, RuntimeError, StopIteration):  # a racing thread
                    del targets[next(iter(targets))]
            targets[url] = target
        return target

    def _resolve(self, url: str) -> Target | None:
        base, _, fragment = url.partition("#")
        if base not in self.known or base in self.unresolved:
            return None
        if fragment and not fragment.startswith("/"):
            return None  # plain-name anchors are not used by these schemas
        whole = not fragment
        try:
            plain, formats = self.compile(base if whole else url)
        except (jsonschema_rs.ValidationError, jsonschema_rs.ReferencingError, ValueError):
            return None  # e.g. "#/definitions/RunFacet" missing from the file
        match = _CORE_DEF.match(url)
        base_only = bool(match and match.group(1) in BASE_FACET_DEFS)
        implied: frozenset[str] = frozenset()
        if base_only:
            canonical = self._canonical(url)
            implied = next((w for c, w in self._core_facets if c == canonical), frozenset())
        return Target(url, plain, formats, wrap=whole, base_only=base_only, implied=implied)

    def _canonical(self, url: str) -> Any:
        try:
            return _assertions(jsonschema_rs.dereference({"$ref": url}, registry=self.registry))
        except (jsonschema_rs.ReferencingError, ValueError):
            return None
