"""The kustomize overlays, rendered by kubectl: schema-valid, secure, and consistent with the image and
the TorchServe container config (ports, paths, args, env)."""

from __future__ import annotations

import math
import re
from urllib.parse import urlsplit

import kubernetes_validate
import pytest

from tests.deploy.conftest import (
    CONTAINER_CONFIG,
    OVERLAYS,
    REPO_ROOT,
    dockerfile_exec_form,
    dockerfile_instructions,
    the,
)

KINDS = {"Namespace", "Deployment", "Service", "ConfigMap", "HorizontalPodAutoscaler",
         "PodDisruptionBudget", "NetworkPolicy"}


def port_of(config: dict[str, str], key: str) -> int:
    return urlsplit(config[key]).port


def containers(objects):
    return the(objects, "Deployment")["spec"]["template"]["spec"]["containers"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_object_is_valid_for_the_latest_kubernetes(rendered, overlay):
    version = kubernetes_validate.latest_version()
    for obj in rendered[overlay]:
        name = f"{obj['kind']}/{obj['metadata']['name']}"
        try:
            # strict: unknown fields are errors; a missing schema (removed apiVersion) raises too.
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as e:
            pytest.fail(f"{overlay}: {name} is invalid for Kubernetes {version}: {e.message} at {list(e.path)}")
        except kubernetes_validate.SchemaNotFoundError as e:
            pytest.fail(f"{overlay}: {name} has no schema in Kubernetes {version}: {e}")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_overlay_has_the_whole_service(rendered, overlay):
    assert {o["kind"] for o in rendered[overlay]} == KINDS
    api = {o["kind"]: o["apiVersion"] for o in rendered[overlay]}
    assert api["HorizontalPodAutoscaler"] == "autoscaling/v2"
    assert api["PodDisruptionBudget"] == "policy/v1"
    assert all(o["metadata"].get("namespace") == "catsdogs" for o in rendered[overlay] if o["kind"] != "Namespace")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_containers_have_probes_resources_and_pinned_images(rendered, overlay):
    for c in containers(rendered[overlay]):
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert probe in c, f"{c['name']} has no {probe}"
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(c["resources"].get(bound, {})), f"{c['name']}: {bound}"
        if "@" in c["image"]:
            assert re.fullmatch(r"[\w./-]+@sha256:[0-9a-f]{64}", c["image"]), f"bad digest reference {c['image']}"
        else:
            name, _, tag = c["image"].rpartition(":")
            assert name and "/" not in tag and tag not in ("", "latest"), f"unpinned image {c['image']}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_are_locked_down(rendered, overlay):
    pod = the(rendered[overlay], "Deployment")["spec"]["template"]["spec"]
    user = next(rest for keyword, rest in dockerfile_instructions() if keyword == "USER")
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert f"{pod['securityContext']['runAsUser']}:{pod['securityContext']['runAsGroup']}" == user
    assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
    assert pod["automountServiceAccountToken"] is False
    for c in pod["containers"]:
        sc = c["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_selectors_match_the_pod_labels(rendered, overlay):
    objects = rendered[overlay]
    deployment = the(objects, "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]

    def selects(selector: dict) -> bool:
        return bool(selector) and selector.items() <= labels.items()

    assert selects(deployment["spec"]["selector"]["matchLabels"])
    assert selects(the(objects, "Service")["spec"]["selector"])
    assert selects(the(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"])
    assert selects(the(objects, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"])
    target = the(objects, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_ports_agree_with_the_torchserve_config(rendered, overlay, container_config):
    objects = rendered[overlay]
    inference = port_of(container_config, "inference_address")
    management = port_of(container_config, "management_address")
    metrics = port_of(container_config, "metrics_address")
    assert urlsplit(container_config["management_address"]).hostname == "127.0.0.1"
    (c,) = containers(objects)
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": inference, "metrics": metrics}
    assert c["livenessProbe"]["httpGet"] == {"path": "/ping", "port": "http"}
    annotations = the(objects, "Deployment")["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert int(annotations["prometheus.io/port"]) == metrics
    # The Service: inference only; never management, whether by number or by name.
    for port in the(objects, "Service")["spec"]["ports"]:
        target = ports.get(port["targetPort"], port["targetPort"])
        assert target == inference and port["port"] != management, f"Service exposes {port}"
    # NetworkPolicy: inference from anywhere, metrics from the monitoring namespace, nothing else.
    policy = the(objects, "NetworkPolicy")["spec"]
    allowed = {ports.get(p["port"], p["port"]) for rule in policy["ingress"] for p in rule["ports"]}
    assert allowed == {inference, metrics}
    assert policy["egress"] == [] and "Egress" in policy["policyTypes"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_pod_runs_the_image_as_image_test_does(rendered, overlay):
    """Same args as the image's CMD and the same env values as its ENV: `docker run` == the pod."""
    (c,) = containers(rendered[overlay])
    assert c["args"] == dockerfile_exec_form("CMD")
    assert "command" not in c, "keep the image's ENTRYPOINT (tini forwards SIGTERM to TorchServe)"
    image_env = {}
    for keyword, rest in dockerfile_instructions():
        if keyword == "ENV":
            image_env.update(pair.split("=", 1) for pair in rest.split())
    for var in c["env"]:
        assert image_env.get(var["name"]) == var["value"], f"{var['name']} differs from the Dockerfile ENV"
    assert {"name": "OMP_NUM_THREADS", "value": "1"} in c["env"], "one OMP thread per worker"
    mounts = {m["mountPath"] for m in c["volumeMounts"]}
    assert {"/tmp", image_env["LOG_LOCATION"]} <= mounts, "writable dirs need volumes (read-only root)"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_probes_ask_about_the_model_with_the_mounted_config(rendered, overlay):
    objects = rendered[overlay]
    (c,) = containers(objects)
    ts_config = c["args"][c["args"].index("--ts-config") + 1]
    for probe in ("startupProbe", "readinessProbe"):
        command = c[probe]["exec"]["command"]
        assert command[:2] == ["python", "/srv/catsdogs/bin/model_ready.py"]
        assert command[command.index("--config") + 1] == ts_config
    healthcheck = next(rest for keyword, rest in dockerfile_instructions() if keyword == "HEALTHCHECK")
    assert "/srv/catsdogs/bin/model_ready.py" in healthcheck and ts_config in healthcheck
    # The ConfigMap holding the container config is mounted where --ts-config points.
    config_map = the(objects, "ConfigMap")
    assert config_map["data"]["config.properties"] == CONTAINER_CONFIG.read_text()
    volumes = the(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
    config_volume = next(v["name"] for v in volumes if v.get("configMap", {}).get("name") == config_map["metadata"]["name"])
    mount = next(m for m in c["volumeMounts"] if m["name"] == config_volume)
    assert f"{mount['mountPath']}/config.properties" == ts_config and mount["readOnly"] is True


def test_the_configmap_copy_is_the_serving_config():
    copy = REPO_ROOT / "k8s" / "base" / "config.properties"
    assert copy.read_text() == CONTAINER_CONFIG.read_text(), (
        "k8s/base/config.properties differs from serving/config.container.properties: "
        "cp serving/config.container.properties k8s/base/config.properties"
    )


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_hpa_alone_sets_the_replica_count(rendered, overlay):
    """A Deployment's spec.replicas resets what the HPA chose on every `kubectl apply`."""
    assert the(rendered[overlay], "HorizontalPodAutoscaler")["spec"]["minReplicas"] >= 2
    assert "replicas" not in the(rendered[overlay], "Deployment")["spec"], f"{overlay}: replicas fights the HPA"


def cpu(quantity: str) -> float:
    return float(quantity[:-1]) / 1000 if str(quantity).endswith("m") else float(quantity)


# What kind's control plane requests on its node (kube-apiserver 250m, controller-manager 200m,
# scheduler 100m, etcd 100m, two CoreDNS 100m each, kindnet 100m), and a 2-vCPU runner.
KIND_CONTROL_PLANE_CPU = 0.95
SMALLEST_RUNNER_CPU = 2.0


def test_the_kind_overlay_rolls_out_on_a_two_cpu_runner(rendered):
    objects = rendered["k8s/overlays/kind"]
    deployment = the(objects, "Deployment")["spec"]
    surge = deployment["strategy"]["rollingUpdate"]["maxSurge"]
    pods = the(objects, "HorizontalPodAutoscaler")["spec"]["minReplicas"] + surge
    (c,) = deployment["template"]["spec"]["containers"]
    needed = KIND_CONTROL_PLANE_CPU + pods * cpu(c["resources"]["requests"]["cpu"])
    assert needed <= SMALLEST_RUNNER_CPU, f"{pods} pods need {needed:.2f} CPUs with the control plane"


def test_the_rollout_timeout_covers_the_probes_worst_case_start(rendered):
    """CD's and scripts/kind.sh's timeout >= pods started one after another, each at the probes' limit."""
    objects = rendered["k8s/overlays/kind"]
    deployment = the(objects, "Deployment")["spec"]
    (c,) = deployment["template"]["spec"]["containers"]
    startup, readiness = c["startupProbe"], c["readinessProbe"]
    per_pod = (startup.get("initialDelaySeconds", 0) + startup["periodSeconds"] * startup["failureThreshold"]
               + readiness["periodSeconds"])
    waves = math.ceil(the(objects, "HorizontalPodAutoscaler")["spec"]["minReplicas"]
                      / deployment["strategy"]["rollingUpdate"]["maxSurge"])
    import yaml

    cd = yaml.safe_load((REPO_ROOT / ".github" / "workflows" / "cd.yml").read_text())
    script = re.search(r"TIMEOUT=\$\{ROLLOUT_TIMEOUT:-(\d+)s\}", (REPO_ROOT / "scripts" / "kind.sh").read_text())
    for timeout in (int(cd["env"]["ROLLOUT_TIMEOUT"].removesuffix("s")), int(script[1])):
        assert timeout >= waves * per_pod, f"rollout timeout {timeout} s < worst case {waves * per_pod} s"


def test_base_rolls_out_without_losing_capacity(rendered):
    deployment = the(rendered["k8s/base"], "Deployment")["spec"]
    assert deployment["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    pod = deployment["template"]["spec"]
    (c,) = pod["containers"]
    assert c["lifecycle"]["preStop"]["exec"]["command"][0] == "sleep"
    assert pod["terminationGracePeriodSeconds"] > int(c["lifecycle"]["preStop"]["exec"]["command"][1])


def test_kind_overlay_uses_the_loaded_image_and_a_node_port(rendered):
    objects = rendered["k8s/overlays/kind"]
    (c,) = containers(objects)
    assert c["imagePullPolicy"] == "IfNotPresent"
    assert c["image"].rpartition(":")[2].startswith("sha-")
    service = the(objects, "Service")["spec"]
    assert service["type"] == "NodePort" and [p.get("nodePort") for p in service["ports"]] == [30080]


def test_prod_overlay_pulls_the_release_by_digest_with_a_pull_secret(rendered):
    objects = rendered["k8s/overlays/prod"]
    (c,) = containers(objects)
    # What release.yml publishes, by digest (immutable), from a private registry with a secret.
    assert re.fullmatch(r"ghcr\.io/[\w.-]+/catsdogs@sha256:[0-9a-f]{64}", c["image"]), c["image"]
    pod = the(objects, "Deployment")["spec"]["template"]["spec"]
    assert pod["imagePullSecrets"] == [{"name": "ghcr-pull"}]
    assert the(objects, "HorizontalPodAutoscaler")["spec"]["minReplicas"] >= 3
    assert the(objects, "Service")["spec"]["type"] == "ClusterIP"
    assert the(objects, "Service")["spec"]["type"] == "ClusterIP"


def test_the_kserve_predictor_runs_the_image_like_the_deployment(rendered, container_config):
    """k8s/kserve/inferenceservice.yaml (a CRD: no schema to validate against here) stays in step."""
    import yaml

    service = yaml.safe_load((REPO_ROOT / "k8s" / "kserve" / "inferenceservice.yaml").read_text())
    assert (service["apiVersion"], service["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    (predictor,) = service["spec"]["predictor"]["containers"]
    (deployment,) = containers(rendered["k8s/overlays/prod"])
    assert predictor["image"] == deployment["image"]
    assert predictor["args"] == deployment["args"]
    assert predictor["readinessProbe"]["exec"] == deployment["readinessProbe"]["exec"]
    assert predictor["securityContext"]["readOnlyRootFilesystem"] is True
    # Current KServe's name for plain Deployments + HPA ("RawDeployment" is deprecated).
    annotations = service["metadata"]["annotations"]
    assert annotations["serving.kserve.io/deploymentMode"] == "Standard"
    assert "RawDeployment" not in yaml.safe_dump(service)
    # The same ports, by the names the NetworkPolicy admits; KServe's metrics annotations name 8082.
    objects = rendered["k8s/overlays/prod"]
    ports = {p["name"]: p["containerPort"] for p in predictor["ports"]}
    assert ports == {p["name"]: p["containerPort"] for p in deployment["ports"]}
    assert int(annotations["prometheus.kserve.io/port"]) == ports["metrics"]
    assert annotations["serving.kserve.io/enable-prometheus-scraping"] == "true"
    assert port_of(container_config, "inference_address") in ports.values()
    policy = the(objects, "NetworkPolicy")["spec"]
    assert {p["port"] for rule in policy["ingress"] for p in rule["ports"]} <= set(ports)
    labels = service["spec"]["predictor"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["predictor"]["annotations"]["prometheus.io/port"] == str(ports["metrics"])
