"""Model versions on a running TorchServe, through its management API (127.0.0.1 only).

    python -m serving.versions [--management URL] [--model-store DIR] list
    python -m serving.versions register VERSION [--workers N]   # a .mar of that version in the store
    python -m serving.versions promote VERSION [--register]     # make it the default  (make promote)
    python -m serving.versions rollback                         # back one version     (make rollback)
    python -m serving.versions unregister VERSION               # never the default
    python -m serving.versions scale --workers N [--version V]

Rollback sets the default to the highest registered version below the current default. TorchServe
keeps no history of defaults, and a history file beside it would go stale whenever the server
restarts or someone calls the API directly; versions only move forward by `promote`, so in the
normal flow (promote 2.0 over 1.0, then roll back) this is exactly the previous default.
Exit status 1 with a sentence for unknown versions, a refused request or an unreachable server.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import requests

from serving.paths import MODEL_STORE
from serving.ports import local_url
from serving.store import MODEL_NAME, archive_batching, version_key, versions_in_store

DEFAULT_MANAGEMENT = local_url("management")


class VersionError(RuntimeError):
    """A version operation cannot be done; the message says why and what to do."""


class Versions:
    """The versions of one model on one TorchServe, registered from one local model store."""

    def __init__(
        self,
        management_url: str = DEFAULT_MANAGEMENT,
        model_store: Path = MODEL_STORE,
        model: str = MODEL_NAME,
        timeout: float = 120.0,
    ) -> None:
        self.url = management_url.rstrip("/")
        self.model_store = Path(model_store)
        self.model = model
        self.timeout = timeout

    def _call(self, method: str, path: str, **params) -> requests.Response:
        try:
            answer = requests.request(method, f"{self.url}{path}", params=params, timeout=self.timeout)
        except requests.RequestException as e:
            raise VersionError(
                f"TorchServe management API at {self.url} is not reachable ({type(e).__name__}); "
                "is it running (`make serve`)?"
            ) from e
        if answer.status_code == 405 and path.startswith("/models") and method in ("POST", "DELETE"):
            raise VersionError(
                f"the server refuses {method} {path}: its model API is off (enable_model_api=false), "
                "so versions are fixed at start (model_snapshot)"
            )
        if answer.status_code >= 400:
            try:
                message = answer.json().get("message", answer.text)
            except ValueError:
                message = answer.text or answer.reason
            raise VersionError(f"{method} {path} failed with {answer.status_code}: {message.strip()}")
        return answer

    def describe(self) -> list[dict]:
        """TorchServe's description of every registered version (GET /models/{model}/all)."""
        return self._call("GET", f"/models/{self.model}/all").json()

    def registered(self) -> list[str]:
        return sorted((v["modelVersion"] for v in self.describe()), key=version_key)

    def default(self) -> str:
        return self._call("GET", f"/models/{self.model}").json()[0]["modelVersion"]

    def register(self, version: str, workers: int = 1) -> str:
        available = versions_in_store(self.model_store, self.model)
        if version not in available:
            found = ", ".join(sorted(available, key=version_key)) or "none"
            raise VersionError(
                f"no {self.model} archive of version {version} in {self.model_store} (found: {found}); "
                f"build one with `make package` (version from params.yaml)"
            )
        if version in self.registered():
            raise VersionError(f"{self.model} {version} is already registered")
        # The archive's exact batching, passed explicitly: TorchServe reads an archive's delay of 0 as
        # 100 ms (serving/package.py Batching), the registration API takes it as is.
        batch_size, delay_ms = archive_batching(self.model_store / available[version])
        self._call("POST", "/models", url=available[version], initial_workers=workers, synchronous="true",
                   batch_size=batch_size, max_batch_delay=delay_ms)
        return available[version]

    def _require_registered(self, version: str) -> None:
        registered = self.registered()
        if version not in registered:
            raise VersionError(
                f"{self.model} {version} is not registered (registered: {', '.join(registered)}); "
                f"`register {version}` first"
            )

    def promote(self, version: str) -> None:
        self._require_registered(version)
        self._call("PUT", f"/models/{self.model}/{version}/set-default")

    def rollback(self) -> tuple[str, str]:
        """Make the highest version below the current default the default; (old, new)."""
        current = self.default()
        older = [v for v in self.registered() if version_key(v) < version_key(current)]
        if not older:
            raise VersionError(f"no registered version of {self.model} is older than the default {current}")
        self._call("PUT", f"/models/{self.model}/{older[-1]}/set-default")
        return current, older[-1]

    def unregister(self, version: str) -> None:
        self._require_registered(version)
        if version == self.default():
            raise VersionError(f"{self.model} {version} is the default version; promote another one first")
        self._call("DELETE", f"/models/{self.model}/{version}")

    def scale(self, workers: int, version: str | None = None) -> None:
        if workers < 1:
            raise VersionError(f"--workers must be at least 1, got {workers}")
        path = f"/models/{self.model}" + (f"/{version}" if version else "")
        if version:
            self._require_registered(version)
        self._call("PUT", path, min_worker=workers, max_worker=workers, synchronous="true")


