"""Smoke test of a deployed TorchServe through its inference URL only (what CD runs against kind).

    python scripts/smoke_test.py URL [--timeout 180] [--images DIR | --cat IMG --dog IMG]
        [--expect-version 1.0] [--labelled DIR [--min-accuracy 0.9] [--max-unsure 0.25] [--limit 100]]

Waits until /ping is healthy AND a prediction succeeds (in Kubernetes the management API is not
reachable, and /ping turns healthy before the model's workers load), then checks /ping, one cat
and one dog photo on the native, KServe v1 and OIP v2 routes, and that garbage gets a 400 with a
JSON message. Photos: --cat/--dog, else the first image of DIR/cats and DIR/dogs (or
DIR/train/...), DIR defaulting to the shared real photos when present, else two synthetic drawings
(training/synthetic.py); the output says which. Exit status 1 with a sentence on any failure.

--expect-version V: every answer must come from model version V (CD: the release it deployed).
--labelled DIR: also classify up to --limit photos per class from DIR (any layout training/layouts.py
accepts, e.g. what `make data` fetches) and fail below --min-accuracy. Verdicts are scored so that
the coming abstaining answers cannot game it: the right pet is right; the other pet or `neither` on
a pet photo is wrong; `unsure` is neither right nor wrong (an abstention: it is left out of the
accuracy, which is right / (right + wrong)), but more than --max-unsure of the answers unsure fails
too. A photo the server rejects as undecodable (400) counts as rejected; more than 10 % fails.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import requests

from handler.verdict import NEITHER, UNSURE
from serving.client import (
    LABELS,
    BadAnswer,
    check_prediction,
    check_v1,
    check_v2,
    post_native,
    post_v1,
    post_v2,
)
from serving.ports import local_url
from serving.store import MODEL_NAME
from training.layouts import CLASS_DIR_NAMES, CONTAINER_DIR_NAMES, IMAGE_EXTENSIONS

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_PHOTOS = Path(
    os.environ.get("CATSDOGS_REAL_DATA", REPO_ROOT.parent / "shared" / "data" / "cats-dogs-2000")
)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"}
# What a served answer's label may be: a class, or (issue 14's verdicts) an abstention or "no pet".
MAX_REJECTED_SHARE = 0.1


class SmokeFailure(Exception):
    """One check failed; the message is the sentence the script prints."""


def find_photos(folder: Path) -> tuple[Path, Path] | None:
    """The first cat and dog image under folder/{cats,dogs} or folder/train/{cats,dogs}, or None."""
    for root in (folder, folder / "train"):
        firsts = [
            next((p for p in sorted((root / sub).glob("*")) if p.suffix.lower() in IMAGE_SUFFIXES), None)
            if (root / sub).is_dir()
            else None
            for sub in ("cats", "dogs")
        ]
        if all(firsts):
            return firsts[0], firsts[1]
    return None


def synthetic_photos() -> tuple[bytes, bytes]:
    from serving.samples import drawn_jpeg  # numpy and Pillow: not in the smoke client's minimal environment

    return drawn_jpeg(0), drawn_jpeg(1)


def choose_images(args: argparse.Namespace) -> tuple[bytes, bytes, str]:
    if args.cat or args.dog:
        if not (args.cat and args.dog):
            raise SmokeFailure("give both --cat and --dog, or neither")
        for path in (args.cat, args.dog):
            if not path.is_file():
                raise SmokeFailure(f"{path} is not a file")
        return args.cat.read_bytes(), args.dog.read_bytes(), f"{args.cat} and {args.dog}"
    folder = args.images or SHARED_PHOTOS
    photos = find_photos(folder)
    if photos:
        return photos[0].read_bytes(), photos[1].read_bytes(), f"{photos[0]} and {photos[1]}"
    if args.images:
        raise SmokeFailure(f"no cats/ and dogs/ images under {args.images} (or its train/)")
    cat, dog = synthetic_photos()
    return cat, dog, f"two SYNTHETIC drawings (no photos at {SHARED_PHOTOS})"


def wait_ready(session: requests.Session, url: str, image: bytes, timeout: float) -> float:
    """Seconds until /ping is healthy and a prediction succeeds; SmokeFailure after `timeout`."""
    started = time.monotonic()
    last = "no answer yet"
    while time.monotonic() - started < timeout:
        try:
            ping = session.get(f"{url}/ping", timeout=5)
            if ping.status_code == 200:
                answer = post_native(session, url, image)
                if answer.status_code == 200:
                    return time.monotonic() - started
                if 400 <= answer.status_code < 500 and answer.status_code != 404:
                    raise SmokeFailure(
                        f"the cat photo was rejected with {answer.status_code}: {answer.text[:300]}"
                    )
                last = f"prediction answered {answer.status_code}"
            else:
                last = f"/ping answered {ping.status_code}"
        except requests.RequestException as e:
            last = f"{type(e).__name__}"
        time.sleep(1)
    raise SmokeFailure(f"{url} not ready after {timeout:.0f} s (last: {last})")


def _json(answer: requests.Response, what: str) -> object:
    if answer.status_code != 200:
        raise SmokeFailure(f"{what} answered {answer.status_code}: {answer.text[:300]}")
    try:
        return answer.json()
    except ValueError as e:
        raise SmokeFailure(f"{what} did not answer JSON: {answer.text[:200]!r}") from e


def labelled_photos(folder: Path, limit: int) -> list[tuple[str, Path]]:
    """(true label, path) of up to `limit` photos per class, sorted, from any accepted layout."""
    if not folder.is_dir():
        raise SmokeFailure(f"--labelled {folder} is not a folder")
    containers = [folder] + sorted(
        d for d in folder.iterdir() if d.is_dir() and d.name.lower() in CONTAINER_DIR_NAMES
    )
    for container in containers:
        dirs = {
            label: [d for d in container.iterdir() if d.is_dir() and d.name.lower() in names]
            for label, names in zip(LABELS, CLASS_DIR_NAMES)
        }
        if all(len(found) == 1 for found in dirs.values()):
            photos = [
                (label, p)
                for label, (d,) in dirs.items()
                for p in sorted(p for p in d.iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)[:limit]
            ]
            if photos:
                return photos
    raise SmokeFailure(f"no cat and dog photo folders under {folder} (e.g. PetImages/Cat + PetImages/Dog)")


def score_labelled(
    session: requests.Session, url: str, photos: list[tuple[str, Path]], expect_version: str | None
) -> dict[str, int]:
    """{right, wrong, unsure, rejected} over the photos (see the module docstring for the rules)."""
    counts = dict.fromkeys(("right", "wrong", "unsure", "rejected"), 0)
    for truth, path in photos:
        answer = post_native(session, url, path.read_bytes())
        if answer.status_code == 400:
            counts["rejected"] += 1
            continue
        body = _json(answer, f"native prediction of {path}")
        label = body.get("label") if isinstance(body, dict) else None
        if label not in (*LABELS, UNSURE, NEITHER):
            raise SmokeFailure(f"{path}: label {label!r} is not one of {(*LABELS, UNSURE, NEITHER)}")
        check_version(body, expect_version, str(path))
        counts[outcome(truth, label)] += 1
    return counts


def outcome(truth: str, label: str) -> str:
    """right, wrong or unsure: an abstention is neither; `neither` on a pet photo is wrong."""
    return "unsure" if label == UNSURE else "right" if label == truth else "wrong"


def check_labelled(counts: dict[str, int], min_accuracy: float, max_unsure: float) -> str:
    """A sentence with the numbers; SmokeFailure when they are below the thresholds."""
    total = sum(counts.values())
    answered = total - counts["rejected"]
    decided = counts["right"] + counts["wrong"]
    if total == 0 or counts["rejected"] > MAX_REJECTED_SHARE * total:
        raise SmokeFailure(f"{counts['rejected']} of {total} labelled photos were rejected as unreadable")
    if decided == 0:
        raise SmokeFailure(f"every one of the {answered} labelled photos was answered unsure")
    accuracy, unsure = counts["right"] / decided, counts["unsure"] / answered
    summary = (
        f"labelled photos: {counts['right']} right, {counts['wrong']} wrong, {counts['unsure']} unsure, "
        f"{counts['rejected']} rejected: accuracy {accuracy:.3f} (min {min_accuracy}), "
        f"unsure {unsure:.3f} (max {max_unsure})"
    )
    if accuracy < min_accuracy or unsure > max_unsure:
        raise SmokeFailure(summary)
    return summary


def check_version(answer: object, expected: str | None, what: str) -> None:
    if expected is not None and isinstance(answer, dict) and answer.get("model_version") != expected:
        raise SmokeFailure(
            f"{what} was answered by model version {answer.get('model_version')!r}, "
            f"expected {expected!r} (the release being deployed)"
        )


def run_checks(
    session: requests.Session, url: str, cat: bytes, dog: bytes, expect_version: str | None = None
) -> list[str]:
    report = []
    ping = _json(session.get(f"{url}/ping", timeout=10), "GET /ping")
    if not isinstance(ping, dict) or ping.get("status") != "Healthy":
        raise SmokeFailure(f"/ping is not healthy: {ping}")
    report.append("GET /ping: Healthy")
    for name, image in (("cat", cat), ("dog", dog)):
        answer = check_prediction(_json(post_native(session, url, image), f"native prediction of the {name}"))
        check_version(answer, expect_version, f"the native {name} prediction")
        report.append(
            f"native {name} photo -> {answer['label']} {answer['probabilities']} v{answer['model_version']}"
        )
    v1 = check_v1(_json(post_v1(session, url, [cat, dog]), "KServe v1 predict"), 2)
    for prediction in v1:
        check_version(prediction, expect_version, "a KServe v1 prediction")
    report.append(f"KServe v1 [cat, dog] -> {[p['label'] for p in v1]}")
    answer = _json(post_v2(session, url, [cat, dog], request_id="smoke-1"), "OIP v2 infer")
    report.append(f"OIP v2 [cat, dog] -> {check_v2(answer, 2, request_id='smoke-1')}")
    check_version(answer, expect_version, "the OIP v2 answer")
    if expect_version is not None:
        report.append(f"every answer from model version {expect_version}")
    garbage = post_native(session, url, b"this is not an image")
    try:
        message = garbage.json()
    except ValueError:
        message = None
    if garbage.status_code != 400 or not isinstance(message, dict):
        raise SmokeFailure(
            f"garbage should get 400 with a JSON message, got {garbage.status_code}: {garbage.text[:200]}"
        )
    report.append(f"garbage bytes -> 400 {message}")
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=f"Smoke-test a served {MODEL_NAME} model through its inference URL."
    )
    parser.add_argument(
        "url", nargs="?", default=local_url("inference"), help="inference base URL (default: %(default)s)"
    )
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for readiness")
    parser.add_argument("--images", type=Path, help="folder with cats/ and dogs/ (or train/cats, train/dogs)")
    parser.add_argument("--cat", type=Path)
    parser.add_argument("--dog", type=Path)
    parser.add_argument("--expect-version", help="fail unless every answer comes from this model version")
    parser.add_argument(
        "--labelled", type=Path, help="also classify real photos from this folder (any layout)"
    )
    parser.add_argument("--limit", type=int, default=100, help="labelled photos per class (default 100)")
    parser.add_argument(
        "--min-accuracy", type=float, default=0.9, help="of the labelled photos (default 0.9)"
    )
    parser.add_argument("--max-unsure", type=float, default=0.25, help="share answered unsure (default 0.25)")
    args = parser.parse_args(argv)
    url = args.url.rstrip("/")
    try:
        cat, dog, source = choose_images(args)
        print(f"smoke test of {url} with {source}")
        with requests.Session() as session:
            print(f"ready after {wait_ready(session, url, cat, args.timeout):.1f} s")
            for line in run_checks(session, url, cat, dog, args.expect_version):
                print(f"  ok  {line}")
            if args.labelled:
                photos = labelled_photos(args.labelled, args.limit)
                counts = score_labelled(session, url, photos, args.expect_version)
                print(f"  ok  {check_labelled(counts, args.min_accuracy, args.max_unsure)}")
    except (SmokeFailure, BadAnswer) as e:
        print(f"SMOKE TEST FAILED: {e}", file=sys.stderr)
        return 1
    except requests.RequestException as e:
        print(f"SMOKE TEST FAILED: {url} stopped answering ({type(e).__name__}: {e})", file=sys.stderr)
        return 1
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
