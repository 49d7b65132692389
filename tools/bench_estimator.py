#!/usr/bin/env python
"""Seconds per cell of the MOTE estimator, beside a plain PyTorch loop on the same cells.

Ours: the whole reduced data set as one tensor on the device, seeded index permutations,
bf16 autocast + channels_last on CUDA. The baseline: a DataLoader over host tensors, fp32,
one model at a time, batches copied to the device, the same epochs and landscape walk.

    python tools/bench_estimator.py --device cpu --profile tiny --n 5
    python tools/bench_estimator.py --device cpu --profile paper --n 1 --tag cpu_paper
    python tools/bench_estimator.py --device cuda --profile paper --n 20 --tag gpu   # GPU figure
"""
from __future__ import annotations

import argparse
from pathlib import Path

from mobile_mote.studies.timing import estimator_speed

REPO = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--profile", default="tiny")
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--no-baseline", action="store_true", help="skip the plain PyTorch loop")
    p.add_argument("--proxy-data", default=str(REPO.parent / "shared" / "data" / "proxy_cifar100_10"))
    p.add_argument("--tag", default=None)
    p.add_argument("--out-dir", default=str(REPO / "benchmarks" / "results"))
    return estimator_speed(p.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
