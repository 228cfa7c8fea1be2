"""The inference runtimes behind the handler: one interface, three engines, the same exported graph.

    runtime = load_runtime("onnxruntime", model_dir, threads=1)
    probabilities, pet = runtime.run(images)     # uint8 N x 224 x 224 x 3 -> float32 N x 2, N

- `onnxruntime` (the default: the fastest that answers what PyTorch does here, README "Inference
  runtime"): ONNX Runtime's CPU provider on the ONNX export, on the calling thread.
- `openvino`: OpenVINO on the same ONNX file.
  Its CPU plugin pins threads to cores by default, which makes two worker processes share one core;
  pinning is turned off so each worker's thread goes where the OS scheduler puts it. Precision
  "f32" (the default) answers what PyTorch does; "bf16" (CPUs with AVX512-BF16/AMX) is several
  times faster but moves probabilities by a few hundredths (README "Inference runtime").
- `torch`: the TorchScript export in PyTorch: the reference engine.

Each engine is imported only when chosen, so a serving image needs just the one it uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

RUNTIMES = ("onnxruntime", "openvino", "torch")
DEFAULT_RUNTIME = "onnxruntime"  # chosen by `make bench-serve`: README "Inference runtime"
MODEL_FILES = {"openvino": "model.onnx", "onnxruntime": "model.onnx", "torch": "model.ts"}
PRECISIONS = ("f32", "bf16")  # bf16: openvino only


class Runtime(Protocol):
    name: str

    def run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """uint8 N x H x W x 3 -> (probabilities float32 N x classes, pet probability float32 N)."""


class OpenVinoRuntime:
    name = "openvino"

    def __init__(self, path: Path, threads: int, precision: str = "f32", pinning: bool = False) -> None:
        import openvino as ov

        # pinning=True is OpenVINO's own default, kept only so the benchmark can show what it costs.
        config = {"INFERENCE_NUM_THREADS": threads, "ENABLE_CPU_PINNING": pinning,
                  "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1, "INFERENCE_PRECISION_HINT": precision}
        self._compiled = ov.Core().compile_model(str(path), "CPU", config)
        self._request = self._compiled.create_infer_request()  # one per worker: a worker runs one batch at a time

    def run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        outputs = self._request.infer([np.ascontiguousarray(images)])
        probabilities, pet = (outputs[self._compiled.output(i)] for i in range(2))
        return np.array(probabilities, dtype=np.float32), np.array(pet, dtype=np.float32)


class OnnxRuntime:
    name = "onnxruntime"

    def __init__(self, path: Path, threads: int, precision: str = "f32") -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self._input = self._session.get_inputs()[0].name

    def run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        probabilities, pet = self._session.run(None, {self._input: np.ascontiguousarray(images)})
        return probabilities.astype(np.float32), pet.astype(np.float32)


class TorchRuntime:
    name = "torch"

    def __init__(self, path: Path, threads: int, precision: str = "f32") -> None:
        import torch

        torch.set_num_threads(threads)
        self._torch = torch
        self._module = torch.jit.load(str(path), map_location="cpu").eval()

    def run(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self._torch.inference_mode():
            probabilities, pet = self._module(self._torch.from_numpy(np.ascontiguousarray(images)))
        return probabilities.float().numpy(), pet.float().numpy()


_ENGINES = {"openvino": OpenVinoRuntime, "onnxruntime": OnnxRuntime, "torch": TorchRuntime}


def check(name: str, precision: str) -> None:
    """ValueError unless `name` is a runtime that supports `precision`."""
    if name not in _ENGINES:
        raise ValueError(f"unknown runtime {name!r}; known: {', '.join(RUNTIMES)}")
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; known: {', '.join(PRECISIONS)}")
    if precision == "bf16" and name != "openvino":
        raise ValueError(f"precision bf16 needs the openvino runtime, not {name}")


def load_runtime(name: str, model_dir: Path, threads: int = 1, precision: str = "f32") -> Runtime:
    """The runtime `name` on the exported model file in model_dir; ValueError for a bad choice."""
    check(name, precision)
    path = Path(model_dir) / MODEL_FILES[name]
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: the archive was packaged for another runtime")
    return _ENGINES[name](path, threads, precision)
