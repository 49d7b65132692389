#!/usr/bin/env python
"""Multi-objective searches against a benchmark's true front: random search, NSGA-II, MTF-PDNS, LaMOO (random
and NSGA-II inner samplers) and MO-HDNAS, each the class `mote pareto --algorithm` runs, with objectives
looked up in tables (mobile_mote.studies.moo_truth says what each column is).

Runs are appended to <out stem>.runs.jsonl as each finishes (a killed run resumes; --shard i/n splits the
work over processes; the work file is not committed: without it the runs of an existing JSON are taken); the JSON (every run's fronts at every budget, the summary, the true fronts,
provenance) and a markdown table are written from all runs at the end.

    OMP_NUM_THREADS=1 python tools/moo_benchmark.py --space nb201 --performance oracle \\
        --components benchmarks/results/nb201_components.jsonl --out benchmarks/results/moo_nb201.json.gz
    OMP_NUM_THREADS=1 python tools/moo_benchmark.py --space macro --performance oracle,zero-cost \\
        --out benchmarks/results/moo_macro.json
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", choices=("nb201", "macro"), default="nb201")
    p.add_argument("--performance", default="oracle,zero-cost", help="oracle and/or zero-cost, comma-separated")
    p.add_argument("--objectives", default=None, help="costs, comma-separated (default nb201: the six MODNAS test "
                   "devices and macs; macro: macs)")
    p.add_argument("--algorithms", default=None, help="labels to run (default: all of moo_truth.METHODS, and on "
                   "zero-cost pdns-mtf / nsga2-mtf)")
    p.add_argument("--seeds", default="0,1,2,3,4,5,6,7,8,9")
    p.add_argument("--budgets", default="100,300,500,1000", help="evaluated networks at which fronts are measured")
    p.add_argument("--components", default=None, help="zero-cost components (nb201: a components JSONL from "
                   "tools/component_table.py; macro: default benchmarks/results/macro_components.csv.gz)")
    p.add_argument("--benchmark", default=None)
    p.add_argument("--latency", default=str(SHARED / "nb201" / "latency_ms.csv"))
    p.add_argument("--shard", default="0/1", help="i/n: this process runs every n-th run from the i-th")
    p.add_argument("--summary-only", action="store_true", help="write the JSON from the runs so far, run nothing")
    p.add_argument("--out", required=True, help="the JSON to write, gzipped when it ends in .gz (runs go to "
                   "<name>.runs.jsonl beside it)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    from mobile_mote.errors import InputError
    from mobile_mote.provenance import provenance
    from mobile_mote.studies import moo_truth as mt
    from mobile_mote.studies.pareto_truth import MODNAS_DEVICES
    args = parse_args(argv)
    try:
        perfs = [x for x in args.performance.split(",") if x]
        seeds = [int(x) for x in args.seeds.split(",") if x]
        budgets = sorted(int(x) for x in args.budgets.split(",") if x)
        shard = tuple(int(v) for v in args.shard.split("/"))
        labels = [x for x in (args.algorithms or "").split(",") if x] or None
        if args.space == "nb201":
            objectives = (args.objectives or ",".join(MODNAS_DEVICES) + ",macs").split(",")
            devices = [o for o in objectives if o != "macs"]
            problem = mt.nb201_problem(args.benchmark or str(SHARED / "nb201" / "benchmark.csv"), args.latency,
                                       devices, args.components if "zero-cost" in perfs else None)
        else:
            objectives = (args.objectives or "macs").split(",")
            components = args.components or str(REPO / "benchmarks" / "results" / "macro_components.csv.gz")
            problem = mt.macro_problem(args.benchmark or str(SHARED / "macro" / "nas-bench-macro_cifar10.json"),
                                       components if "zero-cost" in perfs else None)
        out = Path(args.out)
        runs_path = out.with_name(out.name.removesuffix(".gz").removesuffix(".json") + ".runs.jsonl")
        if not runs_path.exists() and out.is_file():  # the committed JSON holds every run: resume from it
            mt.seed_runs(out, runs_path)
        if not args.summary_only:
            mt.run_all(problem, objectives, perfs, labels, seeds, budgets, runs_path, shard)
    except (InputError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    runs = [e for e in mt.read_runs(runs_path) if e["objective"] in objectives and e["performance"] in perfs]
    summary = mt.summarise(problem, runs)
    res = {"space": args.space, "performance": perfs, "objectives": objectives, "budgets": budgets, "seeds": seeds,
           "notes": problem.notes, "normalisation": "true error and cost min-max over the reference networks; NB201 "
           "cells above 90 % error dropped; reference point (1, 1)",
           "settings": {k: (v[1] if v else "uniform over the pool") for k, v in {**mt.METHODS, **mt.MTF_METHODS}.items()},
           "provenance": provenance(extra_packages=("scikit-learn",)), "summary": summary,
           "true_fronts": mt.true_fronts(problem, objectives, perfs), "runs": runs}
    mt.write_result(out, res)
    print(mt.markdown(summary, objectives, budgets))
    print(mt.targets_markdown(summary))
    print(f"\nwrote {out} ({len(runs)} run entries)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
