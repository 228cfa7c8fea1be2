"""`make serve` / `make stop` / status: the local TorchServe of this checkout, under run/torchserve/.

    python -m serving.serve start [--model-store models] [--run-dir run/torchserve] [--timeout 120]
    python -m serving.serve stop  [--run-dir run/torchserve]
    python -m serving.serve status [--run-dir run/torchserve]

`start` builds nothing: it needs models/catsdogs.mar (`make package`), starts TorchServe in the
background on the standard ports and returns once the model's workers are READY. `stop` is safe to
re-run. Exit status 1 with a sentence on any failure.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from serving.paths import MODEL_STORE, SERVER_RUN_DIR
from serving.server import ServerError, TorchServe
from serving.store import MODEL_NAME, ArchiveError

logger = logging.getLogger(__name__)


def start(server: TorchServe, timeout: float) -> int:
    mar = server.model_store / f"{MODEL_NAME}.mar"
    if not mar.is_file():
        print(f"error: {mar} not found: run `make package` first", file=sys.stderr)
        return 1
    if server.pid is not None:
        print(
            f"TorchServe already runs (pid {server.pid}); `make stop` first to restart it with a new package"
        )
        return 0
    try:
        server.start()
        print(f"Starting TorchServe (pid {server.pid}), waiting up to {timeout:.0f} s for {MODEL_NAME}...")
        server.wait_ready(timeout)
    except (ServerError, ArchiveError) as e:
        server.stop()
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(
        f"TorchServe is ready (pid {server.pid}), logs in {server.run_dir}\n"
        f"  inference   {server.inference_url}/predictions/{MODEL_NAME}   (also /v1, /v2 routes)\n"
        f"  management  {server.management_url}/models/{MODEL_NAME}      (127.0.0.1 only)\n"
        f"  metrics     {server.metrics_url}/metrics\n"
        f"Try: make predict IMG=path/to/photo.jpg ; stop with: make stop"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=["start", "stop", "status"])
    parser.add_argument("--model-store", type=Path, default=MODEL_STORE)
    parser.add_argument("--run-dir", type=Path, default=SERVER_RUN_DIR)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for READY workers")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    server = TorchServe(args.model_store, args.run_dir)
    if args.action == "start":
        return start(server, args.timeout)
    if args.action == "stop":
        pid = server.pid
        print(f"Stopped TorchServe (pid {pid})." if server.stop() else "TorchServe is not running.")
        return 0
    if server.pid is None:
        print("TorchServe is not running.")
        return 1
    print(f"TorchServe runs (pid {server.pid}): {server.inference_url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
