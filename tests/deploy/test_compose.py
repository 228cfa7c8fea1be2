"""compose.yaml and the Grafana provisioning it mounts, checked without an engine.

`make compose-test` (scripts/compose.sh test, run by .ci/run) runs the `catsdogs` service for real;
the monitoring images cannot be pulled here, so their wiring is checked instead: pinned images, the
mounted files exist, Prometheus scrapes the service's metrics port, Grafana's provisioned datasource
points at the Prometheus service and its dashboard provider at the mounted dashboard, read-only.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
import yaml

from tests.deploy.conftest import REPO_ROOT, dockerfile_instructions

COMPOSE = REPO_ROOT / "compose.yaml"
GRAFANA = REPO_ROOT / "monitoring" / "grafana" / "provisioning"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def deployment() -> dict:
    return yaml.safe_load((REPO_ROOT / "k8s" / "base" / "deployment.yaml").read_text())


def mounts(service: dict) -> dict[str, str]:
    """{target in the container: source on the host} of a service's bind mounts."""
    out = {}
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith("./"):
            out[target] = source
    return out


def test_debian_docker_compose_reads_it():
    """docker-compose 1.29 validates the file against its Compose spec schema (no engine needed)."""
    tool = shutil.which("docker-compose")
    if tool is None:
        pytest.skip("docker-compose not installed: scripts/install_tools.sh compose")
    result = subprocess.run(
        [tool, "-f", str(COMPOSE), "--profile", "monitoring", "config", "--services"],
        check=False,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == {"catsdogs", "prometheus", "grafana"}


def test_catsdogs_runs_as_the_deployment_does(compose, deployment):
    service = compose["services"]["catsdogs"]
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    security = container["securityContext"]
    assert service["user"] == f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}"
    assert service["read_only"] is security["readOnlyRootFilesystem"] is True
    assert service["cap_drop"] == security["capabilities"]["drop"] == ["ALL"]
    assert (
        security["allowPrivilegeEscalation"] is False and "no-new-privileges:true" in service["security_opt"]
    )
    emptydirs = {v["name"] for v in pod["volumes"] if "emptyDir" in v}
    writable = {m["mountPath"] for m in container["volumeMounts"] if m["name"] in emptydirs}
    assert {t.split(":")[0] for t in service["tmpfs"]} == writable
    assert service["mem_limit"].removesuffix("g") == container["resources"]["limits"]["memory"].removesuffix(
        "Gi"
    )
    assert "command" not in service and "entrypoint" not in service, "the image's own args"
    assert service["image"] == "${IMAGE:-catsdogs:dev}"
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert re.search(r"^IMAGE \?= catsdogs:dev$", makefile, re.MULTILINE)


def test_catsdogs_healthcheck_is_the_images(compose):
    (healthcheck,) = [rest for keyword, rest in dockerfile_instructions() if keyword == "HEALTHCHECK"]
    image_cmd = json.loads(healthcheck.split(" CMD ", 1)[1])
    service = compose["services"]["catsdogs"]["healthcheck"]
    assert service["test"] == ["CMD", *image_cmd]
    for option in ("interval", "timeout", "start_period", "retries"):
        assert f"--{option.replace('_', '-')}={service[option]}" in healthcheck, option


def test_ports_are_on_loopback_by_default_and_management_is_not_published(compose):
    ports = compose["services"]["catsdogs"]["ports"]
    assert ports == [
        "${BIND:-127.0.0.1}:${HTTP_PORT:-8080}:8080",
        "${BIND:-127.0.0.1}:${METRICS_PORT:-8082}:8082",
    ]
    for service in compose["services"].values():
        assert all(p.startswith("${BIND:-127.0.0.1}:") for p in service.get("ports", [])), service
        assert not any(p.endswith(":8081") for p in service.get("ports", []))


def test_monitoring_images_are_pinned_and_in_the_profile(compose):
    for name in ("prometheus", "grafana"):
        service = compose["services"][name]
        assert service["profiles"] == ["monitoring"]
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", service["image"]), service["image"]
    assert "profiles" not in compose["services"]["catsdogs"], "`make up` alone serves predictions"


def test_prometheus_mounts_our_config_and_scrapes_the_service(compose):
    service = compose["services"]["prometheus"]
    assert mounts(service) == {"/etc/prometheus": "./monitoring/prometheus"}
    assert "--config.file=/etc/prometheus/prometheus.yml" in service["command"]
    config = yaml.safe_load((REPO_ROOT / "monitoring/prometheus/prometheus.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["static_configs"] == [{"targets": ["catsdogs:8082"]}]
    assert all((REPO_ROOT / "monitoring/prometheus" / f).is_file() for f in config["rule_files"])


def test_grafana_provisions_the_datasource_and_dashboard_read_only(compose):
    service = compose["services"]["grafana"]
    bound = mounts(service)
    assert bound["/etc/grafana/provisioning"] == "./monitoring/grafana/provisioning"
    dashboard_target = next(t for t, s in bound.items() if s == "./monitoring/grafana-dashboard.json")
    for source in bound.values():
        assert (REPO_ROOT / source).exists(), source
    env = service["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true" and env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert env["GF_AUTH_DISABLE_LOGIN_FORM"] == "true" and env["GF_USERS_ALLOW_SIGN_UP"] == "false"
    assert env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"] == dashboard_target

    (datasource,) = yaml.safe_load((GRAFANA / "datasources" / "prometheus.yml").read_text())["datasources"]
    listen = next(
        a for a in compose["services"]["prometheus"]["command"] if a.startswith("--web.listen-address")
    )
    assert datasource["url"] == f"http://prometheus:{listen.rsplit(':', 1)[1]}"
    assert datasource["type"] == "prometheus" and datasource["isDefault"] and not datasource["editable"]

    (provider,) = yaml.safe_load((GRAFANA / "dashboards" / "catsdogs.yml").read_text())["providers"]
    assert provider["type"] == "file" and provider["options"]["path"] == dashboard_target.rsplit("/", 1)[0]
    assert provider["allowUiUpdates"] is False
    dashboard = json.loads((REPO_ROOT / "monitoring/grafana-dashboard.json").read_text())
    variable = next(v for v in dashboard["templating"]["list"] if v["type"] == "datasource")
    assert variable["query"] == datasource["type"]


def test_scripts_refuse_unknown_commands():
    for script, arg, message in (
        ("scripts/install_tools.sh", "bogus", "unknown tool 'bogus'"),
        ("scripts/compose.sh", "bogus", "usage"),
    ):
        result = subprocess.run(
            [script, arg], check=False, cwd=REPO_ROOT, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 2 and message in result.stderr, (script, result.stderr)
