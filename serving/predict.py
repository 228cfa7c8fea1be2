"""Classify one image with a running TorchServe and print the JSON answer (`make predict IMG=path`).

    python -m serving.predict IMG [--url URL] [--version 2.0] [--protocol native|v1|v2]

--url defaults to the local server's inference API (serving/ports.py).

Exit status 1 with a sentence when the file is missing, nothing answers at the URL, or the server
rejects the image (its JSON message is printed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import requests

from serving.client import PROTOCOLS, post_native, post_v1, post_v2
from serving.ports import local_url
from serving.store import MODEL_NAME


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Classify one image with a running TorchServe.")
    parser.add_argument("image", type=Path)
    parser.add_argument("--url", default=local_url("inference"), help="inference API URL")
    parser.add_argument("--model", default=MODEL_NAME)
    parser.add_argument("--version", help="a registered version (native protocol only); default: the default")
    parser.add_argument("--protocol", choices=PROTOCOLS, default="native")
    args = parser.parse_args(argv)

    if not args.image.is_file():
        print(
            f"error: {args.image} is not a file (usage: make predict IMG=path/to/photo.jpg)", file=sys.stderr
        )
        return 1
    if args.version and args.protocol != "native":
        print("error: --version works with --protocol native only", file=sys.stderr)
        return 1
    image = args.image.read_bytes()
    url = args.url.rstrip("/")
    try:
        with requests.Session() as session:
            if args.protocol == "native":
                answer = post_native(session, url, image, args.model, args.version)
            elif args.protocol == "v1":
                answer = post_v1(session, url, [image], args.model)
            else:
                answer = post_v2(session, url, [image], args.model)
    except requests.ConnectionError:
        print(f"error: no server answers at {url}; start one with `make serve`", file=sys.stderr)
        return 1
    except requests.RequestException as e:
        print(f"error: request to {url} failed: {e}", file=sys.stderr)
        return 1
    try:
        body = answer.json()
    except ValueError:
        body = None
    if answer.status_code != 200:
        message = body if body is not None else (answer.text.strip() or answer.reason)
        print(f"error: the server answered {answer.status_code}: {json.dumps(message)}", file=sys.stderr)
        return 1
    print(json.dumps(body, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
