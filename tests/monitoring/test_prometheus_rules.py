"""Prometheus configuration and rules, checked by Debian's promtool (scripts/install_tools.sh prometheus).

promtool validates both scrape configs and the rules, runs the rule unit tests of
monitoring/prometheus/rules_test.yml, and, to show those tests can fail, runs them again against
rules where one alert is removed (its firing test must fail) or made to fire always (its quiet test
must fail). The PrometheusRule for the Operator must carry exactly the groups of rules.yml.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from monitoring import prometheusrule

PROMETHEUS = Path(__file__).resolve().parents[2] / "monitoring" / "prometheus"
RULES = PROMETHEUS / "rules.yml"
ALERTS = [r["alert"] for g in yaml.safe_load(RULES.read_text())["groups"] for r in g["rules"] if "alert" in r]


@pytest.fixture(scope="module")
def promtool() -> str:
    tool = shutil.which("promtool")
    if tool is None:
        pytest.skip("promtool not installed: scripts/install_tools.sh prometheus (Debian's prometheus)")
    return tool


def run(promtool: str, *args: str, cwd: Path = PROMETHEUS) -> subprocess.CompletedProcess:
    return subprocess.run(
        [promtool, *args], check=False, cwd=cwd, capture_output=True, text=True, timeout=120
    )


def test_scrape_config_and_rules_are_valid(promtool):
    result = run(promtool, "check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    result = run(promtool, "check", "rules", "rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_kubernetes_variant_is_valid_and_keeps_the_pod_annotations(promtool, tmp_path, repo_root):
    """Debian builds Prometheus without Kubernetes discovery, so promtool checks the rest of the job
    (relabelling, paths) with the discovery swapped for a static target."""
    config = yaml.safe_load((PROMETHEUS / "kubernetes.yml").read_text())
    (job,) = config["scrape_configs"]
    assert job["kubernetes_sd_configs"] == [{"role": "pod", "namespaces": {"names": ["catsdogs"]}}]
    annotations = yaml.safe_load((repo_root / "k8s/base/deployment.yaml").read_text())["spec"]["template"][
        "metadata"
    ]["annotations"]
    read = {
        label.removeprefix("__meta_kubernetes_pod_annotation_")
        for rule in job["relabel_configs"]
        for label in rule["source_labels"]
        if label.startswith("__meta_kubernetes_pod_annotation_")
    }
    assert read == {a.replace(".", "_").replace("/", "_") for a in annotations}
    del job["kubernetes_sd_configs"]
    job["static_configs"] = [{"targets": ["10.0.0.7:8082"]}]
    config["rule_files"] = [str(RULES)]
    (tmp_path / "kubernetes.yml").write_text(yaml.safe_dump(config))
    result = run(promtool, "check", "config", "kubernetes.yml", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_rule_unit_tests_pass(promtool):
    result = run(promtool, "test", "rules", "rules_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def checks_of(alert: str) -> dict:
    """rules_test.yml reduced to the alert checks of `alert` (the day-long series make a full run slow)."""
    suite = yaml.safe_load((PROMETHEUS / "rules_test.yml").read_text())
    groups = []
    for group in suite["tests"]:
        checks = [c for c in group.get("alert_rule_test", []) if c["alertname"] == alert]
        if checks:
            groups.append({**group, "alert_rule_test": checks, "promql_expr_test": []})
    return {**suite, "tests": groups}


def test_every_alert_has_a_firing_and_a_quiet_unit_test(promtool, tmp_path):
    rules = yaml.safe_load(RULES.read_text())
    assert len(ALERTS) >= 7
    for alert in ALERTS:
        tests = checks_of(alert)
        kinds = [bool(c.get("exp_alerts")) for g in tests["tests"] for c in g["alert_rule_test"]]
        assert True in kinds and False in kinds, f"{alert} needs a firing and a quiet check"
        for mutation in ("removed", "always firing"):
            mutated = yaml.safe_load(RULES.read_text())
            for group in mutated["groups"]:
                for rule in list(group["rules"]):
                    if rule.get("alert") != alert:
                        continue
                    if mutation == "removed":
                        group["rules"].remove(rule)
                    else:
                        rule["expr"] = "vector(1)"
                        rule.pop("for", None)
            assert mutated != rules
            (tmp_path / "rules.yml").write_text(yaml.safe_dump(mutated))
            (tmp_path / "rules_test.yml").write_text(yaml.safe_dump(tests))
            result = run(promtool, "test", "rules", "rules_test.yml", cwd=tmp_path)
            assert result.returncode != 0, f"no unit test notices {alert} {mutation}"
            assert alert in result.stdout + result.stderr, result.stdout


def test_prometheus_rule_carries_exactly_the_rules_file():
    resource = yaml.safe_load(prometheusrule.OUT.read_text())
    assert (resource["apiVersion"], resource["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    assert resource["spec"]["groups"] == yaml.safe_load(RULES.read_text())["groups"]
    assert prometheusrule.main(["--check"]) == 0, "run: python -m monitoring.prometheusrule"
