"""The paper's Table 1 for any benchmark space (``tools/search_table.py``): MOTE-NAS k = 5, 10, 20, EF and RS
over seeds, each winner's true accuracy and search cost, beside what the table alone gives (the best feasible
network, random search with the same number of networks) and the paper's published rows.

The search driver's API (``RunSpec``, ``run``, the MOTE-NAS ``SearchConfig``) is met here and nowhere else in the studies.
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from mobile_mote.search_spaces import get_space

from ..atomic import write_text
from ..benchmarks import load_benchmark
from ..efficiency import Constraint, make_costs
from ..errors import InputError
from ..overrides import parse_set
from ..provenance import provenance
from ..scoring import estimator_config
from ..search import RunSpec, run as run_search
from ..search.algorithms import SearchConfig
from ..units import parse_count
from .published import published
from .truth import benchmark_path, random_best_of_n, reference

METHODS = {
    "MOTE-NAS (k=5)": {"algorithm": "mote-nas", "k": 5},
    "MOTE-NAS (k=10)": {"algorithm": "mote-nas", "k": 10},
    "MOTE-NAS (k=20)": {"algorithm": "mote-nas", "k": 20},
    "MOTE-NAS-EF": {"algorithm": "ef", "k": 10},
    "MOTE-NAS-RS (k=10)": {"algorithm": "rs", "k": 10},
    # the quick profile's loop (mobile_mote.profiles): about 90 scored networks
    "MOTE-NAS-EF (quick loop)": {"algorithm": "ef", "batch_start": 2, "batch_step": 0, "draw_factor": 4,
                                 "draw": "neighbours"},
}
# What each space's table is over when not told: NB201's three data sets unconstrained (the paper's
# Table 1); NAS-Bench-Macro's one data set under the budgets its issue names.
DEFAULT_CONDITIONS = {"nb201": (("cifar10", "cifar100", "imagenet16"), ()), "macro": (("cifar10",), ("40M", "50M", "60M"))}


def run(args, shared: Path) -> int:
    """The whole table for the tool's arguments (``shared``: the data folder NB201's table falls back to):
    writes ``<out_dir>/<space>_search_table_<tag>.json``, prints the table; 2 after a one-line error."""
    try:
        get_space(args.space)
        if args.space not in DEFAULT_CONDITIONS:
            raise InputError(f"space {args.space!r} has no benchmark table; accepted: {', '.join(DEFAULT_CONDITIONS)}")
        if args.seeds < 1:
            raise InputError(f"--seeds {args.seeds}; accepted: a positive integer")
        if args.scores:
            from mobile_mote.estimators.simple import read_scores
            read_scores(args.scores)  # a missing or malformed file is refused before any search starts
            estimator, config = "precomputed", {"path": str(Path(args.scores).resolve())}
        else:
            estimator = args.estimator
            config = estimator_config(estimator, args.profile, **parse_set(args.set))
        methods = _names(args.methods, list(METHODS), "method")
        bench_path = Path(benchmark_path(args.space, args.benchmark, shared))
        bench = load_benchmark(bench_path, args.space)
        default_sets, default_budgets = DEFAULT_CONDITIONS[args.space]
        datasets = _names(args.datasets, list(bench.targets), "data set") if args.datasets else list(default_sets)
        budgets = _budgets(args.budgets, default_budgets)
        space = get_space(args.space)
        costs = make_costs(space)
        conditions = [(d, b) for d in datasets for b in budgets]
        references = {_label(d, b): reference(load_benchmark(bench_path, args.space, d), space, costs, b)
                      for d, b in conditions}
    except (InputError, ValueError) as e:
        print(f"search_table: error: {e}", file=sys.stderr)
        return 2
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix=f"{args.space}_table_"))
    work.mkdir(parents=True, exist_ok=True)
    store = work / "shared_store.db"
    runs = []
    from tqdm.auto import tqdm
    bar = tqdm(total=len(methods) * len(conditions) * args.seeds, desc="searches", unit="run", file=sys.stderr)
    for method in methods:
        for d, budget in conditions:
            for seed in range(args.seeds):
                runs.append(one_search(args, method, d, budget, seed, estimator, config, bench_path, work, store))
                runs[-1]["random_best_of_n"] = random_best_of_n(references[_label(d, budget)]["feasible_accuracy"],
                                                                runs[-1]["candidates"], seed)
                bar.update(1)
    bar.close()
    table = summarise(runs, methods, conditions)
    pub = published("mote_nas_nb201_table1")
    paper = pub["rows"] if pub["space"] == args.space else {}
    for ref in references.values():
        ref.pop("feasible_accuracy")
    result = {"provenance": provenance(), "space": args.space, "benchmark": str(bench_path),
              "truth": bench.truth_source, "estimator": estimator, "estimator_config": config,
              "profile": args.profile, "seeds": args.seeds, "conditions": [_label(d, b) for d, b in conditions],
              "references": references, "runs": runs, "table": table, "paper": paper,
              "random_note": "random_best_of_n: N distinct feasible networks drawn uniformly (seed = the run's), the "
                             "best true accuracy among them, N = the run's scored candidates",
              "cost_note": "cost = recorded estimator seconds of every candidate + the evaluation stage's seconds "
                           "(NB201: the benchmark's 12-epoch training times; macro: our training on the proxy data)"}
    out = Path(args.out_dir) / f"{args.space}_search_table_{args.tag}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out, json.dumps(result, indent=1))
    print(render(table, references, [_label(d, b) for d, b in conditions], estimator, paper))
    print(f"wrote {out}", file=sys.stderr)
    return 0


def one_search(args, method, dataset, budget, seed, estimator, config, bench_path, work, store) -> dict:
    """One seeded search through the driver (a rerun of the tool continues from the shared store)."""
    label = _label(dataset, budget)
    name = f"{method}_{label}_s{seed}"
    for ch in " ()=":
        name = name.replace(ch, "")
    spec = RunSpec(name=name, space=args.space, constraints=[Constraint(max_macs=budget)], estimator=estimator,
                   estimator_config=config, algorithm=METHODS[method]["algorithm"],
                   algorithm_config={k: v for k, v in METHODS[method].items() if k != "algorithm"},
                   proxy_data=args.proxy_data, benchmark=str(bench_path), benchmark_dataset=dataset,
                   seed=seed, device=args.device, runs_dir=str(work), store_path=str(store))
    s = run_search(spec, resume=_has_run(store, name), progress=False)
    w = s["winners"][0]
    return {"method": method, "condition": label, "dataset": dataset, "budget_macs": budget, "seed": seed,
            "winner": w["arch"], "winner_macs": w.get("macs"),
            "final_accuracy": w.get("final_accuracy"), "final_rank": w.get("final_rank"),
            "final_rank_networks": w.get("final_rank_networks"),
            "candidates": s["candidates"], "estimator_seconds": s["estimator_seconds"],
            "evaluation_seconds": w.get("evaluation_seconds", 0.0)}


def _label(dataset: str, budget: float | None) -> str:
    return dataset if budget is None else f"{dataset}@{budget / 1e6:g}M"


def _names(text: str | None, accepted: list[str], what: str) -> list[str]:
    if not text:
        return accepted
    names = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in accepted]
    if unknown or not names:
        raise InputError(f"unknown {what}(s) {unknown}; accepted: {', '.join(accepted)}")
    return names


def _budgets(text: str | None, default) -> list[float | None]:
    items = list(default) if text is None else [t.strip() for t in text.split(",") if t.strip()]
    if not items or items == ["none"]:
        return [None]
    return [parse_count(t, "MACs budget") for t in items]


def _has_run(store: Path, name: str) -> bool:
    """Whether the shared store has the run already (run(..., resume=True) requires it)."""
    if not store.is_file() or store.stat().st_size == 0:
        return False
    from mobile_mote.store import SearchStore
    with SearchStore(store, readonly=True) as st:
        return st.run_config(name) is not None


def _mean_std(values) -> tuple[float | None, float | None]:
    v = np.asarray([x for x in values if x is not None], dtype=float)
    return (float(v.mean()), float(v.std())) if len(v) else (None, None)


def summarise(runs, methods, conditions) -> dict:
    table = {}
    for m in methods:
        table[m] = {}
        for d, b in conditions:
            rs = [r for r in runs if r["method"] == m and r["condition"] == _label(d, b)]
            acc, acc_std = _mean_std(r["final_accuracy"] for r in rs)
            rnd, rnd_std = _mean_std(r["random_best_of_n"] for r in rs)
            cost = [r["estimator_seconds"] + r["evaluation_seconds"] for r in rs]
            table[m][_label(d, b)] = {
                "acc_mean": acc, "acc_std": acc_std, "random_best_of_n_mean": rnd, "random_best_of_n_std": rnd_std,
                "cost_mean_s": float(np.mean(cost)) if cost else None,
                "candidates_mean": float(np.mean([r["candidates"] for r in rs])) if rs else None, "n": len(rs)}
    return table


def render(table: dict, references: dict, labels: list[str], estimator: str, paper: dict) -> str:
    f = lambda m, s: "-" if m is None else f"{m:.2f} ± {s:.2f}"  # noqa: E731
    lines = ["| method | condition | winner acc % | random, same N % | N | cost (s) |", "|---|---|---|---|---|---|"]
    for m, row in table.items():
        for lab in labels:
            c = row[lab]
            cost = "-" if c["cost_mean_s"] is None else f"{c['cost_mean_s']:.3g}"
            lines.append(f"| {m} [{estimator}, this run] | {lab} | {f(c['acc_mean'], c['acc_std'])} | "
                         f"{f(c['random_best_of_n_mean'], c['random_best_of_n_std'])} | {c['candidates_mean']:.0f} | "
                         f"{cost} |")
    for lab in labels:
        r = references[lab]
        lines.append(f"| best feasible [benchmark table] | {lab} | {r['best_feasible']['accuracy']:.2f} | "
                     f"mean {r['mean_feasible_accuracy']:.2f} | {r['feasible']} networks | - |")
    for m, row in paper.items():
        for lab in labels:
            if lab in row:
                acc, cost = row[lab]
                lines.append(f"| {m} [paper, published] | {lab} | {acc:.2f} | - | - | {cost:.3g} (V100) |")
    return "\n".join(lines)



def full_search_candidates_at_most() -> int:
    """Scored candidates of a default MOTE-NAS search at most: the initial draw plus 10 k per iteration."""
    cfg = SearchConfig()
    return 10 * cfg.batch_start + cfg.n_iterations() * 10 * cfg.k
