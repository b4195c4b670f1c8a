"""Container HEALTHCHECK for the Lineagehouse image (python:3.11-slim has no curl).

Exit 0 when the API answers `GET /healthz` with 200 (ClickHouse reachable). When nothing
listens on the API port (a worker container), the worker's web server answers `GET /`
instead. Ports follow the same settings the processes read.
"""

from __future__ import annotations

import os
import sys
import urllib.error
import urllib.request

API_PATH = "/healthz"
WORKER_PATH = "/"
TIMEOUT_S = 4.0


def _status(port: str, path: str) -> int | None:
    """The HTTP status of http://127.0.0.1:<port><path>, or None if nothing listens."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=TIMEOUT_S) as r:
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError):
        return None


def main() -> int:
    api_port = os.environ.get("LINEAGEHOUSE_API__PORT", "5000")
    worker_port = os.environ.get("LINEAGEHOUSE_WORKER__WEB_PORT", "6066")
    status = _status(api_port, API_PATH)
    if status is None:
        status = _status(worker_port, WORKER_PATH)
    return 0 if status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
