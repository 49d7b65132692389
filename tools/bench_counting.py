#!/usr/bin/env python
"""Analytic MACs/params against fvcore and ptflops: agreement and time per architecture.

For each space, the same ``--n`` random architectures (plus the space's preset) are counted
three ways, for the full and the reduced network:

* analytic: ``space.macs`` + ``space.params`` from the architecture string (no model);
* fvcore / ptflops "count only": the counter on an already built model (+ sum(p.numel()));
* fvcore / ptflops "build+count": building the model from the string, then counting.

Writes a JSON record (per-space figures, machine, versions, date, the exact command) and
prints a markdown table.

    python tools/bench_counting.py --n 200 --seed 0 --out benchmarks/results/counting.json
"""
from __future__ import annotations

import argparse
import sys

from mobile_mote.studies.counting import run


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=200, help="random architectures per space (plus the preset)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="benchmarks/results/counting.json")
    p.add_argument("--spaces", default="nb201,mbv2,mbv3", help="comma-separated")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads (1: fair, quiet timings)")
    p.add_argument("--repeats", type=int, default=20, help="analytic counts per architecture, averaged")
    args = p.parse_args(argv)
    if args.n < 1:
        p.error("--n must be at least 1")
    return run(args, sys.argv if argv is None else ["tools/bench_counting.py", *argv], p.error)


if __name__ == "__main__":
    raise SystemExit(main())
