"""PNG plots of a monitoring batch: the confusion matrix, and live vs reference outputs (drift).

Figures are built with matplotlib's object API (`Figure`, rendered by Agg on save), so importing this
module never picks a GUI backend or changes pyplot's global state.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

LIVE, REFERENCE = "#d95f02", "#7570b3"


def plot_confusion(summary: dict, out: Path) -> Path:
    """Counts and row shares (rows: true label, so the diagonal is each class's recall); accuracy on top."""
    labels = summary["confusion_matrix"]["labels"]
    columns = summary["confusion_matrix"].get("columns", labels)  # the answers: cat, dog, unsure, neither
    counts = np.array(summary["confusion_matrix"]["rows_true_columns_predicted"])
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(1.6 + 1.3 * len(columns), 3.8), dpi=120)
    ax = fig.subplots()
    ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(counts):
        color = "white" if shares[i, j] > 0.6 else "black"  # readable on dark and light cells
        ax.text(j, i, f"{count}\n{shares[i, j]:.0%}", ha="center", va="center", color=color, fontsize=11)
    ax.set_xticks(range(len(columns)), columns)
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("answer")
    ax.set_ylabel("true")
    accuracy = summary["accuracy"]
    title = f"accuracy {accuracy:.1%}" if accuracy is not None else "no predictions"
    ax.set_title(f"{title} (n={summary['succeeded']}, errors={summary['errors']})", fontsize=10)
    return _save(fig, out)


def plot_drift(
    live: tuple[list[str], list[float]], reference: tuple[list[str], list[float]], report: dict, out: Path
) -> Path:
    """Two panels: confidence histograms (density) and predicted-label shares, live vs reference."""
    fig = Figure(figsize=(9, 3.6), dpi=120)
    left, right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2, 1]})
    bins = np.linspace(0.5, 1.0, 21)  # the predicted class's probability is always >= 0.5
    for values, name, color in ((reference[1], "reference", REFERENCE), (live[1], "live", LIVE)):
        left.hist(values, bins=bins, density=True, alpha=0.55, color=color, label=f"{name} (n={len(values)})")
    conf = report["tests"]["confidence"]
    left.set_title(
        f"confidence: KS D={conf['statistic']:.3f}, p={conf['p_value']:.2g}"
        + ("  DRIFT" if conf["drift"] else ""),
        fontsize=10,
    )
    left.set_xlabel("probability of the predicted class")
    left.set_ylabel("density")
    left.legend(fontsize=8, loc="upper left")

    mix = report["tests"]["label_mix"]
    names = list(mix["live"]["shares"])
    x = np.arange(len(names))
    for offset, key, color in ((-0.2, "reference", REFERENCE), (0.2, "live", LIVE)):
        shares = [mix[key]["shares"][n] for n in names]
        right.bar(x + offset, shares, width=0.4, color=color, label=key)
    right.set_xticks(x, names)
    right.set_ylim(0, 1)
    right.set_ylabel("share of predictions")
    right.set_title(
        f"label mix: chi2 p={mix['p_value']:.2g}" + ("  DRIFT" if mix["drift"] else ""), fontsize=10
    )
    right.legend(fontsize=8)
    fig.suptitle(
        f"live vs reference, alpha={report['alpha']}: {'DRIFT' if report['drift'] else 'no drift'}",
        fontsize=11,
    )
    return _save(fig, out)


def _save(fig: Figure, out: Path) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(out)
    return out
