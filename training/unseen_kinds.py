"""How the "neither" answer holds up on kinds of non-pet photo the model never saw.

    python -m training.unseen_kinds --hold church,tench,parachute [--data-dir data/prepared]
                                    [--params params.yaml] [--out unseen_kinds.json]

Outlier exposure trains on the non-pet kinds it is given, and the "neither" threshold is fitted on
their validation photos, so evaluate's held-out non-pets are kinds the model has seen. People upload
kinds nobody collected. This retrains with the named kinds (the first folder of a non-pet photo, as
`prepare` keeps it) removed from every non-pet split, with the same params, in a scratch folder and
a scratch MLflow store, then scores every photo of those kinds: the share answered "neither" at the
retrained model's own calibrated threshold, the share of the validation and test pets it flags,
and, for comparison, the original ImageNet head's share at the threshold that flags as many of
those pets. Takes one training run (~4 minutes on the shared photos, 2 cores).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from training.data import SPLITS, kind_of_file

PET_SPLITS = ("val", "test")  # the pets no training step saw


def split_off(data_dir: Path, hold: set[str], work: Path) -> np.ndarray:
    """Write a prepared-data folder in `work` without the `hold` kinds (the pet splits linked, not
    copied); return every photo of those kinds. ValueError names a kind the data does not have."""
    held, kinds = [], set()
    for split in SPLITS:
        path = data_dir / f"neither_{split}.npz"
        if not path.is_file():
            raise ValueError(
                f"{path} not found: prepare the data with non-pet photos (`make train NEITHER=folder`)"
            )
        with np.load(path) as data:
            images, files = data["images"], data["files"]
        of_kind = np.array([kind_of_file(str(f)) for f in files])
        kinds.update(of_kind)
        out = np.isin(of_kind, sorted(hold))
        np.savez(work / path.name, images=images[~out], files=files[~out])
        held.append(images[out])
        (work / f"{split}.npz").symlink_to((data_dir / f"{split}.npz").resolve())
    unknown = sorted(hold - kinds)
    if unknown:
        raise ValueError(f"no non-pet photos of kind(s) {unknown}; the data has: {', '.join(sorted(kinds))}")
    if kinds <= hold:
        raise ValueError("holding out every kind leaves no non-pet photos to train on: hold out fewer")
    return np.concatenate(held)


@contextlib.contextmanager
def scratch_mlflow(work: Path) -> Iterator[None]:
    """Runs inside log to a store in `work` (artifacts beside it, training/tracking.py): this run is
    a measurement, not a model anyone should find among the project's runs."""
    previous = os.environ.get("MLFLOW_TRACKING_URI")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{work / 'mlflow.db'}"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = previous


def measure(model_dir: Path, data_dir: Path, held: np.ndarray, batch_size: int) -> dict:
    """The shares on the held-out kinds and the unseen pets, for the retrained and the original model."""
    from training import model as model_folder
    from training.efficientnet import EfficientNetLite0
    from training.metrics import predict

    model, calibration = model_folder.load(model_dir)
    threshold = calibration.thresholds.neither_below
    pets = np.concatenate([np.load(data_dir / f"{split}.npz")["images"] for split in PET_SPLITS])
    kinds_pet, pets_pet = (predict(model, images, batch_size, bf16=False)[1] for images in (held, pets))
    flagged_pets = float(np.mean(pets_pet < threshold))
    original = EfficientNetLite0.pretrained()
    original_kinds, original_pets = (
        predict(original, images, batch_size, bf16=False)[1] for images in (held, pets)
    )
    # The original head at the threshold that flags (about) as many unseen pets as the retrained one.
    original_threshold = (
        float(np.quantile(original_pets, flagged_pets)) if flagged_pets > 0 else float(original_pets.min())
    )
    return {
        "held_out_photos": len(held),
        "neither_below": threshold,
        "held_out_flagged": float(np.mean(kinds_pet < threshold)),
        "pets": len(pets),
        "pets_flagged": flagged_pets,
        "original_head_held_out_flagged": float(np.mean(original_kinds < original_threshold)),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hold", required=True, help="comma-separated non-pet kinds to keep out of training")
    parser.add_argument("--data-dir", type=Path, default=Path("data/prepared"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--out", type=Path, help="also write the result as JSON here")
    args = parser.parse_args(argv)
    hold = {k.strip() for k in args.hold.split(",") if k.strip()}
    if not hold:
        parser.error("--hold names no kind")

    from training import train
    from training.params import TrainParams, load_section

    try:
        params = load_section(args.params, "train", TrainParams)
        if params.arch != "efficientnet_lite0":
            raise ValueError(f'train.arch is {params.arch}: only efficientnet_lite0 answers "neither"')
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="unseen-kinds-") as tmp:
        work = Path(tmp)
        try:
            held = split_off(args.data_dir, hold, work)
        except ValueError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
        with scratch_mlflow(work):
            code = train.main(
                ["--data-dir", str(work), "--out-dir", str(work / "model"), "--params", str(args.params)]
            )
        if code:
            return code
        result = {
            "held_out_kinds": sorted(hold),
            **measure(work / "model", args.data_dir, held, params.eval_batch_size),
        }
    print(
        f"kinds never trained on: {', '.join(result['held_out_kinds'])} ({result['held_out_photos']} photos)\n"
        f'answered "neither": {result["held_out_flagged"]:.1%} at the retrained model\'s threshold '
        f"{result['neither_below']:.4f}, which flags {result['pets_flagged']:.1%} of {result['pets']} unseen pets\n"
        f"the original ImageNet head, flagging as many of those pets: {result['original_head_held_out_flagged']:.1%}"
    )
    if args.out:
        args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
