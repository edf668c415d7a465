"""deploy/kubernetes/: valid for Kubernetes, wired for the Prometheus Operator, and runnable.

No cluster runs here. The manifests are validated against the Kubernetes OpenAPI schemas
that kubernetes-validate ships (offline), for the oldest version they support (1.28: the
sharded StatefulSet reads the apps.kubernetes.io/pod-index label) and the newest the package
knows. The Operator's resources are checked for what the Operator needs to find targets, the
PrometheusRule against its generator and promtool, and the kustomizations' references by
following them (no Python tool renders kustomize; this is not one either).
"""

from __future__ import annotations

import base64
import copy
import functools
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import httpx
import kubernetes_validate
import pytest
import yaml

from alerts.generate import PROMETHEUS_RULE_FILE, RULES_FILE, render_prometheus_rule
from alerts.settings import Settings, seconds
from exporter import __version__
from exporter.config import DEFAULT_PORT
from tests.conftest import Sim
from tests.procs import free_port, run_exporter, running
from tests.snippets import readme_scrape_config
from tests.tools import ROOT, require

KUBE = ROOT / "deploy" / "kubernetes"
VERSIONS = ("1.28", "1.37")
OPERATOR = "monitoring.coreos.com/v1"
IMAGE = "sync-status-exporter"
Resource = dict[str, Any]

# docs/performance.md, Sizing: memory is ~50 MiB plus 4.5 MiB per 1,000 syncs; CPU 110-165 us
# per sync and scrape, which should stay under half the scrape timeout.
BASE_MIB, MIB_PER_1000, CPU_SECONDS_PER_SYNC = 50, 4.5, 165e-6


def load(path: Path) -> list[Resource]:
    """The YAML documents of a manifest file."""
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


def key(resource: Resource) -> tuple[str, str]:
    """kind and name: what kustomize patches target."""
    return resource["kind"], resource["metadata"]["name"]


def merge(base: Any, patch: Any) -> Any:
    """A strategic merge patch on plain maps, which is all the overlays use."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for name, value in patch.items():
            merged[name] = merge(base.get(name), value)
        return merged
    return patch


def resolve(directory: Path) -> list[Resource]:
    """The resources a kustomization (or a plain directory) yields, following its references.

    Every referenced file and directory must exist, every patch must target a resource that
    the references yield, and every manifest beside the kustomization must be referenced.
    """
    kustomization = directory / "kustomization.yaml"
    if not kustomization.exists():
        return [doc for path in sorted(directory.glob("*.yaml")) for doc in load(path)]
    spec = yaml.safe_load(kustomization.read_text(encoding="utf-8"))
    resources: list[Resource] = []
    for reference in spec.get("resources", []):
        target = (directory / reference).resolve()
        assert target.exists(), f"{kustomization}: resource {reference} does not exist"
        resources += resolve(target) if target.is_dir() else load(target)
    listed = {(directory / r).resolve() for r in spec.get("resources", [])}
    orphans = [p.name for p in directory.glob("*.yaml") if p != kustomization and p not in listed]
    assert not orphans, f"{kustomization} leaves out {orphans}"
    for entry in spec.get("patches", []):
        patch = yaml.safe_load(entry["patch"])
        found = [r for r in resources if key(r) == key(patch)]
        assert found, f"{kustomization}: patch targets {key(patch)}, which no resource is"
        if patch.pop("$patch", None) == "delete":
            resources = [r for r in resources if key(r) != key(patch)]
        else:
            resources = [merge(r, patch) if key(r) == key(patch) else r for r in resources]
    for image in spec.get("images", []):
        used = [c["image"] for r in resources for c in containers(r)]
        assert any(u.split(":")[0] == image["name"] for u in used), f"{kustomization}: {image}"
        assert image["newTag"] == __version__, f"{kustomization}: image tag {image['newTag']}"
    return resources


SET_NAMES = ("sharded", "sidecar", "standalone")


@functools.cache
def resources_of(name: str) -> list[Resource]:
    """What one directory of deploy/kubernetes/ deploys."""
    return resolve(KUBE / name)


def every_manifest() -> Iterator[tuple[Path, Resource]]:
    """Every resource of every manifest file, kustomizations aside."""
    for path in sorted(KUBE.rglob("*.yaml")):
        if path.name != "kustomization.yaml":
            for doc in load(path):
                yield path, doc


def pod_template(resource: Resource) -> Resource | None:
    """The pod template of a workload."""
    if resource["kind"] in {"Deployment", "StatefulSet", "DaemonSet"}:
        template: Resource = resource["spec"]["template"]
        return template
    return None


def containers(resource: Resource) -> list[Resource]:
    """The containers of a workload's pods."""
    template = pod_template(resource)
    return list(template["spec"]["containers"]) if template else []


