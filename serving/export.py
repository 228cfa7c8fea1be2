"""Export a trained model folder to the files the serving runtimes load (run at package time).

    python -m serving.export --model-dir models --runtime openvino --out build/export

Every runtime runs the same graph, training/model.py's ServingGraph: uint8 N x 224 x 224 x 3 RGB in
(normalisation, the calibrated temperature and the softmax are inside), `probabilities` N x 2 and
`pet_probability` N out. `onnxruntime` and `openvino` load it as ONNX (opset 17; OpenVINO reads
ONNX directly, so one exported file serves both); `torch` loads it as TorchScript, traced and
frozen. The ImageNet checkpoint and the training code stay behind: the archive needs none of them.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch

from handler.preprocess import IMAGE_SIZE
from handler.runtime import MODEL_FILES, RUNTIMES
from training import model as model_folder

INPUT, OUTPUTS = "images", ("probabilities", "pet_probability")


def serving_graph(model_dir: Path) -> tuple[torch.nn.Module, model_folder.Calibration]:
    model, calibration = model_folder.load(model_dir)
    return model_folder.ServingGraph(model, calibration).eval(), calibration


def export(model_dir: Path, runtime: str, out_dir: Path) -> Path:
    """Write the runtime's model file into out_dir and return its path."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}; known: {', '.join(RUNTIMES)}")
    graph, _ = serving_graph(model_dir)
    example = torch.zeros(2, IMAGE_SIZE, IMAGE_SIZE, 3, dtype=torch.uint8)  # batch 2: nothing fixes it to 1
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / MODEL_FILES[runtime]
    with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer warnings about Python-level shape checks in to_model_input
        if runtime == "torch":
            traced = torch.jit.freeze(torch.jit.trace(graph, example, check_trace=False))
            torch.jit.save(traced, str(path))
        else:
            torch.onnx.export(
                graph, (example,), str(path), opset_version=17, dynamo=False,
                input_names=[INPUT], output_names=list(OUTPUTS),
                dynamic_axes={INPUT: {0: "batch"}, **{name: {0: "batch"} for name in OUTPUTS}},
            )
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=Path("models"))
    parser.add_argument("--runtime", choices=RUNTIMES, required=True)
    parser.add_argument("--out", type=Path, required=True, help="folder for the exported file")
    args = parser.parse_args(argv)
    try:
        path = export(args.model_dir, args.runtime, args.out)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB) for runtime {args.runtime}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
