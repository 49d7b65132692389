"""MTF-PDNS (Vo & Luong, GECCO 2024): novelty search driven by Pareto dominance over several
training-free metrics, with no training at all.

- Integer genomes over the space's slots (``space.genome``); generation 0 is ``population`` random
  feasible networks.
- Objectives, all minimised: each named training-free metric negated (synflow, jacov and snip by
  default, as in the paper; ``score`` is the run's own ranked score) plus the costs the run names
  besides ``score`` (MACs by default; the paper uses FLOPs).
- Offspring: random pairs of the population, two-point crossover, then per-gene mutation with
  probability 1/L (L genes), a mutated gene taking a different value. A child that is infeasible or
  was seen before is bred again (``mutation_attempts`` tries), then replaced by a random draw.
- An elitist archive keeps every non-dominated candidate, without duplicates (in architecture or in
  objective vector).
- Novelty of a candidate: the mean distance, in objectives normalised by the range over the archive
  and the candidates, to the archive's members; positive for archive members, negative otherwise.
  Survivors: binary tournaments on novelty over parents + offspring, ``population`` of them.
- The result is the archive (``summary["pdns_archive"]``); the run's front files show the front of
  everything evaluated under the run's objectives, as for every ``mote pareto`` algorithm.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ....pareto import pareto_front
from .. import register_algorithm
from ..contract import MAX_STEPS, check_whole, cli_option
from ..nsga2 import NSGA2, ParetoConfig
from ..operators import finite_objectives


def parse_names(text: str) -> tuple:
    return tuple(o.strip() for o in text.split(",") if o.strip())


@dataclass
class PDNSConfig(ParetoConfig):
    objectives: tuple = ("score", "macs")  # what the run's front shows; its costs are PDNS's cost objectives
    metrics: tuple = field(default=("synflow", "jacov", "snip"), metadata=cli_option(
        "PDNS: training-free metrics it maximises, comma-separated (default synflow,jacov,snip; each must be the "
        "run's --estimator or one of its components, e.g. --estimator fused --set components=synflow,jacov,snip; "
        "'score' is the run's own score)", parse_names))
    population: int = 20
    generations: int = 149  # 3,000 evaluations with 20 per generation

    def validate(self, space_size: int | None = None) -> None:
        from ....errors import InputError
        super().validate(space_size)
        metrics = tuple(self.metrics)
        if not metrics or len(set(metrics)) != len(metrics):
            raise InputError(f"metrics {','.join(metrics) or '(none)'}; accepted: one or more distinct names of "
                             "zero-cost estimators (or score), comma-separated")
        if not self.costs():
            raise InputError(f"objectives {','.join(self.objectives)}; PDNS needs at least one cost among them "
                             "(macs, params or latency)")
        check_whole("generations", self.generations, 0, MAX_STEPS)

    def costs(self) -> tuple:
        return tuple(o for o in self.objectives if o != "score")

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["metrics"] = list(self.metrics)
        return d


PROFILES: dict[str, dict] = {
    "tiny": {"population": 6, "generations": 2},
    "quick": {"population": 20, "generations": 9},
}


def metric_provider(estimator: str, estimator_config: dict) -> set:
    """The metrics a record of ``estimator`` carries (its own score, its components, what it carries)."""
    from ....fusion import carried
    comps = str(estimator_config.get("components") or "")
    return {estimator, "score", *carried(estimator), *(c.strip() for c in comps.split(",") if c.strip())}


def novelty(F: np.ndarray, in_archive: np.ndarray, archive_F: np.ndarray) -> np.ndarray:
    """Mean normalised distance of each row of ``F`` to the archive's rows, + for members, - otherwise."""
    both = np.vstack([F, archive_F])
    lo, span = both.min(axis=0), np.ptp(both, axis=0)
    span = np.where(span > 0, span, 1.0)
    A, B = (F - lo) / span, (archive_F - lo) / span
    d = np.sqrt(((A[:, None, :] - B[None, :, :]) ** 2).sum(-1)).mean(axis=1)
    return np.where(in_archive, d, -d)


