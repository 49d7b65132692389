"""Zen-NAS's Zen-score (Lin et al. 2021): expressivity from a Gaussian input and its perturbation."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..base import seeded_generator
from ..options import positive, whole
from ..registry import register_estimator
from .common import _BatchProxy, _chunks, _global_pool, _with_split


@register_estimator("zen")
class Zen(_BatchProxy):
    """Zen-score: log expected feature change under a Gaussian perturbation + BN variances.

    Its input is Gaussian noise (the data gives only the image size and the label count);
    ``num_batches`` is the number of repeats, each with a fresh Gaussian initialisation and input.
    """

    @dataclass
    class Config(_BatchProxy.Config):
        batch_size: int = 64
        mixup_gamma: float = 1e-2
        resolution: int | None = None  # None: the data's image size, else the space's default

    OPTIONS = {"mixup_gamma": positive(), "resolution": whole(1, optional=True)}

    def _compute(self, space, arch, data, seed, device):
        import torch
        from torch import nn
        model = self._model(space, arch, data, seed, device)
        hw = self._input_hw(space, data)
        pool = _global_pool(model)
        feats: list = []
        handle = pool.register_forward_pre_hook(lambda m, inp: feats.append(inp[0])) if pool is not None else None
        bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        g = seeded_generator(arch, seed)
        bs, gamma = int(self.config.batch_size), float(self.config.mixup_gamma)
        scores, deltas, logbns = [], [], []
        try:
            for _ in range(max(1, int(self.config.num_batches))):
                with torch.no_grad():
                    for m in model.modules():
                        if isinstance(m, (nn.Conv2d, nn.Linear)):
                            m.weight.copy_(torch.randn(m.weight.shape, generator=g))
                            if m.bias is not None:
                                m.bias.zero_()
                    for m in bns:
                        if m.affine:
                            m.weight.fill_(1.0)
                            m.bias.zero_()
                        m.momentum = 1.0  # running_var := this batch's variance
                    x = torch.randn((bs, 3) + hw, generator=g).to(device)
                    eps = torch.randn((bs, 3) + hw, generator=g).to(device)

                    def run(split):
                        delta, logbn = 0.0, None
                        for a, b in _chunks(bs, split):
                            feats.clear()
                            out = model(x[a:b])
                            if logbn is None:  # BN variances of the clean input
                                logbn = sum(float(torch.log(torch.sqrt(m.running_var.double().mean())))
                                            for m in bns if m.running_var is not None)
                            f0 = feats[-1] if feats else out
                            feats.clear()
                            out2 = model(x[a:b] + gamma * eps[a:b])
                            f1 = feats[-1] if feats else out2
                            delta += float((f0 - f1).abs().double().reshape(b - a, -1).sum(1).sum())
                        return delta / bs, float(logbn or 0.0)

                    (delta, logbn), split = _with_split(run, bs, model)
                deltas.append(delta)
                logbns.append(logbn)
                scores.append((math.log(delta) if delta > 0 else float("-inf")) + logbn)
        finally:
            if handle is not None:
                handle.remove()
        score = float(np.mean(scores))
        return score, {"zen": score, "delta": deltas, "log_bn_scale": logbns, "repeats": len(scores),
                       "split": split, "batch": bs, "pre_gap": pool is not None}
