"""A virtualenv with the real Marquez client, marquez-python 0.50.0, for the /api/v1
compatibility tests; built once under a cache root and keyed by a hash of
``marquez-requirements.txt`` and the interpreter, like ``dbt_env.dbt_venv``.

The client keeps its API key in module-level headers, so every script runs in a
process of its own (``run_client``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.emitters.dbt_env import (
    _COMPLETE_MARKER,
    INSTALL_TIMEOUT_S,
    VENV_TIMEOUT_S,
    DbtEnvError,
    _file_lock,
    _run_step,
)

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "marquez-requirements.txt"
_SMOKE_IMPORTS = "import marquez_client; from marquez_client import MarquezClient"


class MarquezEnvError(DbtEnvError):
    """The marquez-python virtualenv could not be built or a client script failed."""


def requirements_hash() -> str:
    import hashlib

    digest = hashlib.sha256(REQUIREMENTS.read_bytes())
    digest.update(
        f"{sys.implementation.name}-{sys.version_info.major}.{sys.version_info.minor}".encode()
    )
    return digest.hexdigest()[:16]


def marquez_venv(cache_root: Path) -> Path:
    """The python of the pinned marquez-python venv, built under ``cache_root`` once
    (a marker written last; a lock serialises concurrent callers)."""
    cache_root.mkdir(parents=True, exist_ok=True)
    key = requirements_hash()
    venv_dir = cache_root / f"marquez-{key}"
    python = venv_dir / "bin" / "python"
    marker = venv_dir / _COMPLETE_MARKER
    if marker.is_file():
        return python
    with _file_lock(cache_root / f"marquez-{key}.lock"):
        if marker.is_file():
            return python
        if venv_dir.exists():
            shutil.rmtree(venv_dir)
        try:
            _run_step([sys.executable, "-m", "venv", str(venv_dir)], "venv", VENV_TIMEOUT_S)
            _run_step(
                [
                    str(python),
                    "-m",
                    "pip",
                    "install",
                    "--no-input",
                    "--disable-pip-version-check",
                    "-r",
                    str(REQUIREMENTS),
                ],
                "pip install",
                INSTALL_TIMEOUT_S,
            )
            _run_step([str(python), "-c", _SMOKE_IMPORTS], "import check", VENV_TIMEOUT_S)
            frozen = _run_step([str(python), "-m", "pip", "freeze"], "pip freeze", VENV_TIMEOUT_S)
        except BaseException:
            shutil.rmtree(venv_dir, ignore_errors=True)
            raise
        marker.write_text(frozen)
    return python


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
