"""`make bench-serve`: the inference runtimes in-process, and the model behind TorchServe, on 127.0.0.1.

    python -m serving.bench [--seconds 5] [--images DIR] [--out bench.md] [--check] [--warm-up-curve]

1. Runtimes, in-process: the handler's runtime-neutral core (handler/service.py: parse, decode,
   resize, run the exported graph, answer) on one thread, one request at a time, for each runtime
   and precision on the same EfficientNet-Lite0 export, with the largest probability difference to
   eager PyTorch on the same images; the shipped runtime also on two threads; and decode + resize
   alone, of the photos and of phone-size (12-megapixel) JPEGs made from them, with the scaled
   decoding the handler uses and in full.
2. Two in-process workers (one process per core, one thread each) on the shipped runtime: the
   ceiling the server is measured against, with OpenVINO's CPU pinning off (shipped) and on.
3. Served: HTTP POST of the same image bytes to /predictions/catsdogs from N keep-alive client
   threads, for the shipped archive (params.yaml package: runtime, precision, batching; 2 workers x
   1 thread), the same waiting 1 ms for more requests, without batching, and as 1 worker x 2
   threads, and the from-scratch CatsDogsNet on the torch runtime;
   each server warmed up for WARM_UP_S first; after its load, the memory per worker (resident, and
   unique to the worker), and where the CPU went at concurrency 8 (frontend, workers, client).
Uses models/ when it holds a trained EfficientNet-Lite0, else the ImageNet backbone with a seeded
head (speed does not depend on the head's weights); the real photos when present, else synthetic
drawings. Prints a Markdown table and the targets; `--check` exits 1 when one is missed.
"""

from __future__ import annotations

import argparse
import dataclasses
import http.client
import io
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
import psutil
import torch

from monitoring.faults import worker_pids
from serving.package import (
    DEFAULT_PRECISION,
    DEFAULT_RUNTIME,
    Batching,
    PackageError,
    build_archive,
    read_params,
)
from serving.ports import Ports
from serving.properties import read_properties
from serving.samples import drawn_jpeg, write_fresh_model
from serving.server import LOCAL_CONFIG, ModelSpec, TorchServe
from serving.smoke import IMAGE_SUFFIXES, SHARED_PHOTOS
from serving.store import MODEL_NAME

logger = logging.getLogger(__name__)
REPO_ROOT = Path(__file__).resolve().parents[1]
IMAGES_PER_CLASS = 32
# Each server's warm-up at concurrency 8 before its points: Java's JIT compiles the frontend over its
# first thousands of requests. With the configs' C1-only vmargs its CPU per request settles (about
# 0.7 ms) within 10 s; with the JVM's default C2 it starts at 3.4 ms (`--warm-up-curve`, README).
WARM_UP_S = 15.0


@dataclasses.dataclass(frozen=True)
class Setup:
    name: str
    model_dir: Path
    runtime: str
    precision: str
    batching: Batching
    workers: int = 2
    threads: int = 1


CONCURRENCY = (1, 8)
RUNTIMES = (("torch", "f32"), ("onnxruntime", "f32"), ("openvino", "f32"), ("openvino", "bf16"))


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
    """A model folder: the trained EfficientNet-Lite0 in models/ if there, else the ImageNet backbone
    with a seeded head."""
    from training import model as model_folder

    trained = REPO_ROOT / "models"
    try:
        model, _ = model_folder.load(trained)
        if model_folder.arch_of(model) == "efficientnet_lite0":
            return trained, "trained EfficientNet-Lite0 in models/"
    except (FileNotFoundError, ValueError):
        pass
    fresh = write_fresh_model(work / "fresh", arch="efficientnet_lite0")
    return fresh, "EfficientNet-Lite0, ImageNet backbone + seeded head (no trained model in models/)"


