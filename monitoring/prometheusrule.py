"""The Prometheus Operator's PrometheusRule for the catsdogs alerts, generated from rules.yml.

    python -m monitoring.prometheusrule            # rewrite monitoring/prometheusrule.yaml
    python -m monitoring.prometheusrule --check    # exit 1 when the file differs from rules.yml

monitoring/prometheus/rules.yml is the one source of the rules (promtool checks and unit-tests it);
the PrometheusRule carries its groups unchanged, so a cluster with the Operator evaluates exactly
what the tests fired. tests/monitoring/test_prometheus_rules.py runs the check.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
RULES = ROOT / "monitoring" / "prometheus" / "rules.yml"
OUT = ROOT / "monitoring" / "prometheusrule.yaml"

HEADER = """\
# GENERATED from monitoring/prometheus/rules.yml by `python -m monitoring.prometheusrule`: edit that
# file, not this one (tests/monitoring fail when the two differ).
# For clusters with the Prometheus Operator, beside monitoring/podmonitor.yaml; the Prometheus
# resource's ruleSelector must match these labels:
#   kubectl apply -n catsdogs -f monitoring/prometheusrule.yaml
"""


class _Dumper(yaml.SafeDumper):
    """Multi-line PromQL as literal blocks (`|`), as rules.yml writes it, and lists indented."""

    def increase_indent(self, flow: bool = False, indentless: bool = False):
        return super().increase_indent(flow, False)


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render(rules_file: Path = RULES) -> str:
    groups = yaml.safe_load(rules_file.read_text())["groups"]
    resource = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {
            "name": "catsdogs",
            "labels": {"app.kubernetes.io/name": "catsdogs", "app.kubernetes.io/component": "monitoring"},
        },
        "spec": {"groups": groups},
    }
    return HEADER + yaml.dump(resource, Dumper=_Dumper, sort_keys=False, width=110, default_flow_style=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        if not OUT.exists() or OUT.read_text() != text:
            print(
                f"{OUT.relative_to(ROOT)} is stale: run python -m monitoring.prometheusrule", file=sys.stderr
            )
            return 1
        return 0
    OUT.write_text(text)
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
