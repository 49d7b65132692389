"""Torch modules for NAS-Bench-201 cells: the benchmark's full network and MOTE's reduced one."""
from __future__ import annotations

import torch
from torch import nn

from .nb201 import EDGES


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )


class Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def make_op(name: str, channels: int) -> nn.Module:
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3)
    if name == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ValueError(f"unknown NB201 operation {name!r}")


class Cell(nn.Module):
    """node_i = sum_{j<i} op_(i,j)(node_j); the cell's output is node 3."""

    def __init__(self, ops: tuple[str, ...], channels: int):
        super().__init__()
        self.ops = tuple(ops)
        self.edges = nn.ModuleList(make_op(op, channels) for op in ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for to in (1, 2, 3):
            total = 0
            for k, (t, frm) in enumerate(EDGES):
                if t == to and self.ops[k] != "none":
                    total = total + self.edges[k](nodes[frm])
            # An all-'none' node is zeros of the right shape, as in the benchmark.
            nodes.append(total if torch.is_tensor(total) else nodes[0].mul(0.0))
        return nodes[3]


class ResidualReduction(nn.Module):
    """NB201's ResNet basic block between stages (stride 2, channels doubled)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, stride=1)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    """The benchmark's network: stem, 3 stages of N cells with C, 2C, 4C channels."""

    def __init__(self, ops: tuple[str, ...], num_classes: int = 10, channels: int = 16, cells_per_stage: int = 5):
        super().__init__()
        c = channels
        layers: list[nn.Module] = []
        for stage in range(3):
            if stage > 0:
                layers.append(ResidualReduction(c, 2 * c))
                c *= 2
            layers.extend(Cell(ops, c) for _ in range(cells_per_stage))
        self.stem = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
        self.cells = nn.Sequential(*layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c, num_classes)

    def feature_modules(self) -> list[nn.Module]:
        """Stem, then every cell and reduction block: the feature maps AZ-NAS reads."""
        return [self.stem, *self.cells]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lastact(self.cells(self.stem(x)))
        return self.classifier(self.pool(x).flatten(1))


class ReducedNB201(nn.Module):
    """MOTE's reduced architecture: stem (3x3, 32 ch, BN), cell, 4x4 avg-pool, cell, GAP, linear."""

    def __init__(self, ops: tuple[str, ...], num_classes: int = 10, channels: int = 32):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
        self.cell1 = Cell(ops, channels)
        self.pool1 = nn.AvgPool2d(4)
        self.cell2 = Cell(ops, channels)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(channels, num_classes)

    def feature_modules(self) -> list[nn.Module]:
        return [self.stem, self.cell1, self.cell2]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.cell2(self.pool1(self.cell1(self.stem(x))))
        return self.classifier(self.pool(x).flatten(1))
