"""The learning-rate cycle and the weight average: the two knobs of the training loop."""

from __future__ import annotations

import pytest
import torch

from training.params import TrainParams
from training.train import ema_update, make_optimizer, one_cycle_lr


def test_one_cycle_warms_up_peaks_and_decays_to_almost_zero():
    params = TrainParams(lr=0.01, warmup_fraction=0.2)
    assert one_cycle_lr(0.0, params) == pytest.approx(0.0004)
    assert one_cycle_lr(0.2, params) == pytest.approx(0.01)
    assert one_cycle_lr(0.1, params) < one_cycle_lr(0.2, params) > one_cycle_lr(0.6, params)
    assert one_cycle_lr(1.0, params) == pytest.approx(0.00001)
    assert one_cycle_lr(1.5, params) == one_cycle_lr(1.0, params)  # never negative past the end


def test_weight_average_follows_early_steps_then_moves_slowly():
    update = ema_update(0.998)
    averaged, current = torch.zeros(3), torch.ones(3)
    first = update(averaged, current, torch.tensor(0))  # decay 0.1: mostly the new weights
    assert torch.allclose(first, torch.full((3,), 0.9))
    late = update(averaged, current, torch.tensor(100_000))  # decay capped at 0.998
    assert torch.allclose(late, torch.full((3,), 0.002))



def test_optimizer_decays_weights_but_not_batchnorm_or_biases():
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(4, 2))
    decayed, plain = make_optimizer(model, TrainParams(weight_decay=0.05)).param_groups
    assert decayed["weight_decay"] == 0.05 and plain["weight_decay"] == 0.0
    assert [p.ndim for p in decayed["params"]] == [4, 2]  # conv and linear weights
    assert all(p.ndim == 1 for p in plain["params"])
