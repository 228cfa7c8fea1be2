"""The learning-rate cycle and the weight average: the two knobs of the training loop."""

from __future__ import annotations

import pytest
import torch

from training.catsdogsnet import CatsDogsNet
from training.efficientnet import EfficientNetLite0
from training.params import Recipe, TrainParams
from training.train import ema_update, frozen_blocks, make_optimizer, one_cycle_lr, set_trainable


def test_one_cycle_warms_up_peaks_and_decays_to_almost_zero():
    def lr(progress: float) -> float:
        return one_cycle_lr(progress, peak=0.01, warmup=0.2)

    assert lr(0.0) == pytest.approx(0.0004)
    assert lr(0.2) == pytest.approx(0.01)
    assert lr(0.1) < lr(0.2) > lr(0.6)
    assert lr(1.0) == pytest.approx(0.00001)
    assert lr(1.5) == lr(1.0)  # never negative past the end


def test_weight_average_follows_early_steps_then_moves_slowly():
    update = ema_update(0.998)
    averaged, current = torch.zeros(3), torch.ones(3)
    first = update(averaged, current, torch.tensor(0))  # decay 0.1: mostly the new weights
    assert torch.allclose(first, torch.full((3,), 0.9))
    late = update(averaged, current, torch.tensor(100_000))  # decay capped at 0.998
    assert torch.allclose(late, torch.full((3,), 0.002))



def test_optimizer_decays_weights_but_not_batchnorm_or_biases():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(4, 2))
    decayed, plain = make_optimizer(model, TrainParams(arch="catsdogsnet", weight_decay=0.05)).param_groups
    assert decayed["weight_decay"] == 0.05 and plain["weight_decay"] == 0.0
    assert [p.ndim for p in decayed["params"]] == [4, 2]  # conv and linear weights
    assert all(p.ndim == 1 for p in plain["params"])


def test_fine_tuning_gives_the_backbone_its_own_rate_and_never_trains_the_imagenet_head():
    model = EfficientNetLite0()
    params = TrainParams(efficientnet_lite0=Recipe(lr=0.002, backbone_lr=0.0003))
    groups = make_optimizer(model, params).param_groups
    head = {id(p) for p in model._fc.parameters()}
    for group in groups:
        in_head = {id(p) in head for p in group["params"]}
        assert len(in_head) == 1, "a group mixes head and backbone"
        assert group["peak_lr"] == (0.002 if in_head == {True} else 0.0003)
    trained = {id(p) for g in groups for p in g["params"]}
    assert not trained & {id(p) for p in model.imagenet_fc.parameters()}


def test_head_epochs_freeze_the_backbone_then_blocks_from_unfreeze_from_learn():
    model = EfficientNetLite0()
    recipe = Recipe(epochs=3, head_epochs=1, unfreeze_from=8)
    blocks = len(model._blocks)
    assert frozen_blocks(model, recipe, 1) == blocks and frozen_blocks(model, recipe, 2) == 8
    set_trainable(model, blocks)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"_fc.weight", "_fc.bias"}
    set_trainable(model, 8)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert {"_blocks.8._expand_conv.weight", "_blocks.8._project_conv.weight", "_conv_head.weight"} <= trainable
    assert "_blocks.7._project_conv.weight" not in trainable and "_conv_stem.weight" not in trainable
    assert not any("_depthwise_conv" in n for n in trainable)  # their weight gradient costs most of a step
    assert not any(n.startswith("imagenet_fc") for n in trainable)
    assert frozen_blocks(CatsDogsNet(), recipe, 1) == 0  # from scratch: everything learns


def test_outlier_batches_are_endless_augmented_quarter_batches_and_absent_without_photos():
    import numpy as np

    from training.train import outlier_batches

    params = TrainParams(batch_size=16)
    images = np.random.default_rng(0).integers(0, 256, (6, 224, 224, 3), dtype=np.uint8)
    batches = outlier_batches(images, params)
    shapes = [tuple(next(batches).shape) for _ in range(5)]  # more batches than one pass holds
    assert shapes == [(4, 3, 224, 224)] * 5  # a quarter of 16, pass after pass
    assert outlier_batches(None, params) is None
    assert outlier_batches(images, TrainParams(efficientnet_lite0=Recipe(outlier_weight=0.0))) is None
