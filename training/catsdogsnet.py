"""The from-scratch baseline CNN: N x 3 x 224 x 224 normalised RGB -> N x 2 logits (0 = cat, 1 = dog).

A small residual network (~0.87M parameters, ~0.14 GMAC per image) sized for a 2-core CPU on both
sides: it trains for well over a hundred epochs in about 15 minutes, and serves an image in
about 3-5 ms of one core. Its stem is a space-to-depth step (PixelUnshuffle: each 2x2 pixel patch
becomes 12 channels at 112 x 112) and two stride-2 convolutions down to 28 px, so no convolution
runs at full resolution, whose backward pass dominated the step time on the CPU. Four residual
blocks then go 28 -> 14 -> 7 px. It is fully convolutional, so training may feed smaller crops
(its recipe's crop_size) while evaluation and serving use 224 px. It is kept beside the fine-tuned
EfficientNet-Lite0 as the baseline (`dvc exp run -S train.arch=catsdogsnet`) and as the cheapest
model to serve."""

from __future__ import annotations

import torch
from torch import nn


def _conv_bn(c_in: int, c_out: int, stride: int = 1, relu: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class CatsDogsNet(nn.Module):
    def __init__(self, num_classes: int = 2, width: int = 48, dropout: float = 0.2) -> None:
        super().__init__()
        w = width
        self.stem = nn.Sequential(
            nn.PixelUnshuffle(2),  # 224 -> 112 px, 3 -> 12 channels, nothing lost
            _conv_bn(12, 32, stride=2),  # 56 px
            _conv_bn(32, w, stride=2),  # 28 px
        )
        # (in, out, stride) of each residual block: 28 -> 14 -> 7 px. (For one image, PyTorch runs
        # the 14 and 7 px convolutions, inputs of <= 20480 values, on its slower native path rather
        # than oneDNN; a batch of two or more takes oneDNN, one reason the server batches.)
        plan = [(w, w, 1), (w, 2 * w, 2), (2 * w, 2 * w, 1), (2 * w, 4 * w, 2)]
        self.bodies = nn.ModuleList(
            nn.Sequential(_conv_bn(c_in, c_out, stride), _conv_bn(c_out, c_out, relu=False))
            for c_in, c_out, stride in plan
        )
        self.shortcuts = nn.ModuleList(
            nn.Identity()
            if c_in == c_out and stride == 1
            else nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))
            for c_in, c_out, stride in plan
        )
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(4 * w, num_classes)
        )
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
        for body in self.bodies:
            # Each residual block starts as the identity (its last BatchNorm scale is 0): a deep net
            # then trains like a shallow one at first, which speeds up the early epochs.
            nn.init.zeros_(body[-1][1].weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for body, shortcut in zip(self.bodies, self.shortcuts):
            x = torch.relu(body(x) + shortcut(x))
        return self.head(x)
