"""How well a per-block latency LUT predicts end-to-end latency of random mbv2 networks on CPU.

    python tools/bench_latency_lut.py [--networks 50] [--resolution 224] [--lut-repeats 10] [--repeats 10]

Builds the LUT (batch 1, 1 thread), then measures random networks end to end with PyTorch and reports
Spearman rho and the mean absolute percentage error of the prediction; writes
benchmarks/results/latency_lut_<space>_cpu.json (per-network predicted and measured ms, provenance).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    from mobile_mote.studies.latency_lut import run

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--space", default="mbv2")
    p.add_argument("--networks", type=int, default=50)
    p.add_argument("--resolution", type=int, default=224)
    p.add_argument("--lut-warmup", type=int, default=3)
    p.add_argument("--lut-repeats", type=int, default=10)
    p.add_argument("--lut-rounds", type=int, default=1, help="passes over the LUT; each entry keeps its smallest median")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None)
    p.add_argument("--lut-out", default=None, help="also keep the LUT itself here")
    args = p.parse_args(argv)
    return run(args, "python " + " ".join(["tools/bench_latency_lut.py", *(argv if argv is not None else sys.argv[1:])]),
               ROOT / "benchmarks" / "results")


if __name__ == "__main__":
    raise SystemExit(main())