def service_for(model_dir: Path, runtime: str, precision: str, pinning: bool = False, threads: int = 1):
    """The handler core on an export of model_dir for `runtime`, on `threads` runtime threads."""
    from handler.inference import Classifier, ModelSpec
    from handler.service import InferenceService
    from handler.settings import Settings
    from serving.package import stage_model

    with tempfile.TemporaryDirectory(prefix="bench-unpacked-") as tmp:  # runtimes load the file into memory
        unpacked = Path(tmp)
        stage_model(model_dir, runtime, unpacked)
        classifier = Classifier.load(unpacked, ModelSpec(runtime, precision), "bench", threads=threads)
        if pinning:  # only to show what OpenVINO's default costs
            from handler.runtime import MODEL_FILES, OpenVinoRuntime

            classifier.runtime = OpenVinoRuntime(unpacked / MODEL_FILES[runtime], 1, precision, pinning=True)
    return InferenceService(classifier, MODEL_NAME, Settings().max_instances)


def answer_loop(service, images: list[bytes], seconds: float, warm_up: float = 1.0) -> list[float]:
    """Latencies (ms) of one request at a time through the handler core, after `warm_up` seconds."""
    from handler.protocols import RawRequest

    latencies, i = [], 0
    warm_until = time.monotonic() + warm_up
    deadline = warm_until + seconds
    while (now := time.monotonic()) < deadline:
        started = time.perf_counter()
        [answer] = service.answer([RawRequest({"body": images[i % len(images)]}, {"body": "image/jpeg"})])
        if answer.status != 200:
            raise RuntimeError(f"in-process answer {answer.status}: {answer.body}")
        if now >= warm_until:
            latencies.append((time.perf_counter() - started) * 1000)
        i += 1
    return latencies


def in_process(model_dir: Path, images: list[bytes], seconds: float, shipped: tuple[str, str]
               ) -> tuple[list[Point], dict[str, float]]:
    """Each runtime on one thread, the shipped one also on two, and each one's largest probability
    difference to eager PyTorch."""
    from handler.preprocess import decode_image, load_image, resize
    from training import model as model_folder

    torch.set_num_threads(1)
    arrays = np.stack([load_image(image) for image in images])
    graph = model_folder.ServingGraph(*model_folder.load(model_dir))
    with torch.inference_mode():
        reference = graph(torch.from_numpy(arrays))[0].numpy()
    points, differences = [], {}
    for runtime, precision in RUNTIMES:
        service = service_for(model_dir, runtime, precision)
        probabilities, _ = service.classifier.runtime.run(arrays)
        differences[f"{runtime} {precision}"] = float(np.abs(probabilities - reference).max())
        points.append(Point(f"in-process {runtime} {precision}, 1 thread (decode + resize + model + answer)",
                            1, answer_loop(service, images, seconds), seconds))
    runtime, precision = shipped
    points.append(Point(f"in-process {runtime} {precision}, 2 threads", 1,
                        answer_loop(service_for(model_dir, runtime, precision, threads=2), images, seconds), seconds))
    points.append(Point("decode + resize alone (handler/preprocess.py)", 1, timed(load_image, images, seconds), seconds))
    phone = [phone_photo(image) for image in images[:4]]
    phone_row = f"decode + resize alone, {PHONE_SIZE[0]}x{PHONE_SIZE[1]} JPEG"
    points.append(Point(f"{phone_row}, scaled decoding (shipped)", 1, timed(load_image, phone, seconds), seconds))
    points.append(Point(f"{phone_row}, full decoding", 1,
                        timed(lambda data: resize(decode_image(data, draft=False)), phone, seconds), seconds))
    return points, differences


PHONE_SIZE = (4032, 3024)  # a 12-megapixel phone camera


