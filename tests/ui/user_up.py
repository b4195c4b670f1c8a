"""`lineagehouse up` started as a user starts it, for the new-user browser tests: from a
working directory of its own, no LINEAGEHOUSE_* settings, free ports; the banner it
prints is what the user reads."""

from __future__ import annotations

import re
import shlex
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from lineagehouse.embedded.process import free_port, stop_process
from tests.conftest import UP_WEB_PORTS, free_port_run, lineagehouse_cmd, wait_for


class Banner:
    def __init__(self, text: str) -> None:
        self.text = text

    def field(self, label: str) -> str:
        match = re.search(rf"^  {re.escape(label)}\s+(\S.*?)\s*$", self.text, re.MULTILINE)
        assert match, f"no {label!r} line in the banner:\n{self.text}"
        return match.group(1)

    @property
    def api_url(self) -> str:
        return self.field("API").split()[0]

    @property
    def key(self) -> str:
        return self.field("API key (admin)").split()[0]

    @property
    def demo_command(self) -> list[str]:
        """The printed demo command, up to the "(then open ...)" remark."""
        words = shlex.split(self.field("Sample lineage").split("   (")[0])
        assert words[:2] == ["lineagehouse", "demo"], words
        return words[2:]


@contextmanager
def running_up(home: Path, data_dir: Path, env: dict[str, str], out_path: Path) -> Iterator[Banner]:
    """Run `lineagehouse up` in `home` on `data_dir` until the block ends (then Ctrl-C)."""
    up_env = {
        **env,
        # only so that two test runs on one machine do not fight over the metrics ports
        "LINEAGEHOUSE_WORKER__WEB_PORT": str(free_port_run(UP_WEB_PORTS)),
        "LINEAGEHOUSE_WORKER__WEB_HOST": "127.0.0.1",
    }
    args = ["up", "--data-dir", str(data_dir)]
    args += ["--kafka-port", str(free_port()), "--clickhouse-port", str(free_port())]
    args += ["--api-port", str(free_port())]
    with open(out_path, "wb") as out:
        proc = subprocess.Popen(
            lineagehouse_cmd(*args), cwd=home, env=up_env, stdout=out, stderr=subprocess.STDOUT
        )

    def up_ready() -> bool:
        if proc.poll() is not None:
            pytest.fail(f"up exited with {proc.returncode}:\n{out_path.read_text()}")
        return b"Press Ctrl-C to stop" in out_path.read_bytes()

    try:
        wait_for(up_ready, 180, "`lineagehouse up` to print its banner")
        yield Banner(out_path.read_text())
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # Ctrl-C
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                stop_process(proc, timeout_s=30)
