#!/usr/bin/env bash
# `make demo`: the main job end to end, offline. The DVC pipeline (on a fresh clone: the embedded
# SYNTHETIC dataset) -> trained, evaluated, packaged model -> a local TorchServe -> predictions on all
# three protocols -> a labelled batch with accuracy, latency and drift -> Prometheus metrics -> stop.
# Run through make (it provides the venv on PATH and PYTHONPATH). The server is always stopped.
set -euo pipefail

run_dir=run/demo
# Ports live in serving/ports.py only.
url=${SERVE_URL:-$(python -m serving.ports inference)}
metrics_url=${METRICS_URL:-$(python -m serving.ports metrics)}
# The synthetic drawings are easy: a working pipeline clears this on their test split, while a
# coin-flip model (broken labels, preprocessing or training) does not. Real photos: set it yourself.
min_accuracy=${DEMO_MIN_ACCURACY:-0.75}

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

step "1/5 DVC pipeline: data -> prepare -> train -> evaluate -> package (dvc repro; unchanged stages are skipped)"
dvc repro package
python - "$min_accuracy" <<'PY'
import json, sys
floor = float(sys.argv[1])
report = json.load(open("data/prepared/report.json"))
metrics = json.load(open("metrics.json"))
kind = "the embedded SYNTHETIC dataset (drawings, not photos)" if report["synthetic"] else report["source"]
counts = report["counts"]
print(f"data: {kind}: {counts['kept']} images kept, {counts['skipped']} skipped, {counts['duplicates']} duplicates")
print(f"test split: accuracy {metrics['accuracy']:.3f}, F1 {metrics['f1']:.3f} ({metrics['n']} images)")
if metrics["accuracy"] < floor:
    sys.exit(f"demo FAILED: test accuracy {metrics['accuracy']:.3f} is below the floor {floor} (DEMO_MIN_ACCURACY)")
PY

step "2/5 TorchServe on models/catsdogs.mar (logs in $run_dir)"
python -m serving.serve stop --run-dir "$run_dir" >/dev/null
trap 'step "stopping TorchServe"; python -m serving.serve stop --run-dir "$run_dir"' EXIT
python -m serving.serve start --run-dir "$run_dir"

step "3/5 Smoke test: /ping, a cat and a dog on the native, KServe v1 and OIP v2 routes, and garbage -> 400"
# Pictures of the kind the model learnt from: the synthetic drawings when it was trained on them.
images=()
if python -c 'import json, sys; sys.exit(not json.load(open("data/prepared/report.json"))["synthetic"])'; then
  images=(--images data/synthetic)
fi
python scripts/smoke_test.py "$url" --timeout 60 "${images[@]}"

step "4/5 A labelled batch (the test split) against the live endpoint, with drift vs the evaluate stage"
python scripts/collect_predictions.py "$url" \
  --reference plots/reference_predictions.json --out-dir "$run_dir/monitoring" --min-accuracy "$min_accuracy"

step "5/5 Prometheus metrics ($metrics_url/metrics)"
curl -fsS "$metrics_url/metrics" | grep -E '^(ts_inference_requests_total|PredictionsPerLabel)' || true

printf '\nDone. Artefacts: models/ (model.pt, catsdogs.mar), metrics.json, plots/, %s/monitoring/,\n' "$run_dir"
printf 'MLflow runs in mlflow.db (make mlflow-ui). Real photos: make data, then make train DATA=data/raw.\n'
