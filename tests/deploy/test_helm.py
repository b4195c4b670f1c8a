"""The Helm chart, rendered offline by Helm's own SDK and checked against Kubernetes 1.30.

No cluster here: `helm_python` (Helm's Go SDK) lints and renders the chart exactly as
`helm lint` / `helm template` would, and `kubernetes_validate` checks every rendered
object against the Kubernetes OpenAPI schemas (strict: unknown fields fail). CRD kinds
(the Prometheus Operator's ServiceMonitor) have no schema there; they are skipped
explicitly and only checked structurally.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args

import helm_python
import kubernetes_validate
import pytest
import yaml

from lineagehouse.settings import ENV_PREFIX, Compression, ConfigError, load_settings
from tests.deploy import CHART, GUIDE, REPO, api_route_paths, setting_env_names, worker_stages

KUBE_VERSION = "1.30"
RELEASE, NAMESPACE = "lh", "lineagehouse"
CRD_API_GROUPS = ("monitoring.coreos.com/",)  # kinds kubernetes-validate has no schema for
DATA_DIR = "/var/lib/lineagehouse"

CI_VALUES = {path.name: path for path in sorted((CHART / "ci").glob("*-values.yaml"))}
VALUE_SETS = ["default", *CI_VALUES]

# The Secrets an operator creates before installing (docs/deployment.md). Their values
# are given to nobody here: the chart only references them, so none may appear anywhere.
FAKE_SECRET_VALUES = (
    "kafka-S3cr3t-do-not-render",
    "clickhouse-S3cr3t-do-not-render",
    "api-key-S3cr3t-do-not-render",
)


def values_of(value_set: str) -> dict[str, Any]:
    if value_set == "default":
        return {}
    return yaml.safe_load(CI_VALUES[value_set].read_text()) or {}


def render(values: dict[str, Any]) -> dict[str, str]:
    return helm_python.Chart.load(str(CHART)).render(values, name=RELEASE, namespace=NAMESPACE)


def manifests(rendered: dict[str, str]) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path, text in rendered.items():
        if path.endswith(".txt"):
            continue
        docs.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return docs


@pytest.fixture(scope="module")
def rendered() -> dict[str, dict[str, str]]:
    return {value_set: render(values_of(value_set)) for value_set in VALUE_SETS}


def docs_of(rendered: dict[str, dict[str, str]], value_set: str) -> list[dict[str, Any]]:
    return manifests(rendered[value_set])


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [doc for doc in docs if doc["kind"] == kind]


def pod_specs(docs: list[dict[str, Any]]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for doc in docs:
        if doc["kind"] in ("Deployment", "Job"):
            yield doc, doc["spec"]["template"]["spec"]


def container_env(docs: list[dict[str, Any]], container: dict[str, Any]) -> dict[str, Any]:
    """name -> value (a string, or the valueFrom mapping) as the container would see it."""
    configmaps = {cm["metadata"]["name"]: cm.get("data", {}) for cm in of_kind(docs, "ConfigMap")}
    env: dict[str, Any] = {}
    for source in container.get("envFrom", []):
        env.update(configmaps[source["configMapRef"]["name"]])
    for var in container.get("env", []):
        env[var["name"]] = var["value"] if "value" in var else var["valueFrom"]
    return env


# --- lint, render, validate ------------------------------------------------------------


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_chart_lints_clean(value_set: str) -> None:
    report = helm_python.lint(
        str(CHART), values_of(value_set), strict=True, namespace=NAMESPACE, kube_version="v1.30.0"
    )
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not report["errors"] and not problems, report


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_manifest_is_valid_kubernetes(rendered, value_set: str) -> None:
    docs = docs_of(rendered, value_set)
    assert {"ConfigMap", "Deployment", "Service", "Job", "PodDisruptionBudget"} <= {
        doc["kind"] for doc in docs
    }
    for doc in docs:
        where = f"{value_set}: {doc['kind']}/{doc['metadata']['name']}"
        if doc["apiVersion"].startswith(CRD_API_GROUPS):
            # kubernetes-validate knows only built-in kinds; a CRD kind is checked by shape.
            assert doc["metadata"]["name"] and doc["spec"]["endpoints"], where
            continue
        try:
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{where}: {exc.message}")
        assert len(doc["metadata"]["name"]) <= 63, where


def test_the_crd_kinds_really_are_unknown_to_the_validator() -> None:
    """Keeps the CRD skip honest: if kubernetes-validate learns ServiceMonitor, use it."""
    monitor = {"apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor"}
    with pytest.raises(kubernetes_validate.SchemaNotFoundError):
        kubernetes_validate.validate(
            {**monitor, "metadata": {"name": "x"}, "spec": {}}, KUBE_VERSION, strict=True
        )


# --- what the chart promises ------------------------------------------------------------


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_migrations_run_as_a_pre_install_and_pre_upgrade_hook(rendered, value_set: str) -> None:
    (job,) = of_kind(docs_of(rendered, value_set), "Job")
    annotations = job["metadata"]["annotations"]
    assert set(annotations["helm.sh/hook"].split(",")) == {"pre-install", "pre-upgrade"}
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    cluster = values_of(value_set).get("clickhouse", {}).get("cluster")
    if cluster:
        assert container["args"] == ["migrate", "--cluster", cluster]
    else:
        assert container["args"] == ["migrate"]
    # A pre-install hook runs before the chart's ConfigMap exists: no envFrom it.
    assert "envFrom" not in container
    env = container_env([], container)
    assert env.get("LINEAGEHOUSE_CLICKHOUSE__CLUSTER") == cluster


CLUSTER_VALUES = "clickhouse-cluster-retention-values.yaml"


def test_cluster_mode_reaches_the_sink_too(rendered) -> None:
    docs = docs_of(rendered, CLUSTER_VALUES)
    (configmap,) = of_kind(docs, "ConfigMap")
    assert configmap["data"]["LINEAGEHOUSE_CLICKHOUSE__CLUSTER"] == "lineage_cluster"
    assert configmap["data"]["LINEAGEHOUSE_RETENTION__RAW_EVENTS_DAYS"] == "30"
    assert configmap["data"]["LINEAGEHOUSE_RETENTION__ISSUES_DAYS"] == "90"


@pytest.mark.parametrize(("value_set", "tuned"), [("default", True), (CLUSTER_VALUES, False)])
def test_the_migrations_job_tunes_merges_unless_told_not_to(
    rendered, value_set: str, tuned: bool, monkeypatch, tmp_path: Path
) -> None:
    docs = docs_of(rendered, value_set)
    (job,) = [doc for doc, _ in pod_specs(docs) if doc["kind"] == "Job"]
    (container,) = job["spec"]["template"]["spec"]["containers"]
    value = container_env(docs, container)["LINEAGEHOUSE_CLICKHOUSE__TUNE_MERGES"]
    monkeypatch.chdir(tmp_path)  # no stray .env file
    monkeypatch.setenv("LINEAGEHOUSE_CLICKHOUSE__TUNE_MERGES", value)
    assert load_settings().clickhouse.tune_merges is tuned


def test_the_compression_enum_is_the_settings_codecs() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    enum = schema["properties"]["kafka"]["properties"]["compression"]["enum"]
    assert enum == list(get_args(Compression))


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_no_secret_value_and_only_secret_references(rendered, value_set: str) -> None:
    text = "\n".join(rendered[value_set].values())
    for secret in FAKE_SECRET_VALUES:
        assert secret not in text
    docs = docs_of(rendered, value_set)
    assert not of_kind(docs, "Secret"), "the chart must not create Secrets"
    for configmap in of_kind(docs, "ConfigMap"):
        assert not [k for k in configmap["data"] if re.search("PASSWORD|SECRET", k)]
    for _, spec in pod_specs(docs):
        for container in spec["containers"]:
            for var in container.get("env", []):
                if re.search("PASSWORD|SECRET", var["name"]):
                    assert set(var) == {"name", "valueFrom"}, var
                    assert set(var["valueFrom"]) == {"secretKeyRef"}, var


def test_credentials_cannot_be_given_as_plain_values() -> None:
    for values in (
        {"clickhouse": {"password": "x"}},
        {"kafka": {"sasl": {"password": "x"}}},
        {"api": {"keySecret": {"value": "x"}}},
    ):
        with pytest.raises(helm_python.HelmValuesError, match="additional properties"):
            render(values)


def test_secret_references_of_sasl_example(rendered) -> None:
    docs = docs_of(rendered, "kafka-sasl-ssl-values.yaml")
    (api,) = [d for d in of_kind(docs, "Deployment") if d["metadata"]["name"].endswith("-api")]
    spec = api["spec"]["template"]["spec"]
    env = container_env(docs, spec["containers"][0])
    refs = {name: env[name]["secretKeyRef"] for name in env if isinstance(env[name], dict)}
    assert refs == {
        "LINEAGEHOUSE_KAFKA__SASL_PASSWORD": {"name": "lineagehouse-kafka", "key": "sasl-password"},
        "LINEAGEHOUSE_CLICKHOUSE__PASSWORD": {"name": "lineagehouse-clickhouse", "key": "password"},
        "LINEAGEHOUSE_API__KEY_SECRET": {"name": "lineagehouse-api", "key": "api-key-secret"},
    }
    assert env["LINEAGEHOUSE_KAFKA__SECURITY_PROTOCOL"] == "SASL_SSL"
    assert env["LINEAGEHOUSE_KAFKA__SASL_MECHANISM"] == "SCRAM-SHA-512"
    cafile = env["LINEAGEHOUSE_KAFKA__SSL_CAFILE"]
    (mount,) = [m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "kafka-ca"]
    (volume,) = [v for v in spec["volumes"] if v["name"] == "kafka-ca"]
    assert cafile == f"{mount['mountPath']}/{volume['secret']['items'][0]['path']}"
    assert volume["secret"]["secretName"] == "lineagehouse-kafka-ca"


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_probes_resources_and_security(rendered, value_set: str) -> None:
    routes = api_route_paths()
    docs = docs_of(rendered, value_set)
    for doc, spec in pod_specs(docs):
        where = f"{value_set}: {doc['kind']}/{doc['metadata']['name']}"
        pod_security = spec["securityContext"]
        assert pod_security["runAsNonRoot"] is True, where
        assert pod_security["runAsUser"] != 0, where
        assert pod_security["seccompProfile"]["type"] == "RuntimeDefault", where
        assert spec["automountServiceAccountToken"] is False, where
        volumes = {v["name"]: v for v in spec["volumes"]}
        for container in spec["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, where
            assert security["allowPrivilegeEscalation"] is False, where
            assert security["capabilities"]["drop"] == ["ALL"], where
            mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
            for path in (DATA_DIR, "/tmp"):
                assert "emptyDir" in volumes[mounts[path]], f"{where}: {path} not writable"
            assert container_env(docs, container)["LINEAGEHOUSE_DATA_DIR"] == DATA_DIR
            assert container["resources"]["requests"], where
            assert container["resources"]["limits"]["memory"], where
            if doc["kind"] != "Deployment":
                continue
            ports = {p["name"]: p["containerPort"] for p in container["ports"]}
            live, ready = container["livenessProbe"], container["readinessProbe"]
            if container["name"] == "api":
                assert ready["httpGet"] == {"path": "/readyz", "port": "http"}, where
                assert live["httpGet"] == {"path": "/livez", "port": "http"}, where
                assert {"/readyz", "/livez", "/healthz", "/metrics"} <= routes
                assert ports["http"] == int(
                    container_env(docs, container)["LINEAGEHOUSE_API__PORT"]
                )
            else:
                # The faust web server's production index (see the next test).
                for probe in (live, ready, container["startupProbe"]):
                    assert probe["httpGet"] == {"path": "/", "port": "metrics"}, where
                port = int(container_env(docs, container)["LINEAGEHOUSE_WORKER__WEB_PORT"])
                assert ports["metrics"] == port
            if "prometheus.io/scrape" in doc["spec"]["template"]["metadata"]["annotations"]:
                annotations = doc["spec"]["template"]["metadata"]["annotations"]
                assert annotations["prometheus.io/path"] == "/metrics"
                assert int(annotations["prometheus.io/port"]) in ports.values()


def test_the_worker_web_server_serves_the_probe_path() -> None:
    """faust serves `/` ({"status": "OK"}) unless its debug/stats pages replace it; the
    worker's app must keep that blueprint for the chart's probes to work."""
    from lineagehouse.processors.app import create_app

    app = create_app(load_settings(), "all")
    enabled = dict((bp, prefix) for prefix, bp in app.web._enabled_blueprints())
    assert enabled.get("faust.web.apps.production_index:blueprint") == ""
    from faust.web.apps.production_index import blueprint

    assert [route.uri for route in blueprint.routes] == ["/"]


def test_split_stages_with_autoscaling_and_ingress(rendered) -> None:
    docs = docs_of(rendered, "scaled-split-hpa-ingress-values.yaml")
    workers = {
        d["metadata"]["labels"]["lineagehouse.io/stage"]: d
        for d in of_kind(docs, "Deployment")
        if d["metadata"]["labels"]["app.kubernetes.io/component"] == "worker"
    }
    assert set(workers) == {"processor", "sink", "issues"}
    for stage, deployment in workers.items():
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["args"] == ["worker", "--stage", stage]
        assert stage in worker_stages()
        assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    hpas = {
        h["spec"]["scaleTargetRef"]["name"]: h for h in of_kind(docs, "HorizontalPodAutoscaler")
    }
    for deployment in of_kind(docs, "Deployment"):  # the workers' and the API's
        assert hpas[deployment["metadata"]["name"]]["apiVersion"] == "autoscaling/v2"
    for stage in ("processor", "sink", "issues"):
        hpa = hpas[workers[stage]["metadata"]["name"]]["spec"]
        assert (hpa["minReplicas"], hpa["maxReplicas"]) == (3, 12)
    (ingress,) = of_kind(docs, "Ingress")
    (service,) = [s for s in of_kind(docs, "Service") if s["metadata"]["name"].endswith("-api")]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": service["metadata"]["name"], "port": {"name": "http"}}
    monitors = of_kind(docs, "ServiceMonitor")
    assert len(monitors) == 2
    services = {s["metadata"]["name"]: s for s in of_kind(docs, "Service")}
    for monitor in monitors:  # each selects a Service that has the named port
        wanted = monitor["spec"]["selector"]["matchLabels"]
        (port,) = [e["port"] for e in monitor["spec"]["endpoints"]]
        matching = [
            s
            for s in services.values()
            if wanted.items() <= s["metadata"]["labels"].items()
            and port in {p["name"] for p in s["spec"]["ports"]}
        ]
        assert matching, monitor["metadata"]["name"]


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_selectors_match_their_pods(rendered, value_set: str) -> None:
    docs = docs_of(rendered, value_set)
    pods = [d["spec"]["template"]["metadata"]["labels"] for d in of_kind(docs, "Deployment")]
    for doc in of_kind(docs, "PodDisruptionBudget") + of_kind(docs, "Service"):
        selector = doc["spec"]["selector"]
        selector = selector.get("matchLabels", selector)
        assert any(selector.items() <= labels.items() for labels in pods), doc["metadata"]
    for deployment in of_kind(docs, "Deployment"):
        selector = deployment["spec"]["selector"]["matchLabels"]
        others = [d for d in of_kind(docs, "Deployment") if d is not deployment]
        # No Deployment's selector catches another one's pods.
        assert not any(
            selector.items() <= d["spec"]["template"]["metadata"]["labels"].items() for d in others
        )


# --- every environment variable is a real setting ---------------------------------------


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_every_env_name_is_a_setting_and_loads(
    rendered, value_set: str, monkeypatch, tmp_path: Path
) -> None:
    known = setting_env_names()
    docs = docs_of(rendered, value_set)
    monkeypatch.chdir(tmp_path)  # no stray .env file
    for doc, spec in pod_specs(docs):
        for container in spec["containers"]:
            env = container_env(docs, container)
            names = {n for n in env if n.startswith(ENV_PREFIX)}
            assert names == set(env), f"non-setting variables: {set(env) - names}"
            unknown = names - known
            assert not unknown, f"{doc['metadata']['name']}: not settings: {sorted(unknown)}"
            for name in list(os.environ):
                if name.startswith(ENV_PREFIX):
                    monkeypatch.delenv(name)
            fakes = iter(FAKE_SECRET_VALUES * 2)
            for name in names:
                value = env[name]
                monkeypatch.setenv(name, value if isinstance(value, str) else next(fakes))
            try:
                settings = load_settings()
            except ConfigError as exc:
                pytest.fail(f"{value_set} {doc['metadata']['name']}: {exc}")
            assert settings.log_format == "json"
            assert str(settings.data_dir) == DATA_DIR
            assert settings.kafka.bootstrap_servers == env["LINEAGEHOUSE_KAFKA__BOOTSTRAP_SERVERS"]
            if container["name"] == "api":
                assert settings.api.host == "0.0.0.0"
                if settings.api.auth_enabled:
                    assert settings.api.key_secret is not None


def test_retention_settings_exist() -> None:
    names = setting_env_names()
    for suffix in ("RAW_EVENTS_DAYS", "LINEAGE_DAYS", "QUALITY_DAYS", "ISSUES_DAYS"):
        assert f"{ENV_PREFIX}RETENTION__{suffix}" in names


# --- wrong values fail, naming the value ------------------------------------------------


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"kafka": {"securityProtocol": "FOO"}}, "/kafka/securityProtocol"),
        ({"worker": {"replicas": "three"}}, "/worker/replicas"),
        ({"worker": {"mode": "both"}}, "/worker/mode"),
        ({"kafka": {"sasl": {"mechanism": "GSSAPI"}}}, "/kafka/sasl/mechanism"),
        ({"clickhouse": {"url": "clickhouse:8123"}}, "/clickhouse/url"),
        ({"retention": {"rawEventsDays": -1}}, "/retention/rawEventsDays"),
        ({"api": {"authEnabled": "yes"}}, "/api/authEnabled"),
        ({"worker": {"batchSize": 0}}, "/worker/batchSize"),
        ({"kafak": {}}, "kafak"),
    ],
)
def test_wrong_values_fail_naming_the_field(values: dict[str, Any], named: str) -> None:
    with pytest.raises(helm_python.HelmValuesError) as failure:
        render(values)
    assert named in str(failure.value)
    report = helm_python.lint(str(CHART), values, namespace=NAMESPACE)
    assert any(named in error for error in report["errors"]), report


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"kafka": {"securityProtocol": "SASL_SSL"}}, "kafka.sasl.mechanism"),
        (
            {"kafka": {"securityProtocol": "SASL_SSL", "sasl": {"mechanism": "PLAIN"}}},
            "kafka.sasl.username",
        ),
        (
            {
                "kafka": {
                    "securityProtocol": "SASL_PLAINTEXT",
                    "sasl": {"mechanism": "PLAIN", "username": "lh"},
                }
            },
            "kafka.sasl.existingSecret",
        ),
        ({"kafka": {"sasl": {"mechanism": "PLAIN"}}}, "kafka.sasl.mechanism"),
        ({"kafka": {"tls": {"caSecret": "ca"}}}, "kafka.tls.caSecret"),
        ({"api": {"keySecret": {"existingSecret": ""}}}, "api.keySecret.existingSecret"),
        (
            {"worker": {"autoscaling": {"enabled": True, "minReplicas": 4, "maxReplicas": 2}}},
            "worker.autoscaling.maxReplicas",
        ),
    ],
)
def test_inconsistent_values_fail_naming_the_field(values: dict[str, Any], named: str) -> None:
    with pytest.raises(helm_python.HelmRenderError, match=re.escape(named)):
        render(values)


# --- the deployment guide, tried as a new user would ------------------------------------


def guide_install_command() -> list[str]:
    """The guide's `helm install` command (continuation lines joined), as argv."""
    text = GUIDE.read_text()
    block = re.search(r"```(?:bash|sh)\n(helm install .*?)```", text, re.S)
    assert block, "docs/deployment.md shows no `helm install` command"
    command = block.group(1).split("\n\n")[0].replace("\\\n", " ")
    return shlex.split(command.strip())


