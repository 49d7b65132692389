#!/usr/bin/env python
"""MODNAS-style hardware-aware Pareto check on NB201, measured against the truth.

Objectives (both minimised): CIFAR-10 test error (%) = 100 - cifar10_acc200 from the benchmark table, and
latency (ms) on a device from latency_ms.csv (rows by NB201 index). Both are normalised by their min and
max over the whole space (all 15,625 cells); cells above 90 % error are then dropped (as MODNAS does);
the reference point is (1, 1). Per device it reports

- the hypervolume (HV) of the TRUE Pareto front (every cell),
- random search: N random distinct cells,
- NSGA-II: the library's mutation-only NSGA-II (mobile_mote.search.algorithms.nsga2.NSGA2, the search behind
  `mote pareto`: binary tournaments on rank then crowding, 1-2 space.mutate steps per child,
  survivors by nsga2_select) with a budget of N evaluated cells,

where a search ranks cells by (accuracy source, true latency) and its found front (the cells it deems
non-dominated among everything it evaluated) is always scored with TRUE error and latency:
HV ratio = HV(found) / HV(true front) and IGD to the true front, mean +- std over seeds.

Accuracy sources (the label goes into every output):
- ``benchmark``  -> "oracle": the table's 200-epoch error itself (an upper bound, not a search result);
- ``precomputed --scores FILE`` -> "precomputed:<file>": JSONL {"arch", "score"} (higher = better, e.g.
  from tools/correlation.py); cells missing from the file are never proposed / evaluated.
- ``live --estimator mote --profile P --proxy-data D --cache FILE`` -> "live:<estimator>/<profile>": the
  estimator scores every cell a search proposes, on demand (seed 0, so a cell's score is shared by every
  search and device), through a results store beside the cache (``<cache stem>.<proxy-data tag>.db``, one
  per proxy-data set); each score is appended to the JSONL cache as it finishes, so a killed run resumes where
  it stopped.
  NSGA-II on this source is the MOTE-Pareto evolution (the NSGA2 of `mote pareto`).

With ``--hypernetwork F1,F2,...`` (fronts.json files of `mote modnas`, one per seed) two more rows per
device: the trained MetaHypernetwork's cells for its preference rays, and MODNAS's control, an untrained
MetaHypernetwork of the same shape (a random control drawn with each file's seed, not the trained
network's own starting point). Their cells are scored with true error and
latency, as MODNAS scores its fronts.

    python tools/nb201_pareto.py --accuracy-source benchmark --n 24,100 --seeds 0,1,2,3,4 --tag oracle
    python tools/nb201_pareto.py --accuracy-source precomputed --scores benchmarks/results/x.mote.jsonl --tag mote
    python tools/nb201_pareto.py --accuracy-source live --estimator mote --profile tiny --n 24 --seeds 0,1,2 \
        --cache runs/nb201_pareto_mote_tiny.jsonl --hypernetwork runs/modnas_cpu_s0/fronts.json,... --tag modnas_cpu
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mobile_mote.studies.pareto_truth import MODNAS_DEVICES, run

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--accuracy-source", choices=("benchmark", "precomputed", "live"), default="benchmark",
                   help="benchmark = the table's own error (oracle upper bound); precomputed = --scores; "
                   "live = --estimator scores cells on demand")
    p.add_argument("--scores", help="JSONL of {'arch', 'score'} records (higher = better) for --accuracy-source precomputed")
    p.add_argument("--estimator", default="mote", help="estimator of --accuracy-source live")
    p.add_argument("--profile", default="paper", help="its profile (paper | official | tiny)")
    p.add_argument("--proxy-data", default=str(SHARED / "proxy_cifar100_10"), help="reduced data of the live estimator")
    p.add_argument("--device", default="cpu", help="where the live estimator trains")
    p.add_argument("--cache", help="JSONL cache of live scores (default: <out-dir>/nb201_pareto_live_<estimator>_<profile>.jsonl)")
    p.add_argument("--hypernetwork", help="comma-separated fronts.json files of `mote modnas` (one per seed)")
    p.add_argument("--devices", default=",".join(MODNAS_DEVICES), help="comma-separated latency_ms.csv columns")
    p.add_argument("--n", default="24,100", help="comma-separated evaluation budgets N (MODNAS evaluates 24)")
    p.add_argument("--seeds", default="0,1,2,3,4", help="comma-separated seeds (>= 3 for a mean +- std)")
    p.add_argument("--pop", type=int, default=None, help="NSGA-II population (default max(4, 2*sqrt(N)) capped at N)")
    p.add_argument("--benchmark", default=str(SHARED / "nb201" / "benchmark.csv"))
    p.add_argument("--latency", default=str(SHARED / "nb201" / "latency_ms.csv"))
    p.add_argument("--tag", default=None, help="names the outputs nb201_pareto_<tag>.json/.png (default: the source label)")
    p.add_argument("--out-dir", default=str(REPO / "benchmarks" / "results"))
    p.add_argument("--plot-device", default=None, help="device of the PNG (default: the first)")
    p.add_argument("--no-plot", action="store_true")
    return p.parse_args(argv)


def main(argv=None) -> int:
    return run(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
