"""Discovery: every accepted layout and spelling is found; anything else is a clear error."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.data.conftest import make_dataset, write_photo
from training.data import DataError, discover, find_class_dirs


@pytest.mark.parametrize(
    ("cat_dir", "dog_dir"),
    [
        ("PetImages/Cat", "PetImages/Dog"),
        ("PETIMAGES/CAT", "PETIMAGES/dog"),
        ("train/cats", "train/dogs"),
        ("Train/Cat", "Train/DOGS"),
        ("cats", "dogs"),
        ("Cat", "Dogs"),
    ],
)
def test_every_layout_is_found(tmp_path: Path, cat_dir: str, dog_dir: str) -> None:
    make_dataset(tmp_path, cat_dir, dog_dir, cats=2, dogs=3)
    cats, dogs = find_class_dirs(tmp_path)
    assert [d.relative_to(tmp_path).as_posix() for d in (cats, dogs)] == [cat_dir, dog_dir]
    candidates, skipped = discover(tmp_path)
    assert [c.label for c in candidates] == [0, 0, 1, 1, 1]
    assert all(c.file.startswith(cat_dir if c.label == 0 else dog_dir) for c in candidates)
    assert skipped == []


def test_root_may_be_the_folder_holding_the_class_folders(tmp_path: Path) -> None:
    make_dataset(tmp_path, "PetImages/Cat", "PetImages/Dog", cats=1, dogs=1)
    candidates, _ = discover(tmp_path / "PetImages")
    assert [c.file for c in candidates] == ["Cat/cat_000.jpg", "Dog/dog_000.jpg"]


def test_extensions_are_case_insensitive_and_other_files_are_reported(tmp_path: Path) -> None:
    names = ["a.jpg", "b.JPG", "c.jpeg", "d.Png", "e.bmp", "f.WEBP"]
    for i, name in enumerate(names):
        write_photo(tmp_path / "cats" / name, seed=i)
    write_photo(tmp_path / "dogs" / "nested" / "deeper" / "g.jpg", seed=99)
    (tmp_path / "cats" / "Thumbs.db").write_bytes(b"\0" * 10)
    (tmp_path / "dogs" / "notes").write_text("no extension")
    candidates, skipped = discover(tmp_path)
    assert [c.file for c in candidates] == [f"cats/{n}" for n in names] + ["dogs/nested/deeper/g.jpg"]
    assert skipped == [
        {"file": "cats/Thumbs.db", "reason": "unsupported file type .db"},
        {"file": "dogs/notes", "reason": "unsupported file type (none)"},
    ]


def test_unknown_layout_names_the_accepted_ones(tmp_path: Path) -> None:
    make_dataset(tmp_path, "images/kitties", "images/puppies", cats=1, dogs=1)
    with pytest.raises(DataError, match=r"accepted layouts.*PetImages/Cat.*train/cats.*cats/"):
        find_class_dirs(tmp_path)


def test_one_class_folder_alone_is_not_a_layout(tmp_path: Path) -> None:
    make_dataset(tmp_path, "cats", "other", cats=1, dogs=1)
    with pytest.raises(DataError, match="No cat/dog folders"):
        discover(tmp_path)


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        find_class_dirs(tmp_path / "nowhere")


def test_two_folders_for_one_class_are_ambiguous(tmp_path: Path) -> None:
    make_dataset(tmp_path, "cat", "dogs", cats=1, dogs=1)
    (tmp_path / "Cats").mkdir()
    with pytest.raises(DataError, match="keep one of them"):
        find_class_dirs(tmp_path)
