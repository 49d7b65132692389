"""NSGA-II over any search space, as explicit, JSON-able state (the same shape as ``MoteNAS``).

Generation 0 is ``population`` distinct feasible random draws. Every later generation breeds
``population`` children: a binary tournament on (front rank, -crowding distance) picks a parent,
which is mutated (one or two ``space.mutate`` steps) until a feasible architecture never evaluated
before appears; after ``mutation_attempts`` misses a fresh random draw takes its place. Survivors
are NSGA-II's environmental selection (``mobile_mote.pareto.nsga2_select``) over parents + children.

The class never sees a model, an estimator or the store: it proposes architecture strings and
reads their objectives through ``objectives_of(archs) -> (n, m) array``, every column MINIMISED
(the caller negates a score; a failed candidate's score objective is ``+inf``). Its population,
archive of evaluated candidates and RNG state live in a plain dict the runner stores each generation.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ....pareto import nsga2_select, ranks_and_crowding
from .. import register_algorithm
from ..contract import MAX_DRAW, MAX_STEPS, check_whole, cli_option
from ..front import FrontSearch, ObjectivesConfig
from ..operators import finite_objectives, mutate_steps, sample_feasible, space_exhausted, tournament


@dataclass
class ParetoConfig(ObjectivesConfig):
    population: int = field(default=50, metadata=cli_option("population size (profile default)", int))
    # after generation 0: the search evaluates population * (generations + 1)
    generations: int = field(default=20, metadata=cli_option(
        "generations after the initial one (profile default); a finished run resumed with more generations "
        "goes on", int))
    max_mutations: int = 2  # a child is its parent after 1 .. max_mutations mutations
    mutation_attempts: int = 20  # mutants tried per child before a fresh random draw
    budget: int | None = None  # optional cap on evaluated candidates (the last generation is cut short)

    def validate(self, space_size: int | None = None) -> None:
        """InputError for a setting that makes the run meaningless or endless; ``space_size`` (the
        space's count of architectures, None when unknown) bounds the population."""
        from ....errors import InputError
        super().validate(space_size)
        held = "" if space_size is None else f"; this space holds {space_size:,} architectures"
        check_whole("population", self.population, 2, MAX_DRAW if space_size is None else min(MAX_DRAW, space_size),
                    f"distinct architectures per generation{held}")
        check_whole("generations", self.generations, 0, MAX_STEPS)
        for name in ("max_mutations", "mutation_attempts"):
            check_whole(name, getattr(self, name), 1, MAX_DRAW)
        if self.budget is not None and (not isinstance(self.budget, int) or self.budget < 1):
            raise InputError(f"budget {self.budget!r}; accepted: a whole number, 1 or more (or none)")


# What each --profile sets (the others keep the defaults: population 50, 20 generations).
PROFILES: dict[str, dict] = {
    "tiny": {"population": 6, "generations": 2},
    "quick": {"population": 20, "generations": 4},
}


@register_algorithm("nsga2")
class NSGA2(FrontSearch):
    """Proposals and survivor selection; ``feasible(arch)`` applies the hard bounds (all of them).

    ``sample(rng) -> arch`` draws the random candidates (default ``space.sample``: uniform over the
    space); a caller whose feasible set is a short list passes a sampler over that list."""

    help = "mutation-only NSGA-II"
    label = "NSGA-II"
    option_group = "NSGA-II"
    Config = ParetoConfig
    PROFILES = PROFILES
    resumable = ("generations", "budget")  # how long it runs: a resume may extend it
    unit = "gen"
    counter = "generation"

    def __init__(self, space, config: ParetoConfig, feasible=lambda arch: True, sample=None, objectives=None):
        self.check_config(config, space.size())
        self.space = space
        self.cfg = config
        self.feasible = feasible
        self.sample = sample or space.sample
        # ``objectives(archs, records) -> (n, m)`` minimised objectives, for ask/tell; the explicit
        # propose/accept take an ``objectives_of(archs)`` instead.
        self.objectives = objectives

    # -- the contract's class side --------------------------------------------------------------------
    @classmethod
    def for_run(cls, ctx) -> "NSGA2":
        cfg = ctx.algorithm_config
        return cls(ctx.space, cfg, cls.run_feasible(ctx), objectives=cls.run_objectives(ctx, cfg.objectives))

    @classmethod
    def first_step(cls, config) -> tuple[int, str]:
        return config.population, "generation"

    def archive(self) -> list[str]:
        return self.state["archive"]

    def describe(self, summary: dict) -> str:
        return (f"NSGA-II (population {self.cfg.population}, generations {self.state['generation'] - 1} after the "
                "initial one)")

    def summary_extra(self) -> dict:
        return {"generations_done": self.state["generation"], "random_children": self.state.get("random_children"),
                "exhausted": bool(self.state.get("exhausted"))}

    # -- ask / tell (the driver's protocol) ----------------------------------------------------------
    def start(self, state: dict | None = None, records: dict[str, dict] | None = None) -> None:
        self.state = state or self.initial_state()
        self.state["done"] = self.finished(self.state)  # a resume may come with more generations
        self.records = dict(records or {})
        self._asked, self._info = [], {}

    def objectives_of(self, archs: list[str]) -> np.ndarray:
        return self.objectives(archs, self.records)

    def ask(self, rng: np.random.Generator) -> list[str]:
        self._asked, self._info = self.propose(self.state, self.objectives_of, rng)
        return self._asked

    def tell(self, records: list[dict], scored: int | None = None) -> None:
        from ....pareto import pareto_front
        self.records.update((r["arch"], r) for r in records)
        self.accept(self.state, self._asked, self.objectives_of)
        pop = self.state["population"]
        self._front = len(pareto_front(self.objectives_of(pop))) if pop else 0
        self.state.setdefault("history", []).append(
            {"generation": self.state["generation"] - 1, "proposed": len(self._asked),
             "scored": len(records) if scored is None else scored, "evaluated": self.state["evaluated"],
             "population_front": self._front, **self._info})

    def progress(self) -> tuple[int, int]:
        total = self.cfg.generations + 1
        return min(self.state["generation"], total), total

    def postfix(self) -> dict:
        return {"evaluated": self.state["evaluated"], "front": getattr(self, "_front", 0)}

    def initial_state(self) -> dict:
        return {"generation": 0, "population": [], "archive": [], "evaluated": 0, "rng": None, "done": False,
                "drawn_total": 0, "infeasible_total": 0, "random_children": 0}

    # -- drawing ------------------------------------------------------------------------------------
    def _fresh(self, rng: np.random.Generator, seen: set, state: dict) -> str | None:
        """One feasible random architecture not in ``seen``, or None once 1,000 draws missed."""
        found = sample_feasible(1, lambda: self.sample(rng), self.feasible, seen, state,
                                exhausted=space_exhausted(self.space), cap=1000)
        return found[0] if found else None

    def _child(self, parent: str, rng: np.random.Generator, seen: set, state: dict) -> tuple[str | None, bool]:
        """A new feasible mutant of ``parent`` (or, after the attempts, a random draw); (arch, was_mutant)."""
        for _ in range(self.cfg.mutation_attempts):
            arch = mutate_steps(self.space, parent, rng, self.cfg.max_mutations)
            if arch in seen:
                continue
            if self.feasible(arch):
                return arch, True
            state["infeasible_total"] += 1
            seen.add(arch)
        return self._fresh(rng, seen, state), False

    def _admit(self, arch: str, seen: set, state: dict) -> bool:
        """Whether ``arch`` is new and feasible (it joins ``seen`` either way; an infeasible one is counted)."""
        if arch in seen:
            return False
        seen.add(arch)
        if not self.feasible(arch):
            state["infeasible_total"] += 1
            return False
        return True

    def _top_up(self, out: list[str], n: int, rng: np.random.Generator, seen: set, state: dict) -> list[str]:
        """``out`` with fresh random draws appended up to ``n`` (``exhausted`` set when none is left)."""
        while len(out) < n:
            arch = self._fresh(rng, seen, state)
            if arch is None:
                state["exhausted"] = True
                break
            seen.add(arch)
            out.append(arch)
        return out

    def remaining(self, state: dict) -> int:
        """How many candidates the next generation may still evaluate."""
        n = self.cfg.population
        if self.cfg.budget is not None:
            n = min(n, self.cfg.budget - state["evaluated"])
        return max(0, n)

    # -- the generation -----------------------------------------------------------------------------
    def propose(self, state: dict, objectives_of, rng: np.random.Generator) -> tuple[list[str], dict]:
        """The candidates of this generation (distinct, feasible, never evaluated) and how they came."""
        seen = set(state["archive"])
        n = self.remaining(state)
        out: list[str] = []
        if state["generation"] == 0 or not state["population"]:
            self._top_up(out, n, rng, seen, state)
            return out, {"kind": "initial", "drawn": len(out)}
        pop = state["population"]
        rank, crowd = ranks_and_crowding(finite_objectives(objectives_of(pop)))
        mutants = 0
        while len(out) < n:
            child, mutant = self._child(pop[tournament(rank, crowd, rng)], rng, seen, state)
            if child is None:
                state["exhausted"] = True  # no new feasible architecture could be found
                break
            seen.add(child)
            out.append(child)
            mutants += mutant
        state["random_children"] += len(out) - mutants
        return out, {"kind": "offspring", "mutants": mutants, "random": len(out) - mutants}

    def accept(self, state: dict, proposed: list[str], objectives_of) -> None:
        """Add the scored ``proposed`` to the archive; survivors by non-domination, then crowding."""
        parents = set(state["population"])
        merged = list(state["population"]) + [a for a in proposed if a not in parents]
        if merged:
            keep = nsga2_select(finite_objectives(objectives_of(merged)), self.cfg.population)
            state["population"] = [merged[i] for i in keep]
        state["archive"].extend(proposed)
        state["evaluated"] = len(state["archive"])
        state["generation"] += 1
        state["done"] = self.finished(state)

    def finished(self, state: dict) -> bool:
        """Done after generation ``generations``, at the budget, or when nothing new could be drawn
        (recomputed on resume, so a finished run can be continued with more generations)."""
        return (state["generation"] > self.cfg.generations or state.get("exhausted", False)
                or (self.cfg.budget is not None and state["evaluated"] >= self.cfg.budget))
