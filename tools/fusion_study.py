#!/usr/bin/env python
"""Rank agreement of fused scores (``mobile_mote.fusion``) and of each component alone, from records.

Reads the per-estimator records the correlation tool wrote (``<records>.<estimator>.jsonl``), and for
NB201 optionally the released MOTE terms of the development split, builds one component table (one
row per network, every component higher = better: the table ``mote fuse`` reads, written beside the
result), and reports Kendall tau / Spearman rho against the benchmark for every component and rule.

Components: ``mote``, ``landscape``, ``speed`` (from MOTE's records, terms negated), ``released_mote``,
``released_landscape``, ``released_speed`` (the released CSV), ``macs``, ``params`` (analytic), and any
other estimator with records. A rule is a named list of components (``--rule name=a,b,c``);
``all`` (every component given) is always reported.

    python tools/fusion_study.py --space macro --records benchmarks/results/macro_correlation_cpu \\
        --components landscape,speed,synflow,jacov,naswot,zico --tag cpu
    python tools/fusion_study.py --records benchmarks/results/nb201_correlation_dev \\
        --released ../shared/data/nb201/official_mote_dev.csv \\
        --components released_landscape,released_speed,synflow,jacov,naswot,zico --tag dev
"""
from __future__ import annotations

import argparse
from pathlib import Path

from mobile_mote.studies.fusion_study import run

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", default="nb201", help="nb201 (default) or macro")
    p.add_argument("--records", required=True, help="the records' stem: <stem>.<estimator>.jsonl")
    p.add_argument("--components", required=True, help="comma-separated components (see above)")
    p.add_argument("--rule", action="append", default=[], metavar="NAME=A,B,...", help="a fused rule to report")
    p.add_argument("--released", default=None, help="NB201: the released MOTE terms (official_mote_dev.csv)")
    p.add_argument("--skip", type=int, default=0, help="leave out the first N networks of the records' order")
    p.add_argument("--first", type=int, default=None, help="keep only N networks (after --skip)")
    p.add_argument("--select-on", type=int, default=None, metavar="N",
                   help="choose the rule with the best mean tau over the targets on the first N networks and "
                   "report every rule on the rest (never used to choose)")
    p.add_argument("--exclude", default=None, metavar="FILE", help="leave these networks out of every figure (one "
                   "architecture per line, e.g. the selection cells another run wrote); they stay in --table-out")
    p.add_argument("--table-out", default=None, metavar="CSV", help="also write every network of the records with "
                   "every component (empty where it was not computed): the table `mote fuse` reads")
    p.add_argument("--benchmark", default=None)
    p.add_argument("--tag", default="run", help="names the outputs: <space>_fusion_<tag>.json and _components.csv")
    p.add_argument("--out-dir", default=str(REPO / "benchmarks" / "results"))
    return p.parse_args(argv)


def main(argv=None) -> int:
    return run(parse_args(argv), SHARED)


if __name__ == "__main__":
    raise SystemExit(main())
