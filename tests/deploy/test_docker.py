"""The Dockerfile, checked without Docker: what it runs, copies and exposes is real."""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import shlex
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import helm_python
import pytest
import yaml

from lineagehouse.settings import ENV_PREFIX, load_settings
from tests.deploy import CHART, DOCKERFILE, REPO, api_route_paths, setting_env_names, worker_stages

HEALTHCHECK_IN_IMAGE = "/opt/lineagehouse/healthcheck.py"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    logical: list[str] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or (line.startswith("#") and not pending):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    assert not pending, "the Dockerfile ends inside a continued line"
    result = []
    for line in logical:
        word, _, rest = line.partition(" ")
        result.append((word.upper(), rest.strip()))
    return result


def stages() -> dict[str, list[tuple[str, str]]]:
    """Instructions per build stage (by its AS name), plus the ARGs before the first FROM."""
    result: dict[str, list[tuple[str, str]]] = {"": []}
    current = ""
    for word, args in instructions():
        if word == "FROM":
            parts = args.split()
            current = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else args
            result[current] = [(word, args)]
        else:
            result[current].append((word, args))
    return result


def runtime() -> list[tuple[str, str]]:
    return list(stages().values())[-1]


def one(stage: list[tuple[str, str]], word: str) -> str:
    (args,) = [a for w, a in stage if w == word]
    return args


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


def env_of(stage: list[tuple[str, str]]) -> dict[str, str]:
    env: dict[str, str] = {}
    for word, args in stage:
        if word == "ENV":
            for item in shlex.split(args):
                name, _, value = item.partition("=")
                env[name] = value
    return env


def test_base_image_is_python_311_slim_in_every_stage() -> None:
    args = dict(a.split("=", 1) for w, a in stages()[""] if w == "ARG")
    froms = [a.split()[0] for w, a in instructions() if w == "FROM"]
    assert len(froms) >= 2, "a multi-stage build"
    for image in froms:
        resolved = args.get(image.strip("${}"), image)
        assert resolved == "python:3.11-slim", image


def test_entrypoint_is_the_console_script() -> None:
    entrypoint = exec_form(one(runtime(), "ENTRYPOINT"))
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert entrypoint == ["lineagehouse"]
    assert entrypoint[0] in scripts
    env = env_of(runtime())
    assert env["PATH"].startswith("/opt/lineagehouse/bin:")
    # The builder installs into that venv, with the lock file as constraints.
    builder = stages()["builder"]
    installs = [a for w, a in builder if w == "RUN" and "pip install" in a]
    assert installs and all("--constraint requirements.lock" in a for a in installs)
    assert any(
        a.startswith("--from=builder /opt/lineagehouse") for w, a in runtime() if w == "COPY"
    )


def chart_commands() -> Iterator[list[str]]:
    """The args of every container the chart renders, over its example values."""
    value_files = [None, *sorted((CHART / "ci").glob("*-values.yaml"))]
    chart = helm_python.Chart.load(str(CHART))
    for path in value_files:
        values = yaml.safe_load(path.read_text()) if path else {}
        for name, text in chart.render(values, name="lh", namespace="lh").items():
            if name.endswith(".txt"):
                continue
            for doc in yaml.safe_load_all(text):
                if doc and doc["kind"] in ("Deployment", "Job"):
                    for container in doc["spec"]["template"]["spec"]["containers"]:
                        assert "command" not in container, "the image's ENTRYPOINT runs"
                        yield container["args"]


