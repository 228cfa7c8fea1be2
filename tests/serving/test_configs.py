"""The shipped TorchServe configs: hardened, consistent between local and container, and in step
with the handler's metrics. No server needed."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from serving import paths
from serving.package import Batching
from serving.ports import ADDRESS_KEYS, GRPC_KEYS, Ports
from serving.properties import read_properties, write_properties
from serving.server import LOCAL_CONFIG, METRICS_CONFIG, ModelSpec, TorchServe, model_state, startup_snapshot
from serving.store import MODEL_NAME

SERVING = LOCAL_CONFIG.parent
REPO = SERVING.parent
CONTAINER_CONFIG = SERVING / "config.container.properties"
# The only keys allowed to differ between the local and the container config, and why (see the files).
ALLOWED_DIFFERENCES = {
    "inference_address",  # 0.0.0.0 in the pod: the Service routes to it
    "metrics_address",  # 0.0.0.0 in the pod: Prometheus scrapes it
    "enable_model_api",  # off in the pod: versions ship as images
    "model_store",  # paths inside the image
    "metrics_config",
}


@pytest.fixture(scope="module")
def local() -> dict[str, str]:
    return read_properties(LOCAL_CONFIG)


@pytest.fixture(scope="module")
def container() -> dict[str, str]:
    return read_properties(CONTAINER_CONFIG)


def _host_port(address: str) -> tuple[str, int]:
    parts = urlsplit(address)
    return parts.hostname, parts.port


def test_local_and_container_configs_differ_only_where_documented(local, container):
    assert set(local) == set(container)
    differing = {key for key in local if local[key] != container[key]}
    assert differing <= ALLOWED_DIFFERENCES, f"unexpected differences: {differing - ALLOWED_DIFFERENCES}"


CONFIG_FILES = [LOCAL_CONFIG, CONTAINER_CONFIG, REPO / "k8s" / "base" / "config.properties"]


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_shipped_config_names_the_ports_and_model_defined_in_python(path):
    """Ports live in serving/ports.py and the model name in serving/store.py; the config files, which
    TorchServe reads and Python cannot generate at deploy time, must say the same."""
    props = read_properties(path)
    assert set(ADDRESS_KEYS.values()) | set(GRPC_KEYS.values()) <= set(props), "a port left to chance"
    assert Ports.from_properties(props) == Ports()
    assert "load_models" not in props  # model_snapshot decides, and TorchServe would ignore it


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_shipped_config_loads_the_archive_with_its_own_batching(path):
    """The static configs cannot read the archive: their model_snapshot must say what the shipped
    archive says (serving/package.py Batching) and what serving/server.py would write for it."""
    props = read_properties(path)
    shipped = Batching()
    state = model_state(f"{MODEL_NAME}.mar", props, shipped.size, shipped.max_delay_ms)
    assert (state["minWorkers"], state["responseTimeout"]) == (2, 30)
    assert json.loads(props["model_snapshot"]) == startup_snapshot({MODEL_NAME: {"1.0": state}})


def test_dockerfile_exposes_the_inference_and_metrics_ports_only():
    exposed = [
        line.split()[1:]
        for line in (REPO / "Dockerfile").read_text().splitlines()
        if line.startswith("EXPOSE")
    ]
    assert exposed == [[str(Ports().inference), str(Ports().metrics)]]


def test_a_server_without_explicit_ports_takes_the_config_files_ports(tmp_path, fake_archive):
    """Ports() defaults must never silently override what the config file says."""
    config = tmp_path / "config.properties"
    props = read_properties(LOCAL_CONFIG)
    props.update(Ports(9180, 9181, 9182, 9170, 9171).addresses(props))
    write_properties(props, config)
    server = TorchServe(tmp_path / "store", tmp_path / "run", base_config=config)
    assert server.ports == Ports(9180, 9181, 9182, 9170, 9171)
    assert server.inference_url == "http://127.0.0.1:9180"
    assert TorchServe(tmp_path / "store", tmp_path / "run").ports == Ports()  # the shipped local config


def test_default_paths_of_the_tools_are_where_dvc_yaml_writes():
    """serving/paths.py names the pipeline's outputs for the tools outside it; dvc.yaml decides them."""
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    outs = {
        str(next(iter(o)) if isinstance(o, dict) else o) for s in stages.values() for o in s.get("outs", [])
    }
    commands = " ".join(s["cmd"] for s in stages.values())
    assert str(paths.MLFLOW_RUN_FILE) in outs and str(paths.REFERENCE_PREDICTIONS) in outs
    assert f"{paths.MODEL_STORE}/{MODEL_NAME}.mar" in outs
    assert f"--out-dir {paths.MODEL_STORE}" in commands
    prepared = paths.TEST_SPLIT.parent
    assert str(prepared) in outs and f"--out-dir {prepared} " in commands


@pytest.mark.parametrize("name", ["local", "container"])
def test_management_and_grpc_never_leave_the_host_or_pod(name, request):
    props = request.getfixturevalue(name)
    assert _host_port(props["management_address"])[0] == "127.0.0.1"
    assert props["grpc_management_address"] == props["grpc_inference_address"] == "127.0.0.1"


