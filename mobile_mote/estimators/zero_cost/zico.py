"""ZiCo: gradient mean over spread across batches, per layer (Li et al., ICLR 2023)."""
from __future__ import annotations

import math
from dataclasses import dataclass

from ..options import whole
from ..registry import register_estimator
from .common import _BatchProxy, _ce_backward, _weight_layers, _with_split


@register_estimator("zico")
class ZiCo(_BatchProxy):
    """Inverse coefficient of variation of per-batch gradients (Li et al., ICLR 2023)."""

    @dataclass
    class Config(_BatchProxy.Config):
        batch_size: int = 64
        num_batches: int = 2

    OPTIONS = {"num_batches": whole(2)}  # a spread over batches needs two of them

    def _compute(self, space, arch, data, seed, device):
        import torch
        model = self._model(space, arch, data, seed, device)
        x, y = self._batch(data, arch, seed, device)
        nb, bs = max(2, int(self.config.num_batches)), int(self.config.batch_size)
        if len(y) < nb * bs:
            raise ValueError(f"zico needs num_batches >= 2; got {self.config.num_batches}")
        layers = _weight_layers(model)
        grads: list[list] = [[] for _ in layers]
        splits = []
        for b in range(nb):
            xb, yb = x[b * bs:(b + 1) * bs], y[b * bs:(b + 1) * bs]
            _, split = _with_split(lambda s: _ce_backward(model, xb, yb, s), bs, model)
            splits.append(split)
            for i, m in enumerate(layers):
                g = m.weight.grad
                grads[i].append(torch.zeros_like(m.weight).reshape(-1) if g is None else g.detach().reshape(-1).clone())
        score, used = 0.0, 0
        for gl in grads:
            g = torch.stack(gl).double()
            std = g.std(dim=0, unbiased=False)
            nz = std > 0
            if not bool(nz.any()):
                continue
            s = float((g.abs().mean(dim=0)[nz] / std[nz]).sum())
            if s != 0:
                score += math.log(s)
                used += 1
        return score, {"zico": score, "layers_used": used, "layers": len(layers), "split": max(splits),
                       "batch": bs, "num_batches": nb}
