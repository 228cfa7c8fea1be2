"""Augmentation happens in training only; evaluation is exactly the serving preprocessing."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch

from handler.preprocess import to_model_input
from training.augment import AugmentedImages, batch_mixer, eval_batches, train_loader, train_transform
from training.params import Recipe, TrainParams

BASELINE = TrainParams(arch="catsdogsnet")  # 160 px crops: the transform changes the size


def test_train_transform_changes_pictures_and_differs_between_calls(pictures):
    images, _ = pictures(1)
    picture = torch.from_numpy(images[0]).permute(2, 0, 1)
    transform = train_transform(BASELINE)
    torch.manual_seed(0)
    first, second = transform(picture), transform(picture)
    assert first.dtype == torch.uint8 and first.shape == (3, BASELINE.recipe.crop_size, BASELINE.recipe.crop_size)
    assert not torch.equal(first, picture)
    assert not torch.equal(first, second)


def test_every_augmentation_can_be_switched_off(pictures):
    images, _ = pictures(1)
    picture = torch.from_numpy(images[0]).permute(2, 0, 1)
    plain = TrainParams(efficientnet_lite0=Recipe(crop_scale_min=1.0, crop_size=224), rotation_degrees=0.0, jitter=0.0)
    names = [type(t).__name__ for t in train_transform(plain).transforms]
    assert names == ["RandomHorizontalFlip"]
    out = train_transform(plain)(picture)
    assert torch.equal(out, picture) or torch.equal(out, picture.flip(-1))


def test_train_batches_are_reproducible_from_the_seed_and_change_with_it(pictures):
    images, labels = pictures(8)
    # With a worker (the training default) its seed comes from the loader's generator, so params.seed
    # alone decides the order and the augmentation.
    params = TrainParams(batch_size=4, num_workers=1)

    def first_batch(p: TrainParams) -> torch.Tensor:
        return next(iter(train_loader(images, labels, p)))[0]

    torch.manual_seed(123)
    a = first_batch(params)
    torch.manual_seed(456)
    b = first_batch(params)
    c = first_batch(dataclasses.replace(params, seed=params.seed + 1))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_each_picture_gets_its_own_random_augmentation(pictures):
    images, labels = pictures(2)
    same = np.stack([images[0], images[0]])
    dataset = AugmentedImages(same, labels, train_transform(BASELINE))
    torch.manual_seed(0)
    assert not torch.equal(dataset[0][0], dataset[1][0])


def test_evaluation_input_is_exactly_to_model_input_of_the_stored_arrays(pictures):
    images, _ = pictures(5)
    batches = list(eval_batches(images, batch_size=2))
    assert [len(b) for b in batches] == [2, 2, 1]
    got = torch.cat(batches)
    assert torch.equal(got, to_model_input(images))
    assert torch.equal(torch.cat(list(eval_batches(images, batch_size=2))), got)  # deterministic


def test_batch_mixer_gives_soft_targets_that_keep_the_label_mass():
    batch = torch.randn(8, 3, 16, 16)
    labels = torch.tensor([0, 1] * 4)
    torch.manual_seed(0)
    mixed, targets = batch_mixer(TrainParams(efficientnet_lite0=Recipe(mix_prob=1.0)))(batch, labels)
    assert mixed.shape == batch.shape and not torch.equal(mixed, batch)
    assert targets.shape == (8, 2) and torch.allclose(targets.sum(dim=1), torch.ones(8))
    assert ((targets > 0) & (targets < 1)).any()  # some targets are shares of both classes
    # Mixed pictures are pairs of the batch's own pictures: the label mass of the batch is unchanged.
    assert torch.allclose(targets.sum(dim=0), torch.tensor([4.0, 4.0]))


def test_batch_mixer_off_passes_pictures_through_with_one_hot_targets():
    batch, labels = torch.randn(4, 3, 16, 16), torch.tensor([1, 0, 0, 1])
    same, targets = batch_mixer(TrainParams(efficientnet_lite0=Recipe(mix_prob=0.0)))(batch, labels)
    assert same is batch
    assert torch.equal(targets, torch.tensor([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