def test_guide_example_renders_and_validates() -> None:
    argv = guide_install_command()
    assert argv[:4] == ["helm", "install", "lh", "deploy/helm/lineagehouse"]
    values_file = REPO / argv[argv.index("-f") + 1]
    assert values_file.is_file(), values_file
    values = yaml.safe_load(values_file.read_text())
    for setting in (a for i, a in enumerate(argv) if argv[i - 1] == "--set"):
        path, _, value = setting.partition("=")
        node = values
        *parents, leaf = path.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    namespace = argv[argv.index("-n") + 1] if "-n" in argv else "default"
    chart = helm_python.Chart.load(str(REPO / argv[3]))
    docs = manifests(chart.render(values, name=argv[2], namespace=namespace))
    for doc in docs:
        if not doc["apiVersion"].startswith(CRD_API_GROUPS):
            kubernetes_validate.validate(doc, KUBE_VERSION, strict=True)
    report = helm_python.lint(str(REPO / argv[3]), values, strict=True, namespace=namespace)
    assert not report["errors"], report
    # What the guide says this example is: SASL_SSL, cluster mode, 3 worker replicas.
    (worker,) = [
        d for d in of_kind(docs, "Deployment") if d["metadata"]["name"] == "lh-lineagehouse-worker"
    ]
    assert worker["spec"]["replicas"] == 3
    (job,) = of_kind(docs, "Job")
    assert job["spec"]["template"]["spec"]["containers"][0]["args"][:2] == ["migrate", "--cluster"]
    (configmap,) = of_kind(docs, "ConfigMap")
    assert configmap["data"]["LINEAGEHOUSE_KAFKA__SECURITY_PROTOCOL"] == "SASL_SSL"


