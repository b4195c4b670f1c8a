"""Harness for Great Expectations 0.15 with OpenLineageValidationAction.

GE 0.15 (pandas 1.5, numpy 1.26, SQLAlchemy 1.4, Jupyter) cannot share the project's
`.venv`, so it lives in a virtualenv of its own built from ``ge-requirements.txt`` by
``dbt_env.pinned_venv`` (cached by a hash of that file, see README.md here).
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from tests.emitters.dbt_env import DbtEnvError, pinned_venv

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "ge-requirements.txt"
GE_TIMEOUT_S = 300.0

# Imported once after the install, so that a broken environment fails there, not mid-test.
_SMOKE_IMPORTS = (
    "import great_expectations, confluent_kafka, sqlalchemy; "
    "from openlineage.common.provider.great_expectations import OpenLineageValidationAction"
)
# Variables of the calling process that must not leak into a GE run: the caller's env
# decides the transport and GE's settings.
_SCRUBBED_PREFIXES = ("OPENLINEAGE", "GE_", "VIRTUAL_ENV", "PYTHONHOME", "PYTHONPATH")


def ge_venv(cache_root: Path) -> Path:
    """The bin directory of the pinned Great Expectations venv."""
    bin_dir = pinned_venv(cache_root, "ge", REQUIREMENTS, _SMOKE_IMPORTS) / "bin"
    if not (bin_dir / "great_expectations").is_file():
        raise DbtEnvError(f"great_expectations missing from {bin_dir} after install")
    return bin_dir


def child_env(bin_dir: Path, env: Mapping[str, str], home: Path) -> dict[str, str]:
    """The environment of a GE process: the venv's bin first on PATH, usage statistics
    off, `HOME` set to `home` (no ~/.openlineage/openlineage.yml of this machine is read),
    then `env` on top."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUBBED_PREFIXES)}
    base.update(
        {
            "PATH": os.pathsep.join([str(bin_dir), base.get("PATH", os.defpath)]),
            "HOME": str(home),
            "GE_USAGE_STATS": "FALSE",
            "PYTHONUNBUFFERED": "1",
        }
    )
    base.update(env)
    return base


def run(
    bin_dir: Path,
    args: list[str],
    cwd: Path,
    env: Mapping[str, str],
    timeout: float = GE_TIMEOUT_S,
) -> subprocess.CompletedProcess[str]:
    """Run ``args`` (its first word looked up in the venv's bin, e.g. `great_expectations`
    or `python`) in ``cwd``; a non-zero exit is returned, not raised."""
    program = bin_dir / args[0]
    cmd = [str(program) if program.is_file() else args[0], *args[1:]]
    try:
        return subprocess.run(
            cmd,
            cwd=cwd,
            env=child_env(bin_dir, env, cwd),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise DbtEnvError(f"{' '.join(cmd)} timed out after {timeout:.0f}s") from exc
