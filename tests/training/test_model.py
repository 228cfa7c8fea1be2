"""The model contract: both architectures give N x 2 float logits; a model folder round-trips with its
arch and calibration; the serving graph takes uint8 pictures and answers what the model does."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from handler.preprocess import to_model_input
from handler.verdict import Thresholds
from training import model as model_folder
from training.catsdogsnet import CatsDogsNet
from training.efficientnet import EfficientNetLite0
from training.params import ARCHS


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("batch", [1, 3])
def test_output_is_n_by_2_float_logits(arch, batch):
    model = model_folder.build(arch).eval()
    with torch.inference_mode():
        out = model(torch.randn(batch, 3, 224, 224))
    assert out.shape == (batch, 2) and out.dtype == torch.float32 and torch.isfinite(out).all()


def test_build_knows_each_arch_and_refuses_others():
    assert isinstance(model_folder.build("catsdogsnet"), CatsDogsNet)
    assert isinstance(model_folder.build("efficientnet_lite0"), EfficientNetLite0)
    with pytest.raises(ValueError, match="unknown arch 'resnet'"):
        model_folder.build("resnet")


def test_channels_last_and_bf16_give_the_same_answer_as_plain_float32():
    torch.manual_seed(0)
    model = CatsDogsNet().eval()
    x = torch.randn(4, 3, 224, 224)
    with torch.inference_mode():
        plain = model(x)
        fast_model = model.to(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast = fast_model(x.contiguous(memory_format=torch.channels_last)).float()
    assert torch.allclose(plain.softmax(1), fast.softmax(1), atol=0.05)


@pytest.mark.parametrize("arch", ARCHS)
def test_model_folder_round_trips_weights_arch_and_calibration(tmp_path, arch):
    calibration = model_folder.Calibration(0.7, Thresholds(unsure_below=0.8, neither_below=0.05))
    torch.manual_seed(1)
    model = model_folder.build(arch).eval()
    model_folder.save(tmp_path, model, calibration)
    assert json.loads((tmp_path / "model.json").read_text())["arch"] == arch
    assert json.loads((tmp_path / "index_to_name.json").read_text()) == {"0": "cat", "1": "dog"}
    loaded, loaded_calibration = model_folder.load(tmp_path)
    assert loaded_calibration == calibration and not loaded.training
    x = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        assert torch.equal(model(x), loaded(x))


def test_weights_of_another_arch_are_refused_with_a_sentence(tmp_path):
    model_folder.write_fresh(tmp_path, "catsdogsnet")
    meta = json.loads((tmp_path / "model.json").read_text())
    (tmp_path / "model.json").write_text(json.dumps({**meta, "arch": "efficientnet_lite0"}))
    with pytest.raises(ValueError, match=r"does not fit efficientnet_lite0: \d+ problem\(s\), first:"):
        model_folder.load(tmp_path)


def test_a_missing_model_folder_names_the_file_and_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"model.json not found: train a model first"):
        model_folder.load(tmp_path)


@pytest.mark.parametrize("arch", ARCHS)
def test_serving_graph_normalises_uint8_and_applies_the_temperature(arch):
    torch.manual_seed(2)
    model = model_folder.build(arch).eval()
    graph = model_folder.ServingGraph(model, model_folder.Calibration(temperature=0.5))
    images = np.random.default_rng(0).integers(0, 256, (3, 224, 224, 3), dtype=np.uint8)
    with torch.inference_mode():
        probabilities, pet = graph(torch.from_numpy(images))
        logits, expected_pet = model_folder.logits_and_pet(model, to_model_input(images))
    assert torch.allclose(probabilities, torch.softmax(logits / 0.5, 1), atol=1e-6)
    assert torch.allclose(pet, expected_pet.float()) and pet.shape == (3,)
    if arch == "catsdogsnet":  # no ImageNet head: every picture counts as a pet
        assert torch.equal(pet, torch.ones(3))
    else:
        assert ((pet > 0) & (pet < 1)).all()
