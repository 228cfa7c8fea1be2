#!/usr/bin/env python3
"""Exit 0 when every model TorchServe loads at startup has a READY worker; else 1 with a sentence.

TorchServe's `/ping` says Healthy before any worker has loaded the model, and the inference port has
no GET route that reports a model's state, so "the model answers" is asked of the management API,
which listens on localhost inside the container only. This is the image's HEALTHCHECK and the pod's
startup and readiness probe:

    python /srv/catsdogs/bin/model_ready.py --config /srv/catsdogs/config/config.properties

The management address and the model names come from that config file (management_address, and
model_snapshot or load_models), so they have one source of truth. Standard library only: it runs
inside the image, where the repository's packages are not installed.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from pathlib import Path


def read_properties(path: Path) -> dict[str, str]:
    """key=value lines of a TorchServe config.properties (comments and blank lines skipped)."""
    props = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "!")) and "=" in line:
            key, value = line.split("=", 1)
            props[key.strip()] = value.strip()
    return props


def model_names(props: dict[str, str]) -> list[str]:
    """The models TorchServe loads at start: the names in model_snapshot (a JSON object, which wins
    when present, as in TorchServe) or in load_models (`name=file.mar,...` or `file.mar,...`)."""
    if "model_snapshot" in props:
        try:
            return sorted(json.loads(props["model_snapshot"])["models"])
        except (ValueError, KeyError, TypeError):
            return []
    names = []
    for entry in filter(None, (part.strip() for part in props.get("load_models", "").split(","))):
        name = entry.split("=", 1)[0] if "=" in entry else entry.removesuffix(".mar")
        names.append(name)
    return names


def not_ready(management_url: str, model: str, timeout: float) -> str | None:
    """None when `model` has a READY worker, else the reason."""
    url = f"{management_url.rstrip('/')}/models/{model}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (http on loopback)
            description = json.load(response)
    except (urllib.error.URLError, OSError, ValueError) as e:
        return f"{url}: {e}"
    workers = [w for version in description for w in version.get("workers", [])]
    if not any(w.get("status") == "READY" for w in workers):
        states = ", ".join(w.get("status", "?") for w in workers) or "no workers"
        return f"model {model} has no READY worker ({states})"
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="TorchServe config.properties")
    parser.add_argument("--timeout", type=float, default=3.0, help="seconds per HTTP request")
    args = parser.parse_args(argv)
    props = read_properties(args.config)
    management = props.get("management_address")
    models = model_names(props)
    if not management:
        print(f"{args.config}: names no management_address", file=sys.stderr)
        return 1
    if not models:
        print(f"{args.config}: names no model to load (model_snapshot or load_models)", file=sys.stderr)
        return 1
    reasons = [r for r in (not_ready(management, m, args.timeout) for m in models) if r]
    if reasons:
        print("not ready: " + "; ".join(reasons), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
