"""MOTE-NAS's coarse-to-fine evolutionary search, as explicit, JSON-able state.

An iteration draws 10·B random feasible candidates, ranks the pool by score, keeps the drawn
candidates within distance <= 1 of a top cell and adds up to 10·k of them; B starts at 10 and
grows by 10 every ten iterations. The search never sees a model: it proposes architecture
strings, receives scores, and keeps its pool and RNG in a dict the runner stores each iteration.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass

import numpy as np

ALGORITHMS = ("mote-nas", "ef", "rs")
# What a run's time can hold: at most this many iterations (MOTE-NAS) or generations (NSGA-II), and at
# most MAX_DRAW candidates drawn in one iteration. Far above any setting of the paper (k <= 100).
MAX_STEPS = 10_000
MAX_DRAW = 1_000_000


def check_whole(name: str, value, lo: int, hi: int, why: str = "") -> None:
    """InputError unless ``value`` is a whole number in ``lo..hi`` (``why``: what the bound is)."""
    from ..errors import InputError
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or not lo <= value <= hi:
        raise InputError(f"{name} {value!r}; accepted: a whole number from {lo} to {hi:,}"
                         + (f" ({why})" if why else ""))


@dataclass
class SearchConfig:
    algorithm: str = "mote-nas"  # mote-nas (search + evaluation stage) | ef (MOTE top-1) | rs (random + evaluation)
    k: int = 10  # candidates passed to the evaluation stage
    batch_start: int = 10  # B at the first iteration
    batch_step: int = 10  # B grows by this ...
    batch_every: int = 10  # ... every this many iterations
    draw_factor: int = 10  # each iteration draws draw_factor * B random candidates
    top_fraction: float = 0.10  # the paper; the official code uses 0.01
    add_limit: str = "10k"  # the paper adds up to 10*k; the official code adds up to 10*B ("10B")
    iterations: str = "max"  # "max": max(k, 10) iterations (the paper); "sum": 10 + k (the official code)
    max_distance: float = 1.0
    rs_factor: int = 100  # MOTE-NAS-RS scores rs_factor * k random candidates
    # Where an iteration's 10*B candidates come from. "uniform" (the paper, on NB201): random draws,
    # then only those within max_distance of a top cell are kept. In a block space a random draw is
    # almost never within two changed blocks of anything, so "neighbours" draws random members of the
    # top cells' neighbourhoods directly (one or two slots changed). "auto": uniform for spaces of at
    # most a million architectures, neighbours above.
    draw: str = "auto"
    seed: int = 0

    def validate(self, space_size: int | None = None) -> None:
        """InputError for a setting that makes the run meaningless or endless; ``space_size`` (the
        space's count of architectures, None when unknown) bounds k."""
        from ..errors import InputError
        if self.algorithm not in ALGORITHMS:
            raise InputError(f"algorithm {self.algorithm!r}; accepted: {', '.join(ALGORITHMS)}")
        if self.add_limit not in ("10k", "10B"):
            raise InputError(f"add_limit {self.add_limit!r}; accepted: 10k (paper), 10B (official code)")
        if self.iterations not in ("max", "sum"):
            raise InputError(f"iterations {self.iterations!r}; accepted: max (max(k, 10)), sum (10 + k)")
        if self.draw not in ("auto", "uniform", "neighbours"):
            raise InputError(f"draw {self.draw!r}; accepted: auto, uniform, neighbours")
        if not 0 < self.top_fraction <= 1:
            raise InputError(f"top_fraction {self.top_fraction}; accepted: 0 < f <= 1")
        k_max = MAX_STEPS if space_size is None else min(MAX_STEPS, space_size)
        held = "" if space_size is None else f"; this space holds {space_size:,} architectures"
        check_whole("k", self.k, 1, k_max, f"k sets max(k, 10) iterations, at most {MAX_STEPS:,}{held}")
        for name, lo in (("batch_start", 1), ("batch_step", 0), ("batch_every", 1), ("draw_factor", 1),
                         ("rs_factor", 1)):
            check_whole(name, getattr(self, name), lo, MAX_DRAW)
        last = self.batch_start + self.batch_step * max(0, self.n_iterations() - 1) // self.batch_every
        if self.draw_factor * last > MAX_DRAW:
            raise InputError(f"draw_factor {self.draw_factor} x batch {last:,} (B at the last iteration) draws "
                             f"{self.draw_factor * last:,} candidates in one iteration; accepted: at most "
                             f"{MAX_DRAW:,} (lower --draw-factor, --batch-start or --k)")

    def n_iterations(self) -> int:
        if self.algorithm == "rs":
            return 0
        return max(self.k, 10) if self.iterations == "max" else 10 + self.k

    def to_dict(self) -> dict:
        return asdict(self)


def rng_from_state(state: dict | None, seed: int) -> np.random.Generator:
    rng = np.random.Generator(np.random.PCG64(seed))
    if state:
        rng.bit_generator.state = state
    return rng


class PairwiseDistance:
    """Distances between many candidates through stacked encodings (one numpy call per query)."""

    def __init__(self, space):
        self.space = space
        self._enc: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def _get(self, arch: str):
        e = self._enc.get(arch)
        if e is None:
            e = self.space.encode(arch)
            self._enc[arch] = e
        return e

    def min_distance(self, archs: list[str], anchors: list[str]) -> np.ndarray:
        if not anchors:
            return np.full(len(archs), np.inf)
        A1 = np.stack([self._get(a)[0] for a in archs])[:, None]
        X1 = np.stack([self._get(a)[1] for a in archs])[:, None]
        A2 = np.stack([self._get(a)[0] for a in anchors])[None]
        X2 = np.stack([self._get(a)[1] for a in anchors])[None]
        d = (np.sqrt(((A1 - A2) ** 2).sum(axis=(2, 3))) + np.sqrt(((X1 - X2) ** 2).sum(axis=(2, 3)))) / 2
        return d.min(axis=1)


class AskTell:
    """What the driver reads of every algorithm: a JSON-able ``state`` whose ``counter`` key counts
    the finished steps, and whose ``done`` says the loop is over."""
    counter = "iteration"
    state: dict

    @property
    def done(self) -> bool:
        return bool(self.state["done"])

    @property
    def step(self) -> int:
        """Index of the last finished step (the store commits under it)."""
        return self.state[self.counter] - 1


class MoteNAS(AskTell):
    """Proposals and pool updates; ``feasible(arch)`` is the loosest budget, ``admitted`` the per-budget tests.

    The driver runs it through ``start`` / ``ask(rng)`` / ``tell(records)`` / ``done`` (pymoo's shape);
    ``propose`` and ``accept`` are the two halves of one iteration on an explicit state."""
    unit = "iter"

    def __init__(self, space, config: SearchConfig, feasible, budgets: list, rank=None):
        config.validate(space.size())
        self.space = space
        self.cfg = config
        self.feasible = feasible
        self.budgets = budgets  # callables arch -> bool, one per constraint
        # ``rank(records by arch) -> records by arch`` with the score to rank by (search/ranking.py)
        self.rank = rank or (lambda records: records)
        self.dist = PairwiseDistance(space)

    def initial_state(self) -> dict:
        return {"iteration": 0, "batch": self.cfg.batch_start, "pool": [], "rng": None, "done": False,
                "drawn_total": 0, "infeasible_total": 0}

    # -- ask / tell ---------------------------------------------------------------------------------
    def start(self, state: dict | None = None, records: dict[str, dict] | None = None) -> None:
        """Begin (``state`` None) or resume from a saved state and every record the run already has."""
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
        """The records of the asked candidates (``scored``: how many were scored now, not read back)."""
        self.records.update((r["arch"], r) for r in records)
        self._rescore()
        self.accept(self.state, self._asked)
        self.state.setdefault("history", []).append(
            {"iteration": self.state["iteration"] - 1, "proposed": len(self._asked),
             "scored": len(records) if scored is None else scored,
             "best": max((s for s in self.scores.values() if s is not None), default=None), **self._info})

    def progress(self) -> tuple[int, int]:
        return self.state["iteration"], self.cfg.n_iterations() + 1

    def postfix(self) -> dict:
        best = self.state["history"][-1]["best"] if self.state.get("history") else None
        return {"pool": len(self.state["pool"]), "best": f"{best:.4g}" if best is not None else "-"}

    def _collect(self, n: int, exclude: set, state: dict, make, exhausted=lambda seen: False) -> list[str]:
        """``n`` distinct feasible candidates from ``make()`` not in ``exclude`` (rejection sampling, capped)."""
        out: list[str] = []
        seen = set(exclude)
        attempts, cap = 0, max(1000, 200 * n)
        while len(out) < n and attempts < cap and not exhausted(seen):
            attempts += 1
            a = self.space.network_key(make())  # one key per distinct network: never scored twice
            if a in seen:
                continue
            seen.add(a)
            if not self.feasible(a):
                state["infeasible_total"] += 1
                continue
            out.append(a)
        state["drawn_total"] += attempts
        return out

    def draw(self, n: int, rng: np.random.Generator, exclude: set, state: dict) -> list[str]:
        """``n`` distinct feasible uniform random candidates not in ``exclude``."""
        size = self.space.size()
        return self._collect(n, exclude, state, lambda: self.space.sample(rng),
                             lambda seen: size is not None and len(seen) >= size)

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
        if self.cfg.algorithm == "rs":
            return self.draw(self.cfg.rs_factor * self.cfg.k, rng, set(pool), state), {"kind": "random"}
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
        max_changes = max(1, int(np.floor((2 * self.cfg.max_distance) ** 2 / 2 + 1e-9)))

        def make() -> str:
            a = top[rng.integers(len(top))]
            for _ in range(rng.integers(1, max_changes + 1)):
                a = self.space.mutate(a, rng)
            return a
        return self._collect(n, exclude, state, make)

    def accept(self, state: dict, proposed: list[str]) -> None:
        seen = set(state["pool"])
        state["pool"].extend(a for a in proposed if a not in seen)
        state["iteration"] += 1
        if self.cfg.algorithm == "rs" or state["iteration"] > self.cfg.n_iterations():
            state["done"] = True
        elif state["iteration"] > 1 and (state["iteration"] - 1) % self.cfg.batch_every == 0:
            state["batch"] += self.cfg.batch_step
