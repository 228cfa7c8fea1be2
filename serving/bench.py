"""`make bench-serve`: the model in-process versus behind TorchServe, on the same images, on 127.0.0.1.

    python -m serving.bench [--seconds 6] [--images DIR] [--out bench.md]

In-process = the handler's runtime-neutral core (handler/service.py: parse, decode, preprocess,
forward, answer), one thread, one request at a time: what the TorchServe adapter calls. Served =
HTTP POST of the same image bytes to /predictions/catsdogs from N client threads (keep-alive
connections), end to end, for four setups: the shipped one (the archive's batching from
params.yaml, 2 workers x 1 thread), no batching, larger batches, and 1 worker x 2 threads. Every
point runs for a fixed time after a warm-up, so the whole run takes a predictable ~4 minutes. Uses
models/model.pt when it exists, else a freshly initialised CatsDogsNet (speed does not depend on
the weights); the real photos when present, else synthetic drawings. Prints a Markdown table and
the two targets: served p50 <= 1.5 x in-process p50 at concurrency 1, and >= 200 images/s at
concurrency 8.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import logging
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

from serving.package import Batching, PackageError, build_archive, read_params
from serving.ports import Ports
from serving.samples import drawn_jpeg, write_fresh_model
from serving.server import ModelSpec, TorchServe
from serving.smoke import IMAGE_SUFFIXES, SHARED_PHOTOS
from serving.store import MODEL_NAME

logger = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[1]
IMAGES_PER_CLASS = 32
WARM_UP_S = 6.0


@dataclasses.dataclass(frozen=True)
class Setup:
    name: str
    workers: int
    threads: int
    batching: Batching


def setups(shipped: Batching) -> tuple[Setup, ...]:
    """The shipped setup (the archive's batching from params.yaml, 2 single-thread workers) first."""
    batch = f"batch {shipped.size} / {shipped.max_delay_ms} ms"
    return (
        Setup(f"TorchServe 2 workers x 1 thread, {batch} (shipped)", 2, 1, shipped),
        Setup("TorchServe 2 workers x 1 thread, no batching", 2, 1, Batching(size=1)),
        Setup("TorchServe 2 workers x 1 thread, batch 8 / 5 ms", 2, 1, Batching(size=8, max_delay_ms=5)),
        Setup(f"TorchServe 1 worker x 2 threads, {batch}", 1, 2, shipped),
    )


CONCURRENCY = (1, 4, 8)


@dataclasses.dataclass
class Point:
    setup: str
    concurrency: int
    latencies_ms: list[float]
    seconds: float
    errors: int = 0

    def row(self) -> str:
        p50, p95, p99 = np.percentile(self.latencies_ms, [50, 95, 99]) if self.latencies_ms else (np.nan,) * 3
        rate = len(self.latencies_ms) / self.seconds
        cells = [
            self.setup,
            self.concurrency,
            f"{rate:.0f}",
            f"{p50:.1f}",
            f"{p95:.1f}",
            f"{p99:.1f}",
            self.errors,
        ]
        return "| " + " | ".join(map(str, cells)) + " |"


def _photos(base: Path) -> list[Path]:
    """Up to IMAGES_PER_CLASS photos of each of base/cats and base/dogs, alternating; [] if one is empty."""
    per_class = [
        sorted(p for p in (base / c).glob("*") if p.suffix.lower() in IMAGE_SUFFIXES)[:IMAGES_PER_CLASS]
        for c in ("cats", "dogs")
    ]
    return [p for pair in zip(*per_class, strict=False) for p in pair] if all(per_class) else []


def load_images(folder: Path | None) -> tuple[list[bytes], str]:
    root = folder or SHARED_PHOTOS
    for base in (root, root / "train"):
        if photos := _photos(base):
            return [p.read_bytes() for p in photos], f"{len(photos)} real photos from {base}"
    images = [drawn_jpeg(label, index) for index in range(IMAGES_PER_CLASS) for label in (0, 1)]
    return images, f"{len(images)} SYNTHETIC drawings (no photos at {root})"


def prepare_model(work: Path) -> tuple[Path, str]:
    """A model dir with model.pt + index_to_name.json: the trained model if present, else a fresh one."""
    trained = REPO_ROOT / "models"
    if (trained / "model.pt").is_file() and (trained / "index_to_name.json").is_file():
        return trained, "trained models/model.pt"
    return write_fresh_model(work), "freshly initialised CatsDogsNet (no models/model.pt)"


def in_process(model_dir: Path, images: list[bytes], seconds: float) -> Point:
    """The handler's runtime-neutral core on one thread, one request at a time: exactly the work the
    TorchServe adapter hands it (parse the request, decode, preprocess, forward, build the answer)."""
    from handler.inference import Classifier
    from handler.protocols import RawRequest
    from handler.service import InferenceService
    from handler.settings import Settings

    torch.set_num_threads(1)
    classifier = Classifier.load(
        REPO_ROOT / "training" / "model.py", model_dir / "model.pt", model_dir / "index_to_name.json", "bench"
    )
    service = InferenceService(classifier, MODEL_NAME, Settings().max_instances)
    latencies, deadline, i = [], time.monotonic() + seconds + 1.0, 0
    warm_until = time.monotonic() + 1.0
    while (now := time.monotonic()) < deadline:
        started = time.perf_counter()
        request = RawRequest({"body": images[i % len(images)]}, {"body": "application/octet-stream"})
        [answer] = service.answer([request])
        if now >= warm_until:
            latencies.append((time.perf_counter() - started) * 1000)
        if answer.status != 200:
            raise RuntimeError(f"in-process answer {answer.status}: {answer.body}")
        i += 1
    return Point(
        "in-process, 1 thread (parse + decode + preprocess + forward + answer)", 1, latencies, seconds
    )


def drive(port: int, images: list[bytes], concurrency: int, seconds: float, name: str) -> Point:
    """`concurrency` keep-alive clients POST images for `seconds`; every non-200 counts as an error."""
    point = Point(name, concurrency, [], seconds)
    lock = threading.Lock()
    start = time.monotonic()
    deadline = start + seconds

    def client(offset: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine, errors, i = [], 0, offset
        while time.monotonic() < deadline:
            started = time.perf_counter()
            try:
                connection.request(
                    "POST",
                    f"/predictions/{MODEL_NAME}",
                    body=images[i % len(images)],
                    headers={"Content-Type": "application/octet-stream"},
                )
                response = connection.getresponse()
                response.read()
                ok = response.status == 200
            except (OSError, http.client.HTTPException):
                ok = False
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            if ok:
                mine.append((time.perf_counter() - started) * 1000)
            else:
                errors += 1
            i += concurrency
        connection.close()
        with lock:
            point.latencies_ms.extend(mine)
            point.errors += errors

    threads = [threading.Thread(target=client, args=(k,)) for k in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    point.seconds = max(seconds, time.monotonic() - start)
    return point


def served(model_dir: Path, work: Path, setup: Setup, images: list[bytes], seconds: float) -> list[Point]:
    store = work / "store"
    shutil.rmtree(store, ignore_errors=True)
    store.mkdir(parents=True)
    build_archive(model_dir, "bench", store / f"{MODEL_NAME}.mar", batching=setup.batching)
    spec = ModelSpec(f"{MODEL_NAME}.mar", workers=setup.workers)
    server = TorchServe(
        store, work / "run", ports=Ports.free(), models=[spec], threads_per_worker=setup.threads
    )
    with server:
        # Steady state: Java's JIT needs a few thousand requests before the frontend costs what it
        # will (measured: ~4 ms of CPU a request after 2 s, ~2 ms after 8 s).
        drive(server.ports.inference, images, 8, WARM_UP_S, "warm-up")
        return [drive(server.ports.inference, images, c, seconds, setup.name) for c in CONCURRENCY]


def conditions(images_note: str, model_note: str, seconds: float) -> str:
    load = os.getloadavg()
    return (
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, torch {torch.__version__}; load average at start "
        f"{load[0]:.2f}. Model: {model_note}. Images: {images_note}. "
        f"{seconds:.0f} s per point after warm-up; clients on the same machine over 127.0.0.1."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="In-process vs TorchServe latency and throughput.")
    parser.add_argument("--seconds", type=float, default=6.0, help="measured seconds per point")
    parser.add_argument("--images", type=Path, help="folder with cats/ and dogs/ (default: shared photos)")
    parser.add_argument("--out", type=Path, help="also write the Markdown report here")
    parser.add_argument("--params", type=Path, default=REPO_ROOT / "params.yaml", help="shipped batching")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    try:
        plan = setups(Batching.from_params(read_params(args.params).get("batching")))
    except PackageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    images, images_note = load_images(args.images)
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        work = Path(tmp)
        model_dir, model_note = prepare_model(work)
        report = [conditions(images_note, model_note, args.seconds), ""]
        print(report[0], flush=True)
        points = [in_process(model_dir, images, args.seconds)]
        for number, setup in enumerate(plan):
            print(f"running: {setup.name} ...", flush=True)
            points += served(model_dir, work / f"setup{number}", setup, images, args.seconds)
    baseline, shipped = points[0], [p for p in points if p.setup == plan[0].name]
    ratio = np.median(shipped[0].latencies_ms) / np.median(baseline.latencies_ms)
    best_c8 = max(len(p.latencies_ms) / p.seconds for p in points if p.concurrency == 8)
    shipped_c8 = len(shipped[-1].latencies_ms) / shipped[-1].seconds
    report += [
        "| setup | concurrency | images/s | p50 ms | p95 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *(p.row() for p in points),
        "",
        f"Served p50 / in-process p50 at concurrency 1 (shipped setup): {ratio:.2f}x (target <= 1.5x: "
        f"{'met' if ratio <= 1.5 else 'NOT met'}).",
        f"Throughput at concurrency 8: shipped setup {shipped_c8:.0f} images/s, best {best_c8:.0f} "
        f"(target >= 200: {'met' if shipped_c8 >= 200 else 'NOT met'}).",
    ]
    text = "\n".join(report)
    print("\n" + text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0 if all(p.errors == 0 for p in points) else 1


if __name__ == "__main__":
    sys.exit(main())
