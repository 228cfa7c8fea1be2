"""Send a labelled batch to a live endpoint and report how the deployed model is doing.

    python scripts/collect_predictions.py [URL (default: the local server)] \
        [--source data/prepared/test.npz | --source RAW_FOLDER] [--sample 200 --seed 0] \
        [--protocol native|v1|v2] [--concurrency 4] [--timeout 10] \
        [--reference plots/reference_predictions.json] [--mlflow] [--min-accuracy 0.7]

Writes to --out-dir (default run/monitoring): predictions_batch.json (one entry per item: file, true
and predicted label, probabilities, latency_ms, model_version, HTTP status, error), summary.json
(accuracy, precision/recall per class, confusion matrix, latency p50/p95/p99, errors),
confusion_matrix.png, and with --reference drift_report.json + drift.png (see monitoring/drift.py).

Failed requests (HTTP errors, timeouts, refused connections) are recorded per item; the run goes on.
Exit status: 0 when the batch ran; 1 when every request failed, accuracy is below --min-accuracy, or
--fail-on-drift and drift was flagged; 2 when the command line or the input files are unusable.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a plain script from any directory

from monitoring import OUT_DIR, drift, tracking  # noqa: E402
from monitoring.collect import collect  # noqa: E402
from monitoring.plots import plot_confusion  # noqa: E402
from monitoring.sources import load_items  # noqa: E402
from monitoring.summary import summarize  # noqa: E402
from serving.client import PROTOCOLS, Endpoint  # noqa: E402
from serving.paths import MLFLOW_RUN_FILE, TEST_SPLIT  # noqa: E402
from serving.ports import local_url  # noqa: E402
from serving.store import MODEL_NAME  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "url", nargs="?", default=local_url("inference"), help="inference base URL (default: %(default)s)"
    )
    p.add_argument(
        "--source",
        type=Path,
        default=TEST_SPLIT,
        help="a prepared .npz split or a raw folder in a layout training accepts",
    )
    p.add_argument("--sample", type=int, help="send a seeded sample of this many items (default: all)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--protocol", choices=PROTOCOLS, default="native")
    p.add_argument("--model", default=MODEL_NAME)
    p.add_argument("--model-version", help="ask this version explicitly (default: the server's default)")
    p.add_argument("--concurrency", type=int, default=4, help="requests in flight at once")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    p.add_argument("--out-dir", type=Path, default=OUT_DIR)
    p.add_argument("--reference", type=Path, help="evaluate-stage reference: also write a drift report")
    p.add_argument("--alpha", type=float, default=drift.DEFAULT_ALPHA, help="drift threshold on p-values")
    p.add_argument("--min-accuracy", type=float, help="exit 1 when accuracy is below this")
    p.add_argument("--fail-on-drift", action="store_true")
    p.add_argument("--mlflow", action="store_true", help="log the summary as a run in MLflow")
    p.add_argument(
        "--mlflow-tracking-uri", help="default: MLFLOW_TRACKING_URI, else the training run's store"
    )
    p.add_argument("--mlflow-run-file", type=Path, default=MLFLOW_RUN_FILE)
    p.add_argument("--no-progress", action="store_true")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        endpoint = Endpoint(args.url, args.protocol, args.model, args.model_version)
        if args.reference is not None and not args.reference.is_file():
            raise FileNotFoundError(f"reference {args.reference} not found (the evaluate stage writes it)")
        items = load_items(args.source, args.sample, args.seed)
    except (OSError, ValueError) as e:
        print(f"collect: cannot start: {e}", file=sys.stderr)
        return 2
    if not items:
        print(f"collect: {args.source} holds no images to send", file=sys.stderr)
        return 2

    results = collect(items, endpoint, args.concurrency, args.timeout, progress=not args.no_progress)
    summary = summarize(results)
    meta = {
        "endpoint": endpoint.url,
        "protocol": endpoint.protocol,
        "source": str(args.source),
        "sample": args.sample,
        "seed": args.seed,
        "concurrency": args.concurrency,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    batch_file, summary_file = out / "predictions_batch.json", out / "summary.json"
    batch_file.write_text(json.dumps({**meta, "items": [r.to_dict() for r in results]}, indent=1) + "\n")
    summary_file.write_text(json.dumps({**meta, **summary}, indent=2) + "\n")
    artifacts = [batch_file, summary_file, plot_confusion(summary, out / "confusion_matrix.png")]
    print(describe(summary))

    report = None
    if args.reference is not None and summary["succeeded"]:
        try:
            report = drift.run(
                batch_file, args.reference, out / "drift_report.json", args.alpha, out / "drift.png"
            )
        except (OSError, ValueError, KeyError) as e:
            print(f"collect: no drift report: cannot read {args.reference}: {e}", file=sys.stderr)
            return 2
        artifacts += [out / "drift_report.json", out / "drift.png"]
        print(drift.describe(report))
    if args.mlflow:
        params = {k: str(v) for k, v in meta.items() if k != "created_at"}
        try:
            run_id = tracking.log_run(
                summary, params, artifacts, args.mlflow_run_file, args.mlflow_tracking_uri, drift=report
            )
        except Exception as e:  # MLflow fails in many ways (store, network, schema); the files are written
            print(f"collect: logging to MLflow failed: {e}", file=sys.stderr)
            return 1
        print(f"MLflow monitoring run: {run_id}")
    print(f"wrote {', '.join(str(p) for p in artifacts)}")
    return exit_status(summary, report, args.min_accuracy, args.fail_on_drift)


def describe(summary: dict) -> str:
    lat = summary["latency_ms"]
    acc = "n/a" if summary["accuracy"] is None else f"{summary['accuracy']:.3f}"
    kinds = f" {summary['errors_by_kind']}" if summary["errors_by_kind"] else ""
    return (
        f"{summary['succeeded']}/{summary['items']} answered, {summary['errors']} errors{kinds}; "
        f"accuracy {acc}; latency ms p50 {lat['p50']} "
        f"p95 {lat['p95']} p99 {lat['p99']}; versions {summary['model_versions']}"
    )


def exit_status(summary: dict, report: dict | None, min_accuracy: float | None, fail_on_drift: bool) -> int:
    if summary["succeeded"] == 0:
        print("collect: every request failed; see predictions_batch.json for the errors", file=sys.stderr)
        return 1
    if min_accuracy is not None and summary["accuracy"] < min_accuracy:
        print(
            f"collect: accuracy {summary['accuracy']:.3f} is below --min-accuracy {min_accuracy}",
            file=sys.stderr,
        )
        return 1
    if fail_on_drift and report is not None and report["drift"]:
        print("collect: drift flagged (--fail-on-drift)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
