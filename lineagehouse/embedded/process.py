"""Child-process helpers shared by `up`, the embedded services and the test harness."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from typing import Any


class StartupError(RuntimeError):
    """A service did not become ready; the message says which and where to look."""


def die_with_parent() -> None:
    """preexec_fn for children: on Linux, get SIGTERM when the parent dies (even by
    SIGKILL), so no broker or server outlives the command that started it."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


# How `up` starts each of its processes (`subprocess.Popen(..., **OWN_SESSION)`): in a
# session of its own, so that Ctrl-C reaches `up` alone, which stops them in order, and
# dying with the process that started it. Where the kernel schedules by session
# (autogroup), the cores are then shared out per process; the pipeline benchmark starts
# its processes the same way to measure what `up` runs.
OWN_SESSION: dict[str, Any] = {"start_new_session": True, "preexec_fn": die_with_parent}


def port_open(host: str, port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=0.5):
        return True
    return False


def http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def wait_until(
    ready: Callable[[], bool],
    what: str,
    timeout_s: float,
    proc: subprocess.Popen | None = None,
    interval_s: float = 0.1,
) -> None:
    """Poll `ready` until true; fail fast if `proc` exits, or after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ready():
            return
        if proc is not None and proc.poll() is not None:
            raise StartupError(f"{what} exited with code {proc.returncode} before it was ready")
        time.sleep(interval_s)
    raise StartupError(f"{what} was not ready after {timeout_s:.0f} s")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stop_process(proc: subprocess.Popen, timeout_s: float = 20.0, sig: int = signal.SIGTERM) -> int:
    """Send `sig`, wait up to `timeout_s`, then SIGKILL. Returns the exit code."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode
