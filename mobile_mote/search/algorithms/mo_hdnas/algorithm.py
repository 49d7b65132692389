"""MO-HDNAS (Sinha et al., CVPR 2024 workshops): NSGA-II over three objectives, so that one run covers
the whole range of hardware costs instead of one run per constraint:

1. a training-free score, maximised: in the paper a representation similarity to a reference network
   trained once (here the ``cka`` estimator: linear CKA against a reference trained on the proxy data;
   any estimator can stand in);
2. a hardware cost, minimised: latency on the target device (a latency table or LUT) by default;
3. hardware-cost diversity, maximised: ``cost_diversity``, recomputed over whichever set NSGA-II ranks
   (the population for parent tournaments, parents + children for survival).

Our definition of the diversity (the paper states the objective, we state ours): a candidate's cost
normalised to [0, 1] over the set, and its distance to the nearest OTHER member's cost, so a
candidate alone in a stretch of the cost range scores high and one of several at the same cost scores 0.
Everything else is NSGA-II (``nsga2``); the front the run reports is over the first two objectives.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import register_algorithm
from ..nsga2 import NSGA2, ParetoConfig


def cost_diversity(cost: np.ndarray) -> np.ndarray:
    """Per member: |normalised cost - nearest other member's|; an infinite cost gets 0."""
    cost = np.asarray(cost, dtype=float)
    out = np.zeros(len(cost))
    ok = np.isfinite(cost)
    c = cost[ok]
    if len(c) < 2:
        return out
    span = np.ptp(c)
    c = (c - c.min()) / (span if span > 0 else 1.0)
    order = np.argsort(c, kind="stable")
    s = c[order]
    gaps = np.diff(s)
    near = np.minimum(np.r_[np.inf, gaps], np.r_[gaps, np.inf])
    d = np.empty(len(c))
    d[order] = near
    out[np.nonzero(ok)[0]] = d
    return out


@dataclass
class MOHDNASConfig(ParetoConfig):
    objectives: tuple = ("score", "latency")  # the score and the cost whose diversity counts (its last cost)

    def validate(self, space_size: int | None = None) -> None:
        from ....errors import InputError
        super().validate(space_size)
        if "score" not in self.objectives or not self.cost():
            raise InputError(f"objectives {','.join(self.objectives)}; MO-HDNAS needs score and a cost "
                             "(latency, macs or params), e.g. score,latency")

    def cost(self) -> str | None:
        costs = [o for o in self.objectives if o != "score"]
        return costs[-1] if costs else None


PROFILES: dict[str, dict] = {
    "tiny": {"population": 6, "generations": 2},
    "quick": {"population": 20, "generations": 4},
}


@register_algorithm("mo-hdnas")
class MOHDNAS(NSGA2):
    help = "MO-HDNAS: NSGA-II over score, hardware cost and hardware-cost diversity"
    label = "MO-HDNAS"
    option_group = "NSGA-II"  # the same options as nsga2
    Config = MOHDNASConfig
    PROFILES = PROFILES

    def objectives_of(self, archs: list[str]) -> np.ndarray:
        """The run's objectives with -diversity of the cost appended, within ``archs``."""
        F = super().objectives_of(archs)
        j = list(self.cfg.objectives).index(self.cfg.cost())
        return np.hstack([F, -cost_diversity(F[:, j])[:, None]])

    def describe(self, summary: dict) -> str:
        return (f"MO-HDNAS (NSGA-II, population {self.cfg.population}, {self.state['generation'] - 1} generations "
                f"after the initial one; objectives {', '.join(self.cfg.objectives)} and diversity of "
                f"{self.cfg.cost()})")
