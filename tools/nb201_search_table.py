#!/usr/bin/env python
"""The paper's Table 1 on NB201: MOTE-NAS k = 5, 10, 20, MOTE-NAS-EF and MOTE-NAS-RS over seeds.

Each row: mean +- std of the winner's 200-epoch test accuracy (from the benchmark table) on
CIFAR-10, CIFAR-100 and ImageNet16-120, and the search cost in seconds (estimator seconds of
every candidate plus the evaluation stage's 12-epoch training times from the table), printed
beside the paper's rows. All searches share one store, so a cell is scored once per estimator.

    # real scores (a GPU): MOTE at paper settings on the reduced CIFAR-100 set
    python tools/nb201_search_table.py --estimator mote --device cuda --seeds 10 --tag gpu_mote
    # search logic on CPU from precomputed per-cell scores, or a cheap real estimator
    python tools/nb201_search_table.py --scores scores.jsonl --tag precomputed
    python tools/nb201_search_table.py --estimator macs --tag cpu_macs
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

from mobile_mote.efficiency.constraints import Constraint  # noqa: E402
from mobile_mote.errors import InputError  # noqa: E402
from mobile_mote.provenance import provenance  # noqa: E402
from mobile_mote.scoring import estimator_config  # noqa: E402
from mobile_mote.search.algorithms import SearchConfig  # noqa: E402
from mobile_mote.search import RunSpec, run as run_search  # noqa: E402

SHARED = REPO.parent / "shared" / "data"
DATASETS = ("cifar10", "cifar100", "imagenet16")
# Published (MOTE-NAS paper, Table 1): test accuracy %, cost in V100-seconds. Not measured here.
PAPER = {
    "MOTE-NAS (k=10)": {"cifar10": (94.15, 4.2e3), "cifar100": (72.54, 4.3e3), "imagenet16": (46.38, 11.3e3)},
    "MOTE-NAS-EF": {"cifar10": (93.54, 0.5e3), "cifar100": (71.59, 0.6e3), "imagenet16": (44.73, 0.6e3)},
}
METHODS = {
    "MOTE-NAS (k=5)": {"algorithm": "mote-nas", "k": 5},
    "MOTE-NAS (k=10)": {"algorithm": "mote-nas", "k": 10},
    "MOTE-NAS (k=20)": {"algorithm": "mote-nas", "k": 20},
    "MOTE-NAS-EF": {"algorithm": "ef", "k": 10},
    "MOTE-NAS-RS (k=10)": {"algorithm": "rs", "k": 10},
}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--scores", help="precomputed per-cell scores (JSON lines of records, or CSV arch,score,seconds)")
    src.add_argument("--estimator", help="score for real with this estimator (mote needs a GPU at paper settings)")
    p.add_argument("--profile", default="paper")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--methods", default=",".join(METHODS), help="comma-separated subset of: " + ", ".join(METHODS))
    p.add_argument("--datasets", default=",".join(DATASETS))
    p.add_argument("--device", default="cpu")
    p.add_argument("--proxy-data", default=str(SHARED / "proxy_cifar100_10"))
    p.add_argument("--benchmark", default=str(SHARED / "nb201" / "benchmark.csv"))
    p.add_argument("--work-dir", default=None, help="runs and the shared store (default: a temporary folder)")
    p.add_argument("--tag", default="run")
    p.add_argument("--out-dir", default=str(REPO / "benchmarks" / "results"))
    args = p.parse_args(argv)
    from mobile_mote.cli.args import parse_set as _parse_set
    try:
        if args.scores:
            from mobile_mote.estimators.simple import read_scores
            read_scores(args.scores)  # a missing or malformed file is refused before any search starts
            estimator, config = "precomputed", {"path": str(Path(args.scores).resolve())}
        else:
            estimator = args.estimator
            config = estimator_config(estimator, args.profile, **_parse_set(args.set))
        methods = [m.strip() for m in args.methods.split(",") if m.strip()]
        unknown = [m for m in methods if m not in METHODS]
        if unknown:
            raise InputError(f"unknown method(s) {unknown}; accepted: {', '.join(METHODS)}")
        datasets = [d.strip() for d in args.datasets.split(",")]
    except InputError as e:
        print(f"nb201_search_table: error: {e}", file=sys.stderr)
        return 2
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="nb201_table_"))
    store = work / "shared_store.db"
    runs = []
    total = len(methods) * len(datasets) * args.seeds
    from tqdm.auto import tqdm
    bar = tqdm(total=total, desc="searches", unit="run", file=sys.stderr)
    for method in methods:
        for d in datasets:
            for seed in range(args.seeds):
                name = f"{method}_{d}_s{seed}".replace(" ", "").replace("(", "").replace(")", "").replace("=", "")
                spec = RunSpec(name=name, space="nb201", constraints=[Constraint()], estimator=estimator,
                               estimator_config=config, search=SearchConfig(seed=seed, **METHODS[method]),
                               proxy_data=args.proxy_data, benchmark=args.benchmark, benchmark_dataset=d,
                               seed=seed, device=args.device, runs_dir=str(work), store_path=str(store))
                s = run_search(spec, resume=_has_run(store, name), progress=False)  # a rerun continues
                w = s["winners"][0]
                runs.append({"method": method, "dataset": d, "seed": seed, "arch": w["arch"],
                             "final_accuracy": w.get("final_accuracy"), "candidates": s["candidates"],
                             "estimator_seconds": s["estimator_seconds"],
                             "evaluation_seconds": w.get("evaluation_seconds", 0.0)})
                bar.update(1)
    bar.close()
    table = summarise(runs, methods, datasets)
    result = {"provenance": provenance(), "estimator": estimator, "estimator_config": config,
              "seeds": args.seeds, "runs": runs, "table": table, "paper": PAPER,
              "cost_note": "cost = sum of recorded estimator seconds of every candidate + the benchmark's 12-epoch "
                           "training seconds of the evaluated cells (the paper counts V100-seconds)"}
    out = Path(args.out_dir) / f"nb201_search_table_{args.tag}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1))
    print(render(table, datasets, estimator))
    print(f"wrote {out}", file=sys.stderr)
    return 0


def _has_run(store: Path, name: str) -> bool:
    """Whether the shared store has the run already (run(..., resume=True) requires it)."""
    if not store.is_file() or store.stat().st_size == 0:
        return False
    from mobile_mote.store import SearchStore
    with SearchStore(store, readonly=True) as st:
        return st.run_config(name) is not None


def summarise(runs, methods, datasets) -> dict:
    table = {}
    for m in methods:
        table[m] = {}
        for d in datasets:
            rs = [r for r in runs if r["method"] == m and r["dataset"] == d]
            acc = np.array([r["final_accuracy"] for r in rs if r["final_accuracy"] is not None], dtype=float)
            cost = np.array([r["estimator_seconds"] + r["evaluation_seconds"] for r in rs], dtype=float)
            table[m][d] = {"acc_mean": float(acc.mean()) if len(acc) else None,
                           "acc_std": float(acc.std()) if len(acc) else None,
                           "cost_mean_s": float(cost.mean()) if len(cost) else None,
                           "candidates_mean": float(np.mean([r["candidates"] for r in rs])) if rs else None, "n": len(rs)}
    return table


def render(table: dict, datasets, estimator: str) -> str:
    head = "| method | " + " | ".join(f"{d} acc % | {d} cost (s)" for d in datasets) + " |"
    lines = [head, "|" + "---|" * (1 + 2 * len(datasets))]
    for m, row in table.items():
        cells = []
        for d in datasets:
            c = row[d]
            cells.append("-" if c["acc_mean"] is None else f"{c['acc_mean']:.2f} ± {c['acc_std']:.2f}")
            cells.append("-" if c["cost_mean_s"] is None else f"{c['cost_mean_s']:.3g}")
        lines.append(f"| {m} [{estimator}, this run] | " + " | ".join(cells) + " |")
    for m, row in PAPER.items():
        cells = []
        for d in datasets:
            acc, cost = row[d]
            cells += [f"{acc:.2f}", f"{cost:.3g} (V100)"]
        lines.append(f"| {m} [paper, published] | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