def _table(versions: Versions) -> str:
    default = versions.default()
    rows = [f"{'version':<10} {'default':<8} {'workers ready':<14} archive"]
    for v in sorted(versions.describe(), key=lambda v: version_key(v["modelVersion"])):
        ready = f"{sum(w['status'] == 'READY' for w in v['workers'])}/{len(v['workers'])}"
        mark = "*" if v["modelVersion"] == default else ""
        rows.append(f"{v['modelVersion']:<10} {mark:<8} {ready:<14} {v['modelUrl']}")
    unregistered = sorted(
        set(versions_in_store(versions.model_store, versions.model)) - set(versions.registered()),
        key=version_key,
    )
    if unregistered:
        rows.append(f"in {versions.model_store}, not registered: {', '.join(unregistered)}")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Manage the versions of a model on a running TorchServe.")
    parser.add_argument("--management", default=DEFAULT_MANAGEMENT, help="management API URL")
    parser.add_argument("--model-store", type=Path, default=MODEL_STORE, help="the server's model store")
    parser.add_argument("--model", default=MODEL_NAME)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="registered versions, the default, workers")
    for name in ("register", "promote", "unregister"):
        command = sub.add_parser(name)
        command.add_argument("version")
        if name in ("register", "promote"):
            command.add_argument(
                "--workers", type=int, default=1, help="workers of a newly registered version"
            )
        if name == "promote":
            command.add_argument(
                "--register", action="store_true", help="register it from the store first if needed"
            )
    sub.add_parser("rollback", help="default := the highest registered version below the default")
    scale = sub.add_parser("scale")
    scale.add_argument("--workers", type=int, required=True)
    scale.add_argument("--version")
    args = parser.parse_args(argv)

    versions = Versions(args.management, args.model_store, args.model)
    try:
        if args.command == "list":
            print(_table(versions))
        elif args.command == "register":
            mar = versions.register(args.version, args.workers)
            print(f"Registered {args.model} {args.version} from {mar} ({args.workers} worker(s)).")
        elif args.command == "promote":
            if args.register and args.version not in versions.registered():
                mar = versions.register(args.version, args.workers)
                print(f"Registered {args.model} {args.version} from {mar} ({args.workers} worker(s)).")
            versions.promote(args.version)
            print(f"{args.model} {args.version} is now the default.")
        elif args.command == "rollback":
            old, new = versions.rollback()
            print(f"Rolled back {args.model}: default {old} -> {new}.")
        elif args.command == "unregister":
            versions.unregister(args.version)
            print(f"Unregistered {args.model} {args.version}.")
        else:
            versions.scale(args.workers, args.version)
            print(f"Scaled {args.model} {args.version or '(default version)'} to {args.workers} worker(s).")
    except VersionError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
