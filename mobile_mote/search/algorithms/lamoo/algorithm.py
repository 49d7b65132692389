"""LaMOO over any space: learn the partition that holds the Pareto front (``partition.py``), pick a
region by UCB, and draw new candidates inside it with an inner sampler.

- Generation 0: ``initial`` distinct feasible random networks.
- Every later generation: the tree is rebuilt from everything evaluated (each sample's features: its
  slot vector one-hot, which for a fixed DAG is the X of the space's (A, X) encoding), a leaf is selected, and ``population`` new candidates are drawn inside
  its region by the inner sampler:
  - ``random``: uniform slot vectors (``region_draws`` per generation) kept when inside;
  - ``nsga2``: NSGA-II's breeding restricted to the region: binary tournaments on (rank, crowding)
    among the leaf's samples, 1..``max_mutations`` mutations, children kept when inside.
  Where the region holds too few new networks, the draws inside the parent's region come next, and so
  on up the path (counted in the history as ``backed_up``); random draws are the last resort (``outside``).
- CMA-ES and qEHVI inner samplers are not offered: they need a continuous relaxation of the slot
  vector and (qEHVI) BoTorch, a heavy dependency for a discrete space; NSGA-II is the paper's
  evolutionary inner optimiser.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ....pareto import ranks_and_crowding
from .. import register_algorithm
from ..contract import MAX_DRAW, check_whole, cli_option
from ..nsga2 import NSGA2, ParetoConfig
from ..operators import finite_objectives, mutate_steps, tournament
from .partition import Partition

SAMPLERS = ("random", "nsga2")


@dataclass
class LaMOOConfig(ParetoConfig):
    population: int = 10  # candidates per generation after the initial draw
    generations: int = 95  # 50 + 95 x 10 = 1,000 evaluations
    initial: int = field(default=50, metadata=cli_option("LaMOO: random networks before the first partition", int))
    sampler: str = field(default="random", metadata=cli_option(
        "LaMOO: the inner sampler inside the selected region", choices=SAMPLERS))
    cp_factor: float = 0.1  # Cp = cp_factor x the hypervolume of every sample
    leaf_size: int = 10  # a node splits only if each side keeps this many samples
    max_depth: int = 8
    kernel: str = "rbf"  # the SVM's kernel (scikit-learn SVC)
    region_draws: int = 1000  # uniform slot vectors drawn per generation (tested against the region in one batch)

    def validate(self, space_size: int | None = None) -> None:
        from ....errors import InputError
        super().validate(space_size)
        check_whole("initial", self.initial, 2, MAX_DRAW if space_size is None else min(MAX_DRAW, space_size))
        check_whole("leaf_size", self.leaf_size, 1, MAX_DRAW)
        check_whole("max_depth", self.max_depth, 0, 64)
        check_whole("region_draws", self.region_draws, 1, MAX_DRAW)
        if self.sampler not in SAMPLERS:
            raise InputError(f"sampler {self.sampler!r}; accepted: {', '.join(SAMPLERS)}")
        if self.kernel not in ("rbf", "linear", "poly"):
            raise InputError(f"kernel {self.kernel!r}; accepted: rbf, linear, poly")
        if not isinstance(self.cp_factor, (int, float)) or not self.cp_factor >= 0:
            raise InputError(f"cp_factor {self.cp_factor!r}; accepted: a number, 0 or more")


PROFILES: dict[str, dict] = {
    "tiny": {"initial": 8, "population": 4, "generations": 2, "leaf_size": 2, "region_draws": 200},
    "quick": {"initial": 20, "population": 10, "generations": 8},
}


@register_algorithm("lamoo")
class LaMOO(NSGA2):
    help = "LaMOO: learned space partitions, sampled inside by random or NSGA-II"
    label = "LaMOO"
    option_group = "LaMOO"
    Config = LaMOOConfig
    PROFILES = PROFILES

    @classmethod
    def first_step(cls, config) -> tuple[int, str]:
        return config.initial, "generation"

    def describe(self, summary: dict) -> str:
        return (f"LaMOO ({self.cfg.sampler} inner sampler; {self.cfg.initial} initial, then {self.cfg.population} per "
                f"generation for {self.state['generation'] - 1} generations; SVM {self.cfg.kernel}, "
                f"Cp {self.cfg.cp_factor} x HV)")

    def remaining(self, state: dict) -> int:
        n = self.cfg.initial if state["generation"] == 0 else self.cfg.population
        if self.cfg.budget is not None:
            n = min(n, self.cfg.budget - state["evaluated"])
        return max(0, n)

    def _onehot(self, G: np.ndarray) -> np.ndarray:
        """One-hot slot vectors of a genome matrix (one row per network): the SVMs' features."""
        sizes = self.__dict__.get("_sizes")
        if sizes is None:
            sizes = self._sizes = np.asarray(self.space.genome_sizes())
        offsets = np.r_[0, np.cumsum(sizes)[:-1]]
        out = np.zeros((len(G), int(sizes.sum())))
        out[np.arange(len(G))[:, None], offsets[None, :] + G] = 1.0
        return out

    def _encode(self, archs: list[str]) -> np.ndarray:
        cache = self.__dict__.setdefault("_genes", {})
        G = np.asarray([cache[a] if a in cache else cache.setdefault(a, self.space.genome(a)) for a in archs],
                       dtype=int).reshape(len(archs), -1)
        return self._onehot(G)

    def accept(self, state: dict, proposed: list[str], objectives_of) -> None:
        from ....pareto import pareto_front
        state["archive"].extend(proposed)
        # LaMOO learns from every sample (the archive); the population kept is just the current front, so the
        # state the store commits each generation does not hold the archive twice
        archive = state["archive"]
        state["population"] = [archive[i] for i in pareto_front(finite_objectives(objectives_of(archive)))]
        state["evaluated"] = len(state["archive"])
        state["generation"] += 1
        state["done"] = self.finished(state)

    def propose(self, state: dict, objectives_of, rng: np.random.Generator) -> tuple[list[str], dict]:
        if state["generation"] == 0 or not state["archive"]:
            return super().propose(state, objectives_of, rng)
        archs = state["archive"]
        raw = objectives_of(archs)
        ok = np.isfinite(raw).all(axis=1)
        samples = [a for a, k in zip(archs, ok) if k]
        seen = set(archs)
        n = self.remaining(state)
        path, leaf, leaf_F = [], samples, raw[ok]
        if len(samples) >= 2:
            part = Partition(self._encode(samples), raw[ok], self.cfg.leaf_size, self.cfg.max_depth, self.cfg.kernel,
                             self.cfg.cp_factor)
            path = part.select()
            leaf, leaf_F = [samples[i] for i in part.leaf], raw[ok][part.leaf]
        if self.cfg.sampler == "nsga2" and len(leaf) >= 2:
            rank, crowd = ranks_and_crowding(finite_objectives(leaf_F))
            cands = [mutate_steps(self.space, leaf[tournament(rank, crowd, rng)], rng, self.cfg.max_mutations)
                     for _ in range(self.cfg.mutation_attempts * n)]
            G = np.asarray([self.space.genome(a) for a in cands], dtype=int)
        else:  # uniform slot vectors (uniform over genes whatever ``space.sample`` favours)
            sizes = np.asarray(self.space.genome_sizes())
            G = rng.integers(0, sizes[None, :], size=(self.cfg.region_draws, len(sizes)))
        state["drawn_total"] += len(G)
        out, depths = self._deepest(G, path, n, seen, state)
        if len(out) < n and self.cfg.sampler == "nsga2":  # the region is spent: uniform draws, deepest first
            sizes = np.asarray(self.space.genome_sizes())
            G = rng.integers(0, sizes[None, :], size=(self.cfg.region_draws, len(sizes)))
            state["drawn_total"] += len(G)
            more, d2 = self._deepest(G, path, n - len(out), seen, state)
            out, depths = out + more, depths + d2
        inside = sum(d == len(path) for d in depths)
        region = len(out)
        self._top_up(out, n, rng, seen, state)
        state["random_children"] += len(out) - region
        return out, {"kind": "region", "depth": len(path), "leaf_samples": len(leaf), "inside": int(inside),
                     "backed_up": region - int(inside), "outside": len(out) - region}

    def _deepest(self, G: np.ndarray, path, n: int, seen: set, state: dict) -> tuple[list[str], list[int]]:
        """Up to ``n`` new feasible networks of the slot vectors ``G``, those inside the leaf's region first,
        then those of its parent's region, and so on up the path (LaMOO samples the selected region; when
        the region holds too few new networks, its parent's is the nearest larger one)."""
        depth = Partition.depth_inside(path, self._onehot(G))
        out, got = [], []
        for i in np.argsort(-depth, kind="stable"):
            if len(out) >= n:
                break
            arch = self.space.from_genome(G[i])
            if self._admit(arch, seen, state):
                out.append(arch)
                got.append(int(depth[i]))
        return out, got
