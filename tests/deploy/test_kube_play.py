"""scripts/kube_play.py's manifest: the rendered Deployment with only what one host needs changed.

`make kube-play` (run by .ci/run) plays it with podman for real; this checks, without podman, that the
pod it plays is the overlay's own: the same spec apart from the image, one replica and 127.0.0.1
host ports."""

from __future__ import annotations

import copy
import importlib.util

import pytest

from tests.deploy.conftest import REPO_ROOT


@pytest.fixture(scope="module")
def kube_play(kubectl):
    spec = importlib.util.spec_from_file_location("kube_play", REPO_ROOT / "scripts" / "kube_play.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_played_pod_is_the_rendered_one(kube_play, rendered):
    objects, published = kube_play.render(REPO_ROOT / "k8s" / "overlays" / "kind", "catsdogs:dev")
    (played,) = [o for o in objects if o["kind"] == "Deployment"]
    (original,) = [o for o in rendered["k8s/overlays/kind"] if o["kind"] == "Deployment"]
    assert [o["kind"] for o in objects] == ["ConfigMap", "Deployment"]
    (config_map,) = [o for o in rendered["k8s/overlays/kind"] if o["kind"] == "ConfigMap"]
    assert objects[0] == config_map

    expected = copy.deepcopy(original)
    expected["spec"]["replicas"] = 1
    (container,) = expected["spec"]["template"]["spec"]["containers"]
    container["image"] = "catsdogs:dev"
    for port in container["ports"]:
        port.update(hostIP="127.0.0.1", hostPort=published[port["containerPort"]])
    assert played == expected
    assert set(published) == {8080, 8082} and len(set(published.values())) == 2
