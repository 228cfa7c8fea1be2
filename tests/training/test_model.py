"""CatsDogsNet: the model contract (shape, dtype, one class in the file, default construction)."""

from __future__ import annotations

import ast
import inspect

import pytest
import torch
from torch import nn

import training.model
from training.model import CatsDogsNet


@pytest.mark.parametrize("batch", [1, 2, 5])
def test_output_is_n_by_2_float_logits(batch):
    model = CatsDogsNet().eval()
    with torch.inference_mode():
        out = model(torch.randn(batch, 3, 224, 224))
    assert out.shape == (batch, 2)
    assert out.dtype == torch.float32
    assert torch.isfinite(out).all()


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


def test_model_file_defines_exactly_one_module_class():
    # TorchServe's eager loader refuses a model file with more than one nn.Module subclass.
    tree = ast.parse(inspect.getsource(training.model))
    classes = [node.name for node in tree.body if isinstance(node, ast.ClassDef)]
    assert classes == ["CatsDogsNet"]
    assert issubclass(CatsDogsNet, nn.Module)


def test_state_dict_round_trips_into_a_default_constructed_model(tmp_path):
    trained = CatsDogsNet()
    torch.save(trained.state_dict(), tmp_path / "model.pt")
    fresh = CatsDogsNet()
    fresh.load_state_dict(torch.load(tmp_path / "model.pt", weights_only=True))
    x = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        assert torch.equal(trained.eval()(x), fresh.eval()(x))
