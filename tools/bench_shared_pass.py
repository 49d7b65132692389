#!/usr/bin/env python
"""Seconds per network for every zero-cost proxy: the shared pass (``estimate_many``) against one
estimate at a time, on the same seeded networks, in one process, the two alternating network by network
so that load on the machine falls on both alike. Scores are checked equal. Writes a JSON record.

    OMP_NUM_THREADS=1 python tools/bench_shared_pass.py --space macro --n 10 \\
        --out benchmarks/results/shared_pass_macro_cpu.json
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROXIES = "synflow,snip,grad_norm,fisher,jacov,naswot,expressivity,progressivity,trainability,vkdnw"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", default="macro")
    p.add_argument("--n", type=int, default=10)
    p.add_argument("--proxies", default=PROXIES)
    p.add_argument("--proxy-data", default=str(REPO.parent / "shared" / "data" / "proxy_cifar100_10"))
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    from mobile_mote.atomic import write_text
    from mobile_mote.data.proxy_data import load_proxy_data
    from mobile_mote.provenance import provenance
    from mobile_mote.studies.timing import shared_vs_alone
    from mobile_mote.search_spaces import get_space
    names = [n.strip() for n in args.proxies.split(",") if n.strip()]
    result = shared_vs_alone(get_space(args.space), names, load_proxy_data(args.proxy_data), args.n)
    result = {"command": "python tools/bench_shared_pass.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "provenance": provenance(), **result}
    write_text(Path(args.out), json.dumps(result, indent=1))
    s = result["summary"]
    print(f"{args.space}: shared {s['shared_median_s']:.2f} s/network, one at a time {s['alone_median_s']:.2f} "
          f"s/network (median), ratio {s['ratio_of_totals']:.2f}x; scores equal: {s['scores_equal']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
