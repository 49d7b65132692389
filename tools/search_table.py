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
from pathlib import Path

from mobile_mote.studies.search_table import METHODS, run

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


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
    return run(parse_args(argv), SHARED)


if __name__ == "__main__":
    raise SystemExit(main())
