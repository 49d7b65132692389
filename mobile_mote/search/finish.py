"""The final step of each kind of run, after the driver's loop: the evaluation stage and winners
(MOTE-NAS, EF, RS) or the Pareto front (NSGA-II); each writes its outputs and the run's summary."""
from __future__ import annotations

import time

from ..efficiency.constraints import Constraint
from ..plain import json_safe


def data_quality(ctx) -> str | None:
    """What the proxy data was: "demo" (the offline MNIST fallback), "proxy" (a reduced data set), or
    None when the estimator read no images."""
    data = ctx.__dict__.get("data")  # only if it was loaded: data-free runs never load any
    if data is None:
        return None
    return "demo" if (getattr(data, "provenance", None) or {}).get("demo_quality") else "proxy"


def _common(ctx, stats: dict, records: list[dict]) -> dict:
    from ..provenance import provenance
    spec = ctx.spec
    return {
        "run": spec.name, "space": spec.space, "algorithm": spec.algorithm, "estimator": spec.estimator,
        "estimator_config": ctx.estimator.config_dict(), "estimator_config_hash": ctx.config_hash,
        "constraints": [c.to_dict() for c in spec.constraints], "seed": spec.seed, "device": spec.device,
        "scored_this_session": stats["scored_now"], "taken_from_store": stats["from_store"],
        "estimator_seconds": float(sum(r.get("seconds") or 0.0 for r in records)),
        "wall_seconds_this_session": time.perf_counter() - stats["t_start"],
        "data_quality": data_quality(ctx), "provenance": provenance(),
    }


def finish_evolution(ctx, algo, store, stats: dict, progress: bool = False) -> dict:
    spec, state = ctx.spec, algo.state
    known = {r["arch"]: r for r in store.run_records(spec.name)}
    pool = ctx.ranked([known[a] for a in state["pool"] if a in known])
    evaluator = ctx.evaluator
    winners = evaluation_stage(ctx, pool, evaluator, store, progress)
    summary = {
        **_common(ctx, stats, pool), "search": spec.search.to_dict(),
        "candidates": len(pool), "failed": sum(r.get("status") != "ok" for r in pool),
        "drawn": state.get("drawn_total"), "infeasible_drawn": state.get("infeasible_total"),
        "evaluation": evaluator.describe if evaluator else "none (MOTE top-1)",
        "winners": winners, "history": state.get("history", []),
    }
    from .outputs import write_outputs
    write_outputs(spec.run_dir, summary, pool, spec.constraints)
    store.save_result(spec.name, "summary", json_safe(summary))
    return summary


def evaluation_stage(ctx, pool: list[dict], evaluator, store, progress: bool = False) -> list[dict]:
    """Per budget: the top-k by score among admitted candidates; the best evaluated one wins.
    Each evaluation is stored as it finishes, so a killed stage resumes where it stopped."""
    spec, costs = ctx.spec, ctx.costs
    out = []
    done_evals: dict[str, dict] = dict(store.load_result(spec.name, "evaluations") or {})
    todo_total = 0
    plans = []
    for c in spec.constraints:
        ok = sorted((r for r in pool if r.get("score") is not None and c.admits(costs(r["arch"]))),
                    key=lambda r: -r["score"])
        top = ok[:1] if spec.search.algorithm == "ef" else ok[:spec.search.k]
        plans.append((c, ok, top))
        if spec.search.algorithm != "ef":
            todo_total += sum(r["arch"] not in done_evals for r in top)
    bar = None
    if progress and todo_total:
        from tqdm.auto import tqdm
        import sys
        bar = tqdm(total=todo_total, unit="arch", desc="evaluation stage", dynamic_ncols=True, file=sys.stderr)
    try:
        for c, ok, top in plans:
            if not ok:
                out.append({"constraint": c.to_dict(), "label": c.label(), "arch": None,
                            "error": "no feasible candidate was scored successfully"})
                continue
            evals = {}
            if spec.search.algorithm == "ef":
                winner = ok[0]
            else:
                for r in top:
                    if r["arch"] not in done_evals:
                        done_evals[r["arch"]] = evaluator(r["arch"])
                        store.save_result(spec.name, "evaluations", done_evals)  # resumable stage
                        if bar is not None:
                            bar.update(1)
                    evals[r["arch"]] = done_evals[r["arch"]]
                winner = max(top, key=lambda r: (evals[r["arch"]].get("accuracy") is not None,
                                                 evals[r["arch"]].get("accuracy") or 0.0, r["score"]))
            wc = costs(winner["arch"])
            w = {"constraint": c.to_dict(), "label": c.label(), "arch": winner["arch"], "score": winner["score"],
                 "macs": wc["macs"], "params": wc["params"], "latency_ms": wc["latency_ms"],
                 "evaluation": evals.get(winner["arch"]),
                 "top_k": [{"arch": r["arch"], "score": r["score"], "evaluation": evals.get(r["arch"])} for r in top],
                 "evaluation_seconds": float(sum((e.get("seconds") or 0.0) for e in evals.values()))}
            if ctx.benchmark is not None:
                w.update(true_standing(ctx, c, winner["arch"]))
            out.append(w)
    finally:
        if bar is not None:
            bar.close()
    return out


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


def finish_pareto(ctx, algo, store, stats: dict, progress: bool = False) -> dict:
    from .pareto_outputs import pareto_result, write_pareto_outputs
    spec, state = ctx.spec, algo.state
    known = {r["arch"]: r for r in store.run_records(spec.name)}  # with the generation that added each
    known = {r["arch"]: r for r in ctx.ranked(list(known.values()))}  # ranked as the search ranked them
    evaluated = [known[a] for a in state["archive"] if a in known]
    truth = ctx.benchmark.truth() if ctx.benchmark is not None else None
    result = pareto_result(spec, ctx.space, tuple(spec.objectives), evaluated, ctx.costs, truth,
                           ctx.benchmark.truth_source if ctx.benchmark is not None else None)
    common = _common(ctx, stats, evaluated)
    summary = {
        **{k: common[k] for k in ("run", "space", "algorithm")}, "objectives": list(spec.objectives),
        "objective_sense": "minimised inside the search; score enters negated (higher is better)",
        **{k: common[k] for k in ("estimator", "estimator_config", "estimator_config_hash")},
        "pareto": spec.pareto.to_dict(), "constraints": common["constraints"],
        "latency_source": ctx.costs.latency_source, "seed": spec.seed, "device": spec.device,
        "generations_done": state["generation"], "evaluated": len(evaluated),
        "failed": sum(r.get("status") != "ok" for r in evaluated),
        **{k: common[k] for k in ("scored_this_session", "taken_from_store", "estimator_seconds",
                                  "wall_seconds_this_session")},
        "drawn": state.get("drawn_total"), "infeasible_drawn": state.get("infeasible_total"),
        "random_children": state.get("random_children"), "exhausted": bool(state.get("exhausted")),
        **{k: result[k] for k in ("front_size", "hypervolume", "true_accuracy_source") if k in result},
        "front": result["front"], "history": state.get("history", []),
    }
    write_pareto_outputs(spec.run_dir, summary, result)
    store.save_result(spec.name, "pareto", json_safe(summary))
    return summary


FINISH = {"evolution": finish_evolution, "pareto": finish_pareto}