def exporters(resources: list[Resource]) -> Iterator[tuple[Resource, Resource]]:
    """(workload, exporter container) pairs."""
    for resource in resources:
        for container in containers(resource):
            if container["image"].split(":")[0].endswith(IMAGE):
                yield resource, container


def of_kind(resources: list[Resource], kind: str) -> list[Resource]:
    """The resources of one kind."""
    return [resource for resource in resources if resource["kind"] == kind]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    """Whether matchLabels select these labels."""
    return bool(selector) and all(labels.get(k) == v for k, v in selector.items())


def flag(container: Resource, name: str) -> str | None:
    """The value of a `--name=value` argument of a container."""
    for argument in container.get("args", []):
        if argument.startswith(f"--{name}="):
            value: str = argument.split("=", 1)[1]
            return value
    return None


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to open a network connection fails the test."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_kubernetes_validate_ships_the_schemas_of_both_versions() -> None:
    schemas = Path(kubernetes_validate.__file__).parent / "kubernetes-json-schema"
    for version in VERSIONS:
        assert (schemas / f"v{version}.0-local-strict" / "deployment-apps-v1.json").is_file()


@pytest.mark.parametrize("version", VERSIONS)
def test_every_manifest_validates(version: str, offline: None) -> None:
    checked = set()
    for path, resource in every_manifest():
        if resource["apiVersion"] == OPERATOR:
            continue  # no schema ships for CRDs: test_operator_* check these
        try:
            validated = kubernetes_validate.validate(resource, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{path.relative_to(ROOT)}: {key(resource)}: {error.message}")
        assert validated == version
        checked.add(resource["kind"])
    assert checked == {"ConfigMap", "Deployment", "Secret", "Service", "StatefulSet"}


def test_validation_rejects_a_misspelt_field() -> None:
    """Strict validation catches what a cluster would silently ignore."""
    (deployment,) = of_kind(resources_of("standalone"), "Deployment")
    broken = copy.deepcopy(deployment)
    container = broken["spec"]["template"]["spec"]["containers"][0]
    container["readinessProbes"] = container.pop("readinessProbe")
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, VERSIONS[0], strict=True)


@pytest.mark.parametrize("name", SET_NAMES)
def test_operator_monitors_find_the_exporter(name: str) -> None:
    resources = resources_of(name)
    monitors = of_kind(resources, "ServiceMonitor") + of_kind(resources, "PodMonitor")
    assert len(monitors) == 1, f"{name}: one monitor, so every target is scraped once"
    (monitor,) = monitors
    assert monitor["apiVersion"] == OPERATOR
    selector = monitor["spec"]["selector"]["matchLabels"]
    workloads = [w for w, _ in exporters(resources)]
    assert workloads, name
    for workload in workloads:
        pod = pod_template(workload)
        assert pod is not None
        assert selects(workload["spec"]["selector"]["matchLabels"], pod["metadata"]["labels"])
        ports = {p["name"] for c in containers(workload) for p in c.get("ports", [])}
        if monitor["kind"] == "PodMonitor":
            assert selects(selector, pod["metadata"]["labels"]), name
            endpoints = monitor["spec"]["podMetricsEndpoints"]
            assert {e["port"] for e in endpoints} <= ports, name
            job_source = pod["metadata"]["labels"]
        else:
            services = [
                s
                for s in of_kind(resources, "Service")
                if selects(selector, s["metadata"]["labels"])
            ]
            assert len(services) == 1, f"{name}: the ServiceMonitor must select one Service"
            (service,) = services
            assert selects(service["spec"]["selector"], pod["metadata"]["labels"])
            assert {p["targetPort"] for p in service["spec"]["ports"]} <= ports
            endpoints = monitor["spec"]["endpoints"]
            assert {e["port"] for e in endpoints} <= {p["name"] for p in service["spec"]["ports"]}
            job_source = service["metadata"]["labels"]
        for endpoint in endpoints:
            relabeled = [
                r.get("replacement")
                for r in endpoint.get("relabelings", [])
                if r.get("targetLabel") == "job"
            ]
            job = relabeled[-1] if relabeled else job_source.get(monitor["spec"].get("jobLabel"))
            assert job == Settings().job, f"{name}: the alert rules select job={Settings().job}"
    if name == "sharded":
        (statefulset,) = of_kind(resources, "StatefulSet")
        (service,) = of_kind(resources, "Service")
        assert statefulset["spec"]["serviceName"] == service["metadata"]["name"]
        assert service["spec"]["clusterIP"] == "None"


