"""Training-only augmentation, and the batches the training and evaluation loops consume.

Training: each stored uint8 picture gets its own random crop, flip, rotation and colour jitter
(torchvision.transforms.v2 on uint8 tensors, ~1.3 ms a picture) in the DataLoader: in the training
process by default, since on two cores a worker process only contends with the step
(train.num_workers adds workers on bigger machines); then a share of the normalised batches is mixed
(CutMix or MixUp, with soft targets). Both paths normalise with
`handler.preprocess.to_model_input`, the one normalisation serving uses; evaluation applies nothing
else, so a stored array gives the same tensor here as in the handler.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import v2

from handler.preprocess import CLASS_NAMES, IMAGE_SIZE, to_model_input
from training.params import TrainParams


def train_transform(params: TrainParams) -> v2.Compose:
    """The random transform of one uint8 3 x H x W picture (training only)."""
    steps: list[v2.Transform] = []
    recipe = params.recipe
    if recipe.crop_scale_min < 1.0 or recipe.crop_size != IMAGE_SIZE:
        crop = v2.RandomResizedCrop(recipe.crop_size, scale=(recipe.crop_scale_min, 1.0), antialias=True)
        steps.append(crop)
    steps.append(v2.RandomHorizontalFlip())
    if params.rotation_degrees > 0:
        steps.append(v2.RandomRotation(params.rotation_degrees))
    if params.jitter > 0:
        j = params.jitter
        steps.append(v2.ColorJitter(brightness=j, contrast=j, saturation=j))
    return v2.Compose(steps)


BatchMixer = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def batch_mixer(params: TrainParams) -> BatchMixer:
    """(normalised batch, labels) -> (batch, soft targets N x classes).

    With probability params.recipe.mix_prob a batch is mixed by CutMix or MixUp (evenly chosen): a patch of,
    or a blend with, another picture of the batch, and targets weighted by the share of each. On a
    small dataset this keeps a long schedule from memorising the pictures. The other batches keep
    their pictures and get one-hot targets, so the loss sees one kind of target.
    """
    classes = len(CLASS_NAMES)
    mix = v2.RandomChoice([v2.CutMix(num_classes=classes), v2.MixUp(num_classes=classes)])
    mix_prob = params.recipe.mix_prob

    def apply(batch: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if mix_prob > 0 and len(labels) > 1 and torch.rand(()).item() < mix_prob:
            return mix(batch, labels)
        return batch, nn.functional.one_hot(labels, classes).float()

    return apply


class AugmentedImages(Dataset):
    """Stored uint8 N x H x W x 3 pictures -> (augmented uint8 3 x H x W tensor, label)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform: v2.Compose) -> None:
        self.images = images
        self.labels = torch.as_tensor(labels, dtype=torch.int64)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        picture = torch.from_numpy(self.images[index]).permute(2, 0, 1)
        return self.transform(picture), self.labels[index]


def train_loader(images: np.ndarray, labels: np.ndarray, params: TrainParams) -> DataLoader:
    """Shuffled, augmented uint8 batches; order and augmentation follow params.seed."""
    generator = torch.Generator().manual_seed(params.seed)
    return DataLoader(
        AugmentedImages(images, labels, train_transform(params)),
        batch_size=params.batch_size,
        shuffle=True,
        drop_last=len(images) > params.batch_size,  # a 1-picture last batch upsets BatchNorm
        num_workers=params.num_workers,
        persistent_workers=params.num_workers > 0,
        generator=generator,
    )


def model_batch(uint8_batch: torch.Tensor) -> torch.Tensor:
    """Augmented uint8 N x 3 x H x W -> normalised float input in channels_last memory order."""
    return to_model_input(uint8_batch, channels_last=False).contiguous(memory_format=torch.channels_last)


def eval_batches(images: np.ndarray, batch_size: int) -> Iterator[torch.Tensor]:
    """Stored uint8 N x H x W x 3 -> normalised model input, in order, with no augmentation."""
    for start in range(0, len(images), batch_size):
        batch = to_model_input(images[start : start + batch_size])
        yield batch.contiguous(memory_format=torch.channels_last)