def phone_photo(jpeg: bytes) -> bytes:
    """The photo enlarged to PHONE_SIZE and saved as a JPEG: what people upload from their phones."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.open(io.BytesIO(jpeg)).convert("RGB").resize(PHONE_SIZE, Image.Resampling.BICUBIC).save(
        buffer, "JPEG", quality=90)
    return buffer.getvalue()


def timed(function, items: list, seconds: float) -> list[float]:
    """Latencies (ms) of function(item), item after item, for `seconds`."""
    latencies, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = time.perf_counter()
        function(items[len(latencies) % len(items)])
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def pet_head_cost(model_dir: Path, images: list[bytes], rounds: int = 5) -> tuple[float, float]:
    """Median ms of the ONNX Runtime call (one thread, one image) with the serving graph as shipped
    and with a copy that leaves out the ImageNet head (cat/dog probabilities only): what the
    "neither" answer costs. Alternated image by image, so both see the same machine."""
    import warnings

    import onnxruntime as ort

    from handler.preprocess import load_image, to_model_input
    from training import model as model_folder

    model, calibration = model_folder.load(model_dir)
    shipped = model_folder.ServingGraph(model, calibration)

    class CatDogOnly(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, batch: torch.Tensor) -> torch.Tensor:
            return torch.softmax(self.model(to_model_input(batch)) / calibration.temperature, 1)

    arrays = [load_image(image)[None] for image in images]
    example = torch.zeros(2, *arrays[0].shape[1:], dtype=torch.uint8)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    sessions = {}
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        for name, graph in (("with", shipped), ("without", CatDogOnly().eval())):
            path = Path(tmp) / f"{name}.onnx"
            torch.onnx.export(graph, (example,), str(path), opset_version=17, dynamo=False, input_names=["images"],
                              dynamic_axes={"images": {0: "batch"}})
            sessions[name] = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    times: dict[str, list[float]] = {"with": [], "without": []}
    for _ in range(rounds):
        for array in arrays:  # image by image, so a busy moment of the machine hits both alike
            for name, session in sessions.items():
                started = time.perf_counter()
                session.run(None, {"images": array})
                times[name].append((time.perf_counter() - started) * 1000)
    return float(np.median(times["with"])), float(np.median(times["without"]))


def _worker(model_dir: str, runtime: str, precision: str, pinning: bool, images: list[bytes], seconds: float,
            ready, go, results) -> None:
    torch.set_num_threads(1)
    service = service_for(Path(model_dir), runtime, precision, pinning)
    answer_loop(service, images, 0.0, warm_up=1.0)
    ready.wait()
    go.wait()
    results.put(len(answer_loop(service, images, seconds, warm_up=0.0)))


def two_workers(setup: Setup, images: list[bytes], seconds: float, pinning: bool) -> float:
    """Images/s of two in-process worker processes (one thread each) running at once."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    ready, go, results = context.Barrier(3), context.Barrier(3), context.Queue()
    args = (str(setup.model_dir), setup.runtime, setup.precision, pinning, images, seconds, ready, go, results)
    workers = [context.Process(target=_worker, args=args) for _ in range(2)]
    for worker in workers:
        worker.start()
    ready.wait()
    go.wait()
    total = sum(results.get(timeout=seconds + 120) for _ in workers)
    for worker in workers:
        worker.join()
    return total / seconds


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


@dataclasses.dataclass(frozen=True)
class CpuPerRequest:
    """Milliseconds of CPU (user + system) per answered request, by process, over one point."""

    frontend: float  # TorchServe's Java process: HTTP, queues, batching, the hop to the workers
    workers: float  # the Python workers: TorchServe's side of the hop and the handler
    client: float  # this process: the load generator's threads


def workers_of(server: TorchServe) -> list[psutil.Process]:
    """The server's Python worker processes, in worker order."""
    pids = [pid for _, pid in sorted(worker_pids(server.management_url).items()) if pid > 0]
    return [psutil.Process(pid) for pid in pids]


def worker_memory_mb(workers: list[psutil.Process]) -> list[tuple[float, float]]:
    """(RSS, USS) in MB of each worker. RSS counts the shared libraries' pages too (torch alone is
    hundreds of MB); USS is what the worker holds on its own."""
    return [(m.rss / 1e6, m.uss / 1e6) for m in (worker.memory_full_info() for worker in workers)]


def cpu_seconds(processes: list[psutil.Process]) -> float:
    return sum(times.user + times.system for times in (process.cpu_times() for process in processes))