@register_algorithm("pdns")
class PDNS(NSGA2):
    """NSGA-II's state and drawing, PDNS's variation, archive and novelty survival.

    ``objectives(archs, records) -> (n, m)``: the minimised metrics then costs (``for_run`` builds it
    from the run's records; a benchmark passes a lookup)."""

    help = "MTF-PDNS: novelty search on Pareto dominance over training-free metrics"
    label = "MTF-PDNS"
    option_group = "PDNS"
    Config = PDNSConfig
    PROFILES = PROFILES

    @classmethod
    def check_run(cls, ctx) -> None:
        from ....errors import InputError
        super().check_run(ctx)
        spec, metrics = ctx.spec, ctx.algorithm_config.metrics
        have = metric_provider(spec.estimator, spec.estimator_config)
        missing = [m for m in metrics if m not in have]
        if missing:
            raise InputError(f"pdns metric {missing[0]!r} is not in the records of estimator {spec.estimator!r}; "
                             f"accepted: {', '.join(sorted(have))}, or run --estimator fused --set "
                             f"components={','.join(m for m in metrics if m != 'score')}")

    @classmethod
    def for_run(cls, ctx) -> "PDNS":
        cfg = ctx.algorithm_config
        return cls(ctx.space, cfg, cls.run_feasible(ctx), objectives=cls.run_metric_objectives(ctx, cfg))

    @staticmethod
    def run_metric_objectives(ctx, cfg):
        """``objectives(archs, records)``: each metric negated (+inf where a record lacks it), then the costs."""
        from ....fusion import record_components
        from ...pareto_outputs import objective_rows
        metrics, costs = tuple(cfg.metrics), cfg.costs()

        def objectives(archs, records):
            ranked = ctx.rank(records) if "score" in metrics else records
            cols = []
            for m in metrics:
                col = []
                for a in archs:
                    rec = ranked[a]
                    v = rec.get("score") if m == "score" else record_components(rec).get(m)
                    col.append(np.inf if v is None or not np.isfinite(v) else -float(v))
                cols.append(col)
            M = np.asarray(cols, dtype=float).T.reshape(len(archs), len(metrics))
            return np.hstack([M, objective_rows(costs, archs, records, ctx.costs)])
        return objectives

    def describe(self, summary: dict) -> str:
        return (f"MTF-PDNS (population {self.cfg.population}, {self.state['generation'] - 1} generations after the "
                f"initial one; metrics {', '.join(self.cfg.metrics)}; costs {', '.join(self.cfg.costs())}; "
                f"archive of {len(self.state.get('elite', []))})")

    def summary_extra(self) -> dict:
        return {**super().summary_extra(), "pdns_archive": list(self.state.get("elite", [])),
                "pdns_objectives": [*(f"-{m}" for m in self.cfg.metrics), *self.cfg.costs()]}

    def initial_state(self) -> dict:
        return {**super().initial_state(), "elite": []}

    # -- variation ----------------------------------------------------------------------------------
    def _offspring(self, pop: list[str], rng: np.random.Generator) -> list[list[int]]:
        """Two children per random pair: two-point crossover, then per-gene mutation with p = 1/L."""
        genomes = [self.space.genome(a) for a in pop]
        sizes = self.space.genome_sizes()
        L = len(sizes)
        order = rng.permutation(len(genomes))
        if len(order) % 2:
            order = np.append(order, rng.integers(len(genomes)))
        kids = []
        for i in range(0, len(order), 2):
            a, b = list(genomes[order[i]]), list(genomes[order[i + 1]])
            if L > 1:
                lo, hi = sorted(rng.choice(L + 1, size=2, replace=False))
                a[lo:hi], b[lo:hi] = b[lo:hi], a[lo:hi]
            kids.extend([a, b])
        for g in kids:
            for j in range(L):
                if sizes[j] > 1 and rng.random() < 1.0 / L:
                    g[j] = (g[j] + 1 + int(rng.integers(sizes[j] - 1))) % sizes[j]
        return kids

    def propose(self, state: dict, objectives_of, rng: np.random.Generator) -> tuple[list[str], dict]:
        if state["generation"] == 0 or not state["population"]:
            return super().propose(state, objectives_of, rng)
        seen = set(state["archive"])
        n = self.remaining(state)
        out: list[str] = []
        bred = 0
        for _ in range(self.cfg.mutation_attempts):
            if len(out) >= n:
                break
            for genes in self._offspring(state["population"], rng):
                arch = self.space.from_genome(genes)
                if len(out) < n and self._admit(arch, seen, state):
                    out.append(arch)
                    bred += 1
        self._top_up(out, n, rng, seen, state)
        state["random_children"] += len(out) - bred
        return out, {"kind": "offspring", "bred": bred, "random": len(out) - bred}

    # -- archive and survival -------------------------------------------------------------------------
    def ask(self, rng: np.random.Generator) -> list[str]:
        self._rng = rng  # survival in ``tell`` draws from the same stream (the driver saves it after tell)
        return super().ask(rng)

    def accept(self, state: dict, proposed: list[str], objectives_of) -> None:
        elite = list(state["elite"])
        pool = elite + [a for a in proposed if a not in set(elite)]
        if pool:
            raw = objectives_of(pool)
            F, ok = finite_objectives(raw), np.isfinite(raw).all(axis=1)
            keep, rows = [], set()
            for i in pareto_front(F):
                if ok[i] and tuple(F[i]) not in rows:  # a failed candidate never enters the archive
                    rows.add(tuple(F[i]))
                    keep.append(pool[i])
            state["elite"] = keep
        merged = list(dict.fromkeys(list(state["population"]) + list(proposed)))
        rng = getattr(self, "_rng", None) or np.random.default_rng([state["generation"], len(state["archive"])])
        state["population"] = self._survivors(merged, state["elite"], objectives_of, rng)
        state["archive"].extend(proposed)
        state["evaluated"] = len(state["archive"])
        state["generation"] += 1
        state["done"] = self.finished(state)

    def _survivors(self, merged: list[str], elite: list[str], objectives_of, rng) -> list[str]:
        k = self.cfg.population
        if len(merged) <= k or not elite:
            return merged[:k]
        F = finite_objectives(objectives_of(merged + elite))
        members = set(elite)
        nov = novelty(F[:len(merged)], np.asarray([a in members for a in merged]), F[len(merged):])
        left = list(range(len(merged)))
        out = []
        while len(out) < k:
            if len(left) == 1:
                out.append(left.pop())
                continue
            i, j = rng.choice(len(left), size=2, replace=False)
            w = i if nov[left[i]] >= nov[left[j]] else j
            out.append(left.pop(w))
        return [merged[i] for i in out]
