"""Pareto tools (numpy only): non-dominated sorting, crowding, 2-D hypervolume, IGD, NSGA-II selection.

Conventions
-----------
- ``F`` is an ``(n, m)`` array of objective values, one row per point; **every objective is minimised**
  (negate an accuracy or a score before passing it in).
- Point ``a`` *dominates* ``b`` when ``a <= b`` in every objective and ``a < b`` in at least one.
  Identical points do not dominate each other, so duplicates share a front.
- Functions that select return **indices into the rows of F** (int arrays), never copies of rows.
- ``hypervolume_2d(F, ref)`` is the exact area dominated by the points of ``F`` and bounded by the
  reference point ``ref``; only points that *strictly* dominate ``ref`` (``f < ref`` in both objectives)
  count. Dominated points and duplicates are allowed and add nothing.
- ``normalise(F, lo, hi)`` maps ``lo -> 0`` and ``hi -> 1`` per objective (a zero range maps to 0).
- ``igd(front, reference_front)`` is the mean, over the reference points, of the Euclidean distance to
  the nearest found point (0 when the found front covers the reference front); ``igd_plus`` counts only
  the amounts by which a found point is worse (Ishibuchi et al. 2015), so it is weakly Pareto-compliant.
- ``hypervolume(F, ref)`` is ``hypervolume_2d`` for two objectives and exact slicing (HSO) for more.
"""
from __future__ import annotations

import numpy as np

__all__ = ["dominates", "non_dominated_sort", "pareto_front", "crowding_distance", "hypervolume_2d",
           "normalise", "igd", "igd_plus", "hypervolume", "nsga2_select", "ranks_and_crowding"]


def _as_2d(F) -> np.ndarray:
    F = np.asarray(F, dtype=float)
    if F.ndim == 1:
        F = F.reshape(-1, 1) if F.size else F.reshape(0, 1)
    if F.ndim != 2:
        raise ValueError(f"objectives must have shape (n, m); got {F.shape}")
    if np.isnan(F).any():
        raise ValueError("objectives contain NaN")
    return F


def dominates(a, b) -> bool:
    """True when point ``a`` dominates point ``b`` (minimisation)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return bool(np.all(a <= b) and np.any(a < b))


def _sort_2d(F: np.ndarray) -> list[np.ndarray]:
    """Front peeling for two objectives in O(n log n + n * fronts) via a lexicographic sweep."""
    order = np.lexsort((F[:, 1], F[:, 0]))  # by f1, then f2
    last_f1: list[float] = []  # per front: f1 / f2 of the last point added (the front's min f2)
    last_f2: list[float] = []
    members: list[list[int]] = []
    for i in order:
        f1, f2 = F[i, 0], F[i, 1]
        # every earlier point has f1' <= f1; front k dominates i iff its min f2 is below f2, or equal
        # to f2 while coming from a strictly smaller f1 (equal in both = a duplicate, not dominated).
        # "dominated by front k" holds for k < rank(i) and fails from rank(i) on: binary search.
        lo, hi = 0, len(members)
        while lo < hi:
            mid = (lo + hi) // 2
            if last_f2[mid] < f2 or (last_f2[mid] == f2 and last_f1[mid] < f1):
                lo = mid + 1
            else:
                hi = mid
        if lo == len(members):
            members.append([])
            last_f1.append(f1)
            last_f2.append(f2)
        members[lo].append(int(i))
        last_f1[lo], last_f2[lo] = f1, f2
    return [np.sort(np.asarray(m, dtype=int)) for m in members]


def _sort_general(F: np.ndarray) -> list[np.ndarray]:
    """Deb's fast non-dominated sort with a (vectorised) domination matrix: O(m n^2) memory-light rows."""
    n = len(F)
    dominated_by_count = np.zeros(n, dtype=int)
    dominates_list: list[np.ndarray] = []
    for i in range(n):
        le = np.all(F[i] <= F, axis=1)
        lt = np.any(F[i] < F, axis=1)
        dom = np.nonzero(le & lt)[0]  # points i dominates
        dominates_list.append(dom)
        dominated_by_count[dom] += 1
    fronts = []
    current = np.nonzero(dominated_by_count == 0)[0]
    while current.size:
        fronts.append(np.sort(current))
        nxt = []
        for i in current:
            d = dominates_list[i]
            dominated_by_count[d] -= 1
            nxt.extend(d[dominated_by_count[d] == 0].tolist())
        current = np.asarray(sorted(set(nxt)), dtype=int)
    return fronts


def non_dominated_sort(F) -> list[np.ndarray]:
    """Fronts of row indices (sorted ascending within each front), best front first; minimisation.

    Two objectives use an O(n log n)-per-point sweep (fine for all 15,625 NB201 cells); more objectives
    use Deb's fast non-dominated sort (O(m n^2))."""
    F = _as_2d(F)
    if len(F) == 0:
        return []
    if F.shape[1] == 1:
        vals = np.unique(F[:, 0])
        return [np.nonzero(F[:, 0] == v)[0] for v in vals]
    if F.shape[1] == 2:
        return _sort_2d(F)
    return _sort_general(F)


def pareto_front(F) -> np.ndarray:
    """Indices of the non-dominated rows of F (the first front)."""
    fronts = non_dominated_sort(F)
    return fronts[0] if fronts else np.zeros(0, dtype=int)


def crowding_distance(F_front) -> np.ndarray:
    """NSGA-II crowding distance of the points of one front (shape (n, m)), larger = less crowded.

    Per objective, the extreme points get ``inf``; interior points add the gap between their neighbours
    divided by the objective's range over the front (an objective with zero range adds nothing).
    Fronts of one or two points are all ``inf``."""
    F = _as_2d(F_front)
    n, m = F.shape
    d = np.zeros(n)
    if n <= 2:
        d[:] = np.inf
        return d
    for j in range(m):
        order = np.argsort(F[:, j], kind="stable")
        vals = F[order, j]
        span = vals[-1] - vals[0]
        d[order[0]] = d[order[-1]] = np.inf
        if span <= 0:
            continue
        d[order[1:-1]] += (vals[2:] - vals[:-2]) / span
    return d


