"""The one search loop: any algorithm, any space, any estimator, under budgets, resumable.

The driver is nanoGPT-plain and owns everything an algorithm should not: the RNG state, the store,
resume and progress. An algorithm only proposes architecture strings and reads their records back,
through pymoo's shape::

    algo.start(saved_state, known_records)
    while not algo.done:
        archs = algo.ask(rng)              # what to score next
        records = score(archs)             # the store's, or scored now (and stored chunk by chunk)
        algo.tell(records)                 # update pool / population
        commit(records, rng, algo.state)   # one transaction per step

A kill loses at most the candidates in flight; ``resume=True`` replays the interrupted step from its
saved RNG state, and every candidate already scored is read back from the store, not scored again.
After the loop the algorithm's final step runs (``algo.finish``: MOTE-NAS's evaluation stage and
winners, NSGA-II's front), which writes the run's outputs and returns its summary.
"""
from __future__ import annotations

import sys
import time

from ..plain import json_safe
from .algorithms import rng_from_state
from .context import RunContext
from .scorer import score_candidates
from .session import run_session
from .spec import RunSpec


def drive(algo, seed, evaluate, commit=None, bar=None, stats: dict | None = None,
          max_steps: int | None = None) -> None:
    """Run ``algo`` to its end (or for ``max_steps`` steps). ``evaluate(archs, follow) -> (records,
    n_scored_now)``; ``commit(records, step, state)`` persists a finished step (None: nothing is).
    ``seed``: anything numpy's PCG64 takes; the RNG is rebuilt from the saved state at every step."""
    stats = stats if stats is not None else {}
    steps = 0
    while not algo.done and (max_steps is None or steps < max_steps):
        steps += 1
        rng = rng_from_state(algo.state["rng"], seed)
        proposed = algo.ask(rng)
        follow = None if bar is None else (lambda done, total: bar.set_postfix(scoring=f"{done}/{total}"))
        records, n_scored = evaluate(proposed, follow)
        stats["scored_now"] = stats.get("scored_now", 0) + n_scored
        stats["from_store"] = stats.get("from_store", 0) + len(proposed) - n_scored
        algo.tell(records, n_scored)
        algo.state["rng"] = rng.bit_generator.state
        if commit is not None:
            commit(records, algo.step, json_safe(algo.state))
        if bar is not None:
            bar.set_postfix(**algo.postfix())
            bar.update(1)


def run(spec: RunSpec, resume: bool = False, scorer=None, progress: bool = True, log=None,
        ctx: RunContext | None = None) -> dict:
    """Run (or, ``resume=True``, continue) ``spec``; returns the summary dict also written to the run
    folder. An existing run without ``resume``, ``resume`` of a run the store does not have, and a
    run in progress in another process are InputErrors (``run_session``).
    ``ctx``: the spec's RunContext when the caller built it already (it is built once per run)."""
    ctx = ctx or RunContext(spec, log=log)  # every check that needs no store and no scoring
    spec = ctx.spec  # the resolved copy (its device), which the run records and scores with
    with run_session(spec, resume, scorer, ctx) as (store, state, scorer):
        algo = ctx.make_algorithm()
        algo.start(state, {r["arch"]: r for r in store.run_records(spec.name)})
        stats = {"scored_now": 0, "from_store": 0, "t_start": time.perf_counter()}

        def evaluate(archs, follow):
            return score_candidates(store, scorer, ctx.space, ctx.costs, archs, ctx.config_hash, spec.seed, follow)

        bar = None
        if progress:
            from tqdm.auto import tqdm
            n, total = algo.progress()
            bar = tqdm(total=total, initial=n, unit=algo.unit, desc=f"{spec.algorithm} {spec.space}",
                       dynamic_ncols=True, file=sys.stderr)
        try:
            drive(algo, spec.seed, evaluate, lambda recs, step, st: store.commit_iteration(spec.name, recs, step, st),
                  bar, stats)
        finally:
            if bar is not None:
                bar.close()
        return algo.finish(ctx, store, stats, progress)
