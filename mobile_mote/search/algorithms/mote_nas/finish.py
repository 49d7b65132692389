"""MOTE-NAS's final step: per budget, the evaluation stage over the top-k (EF: the top-1 as it is),
the winners with their true standing when a benchmark knows it, and the run's outputs."""
from __future__ import annotations

import sys

from ....plain import json_safe
from ...finish import common_summary, true_standing


def finish_winners(ctx, algo, store, stats: dict, progress: bool = False) -> dict:
    spec, state = ctx.spec, algo.state
    known = {r["arch"]: r for r in store.run_records(spec.name)}
    pool = ctx.ranked([known[a] for a in state["pool"] if a in known])
    evaluator = ctx.prepared
    winners = evaluation_stage(ctx, algo, pool, evaluator, store, progress)
    summary = {
        **common_summary(ctx, stats, pool), "search": {"algorithm": spec.algorithm, **algo.cfg.to_dict()},
        "candidates": len(pool), "failed": sum(r.get("status") != "ok" for r in pool),
        "drawn": state.get("drawn_total"), "infeasible_drawn": state.get("infeasible_total"),
        "evaluation": evaluator.describe if evaluator else "none (MOTE top-1)",
        "winners": winners, "history": state.get("history", []),
    }
    from ...outputs import write_outputs
    write_outputs(spec.run_dir, summary, pool, spec.constraints)
    store.save_result(spec.name, "summary", json_safe(summary))
    return summary


def evaluation_stage(ctx, algo, pool: list[dict], evaluator, store, progress: bool = False) -> list[dict]:
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
        top = ok[:algo.cfg.k] if algo.evaluates else ok[:1]
        plans.append((c, ok, top))
        if algo.evaluates:
            todo_total += sum(r["arch"] not in done_evals for r in top)
    bar = None
    if progress and todo_total:
        from tqdm.auto import tqdm
        bar = tqdm(total=todo_total, unit="arch", desc="evaluation stage", dynamic_ncols=True, file=sys.stderr)
    try:
        for c, ok, top in plans:
            if not ok:
                out.append({"constraint": c.to_dict(), "label": c.label(), "arch": None,
                            "error": "no feasible candidate was scored successfully"})
                continue
            evals = {}
            if not algo.evaluates:
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
