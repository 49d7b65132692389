#!/usr/bin/env python
"""The paper's Table 1 for any benchmark space: MOTE-NAS k = 5, 10, 20, EF and RS over seeds.

One row per method and condition (a data set, a MACs budget, or both): mean +- std of the winner's
true accuracy from the benchmark table, the search cost, and beside them two references computed from
the table alone: the best feasible network, and random search with the same number of scored networks
(N feasible networks drawn uniformly, the best of them by true accuracy: what N full trainings would
find). All searches share one store, so a network is scored once per estimator.

NB201 (conditions: data sets; the evaluation stage reads the table's 12-epoch accuracy, as the paper):

    python tools/search_table.py --estimator mote --device cuda --seeds 10 --tag gpu_mote
    python tools/search_table.py --estimator macs --tag cpu_macs

NAS-Bench-Macro (conditions: MACs budgets; the benchmark has no short-training figure, so the evaluation
stage trains the top-k reduced networks on the proxy data, as ``mote search`` does):

    python tools/search_table.py --space macro --budgets 40M,50M,60M --estimator mote --profile cpu --tag cpu
    python tools/search_table.py --space macro --scores records.jsonl --tag precomputed
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

from mobile_mote.atomic import write_text  # noqa: E402
from mobile_mote.benchmarks import load_benchmark, packaged_benchmark  # noqa: E402
from mobile_mote.efficiency import Constraint, make_costs  # noqa: E402
from mobile_mote.errors import InputError  # noqa: E402
from mobile_mote.provenance import provenance  # noqa: E402
from mobile_mote.scoring import estimator_config  # noqa: E402
from mobile_mote.search import RunSpec, run as run_search  # noqa: E402
from mobile_mote.search.algorithms import SearchConfig  # noqa: E402
from mobile_mote.units import parse_count  # noqa: E402
from search_spaces import get_space  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
# Published (MOTE-NAS paper, Table 1, NB201 only): test accuracy %, cost in V100-seconds. Not measured here.
PAPER = {"nb201": {
    "MOTE-NAS (k=10)": {"cifar10": (94.15, 4.2e3), "cifar100": (72.54, 4.3e3), "imagenet16": (46.38, 11.3e3)},
    "MOTE-NAS-EF": {"cifar10": (93.54, 0.5e3), "cifar100": (71.59, 0.6e3), "imagenet16": (44.73, 0.6e3)},
}}
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


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--scores", help="precomputed per-network scores (JSON lines of records, or CSV arch,score,seconds)")
    src.add_argument("--estimator", help="score for real with this estimator (mote needs a GPU at paper settings)")
    p.add_argument("--space", default="nb201", help="a space with a benchmark table: nb201 (default) or macro")
    p.add_argument("--profile", default="paper", help="paper (default), official, cpu or tiny")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override an estimator option")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--methods", default=None, help="comma-separated subset of: " + ", ".join(METHODS))
    p.add_argument("--datasets", default=None, help="the benchmark's data sets (default: all it has)")
    p.add_argument("--budgets", default=None, help="MACs budgets, e.g. 40M,50M,60M (default: none on nb201; "
                   "40M,50M,60M on macro); 'none' for unconstrained")
    p.add_argument("--device", default="cpu")
    p.add_argument("--proxy-data", default=str(SHARED / "proxy_cifar100_10"))
    p.add_argument("--benchmark", default=None, help="the benchmark table (default: the packaged one, or NB201's "
                   "benchmark.csv in ../shared/data/nb201)")
    p.add_argument("--work-dir", default=None, help="runs and the shared store (default: a temporary folder)")
    p.add_argument("--tag", default="run", help="names the output: <space>_search_table_<tag>.json")
    p.add_argument("--out-dir", default=str(REPO / "benchmarks" / "results"))
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    from mobile_mote.cli.args import parse_set
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
        bench_path = Path(args.benchmark or packaged_benchmark(args.space) or SHARED / "nb201" / "benchmark.csv")
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
    for ref in references.values():
        ref.pop("feasible_accuracy")
    result = {"provenance": provenance(), "space": args.space, "benchmark": str(bench_path),
              "truth": bench.truth_source, "estimator": estimator, "estimator_config": config,
              "profile": args.profile, "seeds": args.seeds, "conditions": [_label(d, b) for d, b in conditions],
              "references": references, "runs": runs, "table": table, "paper": PAPER.get(args.space, {}),
              "random_note": "random_best_of_n: N distinct feasible networks drawn uniformly (seed = the run's), the "
                             "best true accuracy among them, N = the run's scored candidates",
              "cost_note": "cost = recorded estimator seconds of every candidate + the evaluation stage's seconds "
                           "(NB201: the benchmark's 12-epoch training times; macro: our training on the proxy data)"}
    out = Path(args.out_dir) / f"{args.space}_search_table_{args.tag}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out, json.dumps(result, indent=1))
    print(render(table, references, [_label(d, b) for d, b in conditions], estimator, PAPER.get(args.space, {})))
    print(f"wrote {out}", file=sys.stderr)
    return 0


def one_search(args, method, dataset, budget, seed, estimator, config, bench_path, work, store) -> dict:
    """One seeded search through the driver (a rerun of the tool continues from the shared store)."""
    label = _label(dataset, budget)
    name = f"{method}_{label}_s{seed}"
    for ch in " ()=":
        name = name.replace(ch, "")
    spec = RunSpec(name=name, space=args.space, constraints=[Constraint(max_macs=budget)], estimator=estimator,
                   estimator_config=config, search=SearchConfig(seed=seed, **METHODS[method]),
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


def reference(bench, space, costs, budget) -> dict:
    """What the table alone says of a condition: how many networks fit, the best of them, their mean."""
    limit = Constraint(max_macs=budget)
    truth = bench.truth()
    # one entry per distinct network (space.network_key): a search scores each network once, so random
    # search with the same N draws N distinct networks
    feasible = {space.network_key(a): acc for a, acc in truth.items()
                if acc is not None and limit.admits(costs(space.canonical(a)))}
    keys = sum(1 for a, acc in truth.items() if acc is not None and limit.admits(costs(space.canonical(a))))
    if not feasible:
        raise InputError(f"no network of the benchmark fits {limit.label()}")
    best = max(feasible, key=feasible.get)
    accs = np.asarray(list(feasible.values()), dtype=float)
    return {"feasible": len(feasible), "feasible_keys": keys,
            "best_feasible": {"arch": space.canonical(best), "accuracy": feasible[best]},
            "mean_feasible_accuracy": float(accs.mean()), "feasible_accuracy": accs}


def random_best_of_n(feasible_accuracy: np.ndarray, n: int, seed: int) -> float:
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(feasible_accuracy), size=min(max(n, 1), len(feasible_accuracy)), replace=False)
    return float(feasible_accuracy[pick].max())


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


if __name__ == "__main__":
    raise SystemExit(main())
