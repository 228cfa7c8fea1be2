"""The learning-rate cycle and the weight average: the two knobs of the training loop."""

from __future__ import annotations

import pytest
import torch

from training.params import TrainParams
from training.train import ema_update, one_cycle_lr


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
