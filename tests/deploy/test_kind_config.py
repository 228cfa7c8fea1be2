"""kind-config.yaml: the port mapping CD and `make kind-up` rely on, and a why for every line."""

from __future__ import annotations

import yaml

from tests.deploy.conftest import REPO_ROOT, the

KIND_CONFIG = REPO_ROOT / "kind-config.yaml"


def test_the_node_port_is_mapped_to_loopback_on_the_host(rendered):
    config = yaml.safe_load(KIND_CONFIG.read_text())
    assert (config["kind"], config["apiVersion"]) == ("Cluster", "kind.x-k8s.io/v1alpha4")
    roles = [node["role"] for node in config["nodes"]]
    assert roles.count("control-plane") == 1
    node_ports = {p["nodePort"] for p in the(rendered["k8s/overlays/kind"], "Service")["spec"]["ports"]}
    mappings = [m for node in config["nodes"] for m in node.get("extraPortMappings", [])]
    assert {m["containerPort"] for m in mappings} == node_ports
    for mapping in mappings:
        assert mapping["listenAddress"] == "127.0.0.1", "the model must not be published beyond the host"
        assert 30000 <= mapping["containerPort"] <= 32767
    # scripts/kind.sh and the smoke test call the host port.
    assert {m["hostPort"] for m in mappings} == {30080}
    assert "127.0.0.1:30080" in (REPO_ROOT / "scripts" / "kind.sh").read_text()


def test_every_setting_says_why():
    lines = KIND_CONFIG.read_text().splitlines()
    for number, line in enumerate(lines):
        content = line.split("#", 1)[0].strip()
        if not content:
            continue
        above = lines[number - 1].strip() if number else ""
        assert "#" in line or above.startswith("#"), f"kind-config.yaml:{number + 1} has no comment: {line!r}"


def test_the_node_image_is_pinned_by_digest():
    """A tag such as kindest/node:v1.36.1 can be re-pushed; the digest cannot (kind's release notes
    publish each node image by digest; cd.yml pins the kind release it belongs to)."""
    import re

    config = yaml.safe_load(KIND_CONFIG.read_text())
    for node in config["nodes"]:
        assert re.fullmatch(r"kindest/node:v[\d.]+@sha256:[0-9a-f]{64}", node.get("image", "")), node