def ms_per_request(cpu_s: float, point: Point) -> float:
    return 1000 * cpu_s / max(len(point.latencies_ms), 1)


def server_for(setup: Setup, work: Path, overrides: dict[str, str] | None = None) -> TorchServe:
    """A TorchServe (not started) serving the setup's freshly packaged archive from `work`."""
    store = work / "store"
    shutil.rmtree(store, ignore_errors=True)
    store.mkdir(parents=True)
    build_archive(setup.model_dir, "bench", store / f"{MODEL_NAME}.mar", batching=setup.batching,
                  runtime=setup.runtime, precision=setup.precision)
    spec = ModelSpec(f"{MODEL_NAME}.mar", workers=setup.workers)
    return TorchServe(store, work / "run", ports=Ports.free(), models=[spec], threads_per_worker=setup.threads,
                      overrides=overrides or {})


def served(setup: Setup, work: Path, images: list[bytes], seconds: float
           ) -> tuple[list[Point], list[tuple], CpuPerRequest]:
    """The setup's points at each concurrency, its workers' memory after them, and where the CPU
    went at the highest concurrency."""
    with server_for(setup, work) as server:
        drive(server.ports.inference, images, max(CONCURRENCY), WARM_UP_S, "warm-up")
        workers = workers_of(server)
        *lower, highest = CONCURRENCY
        points = [drive(server.ports.inference, images, c, seconds, setup.name) for c in lower]
        groups = ([workers[0].parent()], workers, [psutil.Process()])
        before = [cpu_seconds(group) for group in groups]
        points.append(drive(server.ports.inference, images, highest, seconds, setup.name))
        cpu = CpuPerRequest(*(ms_per_request(cpu_seconds(group) - start, points[-1])
                              for group, start in zip(groups, before)))
        return points, worker_memory_mb(workers), cpu


def warm_up_curve(setup: Setup, work: Path, images: list[bytes], seconds: float, rounds: int,
                  vmargs: str) -> list[tuple[float, float]]:
    """From a cold start, round by round at concurrency 8: (images/s, the frontend's CPU ms per
    request), with the JVM started with `vmargs` ("" = the JVM's defaults)."""
    curve = []
    with server_for(setup, work, overrides={"vmargs": vmargs}) as server:
        frontend = [workers_of(server)[0].parent()]
        for _ in range(rounds):
            before = cpu_seconds(frontend)
            point = drive(server.ports.inference, images, max(CONCURRENCY), seconds, "warm-up curve")
            curve.append((rate(point), ms_per_request(cpu_seconds(frontend) - before, point)))
    return curve


def curve_report(setup: Setup, work: Path, images: list[bytes], seconds: float, rounds: int = 12) -> list[str]:
    """The warm-up curve of the configs' vmargs beside the JVM's defaults, as a Markdown table."""
    vmargs = read_properties(LOCAL_CONFIG).get("vmargs", "")
    curves = {}
    for name, flags in ((f"config vmargs `{vmargs}`", vmargs), ("the JVM's defaults", "")):
        print(f"running: warm-up curve, {name} ...", flush=True)
        curves[name] = warm_up_curve(setup, work / f"curve{len(curves)}", images, seconds, rounds, flags)
    header = " | ".join(f"{name}: images/s | frontend CPU ms per request" for name in curves)
    return [
        f"{setup.name}, concurrency {max(CONCURRENCY)}, from a cold start, rounds of {seconds:g} s:",
        "",
        f"| seconds under load | {header} |",
        "|---:|" + "---:|---:|" * len(curves),
        *(f"| {seconds * (i + 1):g} | " + " | ".join(f"{c[i][0]:.0f} | {c[i][1]:.2f}" for c in curves.values()) + " |"
          for i in range(rounds)),
    ]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.machine()


def conditions(images_note: str, model_note: str, seconds: float) -> str:
    load = os.getloadavg()
    return (
        f"Machine: {cpu_model()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, torch {torch.__version__}; load average at start "
        f"{load[0]:.2f}. Model: {model_note}. Images: {images_note}. "
        f"{seconds:.0f} s per point after warm-up; clients on the same machine over 127.0.0.1."
    )


