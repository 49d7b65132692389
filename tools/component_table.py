#!/usr/bin/env python
"""Every zero-cost proxy of every distinct network of a space, as the table `mote fuse` reads.

Scores networks in a seeded order (resumable: records appended to --records as each finishes), then
writes one row per architecture key (keys of one network share its values) with MACs and params.

    OMP_NUM_THREADS=1 python tools/component_table.py --space macro \\
        --proxies synflow,snip,grad_norm,fisher,jacov,naswot,expressivity,progressivity,trainability,vkdnw \\
        --records benchmarks/results/macro_components.jsonl --out benchmarks/results/macro_components.csv.gz
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mobile_mote.studies.components import run

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "proxy_cifar100_10"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", default="macro")
    p.add_argument("--proxies", default="", help="comma-separated zero-cost estimators to score")
    p.add_argument("--import", dest="imports", action="append", default=[], metavar="NAME=RECORDS.jsonl",
                   help="take proxy NAME from an estimator's per-key records where the key is its network's key "
                   "and seed and configuration are the defaults (written to <records>.shard_imported.jsonl)")
    p.add_argument("--records", required=True, help="JSONL of per-network records (appended; resumes)")
    p.add_argument("--out", default=None, help="the table to write (.csv or .csv.gz); default: none")
    p.add_argument("--limit", type=int, default=None, help="score only the first N networks of the seeded order")
    p.add_argument("--seed", type=int, default=0, help="the estimators' seed")
    p.add_argument("--first-under", default=None, help="score networks of at most these MACs first (e.g. 60M)")
    p.add_argument("--first-from", default=None, help="a component table (CSV with an arch column) whose networks "
                   "come first: their values are kept as they are and only the missing --proxies are scored")
    p.add_argument("--only-recorded", action="store_true", help="score --proxies only for networks the records "
                   "already hold (a new proxy over the pool scored so far)")
    p.add_argument("--shard", default=None, help="i/n: this process takes every n-th network from the i-th, "
                   "writing <records>.shard<i>of<n>.jsonl (run n processes, one per shard)")
    p.add_argument("--proxy-data", default=str(DEFAULT_DATA))
    p.add_argument("--device", default="cpu")
    p.add_argument("--scores-out", default=None, help="also write arch,score,seconds of --rule over the table "
                   "(the search-table tool's --scores)")
    p.add_argument("--scores-max-macs", default=None, help="rank --scores-out over the keys of at most these MACs "
                   "(e.g. 60M: the population a search under 60 M can meet)")
    p.add_argument("--rule", default=None, help="comma-separated components for --scores-out (default: the rule "
                   "chosen for every space, mobile_mote.fusion.DEFAULT_RULE)")
    args = p.parse_args(argv)
    return run(args, "python tools/component_table.py " + " ".join(sys.argv[1:]))


if __name__ == "__main__":
    sys.exit(main())
