"""``mote-z``: MOTE's terms fused with zero-cost proxies by the population-rank rule (``mobile_mote.fusion``).

One estimate call trains the reduced network as MOTE does (its terms, unchanged) and runs each named
proxy on the full network at initialisation; the record keeps every raw term and a ``components``
dict (each higher = better: ``mote``, ``landscape``, ``speed`` and one per proxy).

A fused score exists only within a population, so the record's own ``score`` is its MOTE score (what
one network alone can be given), and ``population_scores`` gives the fused score of every record of
a pool. The search ranks its pool with it at every iteration, NSGA-II uses it as the accuracy
objective, and a resumed run recomputes it from the stored records the same way.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from ..fusion import DEFAULT_RULE
from .mote import MOTE, TrainingConfig
from .registry import estimator_class, register_estimator

MOTE_COMPONENTS = ("mote", "landscape", "speed")


@dataclass
class FusedConfig(TrainingConfig):
    # the rule chosen for every space (fusion.DEFAULT_RULE; benchmarks/README.md, "One ranking rule"); until
    # 2026-12-04 it was landscape,speed,jacov,naswot,zico, chosen on NB201's development split alone
    components: str = ",".join(DEFAULT_RULE)


@register_estimator("mote-z")
class FusedMOTE(MOTE):
    Config = FusedConfig
    population_dependent = True
    thread_safe = False  # its proxies draw from torch's global RNG while scoring

    def __init__(self, **config):
        super().__init__(**config)
        self.components = [c.strip() for c in self.config.components.split(",") if c.strip()]
        proxies = [c for c in self.components if c not in MOTE_COMPONENTS]
        bad = [c for c in proxies if not estimator_class(c).zero_cost]
        if not self.components or bad or len(set(self.components)) != len(self.components):
            raise InputError(f"estimator 'mote-z': components {self.config.components!r}; accepted: distinct names "
                             "from mote, landscape, speed and the zero-cost proxies (e.g. jacov,naswot,zico,synflow)")
        self.proxies = {name: estimator_class(name)() for name in proxies}

    def _terms(self, space, arch, data, seed, device):
        score, terms = super()._terms(space, arch, data, seed, device)
        comps = {"mote": score, "landscape": -terms["landscape"], "speed": -terms["speed"]}
        terms["proxies"] = {}
        for name, est in self.proxies.items():
            rec = est.estimate(space, arch, data, seed, device)
            terms["proxies"][name] = {"score": rec.score, "seconds": rec.seconds, "status": rec.status,
                                      "error": rec.error, "config_hash": rec.config_hash}
            comps[name] = rec.score  # None when flagged (non-finite) or failed; see population_scores
        terms["components"] = comps
        return score, terms

    def from_shared_run(self, record: dict) -> dict:
        raise InputError("estimator 'mote-z' runs its proxies on the full network; it cannot be read off another "
                         "estimator's training run")

    def population_scores(self, records: list[dict]) -> list[float | None]:
        from ..fusion import log_rank_sum
        cols = {c: [self._component(r, c) for r in records] for c in self.components}
        return log_rank_sum(cols)

    @staticmethod
    def _component(record: dict, name: str) -> float | None:
        """One component of a record (``fusion.record_components``: a flagged proxy is -inf, it ranks last)."""
        from ..fusion import record_components
        return record_components(record).get(name) if record.get("status") == "ok" else None