@pytest.mark.parametrize("name", SET_NAMES)
def test_monitors_scrape_as_the_readme_says(name: str) -> None:
    readme = readme_scrape_config()
    for monitor in of_kind(resources_of(name), "ServiceMonitor") + of_kind(
        resources_of(name), "PodMonitor"
    ):
        spec = monitor["spec"]
        for endpoint in spec.get("endpoints", []) + spec.get("podMetricsEndpoints", []):
            assert endpoint["path"] == "/metrics"
            assert seconds(endpoint["interval"]) == seconds(readme["scrape_interval"])
            assert seconds(endpoint["scrapeTimeout"]) == seconds(readme["scrape_timeout"])


def test_prometheus_rule_is_the_generators_output() -> None:
    assert PROMETHEUS_RULE_FILE.read_text(encoding="utf-8") == render_prometheus_rule(), (
        "run: python -m alerts.generate --prometheus-rule"
    )
    (rule,) = load(PROMETHEUS_RULE_FILE)
    assert rule["apiVersion"] == OPERATOR and rule["kind"] == "PrometheusRule"
    assert rule["spec"] == yaml.safe_load(RULES_FILE.read_text(encoding="utf-8"))
    assert rule in resources_of("standalone") and rule in resources_of("sharded")


def test_promtool_accepts_the_prometheus_rules_spec(tmp_path: Path) -> None:
    promtool = require("promtool")
    (rule,) = load(PROMETHEUS_RULE_FILE)
    rules = tmp_path / "rules.yml"
    rules.write_text(yaml.safe_dump(rule["spec"]))
    count = sum(len(group["rules"]) for group in rule["spec"]["groups"])
    result = subprocess.run(
        [promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {count} rules found" in result.stdout


def sized_for(path: Path) -> int:
    """The fleet size a manifest's comment says its resources are sized for."""
    found = re.search(r"Sized for up to ([\d,]+) syncs", path.read_text(encoding="utf-8"))
    assert found, f"{path.relative_to(ROOT)} does not say which fleet its resources fit"
    return int(found.group(1).replace(",", ""))


def quantity(value: str) -> float:
    """A Kubernetes CPU (cores) or memory (MiB) quantity as a number."""
    units = {"m": 0.001, "Mi": 1.0, "Gi": 1024.0}
    match = re.fullmatch(r"([\d.]+)(m|Mi|Gi)?", str(value))
    assert match, value
    return float(match.group(1)) * units.get(match.group(2) or "", 1.0)


@pytest.mark.parametrize(
    "path",
    [
        KUBE / "standalone" / "deployment.yaml",
        KUBE / "sharded" / "statefulset.yaml",
        KUBE / "sidecar" / "deployment.yaml",
    ],
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_exporter_containers_are_locked_down_probed_and_sized(path: Path) -> None:
    resources = load(path)
    ((workload, container),) = exporters(resources)
    pod = workload["spec"]["template"]["spec"]
    pod_security = pod.get("securityContext", {})
    security = {**pod_security, **container["securityContext"]}
    assert security["runAsNonRoot"] is True and security["runAsUser"] > 0
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert pod["automountServiceAccountToken"] is False

    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert list(ports.values()) == [DEFAULT_PORT]
    assert flag(container, "web.listen-address") == f":{DEFAULT_PORT}"
    for probe, endpoint in (("livenessProbe", "/-/healthy"), ("readinessProbe", "/-/ready")):
        assert container[probe]["httpGet"]["path"] == endpoint
        assert container[probe]["httpGet"]["port"] in ports

    syncs = sized_for(path)
    requests, limits = container["resources"]["requests"], container["resources"]["limits"]
    memory = BASE_MIB + MIB_PER_1000 * syncs / 1000
    assert memory <= quantity(requests["memory"]) < quantity(limits["memory"]), (syncs, memory)
    scrape_cpu = CPU_SECONDS_PER_SYNC * syncs / quantity(limits["cpu"])
    assert scrape_cpu < seconds(readme_scrape_config()["scrape_timeout"]) / 2
    assert quantity(requests["cpu"]) <= quantity(limits["cpu"])
    assert container["image"] == f"{IMAGE}:{__version__}"

    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]["name"]], "/tmp is the only writable place"
    assert all(m.get("readOnly") for path, m in mounts.items() if path != "/tmp")


def test_the_shard_comes_from_the_pod_ordinal() -> None:
    (statefulset,) = of_kind(resources_of("sharded"), "StatefulSet")
    (container,) = containers(statefulset)
    env = {e["name"]: e for e in container["env"]}
    shard = flag(container, "collector.shard")
    variable = re.fullmatch(r"\$\((\w+)\)", shard or "")
    assert variable, shard
    field = env[variable.group(1)]["valueFrom"]["fieldRef"]["fieldPath"]
    assert field == "metadata.labels['apps.kubernetes.io/pod-index']"
    assert flag(container, "collector.total-shards") == str(statefulset["spec"]["replicas"])


def contents(resource: Resource) -> dict[str, str]:
    """The files a ConfigMap or Secret provides, by key."""
    if resource["kind"] == "ConfigMap":
        return dict(resource.get("data", {}))
    encoded = {k: base64.b64decode(v).decode() for k, v in resource.get("data", {}).items()}
    return {**encoded, **resource.get("stringData", {})}


def mounted_files(
    resources: list[Resource], workload: Resource, container: Resource
) -> dict[str, str]:
    """Every file the container sees from ConfigMaps and Secrets: path -> content."""
    data = {
        (r["kind"], r["metadata"]["name"]): contents(r)
        for r in resources
        if r["kind"] in {"ConfigMap", "Secret"}
    }
    volumes = {v["name"]: v for v in workload["spec"]["template"]["spec"]["volumes"]}
    files: dict[str, str] = {}
    for mount in container["volumeMounts"]:
        volume = volumes[mount["name"]]
        sources = volume.get("projected", {}).get("sources", [volume])
        for source in sources:
            for kind, field, name_key in (
                ("ConfigMap", "configMap", "name"),
                ("Secret", "secret", "secretName"),
            ):
                if field not in source:
                    continue
                name = source[field].get(name_key) or source[field].get("name")
                values = data[kind, name]
                items = source[field].get("items") or [{"key": k, "path": k} for k in values]
                for item in items:
                    files[f"{mount['mountPath']}/{item['path']}"] = values[item["key"]]
    return files


@pytest.mark.parametrize("name", SET_NAMES)
def test_every_file_the_exporter_reads_is_mounted(name: str) -> None:
    for workload, container in exporters(resources_of(name)):
        files = mounted_files(resources_of(name), workload, container)
        config_path = flag(container, "config.file")
        assert config_path in files, f"{name}: --config.file {config_path} is not mounted"
        named = re.findall(r"_file: (\S+)", files[config_path])
        web = flag(container, "web.config.file")
        assert named, name
        for path in [*named, *([web] if web else [])]:
            assert path in files, f"{name}: {path} is not mounted"


def materialize(name: str, tmp_path: Path) -> list[str]:
    """The exporter's files of a set written under tmp_path; the flags that read them."""
    ((workload, container),) = exporters(resources_of(name))
    files = mounted_files(resources_of(name), workload, container)
    mapped = {path: str(tmp_path / path.lstrip("/")) for path in files}
    for path, content in files.items():
        if "-----BEGIN PRIVATE KEY-----" in content:
            openssl = require("openssl")
            key_file = tmp_path / "generated.pem"
            subprocess.run(
                [openssl, "genpkey", "-algorithm", "RSA", "-out", str(key_file)],
                check=True,
                capture_output=True,
            )
            content = key_file.read_text()
        for original, local in mapped.items():
            content = content.replace(original, local)
        Path(mapped[path]).parent.mkdir(parents=True, exist_ok=True)
        Path(mapped[path]).write_text(content)
    flags = ["--config.file", mapped[str(flag(container, "config.file"))]]
    web = flag(container, "web.config.file")
    return flags + (["--web.config.file", mapped[web]] if web else [])


@pytest.mark.parametrize("name", ["standalone", "sidecar"])
def test_the_embedded_configs_pass_config_check(name: str, tmp_path: Path) -> None:
    """Expected to fail until the branch with Paragon signing keys and Terminal discovery merges."""
    result = run_exporter(*materialize(name, tmp_path), "--config.check")
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def basic_auth(header: str) -> tuple[str, str]:
    """User and password of an `Authorization: Basic` value."""
    scheme, _, encoded = header.partition(" ")
    assert scheme == "Basic"
    user, _, password = base64.b64decode(encoded).decode().partition(":")
    return user, password


def test_sidecar_probe_and_scrape_credentials_open_the_exporter(sim: Sim, tmp_path: Path) -> None:
    resources = resources_of("sidecar")
    ((workload, container),) = exporters(resources)
    files = mounted_files(resources, workload, container)
    web_path = str(flag(container, "web.config.file"))
    hashes = yaml.safe_load(files[web_path])["basic_auth_users"]
    headers = {
        probe: {h["name"]: h["value"] for h in container[probe]["httpGet"]["httpHeaders"]}
        for probe in ("livenessProbe", "readinessProbe")
    }
    probe_user, probe_password = basic_auth(headers["livenessProbe"]["Authorization"])
    assert bcrypt.checkpw(probe_password.encode(), hashes[probe_user].encode())
    (monitor,) = of_kind(resources, "PodMonitor")
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    secrets = {s["metadata"]["name"]: s.get("stringData", {}) for s in of_kind(resources, "Secret")}
    username = secrets[endpoint["basicAuth"]["username"]["name"]][
        endpoint["basicAuth"]["username"]["key"]
    ]
    password = secrets[endpoint["basicAuth"]["password"]["name"]][
        endpoint["basicAuth"]["password"]["key"]
    ]
    assert username != probe_user, "Prometheus and the kubelet use different users"
    assert bcrypt.checkpw(password.encode(), hashes[username].encode())

    web_config = tmp_path / "web-config.yml"
    web_config.write_text(files[web_path])
    config = tmp_path / "config.yml"
    config.write_text(
        subprocess.run(
            [
                sys.executable,
                "-m",
                "exporter.simulator",
                "--listen",
                sim.base.removeprefix("http://"),
                "--print-config",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "exporter",
        "--config.file",
        str(config),
        "--web.config.file",
        str(web_config),
        "--web.listen-address",
        f"127.0.0.1:{port}",
    ]
    with running(command, f"{url}/-/healthy", ready_headers=headers["livenessProbe"]):
        for probe, path in (("livenessProbe", "/-/healthy"), ("readinessProbe", "/-/ready")):
            assert httpx.get(f"{url}{path}", headers=headers[probe]).status_code == 200
            assert httpx.get(f"{url}{path}").status_code == 401
        scrape = httpx.get(f"{url}/metrics", auth=(username, password), timeout=30)
        assert scrape.status_code == 200 and "sync_up" in scrape.text