def hypervolume_2d(F, ref) -> float:
    """Exact hypervolume (area) of two minimised objectives w.r.t. the reference point ``ref``.

    Only points with ``f1 < ref[0]`` and ``f2 < ref[1]`` count; an empty set has volume 0."""
    F = _as_2d(F)
    ref = np.asarray(ref, dtype=float)
    if F.shape[1] != 2 or ref.shape != (2,):
        raise ValueError(f"hypervolume_2d needs (n, 2) points and a 2-vector reference; got {F.shape}, {ref.shape}")
    F = F[(F[:, 0] < ref[0]) & (F[:, 1] < ref[1])]
    if len(F) == 0:
        return 0.0
    F = F[np.lexsort((F[:, 1], F[:, 0]))]
    area, best_f2 = 0.0, ref[1]
    for f1, f2 in F:  # sweep by f1; a point adds a strip only where it lowers the running min of f2
        if f2 < best_f2:
            area += (ref[0] - f1) * (best_f2 - f2)
            best_f2 = f2
    return float(area)


def normalise(F, lo, hi) -> np.ndarray:
    """(F - lo) / (hi - lo) per objective; an objective with hi == lo maps to 0."""
    F = np.asarray(F, dtype=float)
    lo, hi = np.asarray(lo, dtype=float), np.asarray(hi, dtype=float)
    span = hi - lo
    safe = np.where(span > 0, span, 1.0)
    return np.where(span > 0, (F - lo) / safe, 0.0)


def _mean_nearest(front, reference_front, gap) -> float:
    """Mean over reference points of the smallest ``gap(R, P)`` distance to a found point (chunks keep
    the distance matrix small); inf for an empty found front, 0 for an empty reference front."""
    R = _as_2d(reference_front)
    if len(R) == 0:
        return 0.0
    P = _as_2d(front)
    if len(P) == 0:
        return float("inf")
    if P.shape[1] != R.shape[1]:
        raise ValueError(f"front has {P.shape[1]} objectives, reference front {R.shape[1]}")
    best = np.full(len(R), np.inf)
    for start in range(0, len(P), 1024):
        dist = np.sqrt((gap(R[:, None, :], P[start:start + 1024][None, :, :]) ** 2).sum(-1))
        best = np.minimum(best, dist.min(axis=1))
    return float(best.mean())


def igd(front, reference_front) -> float:
    """Inverted generational distance: mean over reference points of the distance to the nearest found
    point. An empty found front gives ``inf``; an empty reference front gives 0."""
    return _mean_nearest(front, reference_front, lambda r, p: r - p)


def igd_plus(front, reference_front) -> float:
    """IGD+: mean over reference points ``r`` of min over found points ``p`` of ``|max(p - r, 0)|``."""
    return _mean_nearest(front, reference_front, lambda r, p: np.maximum(p - r, 0.0))


def hypervolume(F, ref) -> float:
    """Exact hypervolume of minimised objectives w.r.t. ``ref``, any number of objectives: the 2-D sweep,
    or for more objectives hypervolume-by-slicing over the last objective (fine for fronts of a few
    hundred points in three or four objectives)."""
    F = _as_2d(F)
    ref = np.asarray(ref, dtype=float)
    if ref.shape != (F.shape[1],):
        raise ValueError(f"reference point has {ref.size} values for {F.shape[1]} objectives")
    F = F[np.all(F < ref, axis=1)]
    if len(F) == 0:
        return 0.0
    if F.shape[1] == 1:
        return float(ref[0] - F[:, 0].min())
    if F.shape[1] == 2:
        return hypervolume_2d(F, ref)
    F = F[pareto_front(F)]
    F = F[np.argsort(F[:, -1], kind="stable")]
    volume = 0.0
    for i in range(len(F)):  # the slab between this point's last objective and the next one's
        top = F[i + 1, -1] if i + 1 < len(F) else ref[-1]
        if top > F[i, -1]:
            volume += hypervolume(F[:i + 1, :-1], ref[:-1]) * (top - F[i, -1])
    return float(volume)


def nsga2_select(F, k: int) -> np.ndarray:
    """Indices of the ``k`` survivors of NSGA-II's environmental selection: whole fronts in rank order,
    the last front cut by crowding distance (largest first; ties by lower index). ``k >= n`` keeps all."""
    F = _as_2d(F)
    n = len(F)
    if k >= n:
        return np.arange(n)
    if k <= 0:
        return np.zeros(0, dtype=int)
    chosen: list[int] = []
    for front in non_dominated_sort(F):
        if len(chosen) + len(front) <= k:
            chosen.extend(front.tolist())
            if len(chosen) == k:
                break
            continue
        cd = crowding_distance(F[front])
        order = np.lexsort((front, -cd))  # crowding descending, then index ascending
        chosen.extend(front[order[:k - len(chosen)]].tolist())
        break
    return np.asarray(chosen, dtype=int)


def ranks_and_crowding(F) -> tuple[np.ndarray, np.ndarray]:
    """Per-row front rank (0 = best) and crowding distance within its front (for tournament selection)."""
    F = _as_2d(F)
    rank = np.zeros(len(F), dtype=int)
    crowd = np.zeros(len(F))
    for r, front in enumerate(non_dominated_sort(F)):
        rank[front] = r
        crowd[front] = crowding_distance(F[front])
    return rank, crowd
