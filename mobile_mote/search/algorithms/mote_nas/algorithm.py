"""MOTE-NAS's coarse-to-fine evolutionary search, as explicit, JSON-able state, and its two variants.

An iteration draws 10·B random feasible candidates, ranks the pool by score, keeps the drawn
candidates within distance <= 1 of a top cell and adds up to 10·k of them; B starts at 10 and
grows by 10 every ten iterations. The search never sees a model: it proposes architecture
strings, receives scores, and keeps its pool and RNG in a dict the runner stores each iteration.
MOTE-NAS-EF runs the same loop and takes the top-1 without the evaluation stage; MOTE-NAS-RS scores
rs_factor·k random candidates once and evaluates the top-k.
"""
from __future__ import annotations

import math

import numpy as np

from .. import register_algorithm
from ..contract import Algorithm
from ..operators import PairwiseDistance, changes_within, mutate_steps, sample_feasible, space_exhausted
from .config import PROFILES, SearchConfig


@register_algorithm("mote-nas")
class MoteNAS(Algorithm):
    """Proposals and pool updates; ``feasible(arch)`` is the loosest budget, ``admitted`` the per-budget tests.

    ``propose`` and ``accept`` are the two halves of one iteration on an explicit state."""
    help = "search + evaluation stage"
    Config = SearchConfig
    PROFILES = PROFILES
    evaluates = True  # the top-k go through the evaluation stage (EF: the top-1 wins as it is)

    def __init__(self, space, config: SearchConfig, feasible, budgets: list, rank=None):
        self.check_config(config, space.size())
        self.space = space
        self.cfg = config
        self.feasible = feasible
        self.budgets = budgets  # callables arch -> bool, one per constraint
        # ``rank(records by arch) -> records by arch`` with the score to rank by (search/ranking.py)
        self.rank = rank or (lambda records: records)
        self.dist = PairwiseDistance(space)

    # -- the contract's class side ------------------------------------------------------------------
    @classmethod
    def n_iterations(cls, config: SearchConfig) -> int:
        """Iterations after iteration 0."""
        return config.n_iterations()

    @classmethod
    def check_config(cls, config, space_size=None) -> None:
        config.validate(space_size, cls.n_iterations(config))

    @classmethod
    def first_step(cls, config) -> tuple[int, str]:
        return config.draw_factor * config.batch_start, "iteration"

    @classmethod
    def prepare(cls, ctx):
        """The evaluation stage (None for EF): a benchmark's short-training figure when it has one,
        else a short real training of the reduced network on the proxy data."""
        from .evaluation import evaluator_for
        return evaluator_for(ctx) if cls.evaluates else None

    @classmethod
    def for_run(cls, ctx) -> "MoteNAS":
        from ...context import loosest_constraint
        spec, costs = ctx.spec, ctx.costs
        loosest = loosest_constraint(spec.constraints)
        return cls(ctx.space, ctx.algorithm_config, lambda a: loosest.admits(costs(a)),
                   [(lambda a, c=c: c.admits(costs(a))) for c in spec.constraints], rank=ctx.rank)

    def finish(self, ctx, store, stats: dict, progress: bool = False) -> dict:
        from .finish import finish_winners
        return finish_winners(ctx, self, store, stats, progress)

    @classmethod
    def report(cls, spec, summary: dict) -> int | None:
        from ...outputs import print_winners
        return print_winners(spec, summary)

    # -- ask / tell ---------------------------------------------------------------------------------
    def initial_state(self) -> dict:
        return {"iteration": 0, "batch": self.cfg.batch_start, "pool": [], "rng": None, "done": False,
                "drawn_total": 0, "infeasible_total": 0}

    def start(self, state: dict | None = None, records: dict[str, dict] | None = None) -> None:
        self.state = state or self.initial_state()
        self.records = dict(records or {})
        self._rescore()
        self._asked, self._info = [], {}

    def _rescore(self) -> None:
        self.scores = {a: r.get("score") for a, r in self.rank(self.records).items()}

    def ask(self, rng: np.random.Generator) -> list[str]:
        self._asked, self._info = self.propose(self.state, self.scores, rng)
        return self._asked

    def tell(self, records: list[dict], scored: int | None = None) -> None:
        self.records.update((r["arch"], r) for r in records)
        self._rescore()
        self.accept(self.state, self._asked)
        self.state.setdefault("history", []).append(
            {"iteration": self.state["iteration"] - 1, "proposed": len(self._asked),
             "scored": len(records) if scored is None else scored,
             "best": max((s for s in self.scores.values() if s is not None), default=None), **self._info})

    def progress(self) -> tuple[int, int]:
        return self.state["iteration"], self.n_iterations(self.cfg) + 1

    def postfix(self) -> dict:
        best = self.state["history"][-1]["best"] if self.state.get("history") else None
        return {"pool": len(self.state["pool"]), "best": f"{best:.4g}" if best is not None else "-"}

    # -- one iteration --------------------------------------------------------------------------------
    def draw(self, n: int, rng: np.random.Generator, exclude: set, state: dict) -> list[str]:
        """``n`` distinct feasible uniform random candidates not in ``exclude`` (one key per distinct
        network: never scored twice)."""
        return sample_feasible(n, lambda: self.space.sample(rng), self.feasible, set(exclude), state,
                               key=self.space.network_key, exhausted=space_exhausted(self.space))

    def top_cells(self, pool: list[str], scores: dict[str, float | None]) -> list[str]:
        """The top fraction of the pool under each budget, united (one budget: the paper's rule)."""
        top: list[str] = []
        for admits in self.budgets:
            ranked = sorted((a for a in pool if scores.get(a) is not None and admits(a)),
                            key=lambda a: -scores[a])
            n = max(1, math.ceil(self.cfg.top_fraction * len(ranked))) if ranked else 0
            top.extend(a for a in ranked[:n] if a not in top)
        return top

    def propose(self, state: dict, scores: dict[str, float | None], rng: np.random.Generator) -> tuple[list[str], dict]:
        """The candidates to score at this iteration and what was seen choosing them."""
        it, B = state["iteration"], state["batch"]
        pool = state["pool"]
        if it == 0:
            return self.draw(self.cfg.draw_factor * B, rng, set(pool), state), {"kind": "initial"}
        top = self.top_cells(pool, scores)
        if self.draw_mode() == "neighbours":
            drawn = self.draw_near(self.cfg.draw_factor * B, rng, set(pool), top, state)
        else:
            drawn = self.draw(self.cfg.draw_factor * B, rng, set(pool), state)
        d = self.dist.min_distance(drawn, top)
        near = [a for a, di in sorted(zip(drawn, d), key=lambda t: t[1]) if di <= self.cfg.max_distance + 1e-9]
        limit = 10 * (self.cfg.k if self.cfg.add_limit == "10k" else B)
        return near[:limit], {"kind": self.draw_mode(), "drawn": len(drawn), "top": len(top), "near": len(near)}

    def draw_mode(self) -> str:
        if self.cfg.draw != "auto":
            return self.cfg.draw
        size = self.space.size()
        return "uniform" if size is not None and size <= 1_000_000 else "neighbours"

    def draw_near(self, n: int, rng: np.random.Generator, exclude: set, top: list[str], state: dict) -> list[str]:
        """``n`` distinct feasible candidates, each one or two slot changes away from a random top cell."""
        if not top:
            return []
        max_changes = changes_within(self.cfg.max_distance)

        def make() -> str:
            return mutate_steps(self.space, top[rng.integers(len(top))], rng, max_changes)
        return sample_feasible(n, make, self.feasible, set(exclude), state, key=self.space.network_key)

    def accept(self, state: dict, proposed: list[str]) -> None:
        seen = set(state["pool"])
        state["pool"].extend(a for a in proposed if a not in seen)
        state["iteration"] += 1
        if state["iteration"] > self.n_iterations(self.cfg):
            state["done"] = True
        elif state["iteration"] > 1 and (state["iteration"] - 1) % self.cfg.batch_every == 0:
            state["batch"] += self.cfg.batch_step


@register_algorithm("ef")
class EF(MoteNAS):
    """MOTE-NAS-EF: the same loop; the top-1 by score wins, with no evaluation stage."""
    help = "MOTE top-1, no evaluation stage"
    evaluates = False


@register_algorithm("rs")
class RS(MoteNAS):
    """MOTE-NAS-RS: rs_factor·k random feasible candidates in one step; the top-k are evaluated."""
    help = "random + evaluation"

    @classmethod
    def n_iterations(cls, config) -> int:
        return 0

    @classmethod
    def first_step(cls, config) -> tuple[int, str]:
        return config.rs_factor * config.k, "draw"

    def propose(self, state, scores, rng):
        return self.draw(self.cfg.rs_factor * self.cfg.k, rng, set(state["pool"]), state), {"kind": "random"}
