"""Find, validate, de-duplicate and split the raw cat and dog images, and the optional non-pet photos.

The library half of the `prepare` stage (`python -m training.prepare` is the command): it turns a
folder in any accepted layout into a list of decoded, unique images assigned to train/val/test.
Every file found is accounted for: kept, skipped (with the reason) or removed as a duplicate.
Non-pet photos (prepare.neither_dir: any files under any subfolders) go through the same steps
under their own label, NEITHER_LABEL; `load_neither` reads the split files prepare writes for them.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from handler.preprocess import CLASS_NAMES, DEFAULT_MAX_PIXELS, IMAGE_SIZE, InvalidImage, load_image
from handler.verdict import NEITHER
from training.layouts import ACCEPTED_LAYOUTS, CLASS_DIR_NAMES, CONTAINER_DIR_NAMES, IMAGE_EXTENSIONS

# Reading a file is the one step before the pixel limit applies; no real photo comes near this.
MAX_FILE_BYTES = 64 * 1024 * 1024
SPLITS = ("train", "val", "test")
# Non-pet photos carry the label after the classes: never a model target, only a data-side marker.
NEITHER_LABEL = len(CLASS_NAMES)
LABEL_NAMES = (*CLASS_NAMES, NEITHER)


class DataError(ValueError):
    """The raw folder cannot be used; the message says why and what is accepted."""


@dataclass(frozen=True)
class SourceFile:
    """One file found in a class folder: `file` is its path relative to the raw root."""

    path: Path
    file: str
    label: int


@dataclass(frozen=True)
class Decoded:
    """A decode attempt: `image` is set when the file is usable, `reason` when it is not."""

    source: SourceFile
    sha256: str
    image: np.ndarray | None = None
    reason: str | None = None


def find_class_dirs(root: Path) -> list[Path]:
    """The cat and dog folders under `root` (in CLASS_NAMES order), or DataError."""
    if not root.is_dir():
        raise DataError(f"Raw data folder {root} does not exist or is not a folder.")
    containers = [root] + [d for d in _subdirs(root) if d.name.lower() in CONTAINER_DIR_NAMES]
    for container in containers:
        found = _class_dirs_in(container)
        if all(found):
            return found
    raise DataError(
        f"No cat/dog folders found under {root}; accepted layouts (names case-insensitive, "
        f"singular or plural): {ACCEPTED_LAYOUTS}."
    )


def _subdirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir())


def _class_dirs_in(folder: Path) -> list[Path | None]:
    found: list[Path | None] = [None] * len(CLASS_NAMES)
    for sub in _subdirs(folder):
        for label, names in enumerate(CLASS_DIR_NAMES):
            if sub.name.lower() in names:
                if found[label] is not None:
                    raise DataError(
                        f"Both {found[label].name}/ and {sub.name}/ in {folder} could hold the "
                        f"{CLASS_NAMES[label]} images; keep one of them."
                    )
                found[label] = sub
    return found


def discover(root: Path) -> tuple[list[SourceFile], list[dict[str, str]]]:
    """Every file in the class folders: image candidates, and the rest as skipped entries."""
    candidates: list[SourceFile] = []
    skipped: list[dict[str, str]] = []
    for label, class_dir in enumerate(find_class_dirs(root)):
        # Not `is_file()`: a broken link must be reported as unreadable, not silently left out.
        for path in sorted(p for p in class_dir.rglob("*") if not p.is_dir()):
            file = path.relative_to(root).as_posix()
            if path.suffix.lower() in IMAGE_EXTENSIONS:
                candidates.append(SourceFile(path, file, label))
            else:
                suffix = path.suffix or "(none)"
                skipped.append({"file": file, "reason": f"unsupported file type {suffix}"})
    return candidates, skipped


def discover_neither(root: Path) -> tuple[list[SourceFile], list[dict[str, str]]]:
    """Every file under the non-pet folder, any subfolders (e.g. <kind>/*.jpg): candidates (with
    `file` relative to that folder) and the rest as skipped entries."""
    if not root.is_dir():
        raise DataError(
            f"Non-pet photo folder {root} (prepare.neither_dir) does not exist or is not a folder."
        )
    candidates: list[SourceFile] = []
    skipped: list[dict[str, str]] = []
    for path in sorted(p for p in root.rglob("*") if not p.is_dir()):
        file = path.relative_to(root).as_posix()
        if path.suffix.lower() in IMAGE_EXTENSIONS:
            candidates.append(SourceFile(path, file, NEITHER_LABEL))
        else:
            skipped.append({"file": file, "reason": f"unsupported file type {path.suffix or '(none)'}"})
    return candidates, skipped


def check_apart(raw_dir: Path, neither_dir: Path) -> None:
    """DataError when the non-pet folder is, holds or lies in a cat or dog folder (a wrong path)."""
    other = neither_dir.resolve()
    for class_dir in find_class_dirs(raw_dir):
        pets = class_dir.resolve()
        if other == pets or pets in other.parents or other in pets.parents:
            raise DataError(
                f"The non-pet folder {neither_dir} overlaps the pet folder {class_dir}; "
                "prepare.neither_dir must name a folder apart from the cat and dog photos."
            )


def decode_file(source: SourceFile, max_pixels: int = DEFAULT_MAX_PIXELS) -> Decoded:
    """Read, hash and decode one file with the project's single preprocessing; never raises."""
    try:
        size = source.path.stat().st_size
        if size > MAX_FILE_BYTES:
            return Decoded(source, "", reason=f"file too large ({size} bytes; limit {MAX_FILE_BYTES})")
        data = source.path.read_bytes()
    except OSError as e:
        return Decoded(source, "", reason=f"cannot read file: {e.strerror or e}")
    digest = hashlib.sha256(data).hexdigest()
    try:
        return Decoded(source, digest, image=load_image(data, max_pixels))
    except InvalidImage as e:
        return Decoded(source, digest, reason=str(e))
    except Exception as e:  # a decoder bug on one odd file must not end a run over thousands
        return Decoded(source, digest, reason=f"unexpected decoder error: {type(e).__name__}: {e}")


def deduplicate(decoded: list[Decoded]) -> tuple[list[Decoded], list[dict[str, str]], list[dict[str, str]]]:
    """Keep one file per distinct content: (unique, duplicates, conflicting-label entries).

    The copy kept is the first by relative path, so the choice never depends on listing order.
    Identical bytes under both labels cannot be trusted either way: every copy is dropped.
    """
    groups: dict[str, list[Decoded]] = defaultdict(list)
    for item in decoded:
        groups[item.sha256].append(item)
    unique: list[Decoded] = []
    duplicates: list[dict[str, str]] = []
    conflicts: list[dict[str, str]] = []
    for group in groups.values():
        group.sort(key=lambda d: d.source.file)
        keeper = group[0]
        if len({d.source.label for d in group}) > 1:
            names = ", ".join(f"{d.source.file} ({CLASS_NAMES[d.source.label]})" for d in group)
            conflicts += [
                {"file": d.source.file, "reason": f"identical bytes labelled both cat and dog: {names}"}
                for d in group
            ]
            continue
        unique.append(keeper)
        duplicates += [{"file": d.source.file, "duplicate_of": keeper.source.file} for d in group[1:]]
    return unique, duplicates, conflicts


def drop_pet_lookalikes(
    pets: list[Decoded], neither: list[Decoded], neither_dir: Path
) -> tuple[list[Decoded], list[Decoded], list[dict[str, str]], list[dict[str, str]]]:
    """Content found both among the (unique) pets and the (unique) non-pets cannot be trusted either
    way, as with cat/dog conflicts: every such copy is dropped. Returns (pets kept, non-pets kept,
    pet conflict entries, non-pet conflict entries)."""
    pet_by_hash = {d.sha256: d for d in pets}
    both = {d.sha256 for d in neither} & set(pet_by_hash)
    pet_conflicts: list[dict[str, str]] = []
    neither_conflicts: list[dict[str, str]] = []
    for item in neither:
        if item.sha256 in both:
            pet = pet_by_hash[item.sha256]
            reason = (
                f"identical bytes in the pet and the non-pet folders: {pet.source.file} "
                f"({CLASS_NAMES[pet.source.label]}) and {item.source.file} in {neither_dir}"
            )
            pet_conflicts.append({"file": pet.source.file, "reason": reason})
            neither_conflicts.append({"file": item.source.file, "reason": reason})
    keep_pets = [d for d in pets if d.sha256 not in both]
    keep_neither = [d for d in neither if d.sha256 not in both]
    return keep_pets, keep_neither, pet_conflicts, neither_conflicts


def split(
    items: list[Decoded], seed: int, val_fraction: float, test_fraction: float
) -> dict[str, list[Decoded]]:
    """Stratified train/val/test assignment, a function of the contents and the seed only.

    Each label (cat, dog, and neither for non-pet photos) is ordered by content hash before its own
    seeded shuffle, so renaming files, listing them in another order or changing another label gives
    the same split. Each split comes back ordered by relative path.
    """
    splits: dict[str, list[Decoded]] = {name: [] for name in SPLITS}
    for label in sorted({d.source.label for d in items}):
        members = sorted((d for d in items if d.source.label == label), key=lambda d: d.sha256)
        order = np.random.default_rng([seed, label]).permutation(len(members))
        n_test = round(len(members) * test_fraction)
        n_val = round(len(members) * val_fraction)
        shuffled = [members[i] for i in order]
        splits["test"] += shuffled[:n_test]
        splits["val"] += shuffled[n_test : n_test + n_val]
        splits["train"] += shuffled[n_test + n_val :]
    return {name: sorted(members, key=lambda d: d.source.file) for name, members in splits.items()}


def kind_of(item: Decoded) -> str:
    return kind_of_file(item.source.file)


def kind_of_file(file: str) -> str:
    """A non-pet photo's kind: its first folder under the non-pet root (e.g. church/church_001.jpg)."""
    return file.split("/")[0] if "/" in file else "(top level)"


def split_by_kind(
    items: list[Decoded], seed: int, val_fraction: float, test_fraction: float
) -> dict[str, list[Decoded]]:
    """Train/val/test for non-pet photos, stratified by kind without rounding each kind on its own
    (5 photos of a kind would round to none held out): each kind is shuffled (seeded, ordered by
    content hash first, as in `split`), every photo gets its relative rank within its kind, and
    the test and then the validation share are taken in that rank order across all kinds."""
    ranked: list[tuple[float, str, Decoded]] = []
    for kind in sorted({kind_of(d) for d in items}):
        members = sorted((d for d in items if kind_of(d) == kind), key=lambda d: d.sha256)
        stream = int(hashlib.sha256(kind.encode()).hexdigest()[:8], 16)  # another kind never moves it
        order = np.random.default_rng([seed, NEITHER_LABEL, stream]).permutation(len(members))
        ranked += [((rank + 0.5) / len(members), kind, members[i]) for rank, i in enumerate(order)]
    ranked.sort(key=lambda r: r[:2])
    n_test, n_val = round(len(items) * test_fraction), round(len(items) * val_fraction)
    ordered = [d for _, _, d in ranked]
    splits = {
        "test": ordered[:n_test],
        "val": ordered[n_test : n_test + n_val],
        "train": ordered[n_test + n_val :],
    }
    return {name: sorted(splits[name], key=lambda d: d.source.file) for name in SPLITS}


def load_neither(data_dir: Path, split_name: str) -> np.ndarray | None:
    """The held-out or training non-pet pictures prepare wrote (uint8 N x 224 x 224 x 3), or None
    when the data has none (prepare.neither_dir unset or empty): callers go on without them."""
    if split_name not in SPLITS:
        raise ValueError(f"unknown split {split_name!r}; known: {', '.join(SPLITS)}")
    path = Path(data_dir) / f"neither_{split_name}.npz"
    if not path.is_file():
        return None
    with np.load(path) as data:
        images = data["images"]
    if images.ndim != 4 or images.shape[1:] != (IMAGE_SIZE, IMAGE_SIZE, 3) or images.dtype != np.uint8:
        raise ValueError(
            f"{path} does not hold uint8 N x {IMAGE_SIZE} x {IMAGE_SIZE} x 3 images: {images.shape}"
        )
    return images