def test_default_cmd_and_chart_args_are_real_commands() -> None:
    commands = {tuple(exec_form(one(runtime(), "CMD")))}
    commands |= {tuple(args) for args in chart_commands()}
    assert {c[0] for c in commands} == {"api", "worker", "migrate"}
    for command in sorted(commands):
        if command[0] == "worker":
            assert command[1] == "--stage" and command[2] in worker_stages(), command
        result = subprocess.run(
            [sys.executable, "-m", "lineagehouse.cli", command[0], "--help"],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        for option in (a for a in command[1:] if a.startswith("--")):
            assert option in result.stdout, f"{command[0]} has no {option}"


def test_user_is_a_fixed_non_root_uid_matching_the_chart() -> None:
    user = one(runtime(), "USER")
    uid, _, gid = user.partition(":")
    assert uid.isdigit() and int(uid) != 0, "a numeric uid lets Kubernetes check runAsNonRoot"
    assert gid.isdigit() and int(gid) != 0
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == int(uid)
    assert values["podSecurityContext"]["runAsGroup"] == int(gid)
    # The user exists in the image and owns the data dir.
    run = " ".join(a for w, a in runtime() if w == "RUN")
    assert "useradd" in run and "chown" in run


def dockerignore() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(path: str) -> bool:
    for pattern in dockerignore():
        pattern = pattern.removeprefix("**/")
        if fnmatch.fnmatch(path, pattern) or path.startswith(pattern.rstrip("/") + "/"):
            return True
    return False


def test_copied_files_exist_and_are_in_the_build_context() -> None:
    copies = [a for w, a in instructions() if w == "COPY" and not a.startswith("--from=")]
    assert copies
    for args in copies:
        *sources, _dest = args.split()
        for source in sources:
            assert (REPO / source).exists(), f"COPY {source}: no such file in the repo"
            assert not ignored(source), f"COPY {source}: excluded by .dockerignore"
    # Everything the package build needs is copied: the package dirs of pyproject.toml.
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    package_dirs = set(pyproject["tool"]["setuptools"]["package-dir"].values())
    copied = {s.rstrip("/") for a in copies for s in a.split()[:-1]}
    assert package_dirs <= copied
    assert {"pyproject.toml", "requirements.lock", pyproject["project"]["readme"]} <= copied


def test_ports_and_environment_are_the_products() -> None:
    defaults = load_settings()
    exposed = {int(p.split("/")[0]) for p in one(runtime(), "EXPOSE").split()}
    assert exposed == {defaults.api.port, defaults.worker.web_port}
    env = env_of(runtime())
    assert env["LINEAGEHOUSE_LOG_FORMAT"] == "json"
    assert env["LINEAGEHOUSE_API__HOST"] == "0.0.0.0", "reachable from outside the container"
    settings = {k for k in env if k.startswith(ENV_PREFIX)}
    assert settings <= setting_env_names()


# --- HEALTHCHECK ------------------------------------------------------------------------


def healthcheck_module() -> Any:
    builder = stages()["builder"]
    (copy,) = [a for w, a in builder if w == "COPY" and a.endswith(HEALTHCHECK_IN_IMAGE)]
    source = REPO / copy.split()[0]
    spec = importlib.util.spec_from_file_location("lh_healthcheck", source)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.SOURCE = source
    return module


def test_healthcheck_runs_python_on_a_real_api_route() -> None:
    healthcheck = one(runtime(), "HEALTHCHECK")
    command = exec_form(healthcheck.split("CMD", 1)[1].strip())
    assert command == ["python", HEALTHCHECK_IN_IMAGE]
    module = healthcheck_module()
    assert module.API_PATH == "/healthz"
    assert module.API_PATH in api_route_paths()
    assert module.WORKER_PATH == "/"  # faust's production index (see test_helm.py)


class _Server:
    """A local HTTP server answering 200 on one path, 404 elsewhere."""

    def __init__(self, path: str) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200 if self.path == path else 404)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _run_healthcheck(api_port: int, worker_port: int) -> int:
    env = {
        "LINEAGEHOUSE_API__PORT": str(api_port),
        "LINEAGEHOUSE_WORKER__WEB_PORT": str(worker_port),
        "PATH": "/usr/bin:/bin",
    }
    source = str(healthcheck_module().SOURCE)
    return subprocess.run([sys.executable, source], env=env, timeout=30).returncode


@pytest.fixture
def closed_port() -> int:
    server = _Server("/")
    port = server.port
    server.close()
    return port


def test_healthcheck_api_container(closed_port: int) -> None:
    api = _Server("/healthz")
    try:
        assert _run_healthcheck(api.port, closed_port) == 0
    finally:
        api.close()
    wrong = _Server("/somewhere-else")  # the API answers, but /healthz is not 200
    try:
        assert _run_healthcheck(wrong.port, closed_port) == 1
    finally:
        wrong.close()


def test_healthcheck_worker_container(closed_port: int) -> None:
    worker = _Server("/")
    try:
        assert _run_healthcheck(closed_port, worker.port) == 0
    finally:
        worker.close()
    assert _run_healthcheck(closed_port, closed_port) == 1


def test_docker_readme_names_the_real_paths() -> None:
    readme = (Path(DOCKERFILE).parent / "README.md").read_text()
    assert "deploy/docker/Dockerfile" in readme
