"""Torch modules for NAS-Bench-Macro networks: the benchmark's CIFAR-10 network and MOTE's reduced one.

Both are one class, :class:`MacroNetwork`, built from the 8 layer choices and a width plan:
stem (3x3 conv, BN, ReLU), 3 stages of 2/3/3 layers whose first layer has stride 2 and doubles the
channels, head (1x1 conv, BN, ReLU), global average pool, linear classifier. Every conv is bias-free;
the linear layer has a bias.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

#: The layer choices, in the benchmark's digit order: (kernel, expansion) of an MB block, None for identity.
from .macro import LAYER_OPS, STAGE_DEPTHS


def conv_bn(c_in: int, c_out: int, kernel: int = 1, stride: int = 1, groups: int = 1, relu: bool = True):
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class IdentityLayer(nn.Module):
    """The benchmark's ``id`` choice: nothing where shapes match, else a 1x1 conv (with stride) + BN, no ReLU."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.downsample = conv_bn(c_in, c_out, 1, stride, relu=False) if (stride != 1 or c_in != c_out) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x if self.downsample is None else self.downsample(x)


class MBLayer(nn.Module):
    """Inverted residual: pw 1x1 (BN, ReLU), depthwise kxk with the stride (BN, ReLU), pw-linear 1x1 (BN);
    the input is added back when the shapes match (stride 1, same channels)."""

    def __init__(self, c_in: int, c_out: int, stride: int, kernel: int, expansion: int):
        super().__init__()
        mid = c_in * expansion
        self.conv = nn.Sequential(
            conv_bn(c_in, mid, 1),
            conv_bn(mid, mid, kernel, stride, groups=mid),
            conv_bn(mid, c_out, 1, relu=False),
        )
        self.use_shortcut = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        return y + x if self.use_shortcut else y


def make_layer(op: str, c_in: int, c_out: int, stride: int) -> nn.Module:
    spec = LAYER_OPS[op]
    if spec is None:
        return IdentityLayer(c_in, c_out, stride)
    return MBLayer(c_in, c_out, stride, *spec)


class MacroNetwork(nn.Module):
    """``ops``: 8 names among ``LAYER_OPS``; ``stem``: stem channels (each stage doubles them); ``head``:
    features of the 1x1 head conv. The benchmark's network is stem=32, head=1280."""

    def __init__(self, ops: Sequence[str], num_classes: int = 10, stem: int = 32, head: int = 1280):
        super().__init__()
        if len(ops) != sum(STAGE_DEPTHS):
            raise ValueError(f"a NAS-Bench-Macro network has {sum(STAGE_DEPTHS)} layers, got {len(ops)}")
        self.stem = conv_bn(3, stem, 3)
        layers: list[nn.Module] = []
        c, i = stem, 0
        for depth in STAGE_DEPTHS:
            for j in range(depth):
                if j == 0:
                    layers.append(make_layer(ops[i], c, 2 * c, 2))
                    c *= 2
                else:
                    layers.append(make_layer(ops[i], c, c, 1))
                i += 1
        self.features = nn.Sequential(*layers)
        self.head = conv_bn(c, head, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(head, num_classes)

    def feature_modules(self) -> list[nn.Module]:
        """The modules whose outputs are the network's successive feature maps (stem, then each layer);
        zero-cost proxies that read features layer by layer (AZ-NAS) hook these."""
        return [self.stem, *self.features]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.features(self.stem(x)))
        return self.classifier(self.pool(x).flatten(1))
