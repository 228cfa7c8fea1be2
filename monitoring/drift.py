"""Drift report: is the live batch's output distribution still the one the evaluate stage saw?

Two tests, each flagged when p < alpha (default 0.01):
- label mix: the counts of each answer (cat, dog, unsure, neither), live vs reference (Pearson
  chi-square test of homogeneity), so a jump in "unsure" or "neither" is drift too;
- confidence: the predicted class's probability, live vs reference (two-sample Kolmogorov-Smirnov).
Either flag sets `drift: true`. With two tests the chance of a false alarm on an unchanged model and
population is at most 2 * alpha. Both tests look at model outputs only, so they need no labels.

    python -m monitoring.drift --live predictions_batch.json --reference plots/reference_predictions.json
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from handler.verdict import CLASS_NAMES, VERDICTS
from monitoring import OUT_DIR
from monitoring.stats import chi_square_homogeneity, ks_two_sample
from serving.paths import REFERENCE_PREDICTIONS

DEFAULT_ALPHA = 0.01
FEW_ITEMS = 30  # below this the tests have little power: say so in the report


def load_outputs(path: Path) -> tuple[list[str], list[float]]:
    """Predicted labels and confidences from a batch file (ours) or the evaluate stage's reference.

    Items are `{"prob_dog": p}` (reference) or `{"probabilities": {...}}` (a live batch); failed live
    items (no probabilities) are left out.
    """
    data = json.loads(path.read_text())
    items = data["items"] if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ValueError(f"{path}: expected a list of items or an object with an 'items' list")
    labels, confidences = [], []
    for n, item in enumerate(items):
        probabilities = item.get("probabilities")
        if "prob_dog" in item:
            prob_dog = float(item["prob_dog"])
        elif probabilities:
            prob_dog = float(probabilities["dog"])
        elif "error" in item:
            continue  # a live request that failed: no output to compare
        else:
            raise ValueError(f"{path}: item {n} has neither 'prob_dog' nor 'probabilities'")
        label = item.get("predicted") or item.get("predicted_label") or CLASS_NAMES[int(prob_dog >= 0.5)]
        labels.append(label)
        confidences.append(max(prob_dog, 1.0 - prob_dog))
    if not labels:
        raise ValueError(f"{path}: no item has a prediction")
    return labels, confidences


def label_counts(labels: Sequence[str]) -> dict[str, int]:
    unknown = set(labels) - set(VERDICTS)
    if unknown:
        raise ValueError(f"unknown labels {sorted(unknown)}; expected {VERDICTS}")
    return {name: sum(1 for label in labels if label == name) for name in VERDICTS}


def drift_report(
    live: tuple[list[str], list[float]],
    reference: tuple[list[str], list[float]],
    alpha: float = DEFAULT_ALPHA,
) -> dict:
    """Both tests on (labels, confidences) pairs -> a JSON-ready report."""
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be between 0 and 1, got {alpha}")
    live_counts, ref_counts = label_counts(live[0]), label_counts(reference[0])
    mix = chi_square_homogeneity(list(live_counts.values()), list(ref_counts.values()))
    conf = ks_two_sample(live[1], reference[1])
    tests = {
        "label_mix": {
            "test": "Pearson chi-square test of homogeneity on predicted-label counts",
            "statistic": round(mix.statistic, 6),
            "dof": mix.dof,
            "p_value": mix.p_value,
            "drift": mix.p_value < alpha,
            "live": _shares(live_counts),
            "reference": _shares(ref_counts),
        },
        "confidence": {
            "test": "two-sample Kolmogorov-Smirnov on the predicted class's probability",
            "statistic": round(conf.statistic, 6),
            "p_value": conf.p_value,
            "drift": conf.p_value < alpha,
            "live_mean": round(sum(live[1]) / len(live[1]), 6),
            "reference_mean": round(sum(reference[1]) / len(reference[1]), 6),
        },
    }
    few = len(live[0]) < FEW_ITEMS
    notes = [f"only {len(live[0])} live items: the tests can miss real shifts"] if few else []
    return {
        "alpha": alpha,
        "drift": any(t["drift"] for t in tests.values()),
        "live_items": len(live[0]),
        "reference_items": len(reference[0]),
        "tests": tests,
        "notes": notes,
    }


def _shares(counts: dict[str, int]) -> dict:
    total = sum(counts.values())
    return {"counts": counts, "shares": {k: round(v / total, 6) for k, v in counts.items()}}


def run(live_path: Path, reference_path: Path, out: Path, alpha: float, plot: Path | None) -> dict:
    """Load both files, write the report (and the plot), return the report."""
    live, reference = load_outputs(live_path), load_outputs(reference_path)
    report = drift_report(live, reference, alpha)
    report["live_file"], report["reference_file"] = str(live_path), str(reference_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    if plot is not None:
        from monitoring.plots import plot_drift  # matplotlib only when a plot is asked for

        plot_drift(live, reference, report, plot)
    return report


def describe(report: dict) -> str:
    mix, conf = report["tests"]["label_mix"], report["tests"]["confidence"]
    verdict = "DRIFT" if report["drift"] else "no drift"
    return (
        f"{verdict} at alpha={report['alpha']}: label mix p={mix['p_value']:.3g} "
        f"(live dog share {mix['live']['shares']['dog']:.2f} vs {mix['reference']['shares']['dog']:.2f}), "
        f"confidence KS D={conf['statistic']:.3f} p={conf['p_value']:.3g} "
        f"(mean {conf['live_mean']:.3f} vs {conf['reference_mean']:.3f})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--live", type=Path, default=OUT_DIR / "predictions_batch.json")
    parser.add_argument("--reference", type=Path, default=REFERENCE_PREDICTIONS)
    parser.add_argument("--out", type=Path, default=OUT_DIR / "drift_report.json")
    parser.add_argument("--plot", type=Path, default=OUT_DIR / "drift.png")
    parser.add_argument(
        "--alpha", type=float, default=DEFAULT_ALPHA, help="flag when p < alpha (default 0.01)"
    )
    parser.add_argument("--fail-on-drift", action="store_true", help="exit 1 when drift is flagged")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        report = run(args.live, args.reference, args.out, args.alpha, args.plot)
    except (OSError, ValueError, KeyError) as e:
        print(f"drift: cannot compare {args.live} with {args.reference}: {e}", file=sys.stderr)
        return 2
    print(describe(report))
    print(f"report: {args.out}" + (f", plot: {args.plot}" if args.plot else ""))
    return 1 if args.fail_on_drift and report["drift"] else 0


if __name__ == "__main__":
    sys.exit(main())
