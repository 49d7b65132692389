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
    """Per budget: the top-k by score among admitted candidates; the best evaluated one wins."""
    spec, costs = ctx.spec, ctx.costs
    out = []
    plans = []
    for c in spec.constraints:
        ok = sorted((r for r in pool if r.get("score") is not None and c.admits(costs(r["arch"]))),
                    key=lambda r: -r["score"])
        plans.append((c, ok, ok[:algo.cfg.k] if algo.evaluates else ok[:1]))
    done_evals = evaluate(ctx, evaluator, [r["arch"] for _, _, top in plans for r in top], store, progress) \
        if algo.evaluates else {}
    for c, ok, top in plans:
        if not ok:
            out.append({"constraint": c.to_dict(), "label": c.label(), "arch": None,
                        "error": "no feasible candidate was scored successfully"})
            continue
        evals = {}
        if not algo.evaluates:
            winner = ok[0]
        else:
            evals = {r["arch"]: done_evals[r["arch"]] for r in top}
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
    return out


def evaluate(ctx, evaluator, archs: list[str], store, progress: bool = False) -> dict[str, dict]:
    """``{arch: evaluation}``, scored through the store like the search's candidates (search/scorer.py):
    each evaluation is stored as it finishes, so a killed stage resumes where it stopped and a rerun
    (or another run of the same evaluation config and seed) reads it back."""
    from ...scorer import score_candidates
    # a run killed in this stage by code that kept its evaluations in one result blob resumes from it
    legacy = store.load_result(ctx.spec.name, "evaluations") or {}
    todo = [a for a in dict.fromkeys(archs) if a not in legacy]
    bar = None

    def follow(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            from tqdm.auto import tqdm
            bar = tqdm(total=total, unit="arch", desc="evaluation stage", dynamic_ncols=True, file=sys.stderr)
        bar.update(done - bar.n)

    try:
        records, _ = score_candidates(store, evaluator, ctx.space, ctx.costs, todo, evaluator.config_hash,
                                      evaluator.seed, follow if progress else None)
    finally:
        if bar is not None:
            bar.close()
    return {**legacy, **{r["arch"]: evaluator.evaluation(r) for r in records}}
