"""The smoke test's deployment checks (serving/smoke.py): every answer from the expected model version,
and accuracy on a labelled set of photos, scored the way the coming verdicts (cat, dog, unsure,
neither) must be scored. Against the real TorchServe of tests/serving/conftest.py."""

from __future__ import annotations

import pytest
import requests

from serving.smoke import SHARED_PHOTOS as SHARED
from serving.smoke import SmokeFailure, check_labelled, labelled_photos, main, outcome, score_labelled


def test_verdicts_are_scored_right_wrong_or_unsure():
    assert outcome("cat", "cat") == "right" and outcome("dog", "dog") == "right"
    assert outcome("cat", "dog") == "wrong" and outcome("dog", "cat") == "wrong"
    # No pet on a pet photo is a mistake; an abstention is not, but is not credited either.
    assert outcome("cat", "neither") == "wrong" and outcome("dog", "unsure") == "unsure"


def test_the_labelled_check_fails_below_either_threshold():
    counts = {"right": 90, "wrong": 10, "unsure": 0, "rejected": 0}
    assert "accuracy 0.900" in check_labelled(counts, 0.9, 0.25)
    with pytest.raises(SmokeFailure, match=r"accuracy 0.900 \(min 0.95\)"):
        check_labelled(counts, 0.95, 0.25)
    # Abstaining on the hard photos lifts accuracy, so the unsure share is bounded too.
    hedged = {"right": 60, "wrong": 0, "unsure": 40, "rejected": 0}
    with pytest.raises(SmokeFailure, match=r"unsure 0.400 \(max 0.25\)"):
        check_labelled(hedged, 0.9, 0.25)
    with pytest.raises(SmokeFailure, match="rejected as unreadable"):
        check_labelled({"right": 8, "wrong": 0, "unsure": 0, "rejected": 2}, 0.9, 0.25)
    with pytest.raises(SmokeFailure, match="answered unsure"):
        check_labelled({"right": 0, "wrong": 0, "unsure": 3, "rejected": 0}, 0.9, 1.0)


def labelled_folder(root, photos, per_class=5):
    """Kaggle's layout (what `make data` fetches): PetImages/Cat, PetImages/Dog; plus one broken file."""
    for name, folder in (("cat", "Cat"), ("dog", "Dog")):
        (root / "PetImages" / folder).mkdir(parents=True)
        for i in range(per_class):
            (root / "PetImages" / folder / f"{i}.jpg").write_bytes(photos[name])
    (root / "PetImages" / "Dog" / "9-broken.jpg").write_bytes(b"not a jpeg")
    return root


def test_labelled_photos_are_found_in_the_accepted_layouts(tmp_path, photos):
    found = labelled_photos(labelled_folder(tmp_path / "kaggle", photos), limit=2)
    assert [(label, path.name) for label, path in found] == [
        ("cat", "0.jpg"),
        ("cat", "1.jpg"),
        ("dog", "0.jpg"),
        ("dog", "1.jpg"),
    ]
    with pytest.raises(SmokeFailure, match="no cat and dog photo folders"):
        labelled_photos(tmp_path, limit=2)


@pytest.mark.slow
def test_counts_every_photo_and_the_version_against_a_real_server(torchserve, tmp_path, photos):
    folder = labelled_folder(tmp_path / "photos", photos)
    with requests.Session() as session:
        counts = score_labelled(session, torchserve.inference_url, labelled_photos(folder, 10), "1.0")
        assert counts["rejected"] == 1 and sum(counts.values()) == 11
        # What the seeded test model gets right is what it gets right: a threshold above it fails.
        accuracy = counts["right"] / (counts["right"] + counts["wrong"])
        with pytest.raises(SmokeFailure, match="accuracy"):
            check_labelled(counts, accuracy + 0.01, 1.0)
        with pytest.raises(SmokeFailure, match=r"answered by model version '1.0', expected '2.0'"):
            score_labelled(session, torchserve.inference_url, labelled_photos(folder, 1), "2.0")


@pytest.mark.slow
def test_the_smoke_command_checks_version_and_labelled_photos(torchserve, tmp_path, photos, capsys):
    folder = labelled_folder(tmp_path / "photos", photos)
    common = [torchserve.inference_url, "--timeout", "60", "--labelled", str(folder), "--max-unsure", "1"]
    assert main([*common, "--expect-version", "1.0", "--min-accuracy", "0"]) == 0
    out = capsys.readouterr().out
    assert "every answer from model version 1.0" in out and "1 rejected" in out and "smoke test passed" in out
    assert main([*common, "--expect-version", "3.1", "--min-accuracy", "0"]) == 1
    assert "expected '3.1' (the release being deployed)" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.shared_data
def test_real_photos_are_scored(torchserve):
    if not SHARED.is_dir():
        pytest.skip(f"no shared real photos at {SHARED}")
    photos = labelled_photos(SHARED, limit=5)
    assert {label for label, _ in photos} == {"cat", "dog"} and len(photos) == 10
    with requests.Session() as session:
        counts = score_labelled(session, torchserve.inference_url, photos, "1.0")
    assert sum(counts.values()) == 10 and counts["rejected"] == 0
