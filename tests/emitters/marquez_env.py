"""A virtualenv with the real Marquez client, marquez-python 0.50.0, for the /api/v1
compatibility tests; built once under a cache root and keyed by a hash of
``marquez-requirements.txt`` and the interpreter, like ``dbt_env.dbt_venv``.

The client keeps its API key in module-level headers, so every script runs in a
process of its own (``run_client``)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.emitters.dbt_env import DbtEnvError, pinned_venv

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "marquez-requirements.txt"
_SMOKE_IMPORTS = "import marquez_client; from marquez_client import MarquezClient"


class MarquezEnvError(DbtEnvError):
    """The marquez-python virtualenv could not be built or a client script failed."""


def marquez_venv(cache_root: Path) -> Path:
    """The python of the pinned marquez-python venv (built once, see ``pinned_venv``)."""
    return pinned_venv(cache_root, "marquez", REQUIREMENTS, _SMOKE_IMPORTS) / "bin" / "python"


def run_client(python: Path, script: str, env: dict[str, str], timeout: float = 120) -> Any:
    """Run ``script`` (Python using marquez_client) in the venv; it prints one JSON
    document on its last stdout line, which is returned."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("MARQUEZ", "PYTHON"))}
    proc = subprocess.run(
        [str(python), "-c", script],
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if proc.returncode != 0:
        raise MarquezEnvError(
            f"marquez-python script failed with exit code {proc.returncode}\n"
            f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
        )
    return json.loads(proc.stdout.strip().splitlines()[-1])
