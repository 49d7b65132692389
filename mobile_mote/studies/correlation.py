"""Kendall tau / Spearman rho of estimators against a benchmark space's true accuracy
(``tools/correlation.py``): a seeded sample scored by each estimator, records appended as they finish so
that a killed run resumes, and every estimator's agreement beside the table's own baselines and ceiling."""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from mobile_mote.search_spaces import get_space

from ..atomic import write_text
from ..benchmarks import load_benchmark
from ..correlation import mote_views, plot_ranks, plot_tau_cost, rank_agreement, read_jsonl
from ..data.proxy_data import load_proxy_data
from ..errors import InputError
from ..estimators import estimator_config, get_estimator
from ..overrides import parse_set
from ..provenance import provenance
from ..scoring import estimate_record, sample_archs, sample_from_file, score_archs
from ..store import SearchStore
from .truth import benchmark_path, refit_mote


def run(args, shared: Path) -> int:
    """Scores the sample with every estimator (resuming from the records), writes
    ``<space>_correlation_<tag>.json`` and its plots, prints the table; 2 after a one-line error."""
    try:
        bench_path = benchmark_path(args.space, args.benchmark, shared)
        bench = load_benchmark(bench_path, args.space)
        data = load_proxy_data(args.proxy_data)
        overrides = parse_set(args.set)
        names = [e.strip() for e in args.estimators.split(",") if e.strip()]
        configs = {e: estimator_config(e, args.profile, **overrides_for(e, overrides)) for e in names}
    except (InputError, ValueError) as e:
        print(f"correlation: error: {e}", file=sys.stderr)
        return 2
    space = get_space(args.space)
    targets, main = bench.targets, bench.main_target
    try:
        archs = sample_from_file(args.archs, space, args.n, args.seed) if args.archs else sample_archs(args.space, args.n, args.seed)
    except InputError as e:
        print(f"correlation: error: {e}", file=sys.stderr)
        return 2
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{args.space}_correlation_{args.tag}"
    records_stem = f"{args.space}_correlation_{args.records or args.tag}"
    truth = bench.truth_for(archs)

    scores: dict[str, list] = {}
    summary: dict[str, dict] = {}
    per_cell: dict[str, list] = {}
    raw: dict[str, list] = {}  # each estimator's records, before any population rescoring
    try:
        store = SearchStore(Path(args.store) if getattr(args, "store", None) else out_dir / f"{records_stem}.db")
    except InputError as e:
        print(f"correlation: error: {e}", file=sys.stderr)
        return 2
    with store:
        for name in names:
            est = get_estimator(name, **configs[name])
            t0 = time.perf_counter()
            done, shared = sample_records(args, name, est, configs[name], archs, out_dir / f"{records_stem}.{name}.jsonl",
                                          store, data, raw)
            recs = [done[a] for a in archs]
            raw[name] = recs
            fit = None
            if name == "mote":
                recs, fit = refit_mote(recs, configs[name])
            # a population-dependent score (mote-z's fused rank) exists only over this sample
            scores[name] = est.population_scores(recs) if est.population_dependent else [r["score"] for r in recs]
            secs = [r["seconds"] for r in recs if r["status"] == "ok"]
            summary[name] = {"config": configs[name], "seconds_per_cell": float(np.mean(secs)) if secs else None,
                             "failed": sum(r["status"] != "ok" for r in recs),
                             "wall_seconds_this_run": time.perf_counter() - t0}
            if shared:
                summary[name]["derived_from"] = "mote"
            if fit:
                summary[name]["boxcox_fitted"] = fit
            per_cell[name] = scores[name]
            if name == "mote":
                for view, vals in mote_views(recs).items():
                    scores[view] = vals
                    summary[view] = {"seconds_per_cell": summary[name]["seconds_per_cell"], "derived_from": "mote"}
    by_target = {n: {d: v for d in targets} for n, v in scores.items()}  # one proxy score for every target
    for name, per_target in bench.baselines(archs, space).items():
        by_target[name] = per_target
        scores[name] = per_target[main]
        summary[name] = {"seconds_per_cell": None, "source": "benchmark table" if "table" in name else "analytic"}
    for name in summary:
        summary[name]["agreement"] = {d: rank_agreement(by_target[name][d], truth[d]) for d in targets}

    if "mote: speed term" in scores and any(v is not None for v in scores["mote: speed term (cost time)"]):
        summary["mote: speed term"]["kendall_tau_wall_vs_cost_time"] = rank_agreement(
            scores["mote: speed term"], scores["mote: speed term (cost time)"])["kendall_tau"]

    result = {"provenance": provenance(), "space": args.space, "benchmark": str(bench_path),
              "truth": bench.truth_source, "targets": list(targets), "seed": args.seed, "n": len(archs),
              "profile": args.profile, "proxy_data": args.proxy_data, "device": args.device,
              "ceiling": bench.ceiling(archs), "summary": summary,
              "cells": [{"arch": a, **bench.cell_fields(a), **{f"acc_{d}": truth[d][i] for d in targets},
                         "scores": {n: per_cell[n][i] for n in per_cell}} for i, a in enumerate(archs)]}
    path = out_dir / f"{stem}.json"
    write_text(path, json.dumps(result, indent=1))
    if not args.no_plots:
        plot_ranks(out_dir / f"{stem}_ranks.png", archs, scores, truth[main], main)
        plot_tau_cost(out_dir / f"{stem}_tau.png", summary, main)
    print(render_table(summary, targets, main))
    print(f"wrote {path}", file=sys.stderr)
    return 0


