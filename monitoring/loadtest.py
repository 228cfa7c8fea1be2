"""`make loadtest`: load, worker-fault and version-switch scenarios against a local TorchServe; one table.

    python -m monitoring.loadtest [--clients 8] [--duration 10] [--kill-at 3] [--workers 2]

Builds a throw-away model store (catsdogs 1.0 and 2.0 from seeded fresh weights, serving/samples.py:
speed depends on the architecture, not the weights), starts TorchServe on free loopback ports with the
shipped config through serving/server.py, runs the scenarios and stops it. tests/monitoring runs the
same scenario functions and asserts on them. Exit status 1 if a scenario broke its target
(load: zero errors; fault: failures <= requests in flight on the killed worker; switch: zero errors).
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from monitoring.faults import WorkerError, kill_worker_and_wait
from monitoring.load import LoadResult, run_load
from serving.client import Endpoint
from serving.package import PackageError
from serving.ports import Ports
from serving.samples import fresh_store, noise_jpeg
from serving.server import ModelSpec, ServerError, TorchServe
from serving.store import MODEL_NAME, read_model_config
from serving.versions import VersionError, Versions


def load_scenario(server: TorchServe, image: bytes, clients: int, duration_s: float) -> LoadResult:
    return run_load(Endpoint(server.inference_url), image, clients, duration_s)


def fault_scenario(
    server: TorchServe, image: bytes, clients: int, duration_s: float, kill_at_s: float
) -> LoadResult:
    """Load, and SIGKILL one worker at `kill_at_s`; `action` is the Kill with its recovery time."""
    return run_load(
        Endpoint(server.inference_url),
        image,
        clients,
        duration_s,
        during=lambda: kill_worker_and_wait(server.management_url),
        during_at_s=kill_at_s,
    )


def switch_scenario(
    server: TorchServe, image: bytes, clients: int, duration_s: float, switches: int = 3
) -> LoadResult:
    """Load while 2.0 is promoted over 1.0 and rolled back `switches` times; 2.0 is registered first
    and unregistered after. `action` is the sequence of defaults set."""
    versions = Versions(server.management_url, server.model_store)
    versions.register("2.0", workers=1)
    pause = duration_s / (2 * switches + 2)

    def switch() -> list[str]:
        defaults = []
        for _ in range(switches):
            versions.promote("2.0")
            defaults.append(versions.default())
            time.sleep(pause)
            versions.rollback()
            defaults.append(versions.default())
            time.sleep(pause)
        return defaults

    try:
        return run_load(
            Endpoint(server.inference_url), image, clients, duration_s, during=switch, during_at_s=pause
        )
    finally:
        if versions.default() != "1.0":
            versions.promote("1.0")
        versions.unregister("2.0")


def in_flight_bound(server: TorchServe) -> int:
    """Requests one worker can hold at once: its batch size (a worker takes one batch at a time)."""
    return max(read_model_config(server.model_store / spec.mar).get("batchSize", 1) for spec in server.models)


def table(rows: list[tuple[str, LoadResult]], bound: int) -> str:
    header = (
        f"{'scenario':<16}{'requests':>9}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"{'failed in fault':>17}{'recovery s':>12}"
    )
    lines = [header, "-" * len(header)]
    for name, result in rows:
        kill = result.action if name == "worker fault" else None
        lines.append(
            f"{name:<16}{len(result.calls):>9}{result.throughput:>8.1f}{_ms(result.latency_ms['p50']):>9}"
            f"{_ms(result.latency_ms['p99']):>9}{len(result.failures):>8}"
            f"{(f'{len(result.failures)} (<= {bound})' if kill else '-'):>17}"
            f"{(f'{kill.recovered_s:.1f}' if kill else '-'):>12}"
        )
    return "\n".join(lines)


def run_scenarios(args: argparse.Namespace, image: bytes) -> tuple[list[tuple[str, LoadResult]], int]:
    """Build the store, start the server, run the three scenarios, stop; (rows, in-flight bound)."""
    with tempfile.TemporaryDirectory(prefix=f"{MODEL_NAME}-loadtest-") as tmp:
        store = fresh_store(Path(tmp) / "store")
        server = TorchServe(
            store,
            Path(tmp) / "run",
            ports=Ports.free(),
            models=[ModelSpec(f"{MODEL_NAME}-1.0.mar", workers=args.workers)],
        )
        print(f"starting TorchServe ({args.workers} workers) on 127.0.0.1:{server.ports.inference}...")
        with server:
            run_load(
                Endpoint(server.inference_url), image, clients=2, duration_s=1.0
            )  # warm-up, not reported
            rows = [("load", load_scenario(server, image, args.clients, args.duration))]
            rows.append(
                ("worker fault", fault_scenario(server, image, args.clients, args.duration, args.kill_at))
            )
            rows.append(("version switch", switch_scenario(server, image, args.clients, args.duration)))
        return rows, in_flight_bound(server)  # while the store still exists


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"  # None: no request succeeded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per scenario")
    parser.add_argument("--kill-at", type=float, default=3.0, help="seconds into the fault scenario")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    image = noise_jpeg()
    load_before = os.getloadavg()[0]  # other work on the machine skews every number: say how much there was
    try:
        rows, bound = run_scenarios(args, image)
    except (ServerError, PackageError, VersionError, WorkerError) as e:
        print(f"loadtest: could not run the scenarios: {e}", file=sys.stderr)
        return 1
    print(
        f"\n{args.clients} clients x {args.duration:.0f} s per scenario, {args.workers} workers x 1 thread, "
        f"{platform.machine()} with {os.cpu_count()} cores, payload {len(image)} B JPEG, "
        f"load average {load_before:.1f} before / {os.getloadavg()[0]:.1f} after\n"
    )
    print(table(rows, bound))
    results = dict(rows)
    broken = [
        name
        for name, ok in (
            ("load", not results["load"].failures),
            ("worker fault", len(results["worker fault"].failures) <= bound),
            ("version switch", not results["version switch"].failures),
        )
        if not ok
    ]
    for name in broken:
        errors = {c.result.error for c in results[name].failures}
        print(f"{name}: target missed; errors: {sorted(errors)[:5]}", file=sys.stderr)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
