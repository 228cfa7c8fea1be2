"""The Grafana dashboard and PodMonitor: well-formed, and pointing at metrics and pods that exist.

The live test scrapes a real TorchServe (after predictions, a bad request and a versioned request, so
counters and histograms have samples) and checks each metric name in the dashboard's PromQL against
the metric families the server actually exports.
"""

from __future__ import annotations

import json
import re

import pytest
import requests
import yaml

from serving.ports import Ports

DASHBOARD = "monitoring/grafana-dashboard.json"
# In our queries a metric name is always followed by a selector or a range: name{...} or name[...].
METRIC_IN_QUERY = re.compile(r"\b([A-Za-z_:][A-Za-z0-9_:]*)\s*[{\[]")
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")


@pytest.fixture(scope="module")
def dashboard(repo_root) -> dict:
    return json.loads((repo_root / DASHBOARD).read_text())


def queries(dashboard: dict) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


def metric_names(dashboard: dict) -> set[str]:
    return {name for expr in queries(dashboard) for name in METRIC_IN_QUERY.findall(expr)}


def exported_families(text: str) -> dict[str, str]:
    """{family: type} from `# TYPE` lines, plus the sample names histograms expose."""
    families = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split()
            families[name] = kind
            if kind == "histogram":
                families.update({name + s: "histogram-part" for s in HISTOGRAM_SUFFIXES})
    return families


def test_dashboard_is_well_formed(dashboard):
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert (
        variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    )
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"] and all(t["expr"].strip() for t in panel["targets"]), panel["title"]
        for target in panel["targets"]:
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
    # The questions the dashboard must answer, by the metric that answers each.
    assert {
        "ts_inference_requests_total",
        "Requests5XX",
        "ts_inference_latency_microseconds",
        "PreprocessTimeMs_bucket",
        "PredictionsPerLabel",
    } <= metric_names(dashboard)


def test_metric_name_extraction_finds_names_not_functions():
    expr = 'sum by (le) (rate(PreprocessTimeMs_bucket[5m])) / sum(rate(x_total{model_name="m"}[1m]))'
    names = metric_names({"panels": [{"targets": [{"expr": expr}]}]})
    assert names == {"PreprocessTimeMs_bucket", "x_total"}


@pytest.mark.slow
def test_every_queried_metric_is_exported_by_a_live_server(server, jpeg, dashboard, scrape_until):
    url = f"{server.inference_url}/predictions/catsdogs"
    for path in ("", "/1.0"):
        assert requests.post(url + path, data=jpeg, headers={"Content-Type": "image/jpeg"}, timeout=30).ok
    assert (
        requests.post(
            url, data=b"not an image", headers={"Content-Type": "image/jpeg"}, timeout=30
        ).status_code
        == 400
    )
    wanted = metric_names(dashboard)
    exported = exported_families(
        scrape_until(server.metrics_url, lambda t: wanted <= set(exported_families(t)))
    )
    missing = sorted(wanted - set(exported))
    assert not missing, f"dashboard queries metrics the server does not export: {missing}"


def test_pod_monitor_selects_the_deployments_pods_and_metrics_port(repo_root):
    monitor = yaml.safe_load((repo_root / "monitoring" / "podmonitor.yaml").read_text())
    deployment = yaml.safe_load((repo_root / "k8s" / "base" / "deployment.yaml").read_text())
    template = deployment["spec"]["template"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= template["metadata"]["labels"].items()
    ports = {
        p["name"]: p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])
    }
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert ports[endpoint["port"]] == Ports().metrics
    annotations = template["metadata"]["annotations"]
    assert (annotations["prometheus.io/port"], annotations["prometheus.io/path"]) == (
        str(Ports().metrics),
        endpoint["path"],
    )