def sample_records(args, name: str, est, config: dict, archs: list[str], jsonl: Path, store, data,
                   raw: dict[str, list]) -> tuple[dict[str, dict], dict | None]:
    """({arch: record} of the sample, MOTE's shared records or None). The store scores (and reads back what
    it holds, so a kill loses at most the candidate in flight); the JSONL file is the committed export other
    studies read, appended as each record finishes, and what it already holds is used as it is and
    imported into the store, never scored again."""
    done = {r["arch"]: r for r in read_jsonl(jsonl) if r.get("config_hash") == est.config_hash()}
    store.put_many(list(done.values()))
    todo = [a for a in archs if a not in done]
    if done:
        print(f"{name}: {len(done)} cells already scored in {jsonl.name}, {len(todo)} to go", file=sys.stderr)
    shared = shared_run(est, name, raw)
    if shared:
        store.put_many([shared[a] for a in todo])
    with open(jsonl, "a") as f:
        fresh = (shared[a] for a in todo) if shared else (estimate_record(r, est.config_dict()) for r in score_archs(
            args.space, todo, name, data, config, args.seed, args.device, store=store))
        for rec in fresh:
            f.write(json.dumps(rec) + "\n")
            f.flush()
            done[rec["arch"]] = rec
    return done, shared


def shared_run(est, name: str, raw: dict[str, list]) -> dict[str, dict] | None:
    """``{arch: record}`` read off MOTE's records of the same training run, or None (train again)."""
    source = raw.get("mote")
    if name == "mote" or not source or not hasattr(est, "from_shared_run"):
        return None
    try:
        return {r["arch"]: est.from_shared_run(r) for r in source}
    except InputError as e:
        print(f"{name}: trains its own run ({e})", file=sys.stderr)
        return None


def overrides_for(name: str, overrides: dict) -> dict:
    from mobile_mote.estimators.registry import estimator_class
    fields = set(estimator_class(name).Config.__dataclass_fields__)
    return {k: v for k, v in overrides.items() if k in fields}


def render_table(summary: dict, targets=("cifar10", "cifar100", "imagenet16"), main="cifar100") -> str:
    lines = ["| estimator | " + " | ".join(f"\u03c4 {d}" for d in targets) + f" | \u03c1 {main} | s/cell |",
             "|---|" + "---|" * (len(targets) + 2)]
    f = lambda v: "-" if v is None else f"{v:.3f}"  # noqa: E731
    for name, s in summary.items():
        a = s["agreement"]
        sec = s.get("seconds_per_cell")
        lines.append(f"| {name} | " + " | ".join(f(a[d]["kendall_tau"]) for d in targets)
                     + f" | {f(a[main]['spearman_rho'])} | {'table' if sec is None else f'{sec:.3g}'} |")
    return "\n".join(lines)

