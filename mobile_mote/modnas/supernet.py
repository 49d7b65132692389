"""A weight-sharing NB201 supernet: the benchmark's macro skeleton with every edge holding all 5 ops.

``forward(x, weights)`` takes a (6, 5) matrix of per-edge operation weights (a hard one-hot sample
from ``sampling``) shared by every cell, as in NB201's one-shot methods. When the weights need no
gradient (the supernet's own training step) only the chosen operation runs; when they do (the
hypernetwork's step) every operation runs so each weight receives d loss / d weight.
"""
from __future__ import annotations

import torch
from torch import nn

from mobile_mote.search_spaces.nb201 import OPS
from mobile_mote.search_spaces.nb201_net import EDGES, ResidualReduction, make_op


class MixedEdge(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.ops = nn.ModuleList(make_op(op, channels) for op in OPS)

    def forward(self, x: torch.Tensor, w: torch.Tensor, k: int | None = None) -> torch.Tensor:
        if k is not None:  # the chosen op only (no gradient to the weights wanted)
            return self.ops[k](x) * w[k] if OPS[k] != "none" else x.mul(0.0)
        return sum(w[k] * (op(x) if OPS[k] != "none" else x.mul(0.0)) for k, op in enumerate(self.ops))


class SearchCell(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.edges = nn.ModuleList(MixedEdge(channels) for _ in EDGES)

    def forward(self, x: torch.Tensor, weights: torch.Tensor, chosen: list[int] | None = None) -> torch.Tensor:
        nodes = [x]
        for to in (1, 2, 3):
            nodes.append(sum(self.edges[k](nodes[frm], weights[k], None if chosen is None else chosen[k])
                             for k, (t, frm) in enumerate(EDGES) if t == to))
        return nodes[3]


class NB201Supernet(nn.Module):
    """Stem, 3 stages of ``cells_per_stage`` search cells (C, 2C, 4C channels), GAP, linear."""

    def __init__(self, num_classes: int, channels: int = 16, cells_per_stage: int = 5):
        super().__init__()
        c = channels
        self.stem = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c))
        self.layers = nn.ModuleList()
        for stage in range(3):
            if stage > 0:
                self.layers.append(ResidualReduction(c, 2 * c))
                c *= 2
            self.layers.extend(SearchCell(c) for _ in range(cells_per_stage))
        self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
        # one host sync per forward (not one per edge and cell) to pick the ops when no gradient is wanted
        chosen = None if weights.requires_grad else weights.argmax(-1).tolist()
        x = self.stem(x)
        for layer in self.layers:
            x = layer(x, weights, chosen) if isinstance(layer, SearchCell) else layer(x)
        x = self.lastact(x)
        return self.classifier(x.mean((2, 3)))
