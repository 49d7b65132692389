"""LaMOO's learned partition of a search space (Zhao, Wang & Guo, JMLR 2024; ICLR 2022 for the optimiser).

The tree is rebuilt from every evaluated sample at each step:

- a node's samples are labelled by their dominance count (how many of the node's samples dominate
  each); the better half (lowest counts, ties broken by index) is "good", the rest "bad";
- an SVM (scikit-learn ``SVC``) learns good against bad on the samples' features; when its
  predictions on the node's own samples put at least ``leaf_size`` on each side, the node splits into
  the predicted-good child and the predicted-bad child, and the chosen child goes on splitting;
- a node's value is the hypervolume of its samples' objectives (normalised over all samples,
  reference point 1.1 per objective); the path to a leaf follows the child of the larger UCB,
  ``value + 2 Cp sqrt(2 ln n_parent / n_child)`` with ``Cp = cp_factor x`` the root's hypervolume.

The selected region is the leaf's: every SVM on its path classifies a point to the path's side.
"""
from __future__ import annotations

import math

import numpy as np

from ....pareto import hypervolume

REF = 1.1


def dominance_counts(F: np.ndarray) -> np.ndarray:
    """For each row, how many rows dominate it (minimisation)."""
    F = np.asarray(F, dtype=float)
    le = np.all(F[:, None, :] <= F[None, :, :], axis=2)  # le[i, j]: i <= j everywhere
    lt = np.any(F[:, None, :] < F[None, :, :], axis=2)
    return (le & lt).sum(axis=0)


class Partition:
    """The tree over samples ``X`` (features) with minimised objectives ``F`` (finite rows), grown only
    along the path UCB selects: at each node both children are built (their values decide), then only
    the chosen one is split further, which gives the path a full tree would give."""

    def __init__(self, X: np.ndarray, F: np.ndarray, leaf_size: int = 10, max_depth: int = 8,
                 kernel: str = "rbf", cp_factor: float = 0.1):
        self.X, self.leaf_size, self.max_depth, self.kernel = X, leaf_size, max_depth, kernel
        lo, hi = F.min(axis=0), F.max(axis=0)
        self.F = (F - lo) / np.where(hi > lo, hi - lo, 1.0)
        self.cp = cp_factor * self._value(np.arange(len(X)))
        self.leaf = np.arange(len(X))

    def _value(self, idx: np.ndarray) -> float:
        return hypervolume(self.F[idx], np.full(self.F.shape[1], REF)) if len(idx) else 0.0

    def _split(self, idx: np.ndarray):
        """(svm, good, bad) for a node the SVM separates, else None."""
        if len(idx) < 2 * self.leaf_size:
            return None
        counts = dominance_counts(self.F[idx])
        order = np.lexsort((np.arange(len(idx)), counts))
        label = np.zeros(len(idx), dtype=int)
        label[order[:len(idx) // 2]] = 1  # 1 = good: the half dominated least
        from sklearn.svm import SVC
        svm = SVC(kernel=self.kernel, gamma="scale", C=1.0)
        svm.fit(self.X[idx], label)
        pred = svm.predict(self.X[idx])
        good, bad = idx[pred == 1], idx[pred == 0]
        if len(good) < self.leaf_size or len(bad) < self.leaf_size:
            return None  # the SVM does not separate this node
        return svm, good, bad

    def select(self) -> list[tuple[object, int]]:
        """The path to a leaf, the child of larger UCB at every level: [(svm, side)], side 1 = good.
        ``self.leaf`` holds the leaf's sample indices."""
        path, idx = [], np.arange(len(self.X))
        while len(path) < self.max_depth:
            split = self._split(idx)
            if split is None:
                break
            svm, good, bad = split
            n = len(idx)

            def ucb(child):
                return self._value(child) + 2 * self.cp * math.sqrt(2 * math.log(n) / len(child))
            side = 1 if ucb(good) >= ucb(bad) else 0
            path.append((svm, side))
            idx = good if side == 1 else bad
        self.leaf = idx
        return path

    @staticmethod
    def depth_inside(path, X: np.ndarray) -> np.ndarray:
        """Per row of ``X``, how many leading steps of ``path`` it satisfies (``len(path)``: inside the
        leaf's region; k: inside the region of the node k steps down, not deeper)."""
        depth = np.zeros(len(X), dtype=int)
        alive = np.arange(len(X))
        for svm, side in path:
            if not len(alive):
                break
            alive = alive[svm.predict(X[alive]) == side]
            depth[alive] += 1
        return depth
