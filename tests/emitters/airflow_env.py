"""Harness for running the sample DAG (``airflow_dags/lh_shop_dag.py``) under Airflow 3 with
the OpenLineage provider, from a virtualenv of its own built from ``airflow-requirements.txt``
(see README.md here), against a throw-away PostgreSQL cluster for its SQL tasks.

Airflow's pins conflict with the project's own environment, exactly like dbt's, so the venv
is built and cached by ``dbt_env.pinned_venv``.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from lineagehouse.embedded.process import free_port
from tests.emitters.dbt_env import DbtEnvError, pinned_venv

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "airflow-requirements.txt"
DAGS_DIR = HERE / "airflow_dags"
DAG_ID = "lh_shop"
CONN_ID = "lh_shop_db"  # the DAG's SQL connection, given as AIRFLOW_CONN_LH_SHOP_DB

AIRFLOW_TIMEOUT_S = 300.0
PG_TIMEOUT_S = 60.0

_SMOKE_IMPORTS = (
    "import confluent_kafka, airflow.providers.openlineage.plugins.listener, "
    "airflow.providers.common.sql.operators.sql, airflow.providers.postgres.hooks.postgres, "
    "openlineage.client.transport.kafka"
)
# Variables of the calling process that must not leak into an Airflow run: the caller's env
# decides the transport, the Airflow home and every Airflow setting.
_SCRUBBED_PREFIXES = ("OPENLINEAGE", "AIRFLOW", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH")

# Under `airflow dags test` every task runs in the one CLI process, and the provider's hook
# lineage collector keeps the SQL statements of earlier tasks: without this, later tasks
# without an extractor of their own (PythonOperator) report them again as child jobs
# `<dag>.<task>.query.N`. A deployed Airflow runs each task in a process of its own.
DAGS_TEST_EMISSION_POLICY = json.dumps([{"scope": {}, "controls": {"hook_lineage": False}}])


class AirflowEnvError(DbtEnvError):
    """The Airflow virtualenv, the PostgreSQL cluster or an Airflow command failed."""


def airflow_venv(cache_root: Path) -> Path:
    """The bin directory of the pinned Airflow venv (see ``dbt_env.pinned_venv``)."""
    bin_dir = pinned_venv(cache_root, "airflow", REQUIREMENTS, _SMOKE_IMPORTS) / "bin"
    if not (bin_dir / "airflow").is_file():
        raise AirflowEnvError(f"airflow missing from {bin_dir} after install")
    return bin_dir


# --------------------------------------------------------------------------- PostgreSQL


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    user: str
    database: str

    @property
    def namespace(self) -> str:
        """The OpenLineage dataset namespace the provider gives tables of this server."""
        return f"postgres://{self.host}:{self.port}"

    def table(self, name: str, schema: str = "public") -> str:
        """The OpenLineage dataset name of a table: ``database.schema.table``."""
        return f"{self.database}.{schema}.{name}"

    def airflow_conn(self) -> str:
        """The value of ``AIRFLOW_CONN_<ID>`` for this server (JSON form)."""
        return json.dumps(
            {
                "conn_type": "postgres",
                "host": self.host,
                "port": self.port,
                "login": self.user,
                "schema": self.database,
            }
        )


def _as_postgres_user(cmd: list[str]) -> list[str]:
    # initdb and postgres refuse to run as root; the Debian package brings a `postgres` user.
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


def _pg_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    versions = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if versions:
        return str(versions[-1])
    raise AirflowEnvError(f"PostgreSQL's {name} not found (Debian: apt-get install postgresql)")


def _pg_step(cmd: list[str], what: str) -> None:
    proc = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        timeout=PG_TIMEOUT_S,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise AirflowEnvError(
            f"{what} failed with exit code {proc.returncode}: {' '.join(cmd)}\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )


@contextmanager
def throwaway_postgres(database: str = "shop") -> Iterator[Postgres]:
    """A PostgreSQL cluster on a free port (trust auth, no fsync) with an empty ``database``,
    in a temporary directory of its own (removed on exit, after an immediate stop).

    As root, the cluster runs as the ``postgres`` user, which cannot enter pytest's private
    temporary directories: hence a directory of its own under the system's temp dir."""
    root = Path(tempfile.mkdtemp(prefix="lh-airflow-pg-"))
    try:
        with _cluster(root, database) as pg:
            yield pg
    finally:
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def _cluster(root: Path, database: str) -> Iterator[Postgres]:
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(root, entry.pw_uid, entry.pw_gid)
    data = root / "data"
    port = free_port()
    user = "lh"
    initdb = [_pg_bin("initdb"), "-D", str(data), "-U", user, "--auth=trust", "-E", "UTF8"]
    _pg_step(_as_postgres_user([*initdb, "--no-sync"]), "initdb")
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    ctl = _pg_bin("pg_ctl")
    _pg_step(
        _as_postgres_user(
            [ctl, "-D", str(data), "-l", str(root / "server.log"), "-w", "-o", options, "start"]
        ),
        "pg_ctl start",
    )
    try:
        _pg_step(
            [_pg_bin("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", user, database],
            "createdb",
        )
        yield Postgres("127.0.0.1", port, user, database)
    finally:
        subprocess.run(
            _as_postgres_user([ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]),
            capture_output=True,
            timeout=PG_TIMEOUT_S,
            check=False,
        )


# --------------------------------------------------------------------------- running Airflow


def airflow_env(home: Path, pg: Postgres, env: Mapping[str, str]) -> dict[str, str]:
    """Settings of one isolated Airflow: its home (metadata DB in sqlite there), the sample
    DAG folder, the SQL connection, and ``env`` (the OpenLineage settings) on top."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_DIR),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "false",
        f"AIRFLOW_CONN_{CONN_ID.upper()}": pg.airflow_conn(),
        "AIRFLOW__OPENLINEAGE__EMISSION_POLICY": DAGS_TEST_EMISSION_POLICY,
        **env,
    }


def _child_env(bin_dir: Path, env: Mapping[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    base.update(
        {
            "PATH": os.pathsep.join([str(bin_dir), base.get("PATH", os.defpath)]),
            "PYTHONUNBUFFERED": "1",
            "DO_NOT_TRACK": "1",
            "SCARF_ANALYTICS": "false",
        }
    )
    base.update(env)
    return base


def run_airflow(
    bin_dir: Path,
    args: list[str],
    env: Mapping[str, str],
    timeout: float = AIRFLOW_TIMEOUT_S,
) -> subprocess.CompletedProcess[str]:
    """Run ``<bin>/airflow <args>`` with ``env`` laid over the current environment less its
    AIRFLOW*/OPENLINEAGE* variables. A non-zero exit is returned, not raised; a run past
    ``timeout`` is killed with its children and raises :class:`AirflowEnvError`."""
    bin_dir = bin_dir.resolve()
    cmd = [str(bin_dir / "airflow"), *args]
    home = env.get("AIRFLOW_HOME")
    with subprocess.Popen(
        cmd,
        cwd=home,
        env=_child_env(bin_dir, env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    ) as proc:
        try:
            output, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
            raise AirflowEnvError(
                f"airflow timed out after {timeout:.0f}s: {' '.join(cmd)}\n{output[-6000:]}"
            ) from None
    return subprocess.CompletedProcess(cmd, proc.returncode, output, "")


def dags_test(
    bin_dir: Path,
    home: Path,
    pg: Postgres,
    env: Mapping[str, str],
    logical_date: str = "2024-01-02",
    dag_id: str = DAG_ID,
) -> subprocess.CompletedProcess[str]:
    """``airflow db migrate`` (raises on failure), then ``airflow dags test <dag_id>
    <logical_date>`` in the Airflow home ``home`` (created). The DAG run's exit code is
    returned: 1 when a task failed, as the sample DAG's ``check_revenue`` does."""
    home.mkdir(parents=True, exist_ok=True)
    full = airflow_env(home, pg, env)
    migrated = run_airflow(bin_dir, ["db", "migrate"], full)
    if migrated.returncode != 0:
        raise AirflowEnvError(f"airflow db migrate failed:\n{migrated.stdout[-6000:]}")
    return run_airflow(bin_dir, ["dags", "test", dag_id, logical_date], full)