def batch_label(batching: Batching) -> str:
    if batching.max_delay_ms == 0:
        return f"batch {batching.size}, queued requests only"
    return f"batch {batching.size} / {batching.max_delay_ms} ms"


def rate(point: Point) -> float:
    return len(point.latencies_ms) / point.seconds


def median(point: Point) -> float:
    return float(np.median(point.latencies_ms))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Inference runtimes in-process, and TorchServe, on 127.0.0.1.")
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per point")
    parser.add_argument("--images", type=Path, help="folder with cats/ and dogs/ (default: shared photos)")
    parser.add_argument("--out", type=Path, help="also write the Markdown report here")
    parser.add_argument("--params", type=Path, default=REPO_ROOT / "params.yaml", help="the shipped package settings")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--warm-up-curve", action="store_true",
                        help="only serve the shipped archive from a cold start, with the configs' JVM flags and "
                             "with the JVM's defaults: images/s and the frontend's CPU per request, round by round")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        package = read_params(args.params)
        batching = Batching.from_params(package.get("batching"))
    except PackageError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    runtime = package.get("runtime", DEFAULT_RUNTIME)
    precision = package.get("precision", DEFAULT_PRECISION)
    images, images_note = load_images(args.images)
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as tmp:
        work = Path(tmp)
        model_dir, model_note = prepare_model(work)
        report = [conditions(images_note, model_note, args.seconds), ""]
        print(report[0], flush=True)
        served_as = f"TorchServe {runtime} {precision}, 2 workers x 1 thread"
        shipped = Setup(f"{served_as}, {batch_label(batching)} (shipped)", model_dir, runtime, precision, batching)
        if args.warm_up_curve:
            text = "\n".join([report[0], "", *curve_report(shipped, work, images, args.seconds)])
            print("\n" + text)
            if args.out:
                args.out.write_text(text + "\n")
            return 0
        print("running: runtimes in-process ...", flush=True)
        points, differences = in_process(model_dir, images, args.seconds, (runtime, precision))
        baseline = next(p for p in points if p.setup.startswith(f"in-process {runtime} {precision}, 1 thread"))
        print("running: the cost of the pet head ...", flush=True)
        with_pet, without_pet = pet_head_cost(model_dir, images)
        print("running: two in-process workers ...", flush=True)
        ceilings = {pinning: two_workers(shipped, images, args.seconds, pinning)
                    for pinning in ((False, True) if runtime == "openvino" else (False,))}
        baseline_cnn = write_fresh_model(work / "catsdogsnet")
        # The shipped batching against waiting 1 ms for company (the smallest wait TorchServe takes
        # from an archive) and against no batching; one worker using both cores (no alternation
        # between workers for lone requests: README); and the old model served the same way.
        waiting = dataclasses.replace(batching, max_delay_ms=1)
        one_worker = dataclasses.replace(
            shipped, name=f"TorchServe {runtime} {precision}, 1 worker x 2 threads, {batch_label(batching)}",
            workers=1, threads=2)
        old_model = Setup(
            f"TorchServe CatsDogsNet on torch f32, 2 workers x 1 thread, {batch_label(batching)} (the old model)",
            baseline_cnn, "torch", "f32", batching)
        plan = (
            shipped,
            *([dataclasses.replace(shipped, name=f"{served_as}, {batch_label(waiting)}", batching=waiting)]
              if waiting != batching else []),
            dataclasses.replace(shipped, name=f"{served_as}, no batching", batching=Batching(size=1)),
            one_worker,
            old_model,
        )
        memory: dict[str, list[tuple[float, float]]] = {}
        cpu: dict[str, CpuPerRequest] = {}
        for number, setup in enumerate(plan):
            print(f"running: {setup.name} ...", flush=True)
            setup_points, memory[setup.name], cpu[setup.name] = served(
                setup, work / f"setup{number}", images, args.seconds)
            points += setup_points
    by_name = {(p.setup, p.concurrency): p for p in points}
    c1, c8 = by_name[(shipped.name, 1)], by_name[(shipped.name, 8)]
    old_c8 = by_name[(old_model.name, 8)]
    ratio, ceiling = median(c1) / median(baseline), ceilings[False]
    one_c1, one_c8 = by_name[(one_worker.name, 1)], by_name[(one_worker.name, 8)]
    two_threads = next(p for p in points if p.setup == f"in-process {runtime} {precision}, 2 threads")
    targets = {
        f"in-process p50 with decode, {runtime} {precision}: {median(baseline):.1f} ms (<= 10 ms)":
            median(baseline) <= 10.0,
        f"served p50 / in-process p50 at concurrency 1: {ratio:.2f}x (<= 1.2x)": ratio <= 1.2,
        f"served images/s at concurrency 8 / two in-process workers: {rate(c8):.0f} / {ceiling:.0f} = "
        f"{rate(c8) / ceiling:.2f}x (>= 0.9x)": rate(c8) >= 0.9 * ceiling,
        f"served images/s at concurrency 8 / CatsDogsNet served in the same run: {rate(c8):.0f} / "
        f"{rate(old_c8):.0f} = {rate(c8) / rate(old_c8):.2f}x (>= 1.0x)": rate(c8) >= rate(old_c8),
        f"the pet head (the \"neither\" answer) costs {with_pet:.2f} vs {without_pet:.2f} ms per image in "
        f"ONNX Runtime: {with_pet / without_pet - 1:+.1%} (<= 5 %)": with_pet <= 1.05 * without_pet,
        f"{runtime} {precision} answers like eager PyTorch: max probability difference "
        f"{differences[f'{runtime} {precision}']:.5f} (<= 0.01)": differences[f"{runtime} {precision}"] <= 0.01,
    }
    report += [
        "| setup | concurrency | images/s | p50 ms | p95 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *(p.row() for p in points),
        "",
        "| two in-process workers, 1 thread each, " + f"{runtime} {precision} | images/s |",
        "|---|---:|",
        *(f"| CPU pinning {'on (OpenVINO default)' if pinning else 'off (shipped)'} | {value:.0f} |"
          for pinning, value in ceilings.items()),
        "",
        f"| served setup (torch {torch.__version__} in the workers) | RSS per worker, MB | USS per worker, MB |",
        "|---|---:|---:|",
        *(f"| {name} | {' / '.join(f'{rss:.0f}' for rss, _ in sizes)} | {' / '.join(f'{uss:.0f}' for _, uss in sizes)} |"
          for name, sizes in memory.items()),
        "",
        f"| served setup, concurrency {max(CONCURRENCY)} | CPU ms per request: frontend (Java) | workers | "
        "this client |",
        "|---|---:|---:|---:|",
        *(f"| {name} | {c.frontend:.2f} | {c.workers:.2f} | {c.client:.2f} |" for name, c in cpu.items()),
        "",
        "| runtime | max probability difference to eager PyTorch |",
        "|---|---:|",
        *(f"| {name} | {value:.5f} |" for name, value in differences.items()),
        "",
        *(f"- {text}: {'met' if ok else 'MISSED'}" for text, ok in targets.items()),
        f"- not shipped, for comparison: 1 worker x 2 threads serves a lone request in {median(one_c1):.1f} ms "
        f"({median(one_c1) / median(two_threads):.2f}x its in-process p50 on 2 threads, {median(two_threads):.1f} ms) "
        f"and {rate(one_c8):.0f} images/s at concurrency 8 (shipped: {median(c1):.1f} ms, {rate(c8):.0f} images/s)",
    ]
    text = "\n".join(report)
    print("\n" + text)
    if args.out:
        args.out.write_text(text + "\n")
    errors = any(p.errors for p in points)
    return 1 if errors or (args.check and not all(targets.values())) else 0


if __name__ == "__main__":
    sys.exit(main())
