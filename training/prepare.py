"""DVC `prepare` stage: raw image folder -> 224x224 train/val/test arrays and a data report.

    python -m training.prepare --raw-dir DIR --out-dir data/prepared [--params params.yaml]

Writes `<out>/{train,val,test}.npz` (`images` uint8 N x 224 x 224 x 3, `labels` int64, `files` paths
relative to the raw root) and `<out>/report.json`, which accounts for every file found: kept, skipped
with the reason, or removed as a duplicate. Decoding runs in a small process pool; decoded pixels go
to a scratch memory-mapped file, not RAM, so the full Kaggle set fits in a few hundred MB.

Non-pet photos (prepare.neither_dir, any subfolders) pass the same validation, de-duplication (a
file also found among the pets is a conflict: both copies are dropped and reported) and seeded
split, per kind (first subfolder), into `<out>/neither_{train,val,test}.npz` (`images`, `files`
relative to that folder), and the report's `neither` section. Unset (""), the section is null; an
empty folder writes no neither_* files; either way the model trains without outlier photos and the
log says so. `training.data.load_neither(data_dir, split)` reads them back (None when absent).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import sys
import time
import zipfile
from multiprocessing import Pool
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from tqdm import tqdm

from handler.preprocess import CLASS_NAMES, DEFAULT_MAX_PIXELS, IMAGE_SIZE
from training.data import (
    IMAGE_EXTENSIONS,
    NEITHER_LABEL,
    SPLITS,
    DataError,
    Decoded,
    SourceFile,
    check_apart,
    decode_file,
    deduplicate,
    discover,
    discover_neither,
    drop_pet_lookalikes,
    find_class_dirs,
    kind_of,
    split,
    split_by_kind,
)
from training.params import load_section
from training.synthetic import SYNTHETIC_MARKER

logger = logging.getLogger(__name__)
_WRITE_CHUNK = 256  # images per write when copying a split out of the scratch file


@dataclasses.dataclass(frozen=True)
class PrepareParams:
    """The `prepare:` section of params.yaml."""

    raw_dir: str = "data/synthetic"  # used when --raw-dir is not given
    neither_dir: str = ""  # non-pet photos, any subfolders; "" (or an empty folder): none
    seed: int = 42
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        held_out = self.val_fraction + self.test_fraction
        if min(self.val_fraction, self.test_fraction) < 0 or held_out >= 1:
            raise ValueError("prepare.val_fraction and prepare.test_fraction must be >= 0 and sum to < 1")


def _decode(job: tuple[SourceFile, int]) -> Decoded:
    return decode_file(*job)


def decode_all(
    candidates: list[SourceFile], max_pixels: int, scratch: np.ndarray, workers: int
) -> list[Decoded]:
    """Decode every candidate in a pool; pixels land in scratch[i], results keep only metadata."""
    results: list[Decoded] = []
    jobs = [(c, max_pixels) for c in candidates]
    with Pool(workers) as pool:
        stream = pool.imap(_decode, jobs, chunksize=8)
        for i, item in enumerate(tqdm(stream, total=len(jobs), desc="decode", unit="img")):
            if item.image is not None:
                scratch[i] = item.image
                item = dataclasses.replace(item, image=None)
            results.append(item)
    return results


def write_split(
    path: Path, scratch: np.ndarray, rows: list[int], labels: list[int] | None, files: list[str]
) -> None:
    """Write one split as an uncompressed .npz, copying images in chunks so RAM stays small.
    Non-pet splits have no labels (None): their pictures are no class of the model."""
    part = path.with_name(path.name + ".part")  # never leave a half-written file under the real name
    header = {"descr": "|u1", "fortran_order": False, "shape": (len(rows), IMAGE_SIZE, IMAGE_SIZE, 3)}
    with zipfile.ZipFile(part, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
        with archive.open("images.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, header)
            for start in range(0, len(rows), _WRITE_CHUNK):
                f.write(np.ascontiguousarray(scratch[rows[start : start + _WRITE_CHUNK]]).tobytes())
        arrays = [("files", np.array(files, dtype=str))]
        if labels is not None:
            arrays.insert(0, ("labels", np.array(labels, dtype=np.int64)))
        for name, array in arrays:
            with archive.open(f"{name}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, array, allow_pickle=False)
    part.replace(path)


def prepare(raw_dir: Path, out_dir: Path, params: PrepareParams, workers: int = 2) -> dict[str, Any]:
    """Run the whole stage; returns the report (also written to out_dir/report.json)."""
    candidates, skipped = discover(raw_dir)
    found = len(candidates) + len(skipped)  # skipped so far: files with unsupported extensions
    if not candidates:
        kinds = " ".join(sorted(IMAGE_EXTENSIONS))
        raise DataError(f"No image files ({kinds}) in the cat/dog folders under {raw_dir}.")
    neither_dir = Path(params.neither_dir) if params.neither_dir else None
    others: list[SourceFile] = []
    others_skipped: list[dict[str, str]] = []
    if neither_dir is not None:
        check_apart(raw_dir, neither_dir)
        others, others_skipped = discover_neither(neither_dir)
    others_found = len(others) + len(others_skipped)
    everything = candidates + others
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("neither_*.npz"):  # from an earlier run with other non-pet photos
        stale.unlink()
    scratch_path = out_dir / "decoded.scratch.npy"
    scratch = np.lib.format.open_memmap(
        scratch_path, mode="w+", dtype=np.uint8, shape=(len(everything), IMAGE_SIZE, IMAGE_SIZE, 3)
    )
    try:
        decoded = decode_all(everything, params.max_pixels, scratch, workers)
        # Keyed by label group too: a non-pet file may share its relative path with a pet file.
        row_of = {(c.label == NEITHER_LABEL, c.file): i for i, c in enumerate(everything)}
        pets = [d for d in decoded if d.source.label != NEITHER_LABEL]
        non_pets = [d for d in decoded if d.source.label == NEITHER_LABEL]
        skipped += [{"file": d.source.file, "reason": d.reason} for d in pets if d.reason]
        others_skipped += [{"file": d.source.file, "reason": d.reason} for d in non_pets if d.reason]
        unique, duplicates, conflicts = deduplicate([d for d in pets if d.reason is None])
        skipped += conflicts
        unique_others, others_duplicates, _ = deduplicate([d for d in non_pets if d.reason is None])
        unique, unique_others, conflicts, others_conflicts = drop_pet_lookalikes(
            unique, unique_others, neither_dir or Path()
        )
        skipped += conflicts
        others_skipped += others_conflicts
        for label, name in enumerate(CLASS_NAMES):
            if not any(d.source.label == label for d in unique):
                raise DataError(f"No usable {name} images under {raw_dir}; see the skipped files above.")
        if others and not unique_others:
            raise DataError(
                f"None of the {len(others)} image files under {neither_dir} (prepare.neither_dir) is usable: "
                f"{_first_reasons(others_skipped)}"
            )
        splits = split(unique, params.seed, params.val_fraction, params.test_fraction)
        for name, members in splits.items():
            write_split(
                out_dir / f"{name}.npz",
                scratch,
                [row_of[False, d.source.file] for d in members],
                [d.source.label for d in members],
                [d.source.file for d in members],
            )
        other_splits = split_by_kind(unique_others, params.seed, params.val_fraction, params.test_fraction)
        if unique_others:
            for name, members in other_splits.items():
                write_split(
                    out_dir / f"neither_{name}.npz",
                    scratch,
                    [row_of[True, d.source.file] for d in members],
                    None,
                    [d.source.file for d in members],
                )
    finally:
        del scratch
        scratch_path.unlink(missing_ok=True)
    report = build_report(raw_dir, params, found, splits, skipped, duplicates)
    report["neither"] = (
        None
        if neither_dir is None
        else neither_report(neither_dir, others_found, other_splits, others_skipped, others_duplicates)
    )
    if not unique_others:
        why = "prepare.neither_dir is not set" if neither_dir is None else f"no image files in {neither_dir}"
        logger.warning("prepare: no non-pet photos (%s): the model trains without outlier photos", why)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def _first_reasons(skipped: list[dict[str, str]], n: int = 3) -> str:
    return "; ".join(f"{s['file']}: {s['reason']}" for s in skipped[:n]) + (
        "; ..." if len(skipped) > n else ""
    )


def neither_report(
    neither_dir: Path,
    found: int,
    splits: dict[str, list[Decoded]],
    skipped: list[dict[str, str]],
    duplicates: list[dict[str, str]],
) -> dict[str, Any]:
    """The report's `neither` section: found = kept + skipped + duplicates, as for the pets."""
    kept = [d for members in splits.values() for d in members]
    kinds: dict[str, int] = {}
    for d in kept:
        kinds[kind_of(d)] = kinds.get(kind_of(d), 0) + 1
    return {
        "source": str(neither_dir),
        "synthetic": is_synthetic_neither(neither_dir),
        "counts": {
            "found": found,
            "kept": len(kept),
            "skipped": len(skipped),
            "duplicates": len(duplicates),
            "splits": {name: len(members) for name, members in splits.items()},
        },
        "kinds": dict(sorted(kinds.items())),
        "skipped": sorted(skipped, key=lambda s: s["file"]),
        "duplicates": sorted(duplicates, key=lambda d: d["file"]),
    }


