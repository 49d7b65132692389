"""Timing studies measured within one process, so that both sides of a comparison share the load."""
from __future__ import annotations

import time

import numpy as np


def shared_vs_alone(space, names, data, n: int, seed: int = 0) -> dict:
    """Every proxy of ``n`` seeded networks through the shared pass and one estimate at a time,
    alternating (which goes first flips each network); per-network seconds and whether scores agree."""
    from ..estimators import get_estimator
    from ..estimators.zero_cost import estimate_many
    rng = np.random.default_rng(seed)
    archs = [space.sample(rng) for _ in range(n)]
    rows = []
    for i, arch in enumerate(archs):
        def shared():
            t = time.perf_counter()
            recs = estimate_many(names, space, arch, data, seed=seed)
            return time.perf_counter() - t, {k: r.score for k, r in recs.items()}

        def alone():
            t = time.perf_counter()
            scores = {k: get_estimator(k).estimate(space, arch, data, seed).score for k in names}
            return time.perf_counter() - t, scores

        first, second = (shared, alone) if i % 2 == 0 else (alone, shared)
        a, b = first(), second()
        (ts, ss), (ta, sa) = (a, b) if first is shared else (b, a)
        rows.append({"arch": arch, "shared_s": ts, "alone_s": ta, "scores_equal": ss == sa})
    sh, al = np.array([r["shared_s"] for r in rows]), np.array([r["alone_s"] for r in rows])
    return {"space": space.name, "proxies": list(names), "networks": rows,
            "summary": {"n": n, "shared_median_s": float(np.median(sh)), "alone_median_s": float(np.median(al)),
                        "ratio_of_totals": float(al.sum() / sh.sum()),
                        "scores_equal": all(r["scores_equal"] for r in rows)}}
