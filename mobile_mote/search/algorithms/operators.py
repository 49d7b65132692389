"""Operators the algorithms share: feasible sampling by rejection, mutation within a distance,
nearest-anchor distances and NSGA-II's rank-and-crowding tournament. Plain functions of a space, an
RNG and the algorithm's state counters; none keeps state of its own."""
from __future__ import annotations

import numpy as np


def sample_feasible(n: int, make, feasible, seen: set, state: dict, key=None, exhausted=None,
                    cap: int | None = None) -> list[str]:
    """Up to ``n`` distinct feasible architectures from ``make()`` that are not in ``seen`` (which
    grows by every draw, feasible or not, so none is tried twice). ``key`` maps a draw to its
    canonical string; ``exhausted(seen)`` stops early; at most ``cap`` draws (default max(1000,
    200 n)). ``state["drawn_total"]`` and ``state["infeasible_total"]`` count the draws."""
    out: list[str] = []
    attempts, cap = 0, cap or max(1000, 200 * n)
    while len(out) < n and attempts < cap and not (exhausted is not None and exhausted(seen)):
        attempts += 1
        a = make() if key is None else key(make())
        if a in seen:
            continue
        seen.add(a)
        if not feasible(a):
            state["infeasible_total"] += 1
            continue
        out.append(a)
    state["drawn_total"] += attempts
    return out


def space_exhausted(space):
    """``exhausted(seen)`` for ``sample_feasible``: every architecture of a finite space was seen."""
    size = space.size()
    return lambda seen: size is not None and len(seen) >= size


def mutate_steps(space, arch: str, rng: np.random.Generator, max_steps: int) -> str:
    """``arch`` after 1 .. ``max_steps`` random ``space.mutate`` steps (the count drawn first)."""
    for _ in range(int(rng.integers(1, max_steps + 1))):
        arch = space.mutate(arch, rng)
    return arch


def changes_within(distance: float) -> int:
    """The most single-slot changes that stay within ``distance`` ((‖ΔA‖ + ‖ΔX‖) / 2): one change of a
    one-hot row moves ‖ΔX‖ by √2, so c changes reach √(2c)/2 at most."""
    return max(1, int(np.floor((2 * distance) ** 2 / 2 + 1e-9)))


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


def finite_objectives(F) -> np.ndarray:
    """``F`` with every +inf (a failed candidate) replaced by a value worse than each column's finite
    values: domination and ranks are unchanged, and crowding distances stay finite."""
    F = np.array(F, dtype=float, copy=True)
    for j in range(F.shape[1]):
        col = F[:, j]
        bad = ~np.isfinite(col)
        if bad.any():
            ok = col[~bad]
            top = ok.max() if ok.size else 0.0
            col[bad] = top + max(1.0, float(ok.max() - ok.min()) if ok.size else 1.0)
    return F


def tournament(rank, crowd, rng: np.random.Generator) -> int:
    """Binary tournament on (front rank, -crowding distance): the index of the winner of two draws."""
    a, b = rng.integers(len(rank), size=2)
    return int(a if (rank[a], -crowd[a]) <= (rank[b], -crowd[b]) else b)
