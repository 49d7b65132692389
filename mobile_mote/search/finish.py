"""What every algorithm's final step shares: the summary's common part and a winner's true standing
in a benchmark. The final steps themselves are the algorithms' (``Algorithm.finish``)."""
from __future__ import annotations

import time

from ..efficiency.constraints import Constraint


def data_quality(ctx) -> str | None:
    """What the proxy data was: "demo" (the offline MNIST fallback), "proxy" (a reduced data set), or
    None when the estimator read no images."""
    data = ctx.__dict__.get("data")  # only if it was loaded: data-free runs never load any
    if data is None:
        return None
    return "demo" if (getattr(data, "provenance", None) or {}).get("demo_quality") else "proxy"


def common_summary(ctx, stats: dict, records: list[dict]) -> dict:
    from ..provenance import provenance
    spec = ctx.spec
    return {
        "run": spec.name, "space": spec.space, "algorithm": spec.algorithm, "profile": spec.profile,
        "estimator": spec.estimator,
        "estimator_config": ctx.estimator.config_dict(), "estimator_config_hash": ctx.config_hash,
        "constraints": [c.to_dict() for c in spec.constraints], "seed": spec.seed, "device": spec.device,
        "scored_this_session": stats["scored_now"], "taken_from_store": stats["from_store"],
        "estimator_seconds": float(sum(r.get("seconds") or 0.0 for r in records)),
        "wall_seconds_this_session": time.perf_counter() - stats["t_start"],
        "data_quality": data_quality(ctx), "provenance": provenance(),
    }


def true_standing(ctx, constraint: Constraint, arch: str) -> dict:
    """The winner's true accuracy from the benchmark, its rank among every feasible architecture the
    benchmark lists, and the best feasible accuracy (reporting only: the search never saw them)."""
    acc = ctx.benchmark.true_accuracy(arch)
    out = {}
    if acc is None:
        return out
    out["final_accuracy"] = acc
    out["final_accuracy_source"] = ctx.benchmark.truth_source
    truth = {a: v for a, v in ctx.benchmark.truth().items() if v is not None and constraint.admits(ctx.costs(a))}
    feasible = list(truth.values())
    if feasible:
        out["final_rank"] = 1 + sum(v > acc for v in feasible)
        out["feasible_architectures"] = len(feasible)
        out["best_feasible_accuracy"] = max(feasible)
        # keys of one network (space.network_key) share one row of the benchmark: count networks too
        networks = {ctx.space.network_key(a): v for a, v in truth.items()}
        if len(networks) < len(truth):
            out["final_rank_networks"] = 1 + sum(v > acc for v in networks.values())
            out["feasible_networks"] = len(networks)
    return out
