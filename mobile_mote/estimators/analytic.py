"""Analytic baselines: trainable parameters and multiply-accumulates, counted by the space (no forward)."""
from __future__ import annotations

from dataclasses import dataclass

from .base import Estimator
from .options import flag, whole
from .registry import register_estimator


class _Analytic(Estimator):
    """Counted from the architecture alone: no network is built and no data is read."""

    needs_data = False
    zero_cost = True

    @dataclass
    class Config:
        batch_size: int = 0  # unused: no forward pass
        reduced: bool = False
        num_classes: int | None = None
        resolution: int | None = None  # None: the data's image size, else the space's default

    OPTIONS = {"batch_size": whole(0), "reduced": flag(), "num_classes": whole(1, optional=True),
               "resolution": whole(1, optional=True)}


@register_estimator("params")
class Params(_Analytic):
    """Trainable parameters from ``space.params`` (more is better, as NASLib's ranking)."""

    def _terms(self, space, arch, data, seed, device):
        nc = self.config.num_classes or (data.num_classes if data is not None else None)
        p = int(space.params(arch, num_classes=nc, reduced=self.config.reduced))
        return float(p), {"params": p}


@register_estimator("macs")
class Macs(_Analytic):
    """Multiply-accumulates from ``space.macs`` at the data's resolution (more is better)."""

    def _terms(self, space, arch, data, seed, device):
        nc = self.config.num_classes or (data.num_classes if data is not None else None)
        res = self.config.resolution or (int(data.x.shape[1]) if data is not None else None)
        m = int(space.macs(arch, resolution=res, num_classes=nc, reduced=self.config.reduced))
        p = int(space.params(arch, num_classes=nc, reduced=self.config.reduced))
        return float(m), {"macs": m, "params": p, "resolution": res or space.default_resolution(self.config.reduced)}
