"""Rank agreement of our zero-cost proxies with NASLib's values on its 491 NB201 cells.

Scores each cell of ``nb201/naslib_zero_cost_491.json`` with our proxies on the full NB201
network (C=16, N=5, a head of 100 classes for cifar100 as NASLib used) and the reduced CIFAR-100
proxy data, then reports Spearman's rho per proxy against NASLib's value for the same cell.

    python tools/naslib_agreement.py                       # all 491 cells, cifar100, CPU
    python tools/naslib_agreement.py --n 40 --out /tmp/a.json
    python tools/naslib_agreement.py --proxies grasp jacov --n 200 --repeat-seed 1 \
        --out benchmarks/results/naslib_agreement_seed_noise.json   # our own seed-to-seed noise

Two correlations are given per proxy: ``spearman`` over all cells, with a non-finite or failed
value of ours ranked lowest (NASLib stored -1e8 for those), and ``spearman_finite`` over the cells
where both values are finite. NASLib's own proxy and ours are also correlated with the
benchmark's validation accuracy stored beside them, for context.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mobile_mote.studies.naslib import DATASETS, PAIRS, run

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
DEFAULT_NASLIB = SHARED / "nb201" / "naslib_zero_cost_491.json"
DEFAULT_DATA = SHARED / "proxy_cifar100_10"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="cifar100", choices=sorted(DATASETS),
                   help="which NASLib column to compare with (default cifar100)")
    p.add_argument("--n", type=int, default=None, help="number of cells, in file order (default: all 491)")
    p.add_argument("--seed", type=int, default=0, help="seed for weights and batches (default 0)")
    p.add_argument("--device", default="cpu", help="torch device (default cpu)")
    p.add_argument("--out", default="benchmarks/results/naslib_agreement.json", help="result JSON")
    p.add_argument("--naslib", default=str(DEFAULT_NASLIB), help="NASLib zero-cost JSON")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="proxy data (ImageFolder tree or .npz)")
    p.add_argument("--proxies", nargs="+", default=list(PAIRS), choices=list(PAIRS),
                   help="proxies to score (default: all with a NASLib counterpart)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--repeat-seed", type=int, default=None,
                   help="score every cell again with this seed and report our seed-to-seed agreement "
                        "(the noise ceiling for agreement with any independent run)")
    return run(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
