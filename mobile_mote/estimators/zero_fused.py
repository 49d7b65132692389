"""``fused``: zero-cost proxies fused by the population-rank rule, no training at all.

One estimate call computes every named component of the full network at initialisation through
``estimate_many`` (the shared pass: proxies at the same batch share their forward), and the analytic
``macs``/``params`` where named. As with ``mote-z``, a fused score exists only within a population:
the record's own ``score`` is the sum of its components' log-ranks within nothing but itself (0 for
an ok record), so ranking always goes through ``population_scores``, which the search, NSGA-II and a
resumed run all use (``search/ranking.py``).

The default components are the rule chosen on development data for every space
(``mobile_mote.studies.rules``, benchmarks/README.md "One ranking rule"), less MOTE's terms, which
need training.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from ..fusion import DEFAULT_RULE, MOTE_TERMS
from .base import Estimator
from .options import text
from .registry import estimator_class, register_estimator



@register_estimator("fused")
class FusedZeroCost(Estimator):
    population_dependent = True
    thread_safe = False  # proxies seed torch's global RNG while scoring

    @dataclass
    class Config:
        components: str = ",".join(c for c in DEFAULT_RULE if c not in MOTE_TERMS)
        reduced: bool = False
        num_classes: int | None = None  # None: the data's label count

    OPTIONS = {"components": text()}
    PROFILES = {name: {} for name in Estimator.PROFILES}  # a proxy costs one batch under every profile

    def __init__(self, **config):
        super().__init__(**config)
        self.components = [c.strip() for c in self.config.components.split(",") if c.strip()]
        bad = []
        for c in self.components:
            try:
                cls = estimator_class(c)
            except InputError:
                bad.append(c)
                continue
            if not cls.zero_cost:
                bad.append(c)
        if not self.components or bad or len(set(self.components)) != len(self.components):
            raise InputError(f"estimator 'fused': components {self.config.components!r}; accepted: distinct names of "
                             "zero-cost proxies and macs/params (e.g. vkdnw,expressivity,trainability,macs,jacov)")

    def _terms(self, space, arch, data, seed, device):
        from .zero_cost import estimate_many
        opts = {"reduced": self.config.reduced, "num_classes": self.config.num_classes}
        recs = estimate_many(self.components, space, arch, data, seed=seed, device=device, **opts)
        comps, proxies = {}, {}
        for name, rec in recs.items():
            proxies[name] = {"score": rec.score, "seconds": rec.seconds, "status": rec.status, "error": rec.error}
            if rec.status == "failed":
                raise RuntimeError(f"component {name} failed: {rec.error}")
            comps[name] = rec.score  # None when flagged (non-finite): it ranks last, see population_scores
        return 0.0, {"components": comps, "proxies": proxies}

    def population_scores(self, records: list[dict]) -> list[float | None]:
        from ..fusion import log_rank_sum
        cols = {c: [self._component(r, c) for r in records] for c in self.components}
        return log_rank_sum(cols)

    @staticmethod
    def _component(record: dict, name: str) -> float | None:
        """One component of a record (``fusion.record_components``: a flagged proxy is -inf, it ranks last)."""
        from ..fusion import record_components
        return record_components(record).get(name) if record.get("status") == "ok" else None
