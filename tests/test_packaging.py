"""The wheel installs one import root, and every command has --help."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO, lineagehouse_cmd

COMMANDS = ["up", "broker", "clickhouse", "worker", "api", "migrate"]


def test_wheel_has_one_top_level_package(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(tmp_path),
            str(REPO),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("lineagehouse-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/", 1)[0] for name in names}
    name_and_version = "-".join(wheel.name.split("-")[:2])
    assert top == {"lineagehouse", name_and_version + ".dist-info"}, top
    # The C module (`processors/_native.c`) is built into it: a platform wheel.
    assert any(n.startswith("lineagehouse/processors/_native.") for n in names), names
    # The design's folders are mapped under the root, with their data files.
    for module in (
        "lineagehouse/producers/__init__.py",
        "lineagehouse/processors/app.py",
        "lineagehouse/api/server.py",
        "lineagehouse/schemas/clickhouse/0001_events_raw.sql",
        "lineagehouse/schemas/openlineage/LICENSE",
        "lineagehouse/schemas/openlineage/versions/2-0-2/OpenLineage.json",
    ):
        assert module in names, module
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert (
        "lineagehouse = lineagehouse.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
    )


@pytest.mark.parametrize("command", [None, *COMMANDS])
def test_help(command: str | None) -> None:
    args = ["--help"] if command is None else [command, "--help"]
    result = subprocess.run(lineagehouse_cmd(*args), capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "Usage" in result.stdout
    if command is None:
        for name in COMMANDS:
            assert name in result.stdout
