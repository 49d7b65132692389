"""Multiple-gradient descent: the min-norm point of the convex hull of per-task gradients.

Désidéri's MGDA as solved by Sener & Koltun (NeurIPS 2018): find weights ``w`` on the simplex that
minimise ``|| sum_t w_t g_t ||^2``; the combined direction then decreases every task's loss (or is
zero at a Pareto-stationary point). Two tasks have a closed form; more use Frank-Wolfe with exact
line search, all in terms of the Gram matrix, so the gradients are touched once.
"""
from __future__ import annotations

import numpy as np
import torch


def _pair(aa: float, ab: float, bb: float) -> float:
    """argmin over gamma in [0, 1] of ||gamma a + (1 - gamma) b||^2."""
    denom = aa + bb - 2 * ab
    if denom <= 1e-20:
        return 0.5
    return float(np.clip((bb - ab) / denom, 0.0, 1.0))


def min_norm_weights(grads, max_iter: int = 250, tol: float = 1e-7) -> np.ndarray:
    """Simplex weights of the min-norm combination of ``grads`` (a list of 1-D tensors or arrays)."""
    G = torch.stack([torch.as_tensor(g).detach().reshape(-1).double() for g in grads])
    M = (G @ G.T).cpu().numpy()
    n = len(M)
    if n == 1:
        return np.ones(1)
    if n == 2:
        g = _pair(M[0, 0], M[0, 1], M[1, 1])
        return np.array([g, 1 - g])
    # Start from the best pair (often already optimal), then Frank-Wolfe towards the worst-aligned vertex.
    best, w = np.inf, np.full(n, 1.0 / n)
    for i in range(n):
        for j in range(i + 1, n):
            g = _pair(M[i, i], M[i, j], M[j, j])
            val = g * g * M[i, i] + (1 - g) ** 2 * M[j, j] + 2 * g * (1 - g) * M[i, j]
            if val < best:
                best, w = val, np.zeros(n)
                w[i], w[j] = g, 1 - g
    for _ in range(max_iter):
        Mw = M @ w
        t = int(np.argmin(Mw))
        gamma = _pair(M[t, t], Mw[t], float(w @ Mw))  # between vertex t (a) and the current point (b)
        new = (1 - gamma) * w
        new[t] += gamma
        if np.abs(new - w).sum() < tol:
            w = new
            break
        w = new
    return w
