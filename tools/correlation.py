#!/usr/bin/env python
"""Kendall tau / Spearman rho of estimators against a benchmark space's true accuracy.

Any space with a benchmark table (``mobile_mote.benchmarks.load_benchmark``): NB201 (200-epoch test
accuracy on CIFAR-10 / CIFAR-100 / ImageNet16-120; baselines: the table's 12-epoch accuracy, our MACs
and params) and NAS-Bench-Macro (CIFAR-10 accuracy, mean of 3 seeds; baselines: MACs and params; and
the ceiling: the rank agreement between the benchmark's own seeds). Scores a seeded random sample with
each estimator through a results store (``<space>_correlation_<records>.db``, as a search does: what it holds is
read back, not scored again) and appends each record as it finishes to ``<space>_correlation_<records>.<estimator>.jsonl``,
the committed export other studies read (records already there are imported, never scored again), so a killed run
resumes where it stopped; writes ``<space>_correlation_<tag>.json`` plus two plots.

    python tools/correlation.py --n 300 --estimators mote,tse,synflow,ntk,zico --device cuda --tag gpu
    python tools/correlation.py --n 20 --estimators mote,synflow --profile tiny --tag cpu_tiny
    python tools/correlation.py --space macro --n 2000 --estimators synflow,naswot,zico --tag cpu_zc
"""
from __future__ import annotations

import argparse
from pathlib import Path

from mobile_mote.studies.correlation import run

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", default="nb201", help="a space with a benchmark table: nb201 (default) or macro")
    p.add_argument("--n", type=int, default=300, help="number of random architectures")
    p.add_argument("--seed", type=int, default=0, help="seed of the cell sample and of every estimator")
    p.add_argument("--archs", default=None, help="draw the sample from these architectures instead of the whole "
                   "space: a CSV with an 'arch' column (e.g. a development split) or one architecture per line")
    p.add_argument("--estimators", default="mote,tse", help="comma-separated estimator names")
    p.add_argument("--profile", default="paper", help="paper (default), official, cpu or tiny")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override an estimator option")
    p.add_argument("--device", default="cpu")
    p.add_argument("--proxy-data", default=str(SHARED / "proxy_cifar100_10"))
    p.add_argument("--benchmark", default=None, help="the benchmark table (default: NB201's benchmark.csv in "
                   "../shared/data for nb201, the packaged table for macro)")
    p.add_argument("--tag", default="run", help="names the outputs: <space>_correlation_<tag>.json/.png")
    p.add_argument("--records", default=None, help="names the per-estimator records "
                   "<space>_correlation_<records>.<estimator>.jsonl (default: the tag), so that runs of "
                   "different sizes share them: a smaller seeded sample is a prefix of a larger one")
    p.add_argument("--out-dir", default=str(REPO / "benchmarks" / "results"))
    p.add_argument("--store", default=None, help="the results store the estimators score through "
                   "(default: <out-dir>/<space>_correlation_<records>.db); may be shared with searches and other studies")
    p.add_argument("--no-plots", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> int:
    return run(parse_args(argv), SHARED)


if __name__ == "__main__":
    raise SystemExit(main())