def test_local_config_listens_on_loopback_only(local):
    for key in ("inference_address", "metrics_address"):
        assert _host_port(local[key])[0] == "127.0.0.1", key


@pytest.mark.parametrize("name", ["local", "container"])
def test_security_settings(name, request):
    props = request.getfixturevalue(name)
    assert props["disable_token_authorization"] == "true"  # documented decision: probes, expiring keys
    assert props["install_py_dep_per_model"] == "false"
    assert props["enable_envvars_config"] == "false"
    assert props["metrics_mode"] == "prometheus"
    assert props["model_metrics_auto_detect"] == "false"
    assert int(props["max_request_size"]) <= 16 * 1024 * 1024
    assert int(props["default_workers_per_model"]) == 2


@pytest.mark.parametrize("name", ["local", "container"])
def test_allowed_urls_match_no_url_and_no_store_file_name(name, request):
    # TorchServe matches each comma-separated regex against the whole URL, case-insensitively. A URL
    # that matches none is refused; a bare file name that matches none is loaded from model_store,
    # while one that DID match would be "downloaded" with java.net.URL and fail.
    patterns = [
        re.compile(p, re.IGNORECASE) for p in request.getfixturevalue(name)["allowed_urls"].split(",")
    ]
    candidates = [
        "http://example.com/catsdogs.mar",
        "https://evil.test/x.mar",
        "file:///etc/passwd",
        "file:///srv/catsdogs/model-store/catsdogs.mar",
        "s3://bucket/catsdogs.mar",
        "catsdogs.mar",
        "catsdogs-2.0.mar",
        "",
    ]
    assert not [c for c in candidates if any(p.fullmatch(c) for p in patterns)]


def test_container_config_has_the_model_api_off(container):
    assert container["enable_model_api"] == "false"


def test_metrics_config_declares_the_handler_metrics_exactly():
    ts_handler = pytest.importorskip("handler.ts_handler")
    model_metrics = yaml.safe_load(METRICS_CONFIG.read_text())["model_metrics"]
    declared = {
        m["name"]: (kind, m["unit"], set(m["dimensions"]))
        for kind, metrics in model_metrics.items()
        for m in metrics
    }
    for name, (metric_type, unit, dimensions) in ts_handler.METRICS.items():
        assert name in declared, f"{name} is emitted by the handler but not exported"
        assert declared[name] == (metric_type.value, unit, set(dimensions)), name


def test_metrics_config_keeps_torchserve_defaults():
    ts_configs = Path(pytest.importorskip("ts").__file__).parent / "configs" / "metrics.yaml"
    default = yaml.safe_load(ts_configs.read_text())["ts_metrics"]
    ours = yaml.safe_load(METRICS_CONFIG.read_text())["ts_metrics"]
    names = {m["name"] for kind in ours.values() for m in kind}
    wanted = {m["name"] for kind in default.values() for m in kind if not m["name"].startswith("GPU")}
    assert wanted <= names, f"missing TorchServe metrics: {wanted - names}"


def test_access_log_goes_to_its_own_file():
    root = ET.parse(SERVING / "log4j2.xml").getroot()
    appenders = {a.get("name"): a for a in root.find("Appenders")}
    access = next(lg for lg in root.find("Loggers") if lg.get("name") == "ACCESS_LOG")
    refs = {r.get("ref") for r in access.findall("AppenderRef")}
    assert "access_log" in refs and access.get("level") == "info"
    assert appenders["access_log"].get("fileName") == "${env:LOG_LOCATION:-logs}/access_log.log"


def test_effective_config_points_at_the_run(tmp_path, fake_archive):
    store = tmp_path / "store"
    store.mkdir()
    fake_archive(store / "catsdogs-1.0.mar")
    ports = Ports(1001, 1002, 1003, 1004, 1005)
    server = TorchServe(
        store,
        tmp_path / "run",
        ports=ports,
        models=[ModelSpec("catsdogs-1.0.mar", workers=1)],
        overrides={"job_queue_size": "7"},
    )
    props = server.config()
    assert props["inference_address"] == "http://127.0.0.1:1001"
    assert props["management_address"] == "http://127.0.0.1:1002"
    assert props["metrics_address"] == "http://127.0.0.1:1003"
    assert (props["grpc_inference_port"], props["grpc_management_port"]) == ("1004", "1005")
    assert props["model_store"] == str(store.resolve())
    assert "load_models" not in props and "models" not in props
    assert json.loads(props["model_snapshot"]) == {"name": "startup.cfg", "modelCount": 1, "models": {"catsdogs": {"1.0": {
        "defaultVersion": True, "marName": "catsdogs-1.0.mar", "minWorkers": 1, "maxWorkers": 1,
        "batchSize": 1, "maxBatchDelay": 100,  # fake_archive has no model config: TorchServe's defaults
        "responseTimeout": 30, "startupTimeout": 120}}}}  # the config's defaults
    assert props["job_queue_size"] == "7"
    assert props["disable_token_authorization"] == "true"