def is_synthetic_neither(neither_dir: Path) -> bool:
    """True when the generator's marker sits in the non-pet folder or the folder above it."""
    return any((folder / SYNTHETIC_MARKER).is_file() for folder in (neither_dir, neither_dir.parent))


def is_synthetic(raw_dir: Path) -> bool:
    """True when the generator's marker sits in the raw root or beside the class folders."""
    folders = {raw_dir} | {d.parent for d in find_class_dirs(raw_dir)}
    return any((folder / SYNTHETIC_MARKER).is_file() for folder in folders)


def build_report(
    raw_dir: Path,
    params: PrepareParams,
    found: int,
    splits: dict[str, list[Decoded]],
    skipped: list[dict[str, str]],
    duplicates: list[dict[str, str]],
) -> dict[str, Any]:
    per_split = {
        name: {
            **{cls: sum(d.source.label == i for d in members) for i, cls in enumerate(CLASS_NAMES)},
            "total": len(members),
        }
        for name, members in splits.items()
    }
    kept = sum(len(members) for members in splits.values())
    return {
        "source": str(raw_dir),
        "synthetic": is_synthetic(raw_dir),
        "seed": params.seed,
        "params": dataclasses.asdict(params),
        "counts": {
            # found = kept + skipped + duplicates: every file is accounted for.
            "found": found,
            "kept": kept,
            "skipped": len(skipped),
            "duplicates": len(duplicates),
            "splits": per_split,
        },
        "skipped": sorted(skipped, key=lambda s: s["file"]),
        "duplicates": sorted(duplicates, key=lambda d: d["file"]),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw-dir", type=Path, help="raw image folder (default: prepare.raw_dir in params)")
    parser.add_argument("--out-dir", type=Path, required=True, help="where the .npz splits and report go")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="reads its prepare: section")
    parser.add_argument("--workers", type=int, default=2, help="decoding processes (default 2)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    started = time.perf_counter()
    try:
        params = load_section(args.params, "prepare", PrepareParams)
        raw_dir = args.raw_dir or Path(params.raw_dir)
        params = dataclasses.replace(params, raw_dir=str(raw_dir))  # the report shows what was used
        report = prepare(raw_dir, args.out_dir, params, max(1, args.workers))
    except (DataError, ValueError, yaml.YAMLError, OSError) as e:
        print(f"prepare: error: {e}", file=sys.stderr)
        return 1
    counts = report["counts"]
    sizes = " / ".join(f"{name} {counts['splits'][name]['total']}" for name in SPLITS)
    logger.info(
        "prepare: %d files found in %s%s: %d kept (%s), %d skipped, %d duplicates -> %s in %.1f s",
        counts["found"],
        raw_dir,
        " (SYNTHETIC)" if report["synthetic"] else "",
        counts["kept"],
        sizes,
        counts["skipped"],
        counts["duplicates"],
        args.out_dir,
        time.perf_counter() - started,
    )
    neither = report["neither"]
    if neither is not None and neither["counts"]["kept"]:
        n = neither["counts"]
        logger.info(
            "prepare: non-pet photos: %d files found in %s%s: %d kept (%s), %d skipped, %d duplicates",
            n["found"],
            neither["source"],
            " (SYNTHETIC)" if neither["synthetic"] else "",
            n["kept"],
            " / ".join(f"{name} {n['splits'][name]}" for name in SPLITS),
            n["skipped"],
            n["duplicates"],
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
