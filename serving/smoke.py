"""Smoke test of a deployed TorchServe through its inference URL only (what CD runs against kind).

    python scripts/smoke_test.py URL [--timeout 180] [--images DIR | --cat IMG --dog IMG]

Waits until /ping is healthy AND a prediction succeeds (in Kubernetes the management API is not
reachable, and /ping turns healthy before the model's workers load), then checks /ping, one cat
and one dog photo on the native, KServe v1 and OIP v2 routes, and that garbage gets a 400 with a
JSON message. Photos: --cat/--dog, else the first image of DIR/cats and DIR/dogs (or
DIR/train/...), DIR defaulting to the shared real photos when present, else two synthetic drawings
(training/synthetic.py); the output says which. Exit status 1 with a sentence on any failure.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import requests

from serving.client import BadAnswer, check_prediction, check_v1, check_v2, post_native, post_v1, post_v2
from serving.ports import local_url
from serving.samples import drawn_jpeg
from serving.store import MODEL_NAME

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_PHOTOS = Path(
    os.environ.get("CATSDOGS_REAL_DATA", REPO_ROOT.parent / "shared" / "data" / "cats-dogs-2000")
)
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"}


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


def run_checks(session: requests.Session, url: str, cat: bytes, dog: bytes) -> list[str]:
    report = []
    ping = _json(session.get(f"{url}/ping", timeout=10), "GET /ping")
    if not isinstance(ping, dict) or ping.get("status") != "Healthy":
        raise SmokeFailure(f"/ping is not healthy: {ping}")
    report.append("GET /ping: Healthy")
    for name, image in (("cat", cat), ("dog", dog)):
        answer = check_prediction(_json(post_native(session, url, image), f"native prediction of the {name}"))
        report.append(
            f"native {name} photo -> {answer['label']} {answer['probabilities']} v{answer['model_version']}"
        )
    labels = [p["label"] for p in check_v1(_json(post_v1(session, url, [cat, dog]), "KServe v1 predict"), 2)]
    report.append(f"KServe v1 [cat, dog] -> {labels}")
    answer = _json(post_v2(session, url, [cat, dog], request_id="smoke-1"), "OIP v2 infer")
    report.append(f"OIP v2 [cat, dog] -> {check_v2(answer, 2, request_id='smoke-1')}")
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
    args = parser.parse_args(argv)
    url = args.url.rstrip("/")
    try:
        cat, dog, source = choose_images(args)
        print(f"smoke test of {url} with {source}")
        with requests.Session() as session:
            print(f"ready after {wait_ready(session, url, cat, args.timeout):.1f} s")
            for line in run_checks(session, url, cat, dog):
                print(f"  ok  {line}")
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
