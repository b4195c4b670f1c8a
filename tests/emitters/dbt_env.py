"""Harness for running the sample dbt project under ``dbt-ol`` (openlineage-dbt).

dbt's pins conflict with the project's own environment, so dbt-core, dbt-duckdb,
openlineage-dbt and confluent-kafka live in a separate virtualenv built from
``dbt-requirements.txt`` and cached by a hash of that file (see README.md here).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "dbt-requirements.txt"
PROJECT_DIR = HERE / "dbt_project"

VENV_TIMEOUT_S = 120.0
INSTALL_TIMEOUT_S = 900.0
DBT_TIMEOUT_S = 300.0

_COMPLETE_MARKER = ".lh-complete"
# Imported once after the install, so that a broken environment fails here and not mid-test.
_SMOKE_IMPORTS = "import confluent_kafka, dbt.adapters.duckdb, openlineage.dbt, duckdb"
# Variables of the calling process that must not leak into a dbt-ol run: the caller's env
# decides the transport, the database path and dbt's settings.
_SCRUBBED_PREFIXES = ("OPENLINEAGE", "DBT_", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH")
# Order used to fold several dbt test results into one status, worst first.
_TEST_STATUS_RANK = {"error": 4, "fail": 3, "skipped": 2, "warn": 1, "pass": 0}


class DbtEnvError(RuntimeError):
    """The dbt virtualenv could not be built or a dbt-ol run could not complete."""


# --------------------------------------------------------------------------- virtualenv


def requirements_hash(requirements: Path = REQUIREMENTS) -> str:
    """Key of a cached venv: the pinned requirements plus the interpreter that builds it."""
    digest = hashlib.sha256(requirements.read_bytes())
    digest.update(
        f"{sys.implementation.name}-{sys.version_info.major}.{sys.version_info.minor}".encode()
    )
    return digest.hexdigest()[:16]


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_step(cmd: list[str], what: str, timeout: float) -> str:
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        raise DbtEnvError(
            f"{what} timed out after {timeout:.0f}s: {' '.join(cmd)}\n"
            f"--- stdout\n{_text(exc.stdout)}\n--- stderr\n{_text(exc.stderr)}"
        ) from exc
    if proc.returncode != 0:
        raise DbtEnvError(
            f"{what} failed with exit code {proc.returncode}: {' '.join(cmd)}\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc.stdout


def _text(data: str | bytes | None) -> str:
    if data is None:
        return ""
    return data.decode(errors="replace") if isinstance(data, bytes) else data


def pinned_venv(cache_root: Path, name: str, requirements: Path, smoke_imports: str) -> Path:
    """The directory of a venv with ``requirements`` installed, built under ``cache_root``
    once, at ``<name>-<requirements_hash>``: a marker file written last tells a finished
    build from an interrupted one, and a lock file serialises concurrent callers. Raises
    :class:`DbtEnvError` (with pip's output) when the build or ``smoke_imports`` fails."""
    cache_root.mkdir(parents=True, exist_ok=True)
    key = requirements_hash(requirements)
    venv_dir = cache_root / f"{name}-{key}"
    marker = venv_dir / _COMPLETE_MARKER
    if marker.is_file():
        return venv_dir
    with _file_lock(cache_root / f"{name}-{key}.lock"):
        if marker.is_file():
            return venv_dir
        if venv_dir.exists():
            shutil.rmtree(venv_dir)
        try:
            _run_step([sys.executable, "-m", "venv", str(venv_dir)], "venv", VENV_TIMEOUT_S)
            python = str(venv_dir / "bin" / "python")
            pip = [python, "-m", "pip", "install", "--no-input", "--disable-pip-version-check"]
            _run_step([*pip, "-r", str(requirements)], "pip install", INSTALL_TIMEOUT_S)
            _run_step([python, "-c", smoke_imports], "import check", VENV_TIMEOUT_S)
            frozen = _run_step([python, "-m", "pip", "freeze"], "pip freeze", VENV_TIMEOUT_S)
        except BaseException:
            shutil.rmtree(venv_dir, ignore_errors=True)
            raise
        marker.write_text(frozen)
    return venv_dir


def dbt_venv(cache_root: Path) -> Path:
    """The bin directory of the pinned dbt venv (see ``pinned_venv``)."""
    bin_dir = pinned_venv(cache_root, "dbt", REQUIREMENTS, _SMOKE_IMPORTS) / "bin"
    if not (bin_dir / "dbt-ol").is_file() or not (bin_dir / "dbt").is_file():
        raise DbtEnvError(f"dbt-ol or dbt missing from {bin_dir} after install")
    return bin_dir


# --------------------------------------------------------------------------- running dbt-ol


def copy_project(dest: Path) -> Path:
    """Copy the sample dbt project to ``dest`` (dbt writes target/ and logs/ next to it)."""
    shutil.copytree(
        PROJECT_DIR,
        dest,
        ignore=shutil.ignore_patterns("target", "logs", "dbt_packages", "*.duckdb", "*.wal"),
    )
    return dest


def file_transport_env(events_path: Path) -> dict[str, str]:
    """OpenLineage client settings that append one JSON event per line to ``events_path``."""
    return {
        "OPENLINEAGE__TRANSPORT__TYPE": "file",
        "OPENLINEAGE__TRANSPORT__LOG_FILE_PATH": str(events_path),
        "OPENLINEAGE__TRANSPORT__APPEND": "true",
    }


def kafka_transport_env(
    bootstrap_servers: str, topic: str, message_timeout_ms: int = 5000
) -> dict[str, str]:
    """OpenLineage client settings for the Kafka transport (needs confluent-kafka).

    The transport flushes after every event without a deadline, so librdkafka's
    ``message.timeout.ms`` (default 300 s) bounds how long each event may block when the
    broker is unreachable. A failed delivery is only logged: dbt-ol's exit code and its
    "Emitted N events" line do not change, so check the topic.
    """
    producer_config = {
        "bootstrap.servers": bootstrap_servers,
        "acks": "all",
        "compression.type": "zstd",  # as the guides suggest (docs/emitters/README.md)
        "message.timeout.ms": message_timeout_ms,
    }
    return {
        "OPENLINEAGE__TRANSPORT__TYPE": "kafka",
        "OPENLINEAGE__TRANSPORT__TOPIC": topic,
        "OPENLINEAGE__TRANSPORT__CONFIG": json.dumps(producer_config),
        "OPENLINEAGE__TRANSPORT__FLUSH": "true",
    }


def _child_env(bin_dir: Path, env: Mapping[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    base.update(
        {
            # dbt-ol starts `dbt` through PATH, so the venv's bin must come first.
            "PATH": os.pathsep.join([str(bin_dir), base.get("PATH", os.defpath)]),
            "DBT_SEND_ANONYMOUS_USAGE_STATS": "false",
            "DO_NOT_TRACK": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    base.update(env)
    return base


def run_dbt_ol(
    bin_dir: Path,
    project_dir: Path,
    args: list[str],
    env: dict[str, str],
    timeout: float = DBT_TIMEOUT_S,
) -> subprocess.CompletedProcess[str]:
    """Run ``<bin>/dbt-ol <args> --project-dir P --profiles-dir P`` and capture its output.

    ``env`` is laid over the current environment, from which any OPENLINEAGE*/DBT_* variables
    were dropped; it must set DBT_DUCKDB_PATH and the transport. A non-zero exit code is
    returned, not raised (``dbt-ol test`` exits 1 when a test fails). A run that outlives
    ``timeout`` is killed with its dbt child and raises :class:`DbtEnvError`.
    """
    project = str(project_dir.resolve())
    cmd = [str(bin_dir / "dbt-ol"), *args, "--project-dir", project, "--profiles-dir", project]
    with subprocess.Popen(
        cmd,
        cwd=project,
        env=_child_env(bin_dir, env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            stdout, stderr = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            stdout, stderr = proc.communicate()
            raise DbtEnvError(
                f"dbt-ol timed out after {timeout:.0f}s: {' '.join(cmd)}\n"
                f"--- stdout\n{stdout}\n--- stderr\n{stderr}"
            ) from None
    return subprocess.CompletedProcess(cmd, proc.returncode, stdout, stderr)


# --------------------------------------------------------------------------- dbt artifacts


def _load_artifact(project_dir: Path, name: str) -> dict[str, Any]:
    path = project_dir / "target" / name
    with path.open(encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


def _relation(database: str | None, schema: str | None, table: str) -> str:
    """Dataset name as dbt-ol writes it: ``database.schema.table``, empty parts left out."""
    return ".".join(part for part in (database, schema, table) if part)


def _node_relation(manifest: Mapping[str, Any], unique_id: str) -> str:
    if unique_id.startswith("source."):
        source = manifest["sources"][unique_id]
        # dbt-ol names a source by its `name`, not its `identifier`.
        return _relation(source["database"], source["schema"], source["name"])
    node = manifest["nodes"][unique_id]
    return _relation(node["database"], node["schema"], node["alias"])


def manifest_edges(project_dir: Path, *, include_seeds: bool = True) -> set[tuple[str, str]]:
    """(upstream, downstream) dataset names for every model, from target/manifest.json.

    Upstreams are the model's ``depends_on.nodes`` that are models, sources or (when
    ``include_seeds``) seeds. dbt-ol reports model and source parents as run inputs but
    never seed parents, so compare with events using ``include_seeds=False``.
    """
    manifest = _load_artifact(project_dir, "manifest.json")
    upstream_kinds = ("model.", "source.", "seed.") if include_seeds else ("model.", "source.")
    edges: set[tuple[str, str]] = set()
    for unique_id, node in manifest["nodes"].items():
        if node["resource_type"] != "model":
            continue
        downstream = _node_relation(manifest, unique_id)
        for parent in node["depends_on"]["nodes"]:
            if parent.startswith(upstream_kinds):
                edges.add((_node_relation(manifest, parent), downstream))
    return edges


def _tested_node(parent_map: Mapping[str, list[str]], test_id: str) -> str | None:
    # Same choice as dbt-ol: the last model/source/seed parent of the test.
    tested = None
    for parent in parent_map.get(test_id, []):
        if parent.startswith(("model.", "source.", "seed.")):
            tested = parent
    return tested


def _worse(current: str | None, status: str) -> str:
    if current is None:
        return status
    rank = _TEST_STATUS_RANK
    return status if rank.get(status, 4) > rank.get(current, 4) else current


def run_results(project_dir: Path, *, by: Literal["job", "dataset"] = "job") -> dict[str, str]:
    """dbt's status per node of the last invocation (target/run_results.json).

    Only nodes dbt-ol emits events for are listed (seeds never are), keyed like dbt-ol:

    * ``by="job"``: the OpenLineage job name. Models: ``db.schema.<package>.<model>``
      (status success/error/skipped; dbt-ol emits nothing for skipped). Generic and singular
      tests fold into one job per tested model or source, ``db.schema.<package>.<model>.test``
      or ``db.schema.source.<package>.<source>.<table>.test``, with the worst test status
      (error > fail > skipped > warn > pass); each singular test also has its own job named by
      its unique_id. ``dbt build`` appends ``.build.run`` / ``.build.test`` like dbt-ol does.
    * ``by="dataset"``: the dataset name ``db.schema.table``: a model's output, or the dataset
      a test checked (worst status). Not available for ``dbt build`` (both would collide).
    """
    results = _load_artifact(project_dir, "run_results.json")
    manifest = _load_artifact(project_dir, "manifest.json")
    command = results["args"]["which"]
    if by == "dataset" and command == "build":
        raise ValueError("run_results(by='dataset') is ambiguous for `dbt build`")
    build = command == "build"
    parent_map: dict[str, list[str]] = manifest.get("parent_map", {})
    statuses: dict[str, str] = {}
    for result in results["results"]:
        unique_id: str = result["unique_id"]
        status: str = result["status"]
        if unique_id.startswith(("model.", "snapshot.")):
            statuses[_execution_key(manifest, unique_id, by, build)] = status
        elif unique_id.startswith("test."):
            singular = manifest["nodes"][unique_id].get("test_metadata") is None
            if by == "job" and singular:
                statuses[unique_id] = status
            tested = _tested_node(parent_map, unique_id)
            if tested is None or tested.startswith("seed."):
                continue
            key = _test_key(manifest, tested, by, build)
            statuses[key] = _worse(statuses.get(key), status)
    return statuses


def _execution_key(
    manifest: Mapping[str, Any], unique_id: str, by: Literal["job", "dataset"], build: bool
) -> str:
    if by == "dataset":
        return _node_relation(manifest, unique_id)
    node = manifest["nodes"][unique_id]
    kind, _, rest = unique_id.partition(".")
    name = _relation(node["database"], node["schema"], rest)
    if kind == "snapshot":
        return name + (".build.snapshot" if build else ".snapshot")
    return name + (".build.run" if build else "")


def _test_key(
    manifest: Mapping[str, Any], tested: str, by: Literal["job", "dataset"], build: bool
) -> str:
    if by == "dataset":
        return _node_relation(manifest, tested)
    node = (
        manifest["sources"][tested] if tested.startswith("source.") else manifest["nodes"][tested]
    )
    rest = tested.removeprefix("model.")
    return _relation(node["database"], node["schema"], rest) + (".build.test" if build else ".test")


# --------------------------------------------------------------------------- events


def read_events(path: Path) -> list[dict[str, Any]]:
    """Events written by the file transport with append=true (one JSON document per line)."""
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def event_edges(events: Iterable[Mapping[str, Any]]) -> set[tuple[str, str]]:
    """(input, output) dataset names over all COMPLETE events that have outputs."""
    edges: set[tuple[str, str]] = set()
    for event in events:
        if event.get("eventType") != "COMPLETE":
            continue
        for output in event.get("outputs") or []:
            for source in event.get("inputs") or []:
                edges.add((source["name"], output["name"]))
    return edges