def test_guide_creates_every_secret_the_example_references() -> None:
    """Each (Secret, key) the example's pods reference is made by a command in the guide."""
    argv = guide_install_command()
    values = yaml.safe_load((REPO / argv[argv.index("-f") + 1]).read_text())
    docs = manifests(render(values))
    wanted: set[tuple[str, str]] = set()
    for _, spec in pod_specs(docs):
        for container in spec["containers"]:
            for var in container.get("env", []):
                ref = var.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    wanted.add((ref["name"], ref["key"]))
        for volume in spec["volumes"]:
            if "secret" in volume:
                for item in volume["secret"]["items"]:
                    wanted.add((volume["secret"]["secretName"], item["key"]))
    created: set[tuple[str, str]] = set()
    text = GUIDE.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        if "kubectl" not in line or "create secret generic" not in line:
            continue
        argv = shlex.split(line.strip(), comments=True)
        name = argv[argv.index("generic") + 1]
        for arg in argv:
            for flag in ("--from-literal=", "--from-file="):
                if arg.startswith(flag):
                    created.add((name, arg[len(flag) :].split("=", 1)[0]))
    assert wanted and wanted <= created, f"missing from the guide: {wanted - created}"


def test_app_version_is_the_package_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert chart["apiVersion"] == "v2"
    assert chart["appVersion"] == project["version"]


def test_notes_warn_about_idle_worker_replicas() -> None:
    notes = render({"worker": {"replicas": 8}})["lineagehouse/templates/NOTES.txt"]
    assert "WARNING: up to 8 pods per worker Deployment but 6 partitions" in notes
    assert "WARNING" not in render({})["lineagehouse/templates/NOTES.txt"]
