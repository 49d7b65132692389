"""MODNAS's MetaHypernetwork H(r, d): a preference ray and a device embedding -> architecture logits.

A bank of K learned "prototype devices", each owning a hypernetwork that maps the preference to
(6 edges x 5 ops) logits. The preference enters through its first coordinate (the weight on accuracy;
with two objectives on the simplex it fixes the ray), quantised into ``intervals`` bins, each bin an
embedding row, so every region of the trade-off gets its own free logits. The device embedding d is
compared with the K prototype embeddings (scaled dot product, then softmax of the sine as in MODNAS),
and H(r, d) is the similarity-weighted mix of the prototypes' outputs: a device never seen in training
is served by the prototypes it resembles. Rows start near zero (std 1e-3): uniform logits, which is
what MODNAS's hypernetwork pre-training produces. As in MODNAS, training preferences lie on the simplex
(r_acc + r_lat = 1) while the test rays lie on the quarter circle (cos t, sin t) and are binned by their
first coordinate as they are, so the test rays crowd the accuracy end of the bins.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from mobile_mote.search_spaces.nb201 import OPS
from mobile_mote.search_spaces.nb201_net import EDGES


class MetaHypernetwork(nn.Module):
    def __init__(self, embed_dim: int = 10, prototypes: int = 50, intervals: int = 101,
                 n_edges: int = len(EDGES), n_ops: int = len(OPS), init_std: float = 1e-3):
        super().__init__()
        self.embed_dim, self.intervals = embed_dim, intervals
        self.n_edges, self.n_ops = n_edges, n_ops
        self.device_prototypes = nn.Parameter(torch.randn(prototypes, embed_dim))
        self.tables = nn.Parameter(init_std * torch.randn(prototypes, intervals, n_edges * n_ops))

    def bins(self, r: torch.Tensor) -> torch.Tensor:
        return (r[..., 0].clamp(0, 1) * (self.intervals - 1)).round().long()

    def forward(self, r: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
        """``r`` (B, 2) preference rays, ``d`` (B, embed_dim) device embeddings -> (B, 6, 5) logits."""
        sim = d @ self.device_prototypes.T / math.sqrt(self.embed_dim)  # (B, K)
        mix = torch.sin(sim).softmax(-1)
        rows = self.tables[:, self.bins(r)]  # (K, B, E*O)
        out = torch.einsum("bk,kbo->bo", mix, rows)
        return out.reshape(-1, self.n_edges, self.n_ops)

    @torch.no_grad()
    def architecture(self, r, d) -> tuple[str, ...]:
        """The argmax cell (op names, NB201 edge order) for one preference ray and one device."""
        r = torch.as_tensor(r, dtype=torch.float32).reshape(1, -1)
        d = torch.as_tensor(d, dtype=torch.float32).reshape(1, -1)
        logits = self(r.to(self.tables.device), d.to(self.tables.device))[0]
        return tuple(OPS[int(k)] for k in logits.argmax(-1))
