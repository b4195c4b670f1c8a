"""Fault injection for crash tests: die at one step of the commit protocol.

Off unless `worker.fault_point` is set (tests only). A fault is `os._exit`: like a
SIGKILL, nothing is flushed, committed or cleaned up.
"""

from __future__ import annotations

import logging
import os
import sys

log = logging.getLogger("lineagehouse.faults")

FAULT_EXIT_CODE = 86


class Faults:
    def __init__(self, point: str | None = None, after: int = 1) -> None:
        self.point = point
        self.after = after
        self.seen = 0

    def reached(self, point: str) -> None:
        """Call at each step; exits the process the `after`-th time `point` is reached."""
        if point != self.point:
            return
        self.seen += 1
        if self.seen >= self.after:
            log.error("fault injected: exiting now", extra={"fault_point": point})
            sys.stderr.flush()
            os._exit(FAULT_EXIT_CODE)
