"""`make data`: fetch Microsoft's public Kaggle Cats and Dogs archive into <out>/PetImages/{Cat,Dog}.

    python -m training.download --out-dir data/raw [--limit N] [--url URL]

Without --limit it streams the whole archive (about 800 MB) to disk and extracts the photos. With
--limit N it never downloads the archive: it reads the zip's central directory and then only the N
chosen members through HTTP range requests (fsspec), a balanced, seeded sample of N/2 cats and N/2
dogs. Work happens in a hidden staging folder that is renamed into place only when complete, with a
DOWNLOAD.json record; re-running the same request does nothing. Unreachable hosts fail within
seconds, saying how to train on a local folder instead. The photos keep the archive's licence
(CDLA-Permissive-2.0, included in the archive).
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
import shutil
import sys
import zipfile
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlparse

import aiohttp
import fsspec
import requests
from tqdm import tqdm

from training.layouts import ACCEPTED_LAYOUTS, IMAGE_EXTENSIONS

logger = logging.getLogger(__name__)
DEFAULT_URL = (
    "https://download.microsoft.com/download/3/E/1/3E1C3F21-ECDB-4869-8368-6DEBA77B919F/"
    "kagglecatsanddogs_5340.zip"
)
CONNECT_TIMEOUT = 10  # seconds: offline machines must hear about it quickly
READ_TIMEOUT = 60
# One range request with this much read-ahead usually covers a whole Kaggle JPEG (about 30 kB).
READAHEAD = 64 * 1024
MEMBER = re.compile(r"^PetImages/(Cat|Dog)/([^/]+)$")
RECORD = "DOWNLOAD.json"
SUBSET_SEED = 0
OFFLINE_HINT = (
    "To use photos you already have, set prepare.raw_dir in params.yaml or run "
    f"`make train DATA=/path/to/folder` (layouts: {ACCEPTED_LAYOUTS})."
)


class DownloadError(RuntimeError):
    """The download cannot proceed; the message says why and what to do instead."""


def probe(url: str) -> tuple[str, int | None]:
    """HEAD the archive: (URL after redirects, size in bytes if the server says)."""
    try:
        response = requests.head(url, allow_redirects=True, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
        response.raise_for_status()
    except requests.RequestException as e:
        raise DownloadError(f"Cannot reach {url} ({type(e).__name__}). {OFFLINE_HINT}") from e
    length = response.headers.get("Content-Length")
    return response.url, int(length) if length else None


def select_members(infos: list[zipfile.ZipInfo], limit: int | None) -> list[zipfile.ZipInfo]:
    """All cat and dog files, or a balanced sample of `limit` non-empty images, in archive order."""
    matching = [i for i in infos if (m := MEMBER.match(i.filename)) and m[2] not in (".", "..")]
    if limit is not None:
        by_class: dict[str, list[zipfile.ZipInfo]] = {"Cat": [], "Dog": []}
        for info in sorted(matching, key=lambda i: i.filename):
            if info.file_size > 0 and Path(info.filename).suffix.lower() in IMAGE_EXTENSIONS:
                by_class[MEMBER.match(info.filename)[1]].append(info)
        rng = random.Random(SUBSET_SEED)
        wanted = {"Cat": limit // 2, "Dog": limit - limit // 2}
        for name, members in by_class.items():
            if len(members) < wanted[name]:
                raise DownloadError(
                    f"The archive has only {len(members)} {name} images; use a smaller --limit."
                )
        matching = [i for name, members in by_class.items() for i in rng.sample(members, wanted[name])]
    if not matching:
        raise DownloadError("The archive holds no PetImages/Cat or PetImages/Dog files; is --url right?")
    return sorted(matching, key=lambda i: i.header_offset)


def extract(archive: zipfile.ZipFile, members: list[zipfile.ZipInfo], staging: Path) -> None:
    for info in tqdm(members, desc="extract", unit="img"):
        target = staging / info.filename  # safe: MEMBER admits only PetImages/<Cat|Dog>/<name>
        target.parent.mkdir(parents=True, exist_ok=True)
        with archive.open(info) as src, open(target, "wb") as dst:
            shutil.copyfileobj(src, dst)


def open_remote(url: str, size: int) -> BinaryIO:
    """A seekable file over HTTP range requests, with the same fail-fast timeouts."""
    timeout = aiohttp.ClientTimeout(sock_connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT)
    fs = fsspec.filesystem("http", client_kwargs={"timeout": timeout}, skip_instance_cache=True)
    return fs.open(url, "rb", block_size=READAHEAD, cache_type="readahead", size=size)


def fetch_whole(url: str, size: int | None, target: Path) -> None:
    """Stream the archive to target (via target.part, so a partial file never looks complete)."""
    if target.is_file() and size is not None and target.stat().st_size == size:
        logger.info("reusing %s", target)
        return
    part = target.with_name(target.name + ".part")
    with requests.get(url, stream=True, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT)) as response:
        response.raise_for_status()
        with open(part, "wb") as out, tqdm(total=size, unit="B", unit_scale=True, desc="download") as bar:
            for chunk in response.iter_content(chunk_size=1 << 20):
                out.write(chunk)
                bar.update(len(chunk))
    if size is not None and part.stat().st_size != size:
        raise DownloadError(
            f"Download of {url} stopped at {part.stat().st_size} of {size} bytes; run it again."
        )
    part.replace(target)


def already_done(final: Path, wanted: dict) -> bool:
    """True if final holds exactly this request; refuses to touch a folder this tool did not write."""
    if (final / RECORD).is_file():
        record = json.loads((final / RECORD).read_text())
        return {key: record.get(key) for key in wanted} == wanted
    if final.exists():
        raise DownloadError(
            f"{final} exists but was not written by this tool; move it away or pick another --out-dir."
        )
    return False


def open_archive(url: str, limit: int | None, out_dir: Path) -> tuple[BinaryIO, Path | None]:
    """The zip as a seekable file: remote for a subset, else a local copy (returned for clean-up)."""
    real_url, size = probe(url)
    if limit is not None:
        if size is None:
            raise DownloadError(f"{url} does not report its size, so a subset cannot be read; omit --limit.")
        return open_remote(real_url, size), None
    local = out_dir / (Path(urlparse(url).path).name or "archive.zip")
    fetch_whole(real_url, size, local)
    return open(local, "rb"), local


def download(out_dir: Path, url: str = DEFAULT_URL, limit: int | None = None) -> Path:
    """Make <out_dir>/PetImages hold the requested photos; returns that folder."""
    final, wanted = out_dir / "PetImages", {"url": url, "limit": limit}
    if already_done(final, wanted):
        logger.info("%s already holds this download; nothing to do", final)
        return final
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = out_dir / ".download.partial"  # renamed into place only when complete
    shutil.rmtree(staging, ignore_errors=True)
    try:
        source, local_copy = open_archive(url, limit, out_dir)
        with source, zipfile.ZipFile(source) as archive:
            members = select_members(archive.infolist(), limit)
            extract(archive, members, staging)
        (staging / "PetImages" / RECORD).write_text(json.dumps({**wanted, "files": len(members)}, indent=2))
        shutil.rmtree(final, ignore_errors=True)
        (staging / "PetImages").replace(final)
        if local_copy is not None:
            local_copy.unlink()  # extracted; keeping 800 MB twice helps no one
    except (OSError, ValueError, zipfile.BadZipFile, aiohttp.ClientError, requests.RequestException) as e:
        raise DownloadError(f"Download from {url} failed ({type(e).__name__}: {e}). {OFFLINE_HINT}") from e
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    logger.info("wrote %d files to %s", len(members), final)
    return final


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out-dir", type=Path, default=Path("data/raw"), help="folder that receives PetImages/"
    )
    parser.add_argument("--limit", type=int, help="fetch only a balanced subset of this many images")
    parser.add_argument(
        "--url", default=DEFAULT_URL, help="archive URL (default: Microsoft's Kaggle download)"
    )
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 2:
        parser.error("--limit must be at least 2 (one cat and one dog)")
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        download(args.out_dir, args.url, args.limit)
    except DownloadError as e:
        print(f"download: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
